//! The one-writer-at-a-time lock on a stack: [`StateLock`], held either as
//! an OS lock on `state/<stack>.<program>-lock` (the file backend) or as a
//! Lease in the cluster (see `lease.rs`).
//!
//! The kernel drops a file lock when its process exits however it exits, so
//! a crashed or killed run never leaves a stale lock behind. The file's
//! contents only say who holds the lock; they are never what decides it.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use fs4::{FileExt, TryLockError};

use super::StateError;
use super::error::LockKind;
use super::files;
use super::holder::LockHolder;
use super::lease::LeaseLock;

/// A held stack lock, of either backend. Dropping it releases it; a Lease
/// is best released with [`StateLock::release`], which tells the cluster at
/// once instead of letting the lease run out.
#[derive(Debug)]
#[must_use = "the lock is released as soon as it is dropped"]
pub struct StateLock(pub(crate) Held);

#[derive(Debug)]
pub(crate) enum Held {
    File(FileLock),
    Lease(Box<LeaseLock>),
}

impl From<FileLock> for StateLock {
    fn from(lock: FileLock) -> Self {
        StateLock(Held::File(lock))
    }
}

impl From<LeaseLock> for StateLock {
    fn from(lock: LeaseLock) -> Self {
        StateLock(Held::Lease(Box::new(lock)))
    }
}

impl StateLock {
    /// Who holds the lock: this run.
    pub fn holder(&self) -> &LockHolder {
        match &self.0 {
            Held::File(lock) => &lock.holder,
            Held::Lease(lock) => lock.holder(),
        }
    }

    /// Fails once the lock may be someone else's: a lease this run could
    /// not renew in time, or that another run took over. Called before
    /// every mutating request and every state write.
    pub fn check(&self) -> Result<(), StateError> {
        match &self.0 {
            Held::File(_) => Ok(()),
            Held::Lease(lock) => lock.check(),
        }
    }

    /// Releases the lock, telling the cluster at once for a Lease.
    pub async fn release(self) {
        match self.0 {
            Held::File(lock) => drop(lock),
            Held::Lease(lock) => (*lock).release().await,
        }
    }
}

/// A held lock file; dropping it releases the lock.
#[derive(Debug)]
pub(crate) struct FileLock {
    file: File,
    path: PathBuf,
    pub(crate) holder: LockHolder,
}

impl FileLock {
    /// Takes the lock on `path` without waiting. The file is created if
    /// missing, and used only if it is a regular file with one link that
    /// this user owns (never through a symbolic link), holding nothing or a
    /// holder record: anything else is left as it is and refused.
    pub(crate) fn acquire(path: &Path, stack: &str, command: &str) -> Result<Self, StateError> {
        // Not truncated on open: until the lock is ours the contents belong
        // to the current holder, and they are what the error reports.
        let mut file = files::open_or_create(path, "open lock file")?;

        // Called through the trait: std's inherent `File::try_lock` is newer
        // than the crate's minimum Rust version.
        match FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = read_holder(&mut file);
                return Err(StateError::Locked {
                    stack: stack.to_string(),
                    location: path.display().to_string(),
                    holder,
                    waited: None,
                    kind: LockKind::File {
                        path: path.to_path_buf(),
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(StateError::io("lock", path, e)),
        }

        // `stack rm` unlinks the lock file while holding it: a run that
        // opened it just before then holds a lock on a file that is no
        // longer the stack's, and must not count it as the lock.
        if !still_at(&file, path) {
            return Err(StateError::Locked {
                stack: stack.to_string(),
                location: path.display().to_string(),
                holder: None,
                waited: None,
                kind: LockKind::File {
                    path: path.to_path_buf(),
                },
            });
        }

        // Held now, so nobody else writes the file while it is checked and
        // rewritten.
        check_holder_record(&mut file, path)?;

        let holder = LockHolder::current(command);
        // Serializing a struct of strings and integers cannot fail.
        let text = serde_json::to_string(&holder).expect("lock holder serializes");
        let mut write = || -> std::io::Result<()> {
            file.set_len(0)?;
            file.seek(SeekFrom::Start(0))?;
            file.write_all(text.as_bytes())?;
            file.write_all(b"\n")?;
            file.flush()
        };
        write().map_err(|e| StateError::io("write lock file", path, e))?;

        Ok(FileLock {
            file,
            path: path.to_path_buf(),
            holder,
        })
    }

    /// The lock file, which `stack rm` removes while it holds the lock.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // The file itself stays: a run that opened it and waits to lock it
        // would hold a lock on a file nobody else opens. Only `stack rm`
        // removes it, and [`still_at`] tells such a run it lost.
        // Errors are ignored because closing the file releases the lock anyway.
        let _ = self.file.set_len(0);
        let _ = FileExt::unlock(&self.file);
    }
}

/// Whether `file` is still the file at `path`: the same inode on the same
/// device, not one removed (or replaced) since it was opened.
fn still_at(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::symlink_metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

/// Refuses a lock file that holds something other than a holder record:
/// it may be another program's file under this name, and emptying it would
/// destroy it.
fn check_holder_record(file: &mut File, path: &Path) -> Result<(), StateError> {
    let mut bytes = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut bytes))
        .map_err(|e| StateError::io("read lock file", path, e))?;
    let ours = bytes.iter().all(u8::is_ascii_whitespace)
        || serde_json::from_slice::<LockHolder>(&bytes).is_ok();
    if ours {
        return Ok(());
    }
    Err(StateError::UnsafePath {
        path: path.to_path_buf(),
        problem: format!(
            "it holds {} bytes that are not a lock record, so it is some other file, left as it is",
            bytes.len()
        ),
        hint: format!(
            "nothing was changed. If it is not needed, move it away (`mv {0} {0}.old`) and run again",
            path.display()
        ),
    })
}

/// The holder recorded in a lock file, or `None` if it has not been written
/// yet or is being rewritten right now.
fn read_holder(file: &mut File) -> Option<Box<LockHolder>> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holder_reads_as_command_pid_user_host_and_time() {
        let holder = LockHolder {
            pid: 1234,
            host: "x".to_string(),
            user: "alice".to_string(),
            command: "echo-iac up".to_string(),
            started: "2026-01-02T03:04:05Z".to_string(),
        };
        assert_eq!(
            holder.to_string(),
            "`echo-iac up` (pid 1234, user alice on host x) since 2026-01-02T03:04:05Z"
        );
    }

    #[test]
    fn second_open_of_the_same_lock_file_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.lock");

        let first = FileLock::acquire(&path, "dev", "echo-iac up").unwrap();
        let err = FileLock::acquire(&path, "dev", "echo-iac destroy").unwrap_err();
        match &err {
            StateError::Locked { holder, .. } => {
                assert_eq!(holder.as_deref(), Some(&first.holder));
            }
            other => panic!("expected Locked, got {other:?}"),
        }

        drop(first);
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        let second = FileLock::acquire(&path, "dev", "echo-iac destroy").unwrap();
        assert_eq!(second.holder.command, "echo-iac destroy");
    }

    #[test]
    fn lock_file_without_holder_details_still_reports_locked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.lock");
        let first = FileLock::acquire(&path, "dev", "echo-iac up").unwrap();
        std::fs::write(&path, b"{\"pid\": 12").unwrap();

        let err = FileLock::acquire(&path, "dev", "echo-iac up").unwrap_err();
        assert!(matches!(err, StateError::Locked { holder: None, .. }));
        assert!(err.to_string().contains("has not yet recorded who it is"));
        drop(first);
    }

    /// The refusal's problem text; panics on any other error.
    fn refusal(err: StateError) -> String {
        match err {
            StateError::UnsafePath { problem, .. } => problem,
            other => panic!("expected UnsafePath, got {other:?}"),
        }
    }

    #[test]
    fn lock_file_holding_something_else_is_refused_and_never_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.lock");
        let foreign = b"# This file is automatically @generated by Cargo.\nversion = 4\n";
        std::fs::write(&path, foreign).unwrap();

        let problem = refusal(FileLock::acquire(&path, "dev", "echo-iac up").unwrap_err());
        assert!(problem.contains("not a lock record"), "{problem}");
        assert_eq!(std::fs::read(&path).unwrap(), foreign);
    }

    #[test]
    fn lock_file_left_by_a_finished_run_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.lock");
        let old = LockHolder::current("echo-iac up");
        std::fs::write(&path, serde_json::to_vec(&old).unwrap()).unwrap();

        let lock = FileLock::acquire(&path, "dev", "echo-iac destroy").unwrap();
        assert_eq!(lock.holder.command, "echo-iac destroy");
    }

    #[test]
    fn symlinked_lock_file_is_refused_and_its_target_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("Cargo.lock");
        std::fs::write(&target, b"precious").unwrap();
        let path = dir.path().join("dev.lock");
        std::os::unix::fs::symlink(&target, &path).unwrap();

        let problem = refusal(FileLock::acquire(&path, "dev", "echo-iac up").unwrap_err());
        assert!(
            problem.contains(&format!("symbolic link to {}", target.display())),
            "{problem}"
        );
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
    }

    #[test]
    fn hard_linked_lock_file_is_refused_and_left_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let other = dir.path().join("Cargo.lock");
        std::fs::write(&other, b"").unwrap();
        let path = dir.path().join("dev.lock");
        std::fs::hard_link(&other, &path).unwrap();

        let problem = refusal(FileLock::acquire(&path, "dev", "echo-iac up").unwrap_err());
        assert!(problem.contains("2 hard links"), "{problem}");
        assert_eq!(std::fs::read(&other).unwrap(), b"");
    }

    #[test]
    fn a_lock_file_removed_or_replaced_since_it_was_opened_is_not_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.lock");
        let opened = files::open_or_create(&path, "open lock file").unwrap();
        assert!(still_at(&opened, &path));

        std::fs::remove_file(&path).unwrap();
        assert!(!still_at(&opened, &path));
        std::fs::write(&path, b"").unwrap();
        assert!(!still_at(&opened, &path));
    }

    #[test]
    fn a_lock_file_removed_while_held_is_created_anew_by_the_next_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev.lock");
        let first = FileLock::acquire(&path, "dev", "echo-iac stack rm").unwrap();
        std::fs::remove_file(&path).unwrap();

        let second = FileLock::acquire(&path, "dev", "echo-iac up").unwrap();
        assert_eq!(second.holder.command, "echo-iac up");
        drop(first);
        assert!(path.exists());
    }
}
