//! The local state backend: `state/<stack>.json`, its history under
//! `state/.history/` and its lock file `state/<stack>.lock`.
//!
//! A state file is the only record of what a stack owns, so it is replaced
//! only by an atomic rename of a fully written and synced file, the previous
//! version is kept first, and a file that cannot be read is never written
//! over.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::Value;

use super::{SCHEMA_VERSION, State, StateError, StateLock, StateStore, now_rfc3339};

/// History copies kept per stack; older ones are removed after each save.
const HISTORY_KEEP: usize = 10;

/// Stores one stack's state as files in a folder.
#[derive(Clone, Debug)]
pub struct LocalStore {
    dir: PathBuf,
    stack: String,
}

impl LocalStore {
    pub fn new(state_dir: PathBuf, stack: &str) -> Self {
        LocalStore {
            dir: state_dir,
            stack: stack.to_string(),
        }
    }

    pub fn state_file(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.stack))
    }

    pub fn lock_file(&self) -> PathBuf {
        self.dir.join(format!("{}.lock", self.stack))
    }

    pub fn history_dir(&self) -> PathBuf {
        self.dir.join(".history")
    }

    /// This stack's history copies as `(serial, path)`, newest first.
    pub fn history(&self) -> Result<Vec<(u64, PathBuf)>, StateError> {
        let dir = self.history_dir();
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(StateError::io("list", &dir, e)),
        };
        let prefix = format!("{}.", self.stack);
        let mut copies = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| StateError::io("list", &dir, e))?;
            let name = entry.file_name();
            // Parsing the middle as a number keeps stack `dev` from claiming
            // the copies of a stack named `dev.eu`.
            let serial = name
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix))
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(serial) = serial {
                copies.push((serial, entry.path()));
            }
        }
        copies.sort_by_key(|c| std::cmp::Reverse(c.0));
        Ok(copies)
    }

    /// The newest history copy that still reads as this stack's state.
    fn last_good(&self) -> Option<PathBuf> {
        self.history().ok()?.into_iter().find_map(|(_, path)| {
            let bytes = fs::read(&path).ok()?;
            parse(&path, &bytes, &self.stack).ok().map(|_| path)
        })
    }

    /// The state on disk with the bytes it was read from, or `None` if the
    /// stack has never been written.
    fn read(&self) -> Result<Option<(State, Vec<u8>)>, StateError> {
        let file = self.state_file();
        let bytes = match fs::read(&file) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StateError::io("read", &file, e)),
        };
        match parse(&file, &bytes, &self.stack) {
            Ok(state) => Ok(Some((state, bytes))),
            Err(StateError::Corrupt { file, reason, .. }) => Err(StateError::Corrupt {
                file,
                last_good: self.last_good(),
                reason,
            }),
            Err(e) => Err(e),
        }
    }

    /// Writes `state` over the state file, keeping `previous` in history
    /// first. Nothing on disk changes unless this returns `Ok`.
    fn replace(&self, state: &State, previous: Option<(u64, &[u8])>) -> Result<(), StateError> {
        let file = self.state_file();
        let mut bytes = serde_json::to_vec_pretty(state).map_err(|source| StateError::Encode {
            stack: self.stack.clone(),
            source,
        })?;
        bytes.push(b'\n');

        if let Some((serial, old)) = previous {
            let history = self.history_dir();
            create_private_dir(&history)?;
            write_atomically(
                &history,
                &history.join(format!("{}.{serial}.json", self.stack)),
                old,
            )?;
            sync_dir(&history)?;
        }
        write_atomically(&self.dir, &file, &bytes)
    }

    /// Removes the temp files of writes that a killed run never finished.
    /// Only the lock holder writes, so with the lock held any temp file of
    /// this stack is stale. Best effort: a leftover is only clutter.
    fn remove_stale_temp_files(&self) {
        let state_temp = format!(".{}.json.tmp-", self.stack);
        let history_prefix = format!(".{}.", self.stack);
        // Matched exactly, so that stack `dev` never touches the files of a
        // stack `dev.eu` (or `dev.5`) that another run may be writing.
        let is_history_temp = |name: &str| {
            name.strip_prefix(&history_prefix)
                .and_then(|rest| rest.split_once(".json.tmp-"))
                .is_some_and(|(serial, _)| {
                    !serial.is_empty() && serial.bytes().all(|b| b.is_ascii_digit())
                })
        };
        let stale = [(self.dir.clone(), false), (self.history_dir(), true)];
        for (dir, history) in stale {
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                let Some(name) = name.to_str() else {
                    continue;
                };
                let ours = if history {
                    is_history_temp(name)
                } else {
                    name.starts_with(&state_temp)
                };
                if ours {
                    let _ = fs::remove_file(entry.path());
                }
            }
        }
    }

    /// Removes all but the newest history copies. Failing to prune only
    /// leaves extra files, so it does not fail a save that already happened.
    fn prune_history(&self) {
        if let Ok(copies) = self.history() {
            for (_, path) in copies.into_iter().skip(HISTORY_KEEP) {
                let _ = fs::remove_file(path);
            }
        }
    }
}

impl StateStore for LocalStore {
    fn load(&self) -> Result<State, StateError> {
        Ok(match self.read()? {
            Some((state, _)) => state,
            None => State::empty(&self.stack),
        })
    }

    fn save(&self, state: &mut State) -> Result<(), StateError> {
        let file = self.state_file();
        if state.stack != self.stack {
            return Err(StateError::WrongStack {
                file,
                expected: self.stack.clone(),
                found: state.stack.clone(),
            });
        }
        create_private_dir(&self.dir)?;

        // Reading through the same checks as `load` is what keeps a corrupt,
        // newer or foreign file from being written over.
        let on_disk = self.read()?;
        if let Some((disk, _)) = &on_disk {
            if disk.serial > state.serial {
                return Err(StateError::Conflict {
                    file,
                    on_disk: disk.serial,
                    loaded: state.serial,
                });
            }
        }
        let previous = on_disk
            .as_ref()
            .map(|(s, bytes)| (s.serial, bytes.as_slice()));

        let loaded = (state.version, state.serial, state.updated.take());
        state.version = SCHEMA_VERSION;
        state.serial = loaded.1 + 1;
        state.updated = Some(now_rfc3339());
        if let Err(e) = self.replace(state, previous) {
            (state.version, state.serial, state.updated) = loaded;
            return Err(e);
        }

        // From here the new file is in place, so `state` keeps its new serial
        // even if making the rename durable fails.
        let synced = sync_dir(&self.dir);
        self.prune_history();
        synced
    }

    fn lock(&self, command: &str) -> Result<StateLock, StateError> {
        create_private_dir(&self.dir)?;
        let lock = StateLock::acquire(&self.lock_file(), &self.stack, command)?;
        self.remove_stale_temp_files();
        Ok(lock)
    }

    fn location(&self) -> String {
        self.state_file().display().to_string()
    }
}

/// Reads `bytes` as the state of `stack`. The version is checked before the
/// schema so a file from a newer release is reported as such rather than as
/// corrupt because of fields this release does not know.
fn parse(file: &Path, bytes: &[u8], stack: &str) -> Result<State, StateError> {
    let corrupt = |reason: String| StateError::Corrupt {
        file: file.to_path_buf(),
        last_good: None,
        reason,
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(corrupt("the file is empty".to_string()));
    }
    let value: Value = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    if let Some(found) = value.get("version").and_then(Value::as_u64) {
        if found > u64::from(SCHEMA_VERSION) {
            return Err(StateError::NewerVersion {
                file: file.to_path_buf(),
                found,
                supported: SCHEMA_VERSION,
            });
        }
    }
    // Parsed again from the bytes, not the value, so schema errors carry a
    // line and column.
    let state: State = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    if state.version == 0 {
        return Err(corrupt("schema version 0 does not exist".to_string()));
    }
    let mut seen = std::collections::HashSet::with_capacity(state.resources.len());
    for resource in &state.resources {
        if !seen.insert(&resource.id) {
            return Err(corrupt(format!("{} is listed twice", resource.id)));
        }
    }
    if state.stack != stack {
        return Err(StateError::WrongStack {
            file: file.to_path_buf(),
            expected: stack.to_string(),
            found: state.stack,
        });
    }
    Ok(state)
}

fn create_private_dir(dir: &Path) -> Result<(), StateError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| StateError::io("create folder", dir, e))
}

/// Replaces `target` with `bytes` so that readers, and the disk after a
/// crash, see either the old file or the new one, never a mix. The temp file
/// sits in `dir`, the target's folder, because rename is only atomic within
/// one file system.
fn write_atomically(dir: &Path, target: &Path, bytes: &[u8]) -> Result<(), StateError> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = target
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("state");
    let temp = dir.join(format!(
        ".{name}.tmp-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));

    let write = || -> io::Result<()> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&temp);
        return Err(StateError::io("write", &temp, e));
    }
    if let Err(e) = fs::rename(&temp, target) {
        let _ = fs::remove_file(&temp);
        return Err(StateError::io("replace", target, e));
    }
    Ok(())
}

/// Makes a rename inside `dir` durable: without it a crash can bring back
/// the old directory entry even though the new file's data was synced.
fn sync_dir(dir: &Path) -> Result<(), StateError> {
    #[cfg(unix)]
    {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| StateError::io("sync folder", dir, e))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::engine::ResourceId;
    use crate::state::ResourceState;

    fn store(dir: &tempfile::TempDir) -> LocalStore {
        LocalStore::new(dir.path().join("state"), "dev")
    }

    fn with_resource(mut state: State, name: &str) -> State {
        state.upsert_resource(ResourceState {
            id: ResourceId::new("v1", "ConfigMap", Some("demo"), name),
            uid: format!("uid-{name}"),
            depends_on: vec![ResourceId::new("v1", "Namespace", None, "demo")],
            applied: json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}}),
        });
        state.outputs.insert("url".to_string(), json!("http://x"));
        state
    }

    #[test]
    fn missing_file_loads_as_empty_state_at_serial_zero() {
        let dir = tempfile::tempdir().unwrap();
        let state = store(&dir).load().unwrap();
        assert_eq!(state, State::empty("dev"));
        assert!(!dir.path().join("state").exists());
    }

    #[test]
    fn saved_state_loads_back_equal() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let mut state = with_resource(State::empty("dev"), "web");
        state.begin(
            "update",
            ResourceId::new("v1", "ConfigMap", Some("demo"), "web"),
        );

        store.save(&mut state).unwrap();

        assert_eq!(store.load().unwrap(), state);
        let text = fs::read_to_string(store.state_file()).unwrap();
        assert!(text.ends_with("}\n"));
        assert!(text.contains("\n  \"stack\": \"dev\""));
        humantime::parse_rfc3339(state.updated.as_deref().unwrap()).unwrap();
        assert_eq!(store.location(), store.state_file().display().to_string());
    }

    #[test]
    fn each_save_grows_the_serial_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let mut state = store.load().unwrap();
        for expected in 1..=3 {
            store.save(&mut state).unwrap();
            assert_eq!(state.serial, expected);
            assert_eq!(store.load().unwrap().serial, expected);
        }
    }

    #[test]
    fn save_keeps_the_previous_file_in_history_capped_at_ten() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let mut state = store.load().unwrap();

        store.save(&mut state).unwrap();
        assert!(store.history().unwrap().is_empty());
        let first = fs::read(store.state_file()).unwrap();
        store.save(&mut state).unwrap();
        let copy = store.history_dir().join("dev.1.json");
        assert_eq!(fs::read(copy).unwrap(), first);

        for _ in 0..13 {
            store.save(&mut state).unwrap();
        }
        assert_eq!(state.serial, 15);
        let serials: Vec<u64> = store.history().unwrap().iter().map(|h| h.0).collect();
        assert_eq!(serials, (5..=14).rev().collect::<Vec<_>>());
    }

    #[test]
    fn history_of_one_stack_ignores_another_stack_with_a_dotted_name() {
        let dir = tempfile::tempdir().unwrap();
        let dev = store(&dir);
        let dev_eu = LocalStore::new(dir.path().join("state"), "dev.eu");
        let mut eu = dev_eu.load().unwrap();
        for _ in 0..3 {
            dev_eu.save(&mut eu).unwrap();
        }
        assert!(dev.history().unwrap().is_empty());
        assert_eq!(dev_eu.history().unwrap().len(), 2);
    }

    #[test]
    fn corrupt_file_is_reported_with_last_good_copy_and_left_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let mut state = store.load().unwrap();
        for _ in 0..3 {
            store.save(&mut state).unwrap();
        }
        let broken = b"{\n  \"version\": 1,\n  \"stack\": \"dev\",\n  \"serial\": \n".to_vec();
        fs::write(store.state_file(), &broken).unwrap();
        // A damaged newest copy must be skipped in favour of an older one.
        fs::write(store.history_dir().join("dev.2.json"), b"{").unwrap();

        let err = store.load().unwrap_err();
        let good = store.history_dir().join("dev.1.json");
        match &err {
            StateError::Corrupt {
                file, last_good, ..
            } => {
                assert_eq!(file, &store.state_file());
                assert_eq!(last_good.as_ref(), Some(&good));
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        let message = err.to_string();
        assert!(message.contains(&store.state_file().display().to_string()));
        assert!(message.contains("line 5 column 0"), "{message}");
        assert!(message.contains(&good.display().to_string()));
        assert!(err.hint().unwrap().contains("cp "));

        assert!(matches!(
            store.save(&mut state),
            Err(StateError::Corrupt { .. })
        ));
        assert_eq!(state.serial, 3);
        assert_eq!(fs::read(store.state_file()).unwrap(), broken);
    }

    #[test]
    fn file_not_matching_the_schema_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        fs::create_dir_all(dir.path().join("state")).unwrap();
        let text = "{\"version\": 1, \"stack\": \"dev\", \"serial\": 2, \"extra\": true}\n";
        fs::write(store.state_file(), text).unwrap();

        let err = store.load().unwrap_err();
        assert!(matches!(
            err,
            StateError::Corrupt {
                last_good: None,
                ..
            }
        ));
        assert!(err.to_string().contains("unknown field `extra`"), "{err}");
        assert!(err.to_string().contains("line 1 column"), "{err}");
    }

    #[test]
    fn duplicate_resources_are_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let mut state = with_resource(State::empty("dev"), "web");
        state.resources.push(state.resources[0].clone());
        fs::create_dir_all(dir.path().join("state")).unwrap();
        fs::write(
            store.state_file(),
            serde_json::to_vec_pretty(&state).unwrap(),
        )
        .unwrap();

        let err = store.load().unwrap_err();
        assert!(err.to_string().contains("listed twice"), "{err}");
    }

    #[test]
    fn newer_schema_version_is_rejected_and_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        fs::create_dir_all(dir.path().join("state")).unwrap();
        let text = "{\"version\": 2, \"stack\": \"dev\", \"serial\": 4, \"newField\": 1}\n";
        fs::write(store.state_file(), text).unwrap();

        let err = store.load().unwrap_err();
        assert!(matches!(err, StateError::NewerVersion { found: 2, .. }));
        assert!(err.to_string().contains("newer echo-iac"));

        let mut state = State::empty("dev");
        state.serial = 9;
        assert!(store.save(&mut state).is_err());
        assert_eq!(fs::read_to_string(store.state_file()).unwrap(), text);
    }

    #[test]
    fn state_of_another_stack_is_rejected_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let prod = LocalStore::new(dir.path().join("state"), "prod");
        prod.save(&mut State::empty("prod")).unwrap();
        fs::rename(prod.state_file(), store(&dir).state_file()).unwrap();

        let err = store(&dir).load().unwrap_err();
        assert!(matches!(err, StateError::WrongStack { .. }));
        let message = err.to_string();
        assert!(
            message.contains("`prod`") && message.contains("`dev`"),
            "{message}"
        );
    }

    #[test]
    fn save_refuses_when_another_run_wrote_a_newer_serial() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let mut stale = store.load().unwrap();
        let mut other = store.load().unwrap();
        store.save(&mut other).unwrap();
        store.save(&mut other).unwrap();
        store.save(&mut stale).unwrap_err();

        stale.serial = 1;
        let before = fs::read(store.state_file()).unwrap();
        let err = store.save(&mut stale).unwrap_err();
        assert!(matches!(
            err,
            StateError::Conflict {
                on_disk: 2,
                loaded: 1,
                ..
            }
        ));
        assert_eq!(stale.serial, 1);
        assert_eq!(stale.updated, None);
        assert_eq!(fs::read(store.state_file()).unwrap(), before);
    }

    #[test]
    fn failed_write_leaves_the_old_file_and_the_in_memory_serial() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let mut state = store.load().unwrap();
        store.save(&mut state).unwrap();
        let before = fs::read(store.state_file()).unwrap();
        // A file where the history folder should be makes the save fail
        // before the state file is touched.
        fs::write(store.history_dir(), b"").unwrap();

        assert!(matches!(store.save(&mut state), Err(StateError::Io { .. })));
        assert_eq!(state.serial, 1);
        assert_eq!(fs::read(store.state_file()).unwrap(), before);
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("state"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn second_lock_fails_naming_the_holder_and_succeeds_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let first = store.lock("echo-iac up").unwrap();
        let recorded: super::super::LockHolder =
            serde_json::from_slice(&fs::read(store.lock_file()).unwrap()).unwrap();
        assert_eq!(&recorded, first.holder());

        let err = store.lock("echo-iac destroy").unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with(&format!(
                "stack dev is locked by `echo-iac up` (pid {}, user ",
                std::process::id()
            )),
            "{message}"
        );
        assert!(message.contains(" since "), "{message}");
        assert!(err.hint().unwrap().contains("never delete"));

        drop(first);
        assert_eq!(fs::read(store.lock_file()).unwrap(), b"");
        let second = store.lock("echo-iac destroy").unwrap();
        assert_eq!(second.holder().command, "echo-iac destroy");
    }

    #[test]
    fn lock_wait_gets_the_lock_once_the_holder_releases_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let first = store.lock("echo-iac up").unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(250));
            drop(first);
        });

        let lock = store.lock_wait("echo-iac up", Duration::from_secs(5));
        release.join().unwrap();
        assert!(lock.is_ok());
    }

    #[test]
    fn lock_wait_gives_up_after_the_timeout_saying_how_long_it_waited() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let _first = store.lock("echo-iac up").unwrap();

        let err = store
            .lock_wait("echo-iac up", Duration::from_millis(300))
            .unwrap_err();
        assert!(matches!(
            err,
            StateError::Locked {
                waited: Some(_),
                ..
            }
        ));
        assert!(err.to_string().contains("is still locked by"), "{err}");
        assert!(err.to_string().contains("(waited 300ms)"), "{err}");
    }

    /// Set in a child copy of this test binary to make it hold the lock.
    #[cfg(unix)]
    const CHILD_LOCK_DIR: &str = "ECHO_IAC_TEST_CHILD_LOCK_DIR";

    /// Holds the lock until killed when started by the test below; does
    /// nothing in a normal run.
    #[cfg(unix)]
    #[test]
    fn child_holding_the_lock() {
        let Some(dir) = std::env::var_os(CHILD_LOCK_DIR) else {
            return;
        };
        let _lock = LocalStore::new(PathBuf::from(dir), "dev")
            .lock("echo-iac up")
            .unwrap();
        println!("child-locked");
        std::thread::sleep(Duration::from_secs(60));
    }

    #[cfg(unix)]
    #[test]
    fn lock_of_a_killed_process_is_released_at_once() {
        use std::io::BufRead;
        use std::process::{Command, Stdio};

        // Killed on drop too, so a failed assertion leaves no process behind.
        struct Child(std::process::Child);
        impl Drop for Child {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }

        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let mut child = Child(
            Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "state::local::tests::child_holding_the_lock",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_LOCK_DIR, dir.path().join("state"))
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let stdout = io::BufReader::new(child.0.stdout.take().unwrap());
        let locked = stdout
            .lines()
            .any(|line| line.is_ok_and(|l| l.contains("child-locked")));
        assert!(locked, "the child process did not take the lock");

        let err = store.lock("echo-iac up").unwrap_err();
        match &err {
            StateError::Locked {
                holder: Some(holder),
                ..
            } => assert_eq!(holder.pid, child.0.id()),
            other => panic!("expected Locked by the child, got {other:?}"),
        }

        // SIGKILL: the child gets no chance to clean up.
        drop(child);
        let lock = store.lock("echo-iac up").unwrap();
        assert_eq!(lock.holder().pid, std::process::id());
    }

    #[cfg(unix)]
    #[test]
    fn folders_are_private_to_the_owner_and_files_too() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let mut state = store.load().unwrap();
        store.save(&mut state).unwrap();
        store.save(&mut state).unwrap();
        let _lock = store.lock("echo-iac up").unwrap();

        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("state")), 0o700);
        assert_eq!(mode(&store.history_dir()), 0o700);
        assert_eq!(mode(&store.state_file()), 0o600);
        assert_eq!(mode(&store.history_dir().join("dev.1.json")), 0o600);
        assert_eq!(mode(&store.lock_file()), 0o600);
    }

    #[test]
    fn lock_removes_temp_files_of_killed_writes_of_this_stack_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let state_dir = dir.path().join("state");
        let history = state_dir.join(".history");
        fs::create_dir_all(&history).unwrap();
        let stale = [
            state_dir.join(".dev.json.tmp-123-0"),
            history.join(".dev.7.json.tmp-123-1"),
        ];
        let kept = [
            state_dir.join(".dev.eu.json.tmp-9-0"),
            state_dir.join(".dev.5.json.tmp-9-0"),
            history.join(".dev.eu.3.json.tmp-9-1"),
            history.join("dev.7.json"),
        ];
        for path in stale.iter().chain(&kept) {
            fs::write(path, b"{").unwrap();
        }

        let _lock = store.lock("echo-iac up").unwrap();
        for path in &stale {
            assert!(!path.exists(), "{} was kept", path.display());
        }
        for path in &kept {
            assert!(path.exists(), "{} was removed", path.display());
        }
    }
}
