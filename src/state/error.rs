//! Errors from reading, writing and locking a stack's state, each with a
//! hint saying what to do next.
//!
//! The top-level printer shows only `Display` and [`StateError::hint`], so
//! each message carries its underlying cause text as well as exposing it as
//! the error source.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::lock::LockHolder;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("cannot encode the state of stack {stack}: {source}")]
    Encode {
        stack: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("state file {} is corrupt: {reason}{}", file.display(), last_good_note(last_good.as_deref()))]
    Corrupt {
        file: PathBuf,
        /// The newest history copy that still reads as a valid state.
        last_good: Option<PathBuf>,
        reason: String,
    },

    #[error(
        "state file {} has schema version {found}, written by a newer echo-iac (this one reads up to version {supported})",
        file.display()
    )]
    NewerVersion {
        file: PathBuf,
        found: u64,
        supported: u32,
    },

    #[error("state file {} belongs to stack `{found}`, not `{expected}`", file.display())]
    WrongStack {
        file: PathBuf,
        expected: String,
        found: String,
    },

    #[error(
        "refusing to write {}: it is at serial {on_disk}, but this run started from serial {loaded}, so another run wrote it in the meantime",
        file.display()
    )]
    Conflict {
        file: PathBuf,
        on_disk: u64,
        loaded: u64,
    },

    #[error("stack {stack} is {}locked by {}{}", if waited.is_some() { "still " } else { "" }, holder_text(holder.as_deref()), waited_text(*waited))]
    Locked {
        stack: String,
        /// The lock file, for the hint.
        file: PathBuf,
        /// `None` when the holder has taken the lock but not yet written
        /// who it is.
        holder: Option<Box<LockHolder>>,
        /// How long a waiting caller retried before giving up.
        waited: Option<Duration>,
    },
}

impl StateError {
    pub(crate) fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        StateError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// What to do next, printed under the error.
    pub fn hint(&self) -> Option<String> {
        match self {
            StateError::Io { path, source, .. } => match source.kind() {
                io::ErrorKind::PermissionDenied => Some(format!(
                    "check that your user owns {} and may write to it",
                    path.parent().unwrap_or(path).display()
                )),
                io::ErrorKind::StorageFull => {
                    Some("free some disk space and run the command again".to_string())
                }
                _ => None,
            },
            StateError::Encode { .. } => None,
            StateError::Corrupt {
                file,
                last_good: Some(good),
                ..
            } => Some(format!(
                "the file was left unchanged. Compare it with the last good copy (`diff {good} {file}`), then restore that copy with `cp {good} {file}` and run `echo-iac preview` to see what changed since",
                good = good.display(),
                file = file.display(),
            )),
            StateError::Corrupt {
                file,
                last_good: None,
                ..
            } => Some(format!(
                "the file was left unchanged and no readable copy exists under {}. Repair it by hand at the position above; moving it aside would make echo-iac forget the objects this stack owns",
                file.parent()
                    .map(|dir| dir.join(".history"))
                    .unwrap_or_default()
                    .display()
            )),
            StateError::NewerVersion { .. } => Some(
                "upgrade echo-iac to the version that wrote this state; the file was left unchanged"
                    .to_string(),
            ),
            StateError::WrongStack {
                file,
                expected,
                found,
            } => Some(format!(
                "the file was probably copied or renamed from stack `{found}`. Select stack `{found}` instead, or put the state of `{expected}` back at {}",
                file.display()
            )),
            StateError::Conflict { .. } => Some(
                "run the command again so it starts from the newer state; nothing was written"
                    .to_string(),
            ),
            StateError::Locked { file, holder, .. } => {
                let who = match holder {
                    Some(h) => format!("pid {} on host {}", h.pid, h.host),
                    None => "the holder".to_string(),
                };
                Some(format!(
                    "wait for that run to finish, or stop {who} if it hangs. The lock on {} is released by the system when its process exits, so never delete the file to break it",
                    file.display()
                ))
            }
        }
    }
}

fn last_good_note(last_good: Option<&Path>) -> String {
    match last_good {
        Some(path) => format!("; the last good copy is {}", path.display()),
        None => "; no good copy was found in its history".to_string(),
    }
}

fn holder_text(holder: Option<&LockHolder>) -> String {
    match holder {
        Some(h) => h.to_string(),
        None => "another run that has not yet recorded who it is".to_string(),
    }
}

fn waited_text(waited: Option<Duration>) -> String {
    match waited {
        Some(d) => format!(" (waited {})", humantime::format_duration(d)),
        None => String::new(),
    }
}
