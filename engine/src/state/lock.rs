//! The one-writer-at-a-time lock on a stack: [`StateLock`], held either as
//! an OS lock on `state/<stack>.lock` (the file backend) or as a Lease in
//! the cluster (see `lease.rs`).
//!
//! The kernel drops a file lock when its process exits however it exits, so
//! a crashed or killed run never leaves a stale lock behind. The file's
//! contents only say who holds the lock; they are never what decides it.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use fs4::{FileExt, TryLockError};
use serde::{Deserialize, Serialize};

use super::StateError;
use super::error::LockKind;
use super::lease::LeaseLock;

/// Who holds a stack's lock, as written into the lock file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LockHolder {
    pub pid: u32,
    pub host: String,
    pub user: String,
    /// The command line that took the lock, e.g. `echo-iac up`.
    pub command: String,
    /// RFC 3339.
    pub started: String,
}

impl LockHolder {
    pub(crate) fn current(command: &str) -> Self {
        LockHolder {
            pid: std::process::id(),
            host: host_name(),
            user: user_name(),
            command: command.to_string(),
            started: super::now_rfc3339(),
        }
    }
}

/// A held stack lock, of either backend. Dropping it releases it; a Lease
/// is best released with [`StateLock::release`], which tells the cluster at
/// once instead of letting the lease run out.
#[derive(Debug)]
pub enum StateLock {
    File(FileLock),
    Lease(Box<LeaseLock>),
}

impl StateLock {
    pub fn holder(&self) -> &LockHolder {
        match self {
            StateLock::File(lock) => &lock.holder,
            StateLock::Lease(lock) => lock.holder(),
        }
    }

    /// Fails once the lock may be someone else's: a lease this run could
    /// not renew in time, or that another run took over. Called before
    /// every mutating request and every state write.
    pub fn check(&self) -> Result<(), StateError> {
        match self {
            StateLock::File(_) => Ok(()),
            StateLock::Lease(lock) => lock.check(),
        }
    }

    pub async fn release(self) {
        match self {
            StateLock::File(lock) => drop(lock),
            StateLock::Lease(lock) => (*lock).release().await,
        }
    }
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` (pid {}, user {} on host {}) since {}",
            self.command, self.pid, self.user, self.host, self.started
        )
    }
}

/// A held lock file; dropping it releases the lock.
#[derive(Debug)]
pub struct FileLock {
    file: File,
    path: PathBuf,
    holder: LockHolder,
}

impl FileLock {
    /// Takes the lock on `path` without waiting.
    pub(crate) fn acquire(path: &Path, stack: &str, command: &str) -> Result<Self, StateError> {
        // Not truncated on open: until the lock is ours the contents belong
        // to the current holder, and they are what the error reports.
        let mut options = OpenOptions::new();
        options.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(path)
            .map_err(|e| StateError::io("open lock file", path, e))?;

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

    pub fn holder(&self) -> &LockHolder {
        &self.holder
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        // The file itself stays: removing it would let a run that opened the
        // old file and a run that creates a new one both hold "the" lock.
        // Errors are ignored because closing the file releases the lock anyway.
        let _ = self.file.set_len(0);
        let _ = FileExt::unlock(&self.file);
    }
}

/// The holder recorded in a lock file, or `None` if it has not been written
/// yet or is being rewritten right now.
fn read_holder(file: &mut File) -> Option<Box<LockHolder>> {
    let mut text = String::new();
    file.seek(SeekFrom::Start(0)).ok()?;
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

pub(crate) fn user_name() -> String {
    ["USER", "LOGNAME"]
        .iter()
        .find_map(|var| std::env::var(var).ok().filter(|u| !u.is_empty()))
        .or_else(account_name)
        .unwrap_or_else(|| "unknown".to_string())
}

/// The name of this process's user in the password database, for when the
/// environment does not say (services, CI containers).
fn account_name() -> Option<String> {
    let mut buffer = vec![0 as libc::c_char; 4096];
    // SAFETY: a zeroed passwd is a valid out-parameter for getpwuid_r.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and the buffer length is
    // its own; getpwuid_r writes only into `entry` and `buffer`.
    let status = unsafe {
        libc::getpwuid_r(
            libc::getuid(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut found,
        )
    };
    if status != 0 || found.is_null() || entry.pw_name.is_null() {
        return None;
    }
    // SAFETY: on success pw_name points at a NUL-terminated string inside
    // `buffer`, which is still alive.
    let name = unsafe { std::ffi::CStr::from_ptr(entry.pw_name) };
    name.to_str().ok().map(str::to_string)
}

pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
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
                assert_eq!(holder.as_deref(), Some(first.holder()));
            }
            other => panic!("expected Locked, got {other:?}"),
        }

        drop(first);
        assert_eq!(std::fs::read(&path).unwrap(), b"");
        let second = FileLock::acquire(&path, "dev", "echo-iac destroy").unwrap();
        assert_eq!(second.holder().command, "echo-iac destroy");
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
}
