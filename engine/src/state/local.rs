//! The local state backend: `state/<stack>.json`, its history under
//! `state/.history/` and its lock file `state/<stack>.<program>-lock`.
//!
//! A state file is the only record of what a stack owns, so it is replaced
//! only by an atomic rename of a fully written and synced file, the previous
//! version is kept first, and a file that cannot be read is never written
//! over. Every file and folder is reached through `files`, which refuses
//! symbolic links and files that are not this user's own.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::document::{encode, parse};
use super::error::Recovery;
use super::files;
use super::lock::{FileLock, Held};
use super::{
    DEFAULT_HISTORY, Revision, State, StateError, StateLock, StateStore, WritePermit, Writer,
    lock_waiting, stamp,
};
use crate::Identity;
use crate::fault::{self, Point};

/// Stores one stack's state as files in a folder.
#[derive(Debug)]
pub struct LocalStore {
    dir: PathBuf,
    stack: String,
    /// The program's name, which the lock file's name carries.
    program: String,
    /// The project folder, when the state folder lies inside it: no folder
    /// between the two may be a symbolic link.
    root: Option<PathBuf>,
    /// Who the lock was taken by, stamped on every write.
    writer: Mutex<Option<Writer>>,
    /// How many earlier runs' revisions the history keeps.
    keep: usize,
}

impl LocalStore {
    /// The store of `stack` in `state_dir`, for the program `identity`
    /// names.
    pub fn new(state_dir: PathBuf, stack: &str, identity: &Identity) -> Self {
        LocalStore {
            dir: state_dir,
            stack: stack.to_string(),
            program: identity.name().to_string(),
            root: None,
            writer: Mutex::new(None),
            keep: DEFAULT_HISTORY,
        }
    }

    /// Keeps the last revision of `runs` earlier runs in the history
    /// (at least one), instead of [`DEFAULT_HISTORY`].
    pub fn keep_history(mut self, runs: usize) -> Self {
        self.keep = runs.max(1);
        self
    }

    /// Refuses a symbolic link at any folder from `root` (the project
    /// folder) down to the state folder, not only at the state folder
    /// itself. A state folder outside `root` is checked alone.
    pub fn within(mut self, root: &Path) -> Self {
        self.root = Some(root.to_path_buf());
        self
    }

    /// The file holding the current state.
    pub fn state_file(&self) -> PathBuf {
        self.dir.join(format!("{}.json", self.stack))
    }

    /// `<stack>.<program>-lock`: a name no other tool gives its files, so
    /// that a state folder shared with other files never locks one of theirs.
    pub(crate) fn lock_file(&self) -> PathBuf {
        self.dir
            .join(format!("{}.{}-lock", self.stack, self.program))
    }

    pub(crate) fn history_dir(&self) -> PathBuf {
        self.dir.join(".history")
    }

    /// This stack's history copies as `(serial, path)`, newest first.
    pub(crate) fn history_copies(&self) -> Result<Vec<(u64, PathBuf)>, StateError> {
        let dir = self.history_dir();
        files::check_folders(self.root.as_deref(), &dir)?;
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
        self.history_copies()
            .ok()?
            .into_iter()
            .find_map(|(_, path)| {
                let bytes = files::read(&path).ok()??;
                parse(&path.display().to_string(), &bytes, &self.stack)
                    .ok()
                    .map(|_| path)
            })
    }

    /// How to get back to the last good copy, or why there is none.
    fn corrupt(&self, file: &Path, reason: String) -> StateError {
        let good = self.last_good();
        StateError::Corrupt {
            location: file.display().to_string(),
            last_good: good.as_ref().map(|p| p.display().to_string()),
            reason,
            recovery: Box::new(Recovery::File {
                file: file.to_path_buf(),
                good,
                history: self.history_dir(),
            }),
        }
    }

    /// The state on disk with the bytes it was read from, or `None` if the
    /// stack has never been written.
    fn read(&self) -> Result<Option<(State, Vec<u8>)>, StateError> {
        let file = self.state_file();
        files::check_folders(self.root.as_deref(), &self.dir)?;
        let Some(bytes) = files::read(&file)? else {
            return Ok(None);
        };
        match parse(&file.display().to_string(), &bytes, &self.stack) {
            Ok(state) => Ok(Some((state, bytes))),
            Err(StateError::Corrupt { reason, .. }) => Err(self.corrupt(&file, reason)),
            Err(e) => Err(e),
        }
    }

    /// Writes `state` over the state file, keeping `previous` in history
    /// first. Nothing on disk changes unless this returns `Ok`, but for the
    /// history copy and, after a crash, a temp file the next lock removes.
    async fn replace(
        &self,
        state: &State,
        previous: Option<(u64, &[u8])>,
    ) -> Result<(), StateError> {
        let file = self.state_file();
        let bytes = encode(state)?;

        if let Some((serial, old)) = previous {
            let history = self.history_dir();
            files::create_private_dir(self.root.as_deref(), &history)?;
            write_atomically(
                &history,
                &history.join(format!("{}.{serial}.json", self.stack)),
                old,
            )?;
            sync_dir(&history)?;
        }
        let temp = write_temp(&self.dir, &file, &bytes)?;
        // The new revision is on disk, not yet the current one: the last
        // moment a crash leaves the previous revision in place. Never
        // asked: a state-write pause ends only on SIGUSR1.
        fault::reached(Point::StateWrite, &crate::Cancel::default()).await;
        rename_into_place(&temp, &file)
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
            if files::check_folders(self.root.as_deref(), &dir).is_err() {
                continue;
            }
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
        if let Ok(copies) = self.history_copies() {
            for (_, path) in copies.into_iter().skip(self.keep) {
                let _ = fs::remove_file(path);
            }
        }
    }
}

impl LocalStore {
    fn try_lock(&self, command: &str) -> Result<StateLock, StateError> {
        files::create_private_dir(self.root.as_deref(), &self.dir)?;
        let lock = FileLock::acquire(&self.lock_file(), &self.stack, command)?;
        self.remove_stale_temp_files();
        *self.writer.lock().expect("writer lock is never poisoned") =
            Some(Writer::current(command));
        Ok(StateLock::from(lock))
    }

    /// Stamps `state` as the next serial and writes it, keeping `previous`
    /// (serial, bytes) in the history first; on failure `state` is as it
    /// was and nothing on disk changed.
    async fn commit(
        &self,
        state: &mut State,
        previous: Option<(u64, &[u8])>,
    ) -> Result<(), StateError> {
        let writer = self
            .writer
            .lock()
            .expect("writer lock is never poisoned")
            .clone();
        let before = stamp(
            state,
            writer.as_ref(),
            &self.state_file().display().to_string(),
        )?;
        if let Err(e) = self.replace(state, previous).await {
            before.restore(state);
            return Err(e);
        }
        // From here the new file is in place, so `state` keeps its new serial
        // even if making the rename durable fails.
        let synced = sync_dir(&self.dir);
        self.prune_history();
        synced
    }

    fn read_copy(&self, path: &Path) -> Result<State, StateError> {
        let bytes = files::read(path)?.ok_or_else(|| {
            StateError::io(
                "read",
                path,
                io::Error::new(io::ErrorKind::NotFound, "no such revision is kept"),
            )
        })?;
        parse(&path.display().to_string(), &bytes, &self.stack)
    }
}

#[async_trait::async_trait]
impl StateStore for LocalStore {
    async fn load(&self) -> Result<State, StateError> {
        Ok(match self.read()? {
            Some((state, _)) => state,
            None => State::empty(&self.stack),
        })
    }

    async fn save(&self, state: &mut State, _: WritePermit) -> Result<(), StateError> {
        let file = self.state_file();
        if state.stack != self.stack {
            return Err(StateError::WrongStack {
                location: file.display().to_string(),
                expected: self.stack.clone(),
                found: state.stack.clone(),
            });
        }
        files::create_private_dir(self.root.as_deref(), &self.dir)?;

        // Reading through the same checks as `load` is what keeps a corrupt,
        // newer or foreign file from being written over.
        let on_disk = self.read()?;
        if let Some((disk, _)) = &on_disk
            && disk.serial > state.serial
        {
            return Err(StateError::Conflict {
                location: file.display().to_string(),
                on_disk: disk.serial,
                loaded: state.serial,
            });
        }
        // A run's earlier writes are its journal, not revisions: only the
        // last write of each run is kept.
        let previous = on_disk
            .as_ref()
            .filter(|(disk, _)| !disk.same_run(state))
            .map(|(s, bytes)| (s.serial, bytes.as_slice()));

        self.commit(state, previous).await
    }

    async fn restore(&self, state: &mut State, _: WritePermit) -> Result<(), StateError> {
        files::create_private_dir(self.root.as_deref(), &self.dir)?;
        let file = self.state_file();
        let on_disk = files::read(&file)?;
        let kept = self.history_copies()?.first().map_or(0, |c| c.0);
        let stored = on_disk
            .as_deref()
            .and_then(|b| parse(&file.display().to_string(), b, &self.stack).ok())
            .map(|s| s.serial);
        // What is on disk becomes a history copy, readable or not, so
        // nothing is lost: under its own serial, or one above the newest
        // kept when it does not read.
        let previous_serial = stored.unwrap_or(kept.max(state.serial).saturating_add(1));
        state.serial = previous_serial.max(kept).max(state.serial);
        let previous = on_disk.as_deref().map(|bytes| (previous_serial, bytes));
        self.commit(state, previous).await
    }

    async fn lock(&self, command: &str, wait: Option<Duration>) -> Result<StateLock, StateError> {
        lock_waiting(wait, Duration::from_millis(100), || async {
            self.try_lock(command)
        })
        .await
    }

    async fn history(&self) -> Result<Vec<Revision>, StateError> {
        let mut states = Vec::new();
        if let Some((current, _)) = self.read()? {
            states.push(current);
        }
        for (_, path) in self.history_copies()? {
            // A damaged copy is skipped: the list shows what can be restored.
            if let Ok(state) = self.read_copy(&path) {
                states.push(state);
            }
        }
        Ok((0..states.len())
            .map(|i| Revision::of(&states[i], states.get(i + 1)))
            .collect())
    }

    async fn revision(&self, serial: u64) -> Result<State, StateError> {
        if let Some((current, _)) = self.read()?
            && current.serial == serial
        {
            return Ok(current);
        }
        let history = self.history_dir();
        files::check_folders(self.root.as_deref(), &history)?;
        match self.read_copy(&history.join(format!("{}.{serial}.json", self.stack))) {
            Err(StateError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                let mut kept: Vec<u64> = self.history().await?.iter().map(|r| r.serial).collect();
                kept.sort_unstable();
                Err(StateError::RevisionNotKept {
                    location: self.location(),
                    serial,
                    kept,
                })
            }
            read => read,
        }
    }

    async fn remove(&self, lock: StateLock) -> Result<Vec<String>, StateError> {
        let lock = match lock {
            StateLock(Held::File(lock)) => lock,
            lock => {
                lock.release().await;
                return Err(StateError::LockLost {
                    stack: self.stack.clone(),
                    location: self.location(),
                    reason: "the lock it was given is not this store's".to_string(),
                });
            }
        };
        let lock_file = self.lock_file();
        if lock.path() != lock_file {
            return Err(StateError::LockLost {
                stack: self.stack.clone(),
                location: lock.path().display().to_string(),
                reason: format!("the lock it was given is not {}", lock_file.display()),
            });
        }
        let mut removed = Vec::new();
        files::check_folders(self.root.as_deref(), &self.dir)?;

        // Opened through the same checks as a read, so that a link or a
        // file that is not this user's is refused rather than unlinked.
        let file = self.state_file();
        if files::open_to_read(&file)?.is_some() {
            remove_file(&file)?;
            sync_dir(&self.dir)?;
            removed.push(format!("state file {}", file.display()));
        }

        let copies = self.history_copies()?;
        for (_, copy) in &copies {
            remove_file(copy)?;
        }
        if !copies.is_empty() {
            sync_dir(&self.history_dir())?;
            removed.push(format!(
                "{} kept revision(s) in {}",
                copies.len(),
                self.history_dir().display()
            ));
        }
        self.remove_stale_temp_files();

        // Unlinked while still held: a run that opened it meanwhile finds,
        // once it gets the lock, that the file is gone, and opens it anew.
        remove_file(&lock_file)?;
        drop(lock);
        sync_dir(&self.dir)?;
        removed.push(format!("lock file {}", lock_file.display()));
        Ok(removed)
    }

    fn location(&self) -> String {
        self.state_file().display().to_string()
    }
}

/// Removes `path`; one that is already gone is no error.
fn remove_file(path: &Path) -> Result<(), StateError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StateError::io("remove", path, e)),
        _ => Ok(()),
    }
}

/// Replaces `target` with `bytes` so that readers, and the disk after a
/// crash, see either the old file or the new one, never a mix. The temp file
/// sits in `dir`, the target's folder, because rename is only atomic within
/// one file system.
fn write_atomically(dir: &Path, target: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let temp = write_temp(dir, target, bytes)?;
    rename_into_place(&temp, target)
}

/// The first half of [`write_atomically`]: `bytes` in a new, synced temp
/// file in `dir` named after `target`, whose path it returns.
fn write_temp(dir: &Path, target: &Path, bytes: &[u8]) -> Result<PathBuf, StateError> {
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
        let mut file = files::create_new(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&temp);
        return Err(StateError::io("write", &temp, e));
    }
    Ok(temp)
}

/// The second half of [`write_atomically`]: the temp file takes `target`'s
/// place, or is removed.
fn rename_into_place(temp: &Path, target: &Path) -> Result<(), StateError> {
    if let Err(e) = fs::rename(temp, target) {
        let _ = fs::remove_file(temp);
        return Err(StateError::io("replace", target, e));
    }
    Ok(())
}

/// Makes a rename inside `dir` durable: without it a crash can bring back
/// the old directory entry even though the new file's data was synced.
fn sync_dir(dir: &Path) -> Result<(), StateError> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_DIRECTORY | libc::O_CLOEXEC)
        .open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StateError::io("sync folder", dir, e))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::ResourceId;
    use crate::state::{LockKind, ResourceState};

    fn identity() -> Identity {
        Identity::new("echo-iac")
    }

    fn store(dir: &tempfile::TempDir) -> LocalStore {
        LocalStore::new(dir.path().join("state"), "dev", &identity())
    }

    fn with_resource(mut state: State, name: &str) -> State {
        state.upsert_resource(ResourceState {
            id: ResourceId::new("v1", "ConfigMap", Some("demo"), name),
            uid: format!("uid-{name}"),
            depends_on: vec![ResourceId::new("v1", "Namespace", None, "demo")],
            applied: json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "b"}}).into(),
            protect: false,
            retain: false,
            proof: None,
        });
        state.outputs.insert("url".to_string(), json!("http://x"));
        state
    }

    #[tokio::test]
    async fn missing_file_loads_as_empty_state_at_serial_zero() {
        let dir = tempfile::tempdir().unwrap();
        let state = store(&dir).load().await.unwrap();
        assert_eq!(state, State::empty("dev"));
        assert!(!dir.path().join("state").exists());
    }

    #[tokio::test]
    async fn saved_state_loads_back_equal() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let mut state = with_resource(State::empty("dev"), "web");
        state.begin(
            "update",
            ResourceId::new("v1", "ConfigMap", Some("demo"), "web"),
        );

        store.save(&mut state, WritePermit::HELD).await.unwrap();

        assert_eq!(store.load().await.unwrap(), state);
        let text = fs::read_to_string(store.state_file()).unwrap();
        assert!(text.ends_with("}\n"));
        assert!(text.contains("\n  \"stack\": \"dev\""));
        humantime::parse_rfc3339(state.updated.as_deref().unwrap()).unwrap();
        assert_eq!(store.location(), store.state_file().display().to_string());
    }

    #[tokio::test]
    async fn each_save_grows_the_serial_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let mut state = store.load().await.unwrap();
        for expected in 1..=3 {
            store.save(&mut state, WritePermit::HELD).await.unwrap();
            assert_eq!(state.serial, expected);
            assert_eq!(store.load().await.unwrap().serial, expected);
        }
    }

    #[tokio::test]
    async fn save_keeps_the_previous_file_in_history_capped_at_ten() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let mut state = store.load().await.unwrap();

        store.save(&mut state, WritePermit::HELD).await.unwrap();
        assert!(store.history_copies().unwrap().is_empty());
        let first = fs::read(store.state_file()).unwrap();
        store.save(&mut state, WritePermit::HELD).await.unwrap();
        let copy = store.history_dir().join("dev.1.json");
        assert_eq!(fs::read(copy).unwrap(), first);

        for _ in 0..13 {
            store.save(&mut state, WritePermit::HELD).await.unwrap();
        }
        assert_eq!(state.serial, 15);
        let serials: Vec<u64> = store
            .history_copies()
            .unwrap()
            .iter()
            .map(|h| h.0)
            .collect();
        assert_eq!(serials, (5..=14).rev().collect::<Vec<_>>());
    }

    /// Runs through a lock, each writing `writes` times; the run ends
    /// finished unless `finish` is false.
    async fn run(store: &LocalStore, name: &str, writes: usize, finish: bool) {
        let locked = crate::state::Locked::acquire(store, "shop-iac up", None)
            .await
            .unwrap();
        let mut state = locked.load().await.unwrap();
        for i in 0..writes {
            state = with_resource(state, &format!("{name}-{i}"));
            locked.save(&mut state).await.unwrap();
        }
        if finish {
            locked.save_finished(&mut state).await.unwrap();
        }
        locked.release().await;
    }

    #[tokio::test]
    async fn history_keeps_the_last_write_of_each_run_and_says_whether_it_finished() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        run(&store, "a", 5, true).await;
        run(&store, "b", 5, true).await;
        run(&store, "c", 3, false).await;
        let history = store.history().await.unwrap();
        let rows: Vec<(u64, Option<bool>, String)> = history
            .iter()
            .map(|r| (r.serial, r.finished(), r.summary.clone()))
            .collect();
        assert_eq!(
            rows,
            [
                (15, Some(false), "3 added".to_string()),
                (12, Some(true), "5 added".to_string()),
                (
                    6,
                    Some(true),
                    "first kept revision: 5 object(s)".to_string()
                ),
            ]
        );
        let copies: Vec<u64> = store
            .history_copies()
            .unwrap()
            .iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(copies, [12, 6]);
        // The first run's revision is still there after two more runs.
        assert_eq!(store.revision(6).await.unwrap().resources.len(), 5);
    }

    #[tokio::test]
    async fn history_keeps_as_many_runs_as_asked() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir).keep_history(3);
        for name in ["a", "b", "c", "d", "e", "f"] {
            run(&store, name, 2, true).await;
        }
        let copies: Vec<u64> = store
            .history_copies()
            .unwrap()
            .iter()
            .map(|c| c.0)
            .collect();
        assert_eq!(copies, [15, 12, 9]);
        assert_eq!(store.load().await.unwrap().serial, 18);
    }

    #[tokio::test]
    async fn a_revision_not_kept_is_named_with_the_kept_ones() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let mut state = store.load().await.unwrap();
        for _ in 0..3 {
            store.save(&mut state, WritePermit::HELD).await.unwrap();
        }
        let err = store.revision(99).await.unwrap_err();
        assert!(
            matches!(&err, StateError::RevisionNotKept { serial: 99, kept, .. } if kept == &[1, 2, 3]),
            "{err:?}"
        );
        assert!(
            err.to_string()
                .ends_with("is not kept; the kept revisions are 1, 2 and 3"),
            "{err}"
        );
        let empty = LocalStore::new(dir.path().join("other"), "dev", &identity());
        let err = empty.revision(1).await.unwrap_err();
        assert!(
            err.to_string().contains("none: the stack has no state yet"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn history_of_one_stack_ignores_another_stack_with_a_dotted_name() {
        let dir = tempfile::tempdir().unwrap();
        let dev = store(&dir);
        let dev_eu = LocalStore::new(dir.path().join("state"), "dev.eu", &identity());
        let mut eu = dev_eu.load().await.unwrap();
        for _ in 0..3 {
            dev_eu.save(&mut eu, WritePermit::HELD).await.unwrap();
        }
        assert!(dev.history_copies().unwrap().is_empty());
        assert_eq!(dev_eu.history_copies().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn corrupt_file_is_reported_with_last_good_copy_and_left_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let mut state = store.load().await.unwrap();
        for _ in 0..3 {
            store.save(&mut state, WritePermit::HELD).await.unwrap();
        }
        let broken = b"{\n  \"version\": 1,\n  \"stack\": \"dev\",\n  \"serial\": \n".to_vec();
        fs::write(store.state_file(), &broken).unwrap();
        // A damaged newest copy must be skipped in favour of an older one.
        fs::write(store.history_dir().join("dev.2.json"), b"{").unwrap();

        let err = store.load().await.unwrap_err();
        let good = store.history_dir().join("dev.1.json");
        match &err {
            StateError::Corrupt {
                location,
                last_good,
                ..
            } => {
                assert_eq!(location, &store.state_file().display().to_string());
                assert_eq!(last_good.as_ref(), Some(&good.display().to_string()));
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        let message = err.to_string();
        assert!(message.contains(&store.state_file().display().to_string()));
        assert!(message.contains("line 5 column 0"), "{message}");
        assert!(message.contains(&good.display().to_string()));
        match &err {
            StateError::Corrupt { recovery, .. } => match recovery.as_ref() {
                Recovery::File { good: Some(g), .. } => assert_eq!(g, &good),
                other => panic!("expected a file recovery, got {other:?}"),
            },
            other => panic!("expected Corrupt, got {other:?}"),
        }

        assert!(matches!(
            store.save(&mut state, WritePermit::HELD).await,
            Err(StateError::Corrupt { .. })
        ));
        assert_eq!(state.serial, 3);
        assert_eq!(fs::read(store.state_file()).unwrap(), broken);
    }

    #[tokio::test]
    async fn file_not_matching_the_schema_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        fs::create_dir_all(dir.path().join("state")).unwrap();
        let text = "{\"version\": 1, \"stack\": \"dev\", \"serial\": 2, \"extra\": true}\n";
        fs::write(store.state_file(), text).unwrap();

        let err = store.load().await.unwrap_err();
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

    #[tokio::test]
    async fn duplicate_resources_are_corrupt() {
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

        let err = store.load().await.unwrap_err();
        assert!(err.to_string().contains("listed twice"), "{err}");
    }

    #[tokio::test]
    async fn newer_schema_version_is_rejected_and_not_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        fs::create_dir_all(dir.path().join("state")).unwrap();
        let text = "{\"version\": 4, \"stack\": \"dev\", \"serial\": 4, \"newField\": 1}\n";
        fs::write(store.state_file(), text).unwrap();

        let err = store.load().await.unwrap_err();
        assert!(matches!(err, StateError::NewerVersion { found: 4, .. }));
        assert!(err.to_string().contains("written by a newer release"));

        let mut state = State::empty("dev");
        state.serial = 9;
        assert!(store.save(&mut state, WritePermit::HELD).await.is_err());
        assert_eq!(fs::read_to_string(store.state_file()).unwrap(), text);
    }

    #[tokio::test]
    async fn state_of_another_stack_is_rejected_naming_both() {
        let dir = tempfile::tempdir().unwrap();
        let prod = LocalStore::new(dir.path().join("state"), "prod", &identity());
        prod.save(&mut State::empty("prod"), WritePermit::HELD)
            .await
            .unwrap();
        fs::rename(prod.state_file(), store(&dir).state_file()).unwrap();

        let err = store(&dir).load().await.unwrap_err();
        assert!(matches!(err, StateError::WrongStack { .. }));
        let message = err.to_string();
        assert!(
            message.contains("`prod`") && message.contains("`dev`"),
            "{message}"
        );
    }

    #[tokio::test]
    async fn save_refuses_when_another_run_wrote_a_newer_serial() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let mut stale = store.load().await.unwrap();
        let mut other = store.load().await.unwrap();
        store.save(&mut other, WritePermit::HELD).await.unwrap();
        store.save(&mut other, WritePermit::HELD).await.unwrap();
        store.save(&mut stale, WritePermit::HELD).await.unwrap_err();

        stale.serial = 1;
        let before = fs::read(store.state_file()).unwrap();
        let err = store.save(&mut stale, WritePermit::HELD).await.unwrap_err();
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

    #[tokio::test]
    async fn save_and_restore_refuse_to_wrap_the_largest_serial() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let mut state = store.load().await.unwrap();
        store.save(&mut state, WritePermit::HELD).await.unwrap();
        // As a hand-edited file would hold it.
        state.serial = u64::MAX;
        let text = serde_json::to_vec_pretty(&state).unwrap();
        fs::write(store.state_file(), &text).unwrap();

        let mut loaded = store.load().await.unwrap();
        let err = store
            .save(&mut loaded, WritePermit::HELD)
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                StateError::SerialExhausted {
                    serial: u64::MAX,
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("largest"), "{err}");
        assert_eq!(loaded.serial, u64::MAX);
        let err = store
            .restore(&mut loaded, WritePermit::HELD)
            .await
            .unwrap_err();
        assert!(matches!(err, StateError::SerialExhausted { .. }), "{err}");
        assert_eq!(fs::read(store.state_file()).unwrap(), text);
        assert_eq!(store.load().await.unwrap().serial, u64::MAX);
    }

    #[tokio::test]
    async fn failed_write_leaves_the_old_file_and_the_in_memory_serial() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let mut state = store.load().await.unwrap();
        store.save(&mut state, WritePermit::HELD).await.unwrap();
        let before = fs::read(store.state_file()).unwrap();
        // A file where the history folder should be makes the save fail
        // before the state file is touched.
        fs::write(store.history_dir(), b"").unwrap();

        assert!(matches!(
            store.save(&mut state, WritePermit::HELD).await,
            Err(StateError::Io { .. })
        ));
        assert_eq!(state.serial, 1);
        assert_eq!(fs::read(store.state_file()).unwrap(), before);
        let leftovers: Vec<_> = fs::read_dir(dir.path().join("state"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|n| n.to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[tokio::test]
    async fn second_lock_fails_naming_the_holder_and_succeeds_after_release() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let first = store.lock("echo-iac up", None).await.unwrap();
        let recorded: super::super::LockHolder =
            serde_json::from_slice(&fs::read(store.lock_file()).unwrap()).unwrap();
        assert_eq!(&recorded, first.holder());

        let err = store.lock("echo-iac destroy", None).await.unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with(&format!(
                "stack dev is locked by `echo-iac up` (pid {}, user ",
                std::process::id()
            )),
            "{message}"
        );
        assert!(message.contains(" since "), "{message}");
        assert!(
            matches!(&err, StateError::Locked { kind: LockKind::File { path }, .. } if *path == store.lock_file()),
            "{err:?}"
        );

        drop(first);
        assert_eq!(fs::read(store.lock_file()).unwrap(), b"");
        let second = store.lock("echo-iac destroy", None).await.unwrap();
        assert_eq!(second.holder().command, "echo-iac destroy");
    }

    #[tokio::test]
    async fn lock_wait_gets_the_lock_once_the_holder_releases_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let first = store.lock("echo-iac up", None).await.unwrap();
        let release = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(250));
            drop(first);
        });

        let lock = store
            .lock("echo-iac up", Some(Duration::from_secs(5)))
            .await;
        release.join().unwrap();
        assert!(lock.is_ok());
    }

    #[tokio::test]
    async fn lock_wait_gives_up_after_the_timeout_saying_how_long_it_waited() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let _first = store.lock("echo-iac up", None).await.unwrap();

        let err = store
            .lock("echo-iac up", Some(Duration::from_millis(300)))
            .await
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
    #[tokio::test]
    async fn child_holding_the_lock() {
        let Some(dir) = std::env::var_os(CHILD_LOCK_DIR) else {
            return;
        };
        let _lock = LocalStore::new(PathBuf::from(dir), "dev", &identity())
            .lock("echo-iac up", None)
            .await
            .unwrap();
        println!("child-locked");
        std::thread::sleep(Duration::from_secs(60));
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn lock_of_a_killed_process_is_released_at_once() {
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

        let err = store.lock("echo-iac up", None).await.unwrap_err();
        match &err {
            StateError::Locked {
                holder: Some(holder),
                ..
            } => assert_eq!(holder.pid, child.0.id()),
            other => panic!("expected Locked by the child, got {other:?}"),
        }

        // SIGKILL: the child gets no chance to clean up.
        drop(child);
        let lock = store.lock("echo-iac up", None).await.unwrap();
        assert_eq!(lock.holder().pid, std::process::id());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn folders_are_private_to_the_owner_and_files_too() {
        use std::os::unix::fs::PermissionsExt;

        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let mut state = store.load().await.unwrap();
        store.save(&mut state, WritePermit::HELD).await.unwrap();
        store.save(&mut state, WritePermit::HELD).await.unwrap();
        let _lock = store.lock("echo-iac up", None).await.unwrap();

        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("state")), 0o700);
        assert_eq!(mode(&store.history_dir()), 0o700);
        assert_eq!(mode(&store.state_file()), 0o600);
        assert_eq!(mode(&store.history_dir().join("dev.1.json")), 0o600);
        assert_eq!(mode(&store.lock_file()), 0o600);
    }

    #[tokio::test]
    async fn lock_removes_temp_files_of_killed_writes_of_this_stack_only() {
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

        let _lock = store.lock("echo-iac up", None).await.unwrap();
        for path in &stale {
            assert!(!path.exists(), "{} was kept", path.display());
        }
        for path in &kept {
            assert!(path.exists(), "{} was removed", path.display());
        }
    }

    fn refusal(err: StateError) -> String {
        match err {
            StateError::UnsafePath { problem, .. } => problem,
            other => panic!("expected UnsafePath, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn lock_file_is_named_for_the_program_and_an_old_dev_lock_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let state_dir = dir.path().join("state");
        fs::create_dir_all(&state_dir).unwrap();
        fs::write(state_dir.join("dev.lock"), b"someone else's").unwrap();

        let _lock = store.lock("echo-iac up", None).await.unwrap();
        assert_eq!(store.lock_file(), state_dir.join("dev.echo-iac-lock"));
        assert!(store.lock_file().is_file());
        assert_eq!(
            fs::read(state_dir.join("dev.lock")).unwrap(),
            b"someone else's"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn symlinked_state_folder_is_refused_and_nothing_is_written_through_it() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        let lock_name = store(&dir).lock_file();
        let lock_name = lock_name.file_name().unwrap();
        fs::write(elsewhere.path().join(lock_name), b"precious").unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("state")).unwrap();

        // Refused whether or not the project folder is known.
        for store in [store(&dir), store(&dir).within(dir.path())] {
            let problem = refusal(store.lock("echo-iac up", None).await.unwrap_err());
            assert!(
                problem.contains(&format!("symbolic link to {}", elsewhere.path().display())),
                "{problem}"
            );
            refusal(store.load().await.unwrap_err());
            refusal(
                store
                    .save(&mut State::empty("dev"), WritePermit::HELD)
                    .await
                    .unwrap_err(),
            );
        }
        let names: Vec<_> = fs::read_dir(elsewhere.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [lock_name]);
        assert_eq!(
            fs::read(elsewhere.path().join(lock_name)).unwrap(),
            b"precious"
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn symlinked_folder_above_the_state_folder_is_refused_inside_the_project() {
        let dir = tempfile::tempdir().unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("ops")).unwrap();
        let store =
            LocalStore::new(dir.path().join("ops/state"), "dev", &identity()).within(dir.path());

        let problem = refusal(store.lock("echo-iac up", None).await.unwrap_err());
        assert!(problem.contains("symbolic link"), "{problem}");
        assert!(!elsewhere.path().join("state").exists());
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn symlinked_state_file_is_refused_and_its_target_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        fs::create_dir_all(dir.path().join("state")).unwrap();
        let target = dir.path().join("package.json");
        fs::write(&target, b"{\"name\": \"app\"}").unwrap();
        std::os::unix::fs::symlink(&target, store.state_file()).unwrap();

        refusal(store.load().await.unwrap_err());
        refusal(
            store
                .save(&mut State::empty("dev"), WritePermit::HELD)
                .await
                .unwrap_err(),
        );
        refusal(
            store
                .restore(&mut State::empty("dev"), WritePermit::HELD)
                .await
                .unwrap_err(),
        );
        assert_eq!(fs::read(&target).unwrap(), b"{\"name\": \"app\"}");
        assert!(
            fs::symlink_metadata(store.state_file())
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn symlinked_history_folder_is_refused_before_a_copy_is_written_into_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let mut state = store.load().await.unwrap();
        store.save(&mut state, WritePermit::HELD).await.unwrap();
        let elsewhere = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), store.history_dir()).unwrap();
        let before = fs::read(store.state_file()).unwrap();

        refusal(store.save(&mut state, WritePermit::HELD).await.unwrap_err());
        refusal(store.history().await.unwrap_err());
        assert_eq!(fs::read_dir(elsewhere.path()).unwrap().count(), 0);
        assert_eq!(fs::read(store.state_file()).unwrap(), before);
    }

    #[tokio::test]
    async fn hard_linked_state_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let mut state = store.load().await.unwrap();
        store.save(&mut state, WritePermit::HELD).await.unwrap();
        fs::hard_link(store.state_file(), dir.path().join("elsewhere.json")).unwrap();

        let problem = refusal(store.load().await.unwrap_err());
        assert!(problem.contains("2 hard links"), "{problem}");
    }

    /// The names of the files in `dir` (and `.history` below it), sorted.
    fn files_in(dir: &Path) -> Vec<String> {
        let mut names = Vec::new();
        for sub in [dir.to_path_buf(), dir.join(".history")] {
            if let Ok(entries) = fs::read_dir(&sub) {
                for entry in entries.flatten() {
                    if entry.file_type().unwrap().is_file() {
                        names.push(entry.file_name().to_string_lossy().into_owned());
                    }
                }
            }
        }
        names.sort();
        names
    }

    #[tokio::test]
    async fn remove_deletes_the_state_its_history_and_its_lock_and_nothing_of_other_stacks() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let state_dir = dir.path().join("state");
        let mut state = with_resource(State::empty("dev"), "web");
        for _ in 0..3 {
            store.save(&mut state, WritePermit::HELD).await.unwrap();
        }
        // Stacks whose names extend this one's keep their files.
        for other in ["dev.eu", "dev-2"] {
            let other = LocalStore::new(state_dir.clone(), other, &identity());
            let mut state = State::empty(&other.stack);
            other.save(&mut state, WritePermit::HELD).await.unwrap();
            other.save(&mut state, WritePermit::HELD).await.unwrap();
            drop(other.lock("echo-iac up", None).await.unwrap());
        }

        let lock = store.lock("echo-iac stack rm", None).await.unwrap();
        let removed = store.remove(lock).await.unwrap();

        assert_eq!(removed.len(), 3, "{removed:?}");
        assert!(removed[0].starts_with("state file "), "{removed:?}");
        assert!(
            removed[1].starts_with("2 kept revision(s) in "),
            "{removed:?}"
        );
        assert!(removed[2].starts_with("lock file "), "{removed:?}");
        assert_eq!(
            files_in(&state_dir),
            [
                "dev-2.1.json",
                "dev-2.echo-iac-lock",
                "dev-2.json",
                "dev.eu.1.json",
                "dev.eu.echo-iac-lock",
                "dev.eu.json"
            ]
        );
        assert_eq!(store.load().await.unwrap(), State::empty("dev"));
        assert!(store.history().await.unwrap().is_empty());
        // The stack can start again from nothing.
        drop(store.lock("echo-iac up", None).await.unwrap());
        let mut fresh = State::empty("dev");
        store.save(&mut fresh, WritePermit::HELD).await.unwrap();
        assert_eq!(fresh.serial, 1);
    }

    #[tokio::test]
    async fn remove_of_a_stack_never_written_deletes_only_its_lock_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        let lock = store.lock("echo-iac stack rm", None).await.unwrap();
        let removed = store.remove(lock).await.unwrap();
        assert_eq!(removed.len(), 1, "{removed:?}");
        assert!(!store.lock_file().exists());
    }

    #[tokio::test]
    async fn remove_refuses_a_symlinked_state_file_and_leaves_its_target() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(&dir);
        fs::create_dir_all(dir.path().join("state")).unwrap();
        let target = dir.path().join("package.json");
        fs::write(&target, b"{}").unwrap();
        std::os::unix::fs::symlink(&target, store.state_file()).unwrap();

        let lock = store.lock("echo-iac stack rm", None).await.unwrap();
        refusal(store.remove(lock).await.unwrap_err());
        assert_eq!(fs::read(&target).unwrap(), b"{}");
        assert!(fs::symlink_metadata(store.state_file()).is_ok());
        // The lock was given back however the removal ended.
        drop(store.lock("echo-iac up", None).await.unwrap());
    }
}
