//! Errors from reading, writing and locking a stack's state, each with a
//! hint saying what to do next.
//!
//! The top-level printer shows only `Display` and [`StateError::hint`], so
//! each message carries its underlying cause text as well as exposing it as
//! the error source. Locations are strings (a file path, or a Secret), so
//! that every backend reports through the same variants.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::lock::LockHolder;
use crate::cluster::ClusterError;

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

    #[error("state {location} is corrupt: {reason}{}", last_good_note(last_good.as_deref()))]
    Corrupt {
        location: String,
        /// The newest kept copy that still reads as a valid state.
        last_good: Option<String>,
        reason: String,
        /// How to restore it, in this backend's terms.
        hint: String,
    },

    #[error(
        "state {location} has schema version {found}, written by a newer echo-iac (this one reads up to version {supported})"
    )]
    NewerVersion {
        location: String,
        found: u64,
        supported: u32,
    },

    #[error("state {location} belongs to stack `{found}`, not `{expected}`")]
    WrongStack {
        location: String,
        expected: String,
        found: String,
    },

    #[error(
        "refusing to write {location}: it is at serial {on_disk}, but this run started from serial {loaded}, so another run wrote it in the meantime"
    )]
    Conflict {
        location: String,
        on_disk: u64,
        loaded: u64,
    },

    #[error("stack {stack} is {}locked by {}{}", if waited.is_some() { "still " } else { "" }, holder_text(holder.as_deref()), waited_text(*waited))]
    Locked {
        stack: String,
        /// The lock file or Lease, for the hint.
        location: String,
        /// `None` when the holder has taken the lock but not yet written
        /// who it is.
        holder: Option<Box<LockHolder>>,
        /// How long a waiting caller retried before giving up.
        waited: Option<Duration>,
        /// How this backend's lock is released.
        hint: String,
    },

    #[error(
        "this run lost the lock on stack {stack} ({location}): {reason}; it stopped and wrote nothing more"
    )]
    LockLost {
        stack: String,
        location: String,
        reason: String,
    },

    #[error("the state backend namespace `{namespace}` does not exist")]
    BackendNamespaceMissing { namespace: String },

    #[error("cannot {action} {location}: {source}")]
    Cluster {
        action: &'static str,
        location: String,
        #[source]
        source: ClusterError,
    },
}

impl StateError {
    pub fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        StateError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn cluster(action: &'static str, location: &str, source: ClusterError) -> Self {
        StateError::Cluster {
            action,
            location: location.to_string(),
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
            StateError::Corrupt { hint, .. } => Some(hint.clone()),
            StateError::NewerVersion { .. } => Some(
                "upgrade echo-iac to the version that wrote this state; it was left unchanged"
                    .to_string(),
            ),
            StateError::WrongStack {
                location,
                expected,
                found,
            } => Some(format!(
                "it was probably copied or renamed from stack `{found}`. Select stack `{found}` instead, or put the state of `{expected}` back at {location}"
            )),
            StateError::Conflict { .. } => Some(
                "run the command again so it starts from the newer state; nothing was written"
                    .to_string(),
            ),
            StateError::Locked { hint, .. } => Some(hint.clone()),
            StateError::LockLost { .. } => Some(
                "another run may have taken the stack over since: run `echo-iac preview` to see where the stack stands, then run the command again"
                    .to_string(),
            ),
            StateError::BackendNamespaceMissing { namespace } => Some(format!(
                "create it (`kubectl create namespace {namespace}`), or point `backend:` in the stack file (or ECHO_IAC_BACKEND) at a namespace that exists"
            )),
            StateError::Cluster { source, .. } => source.hint(),
        }
    }
}

fn last_good_note(last_good: Option<&str>) -> String {
    match last_good {
        Some(good) => format!("; the last good copy is {good}"),
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
