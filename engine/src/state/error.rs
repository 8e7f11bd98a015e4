//! Errors from reading, writing and locking a stack's state.
//!
//! Each message carries its underlying cause text as well as exposing it as
//! the error source. Locations are strings (a file path, or a Secret), so
//! that every backend reports through the same variants; what a caller needs
//! to say how to recover ([`Recovery`], [`LockKind`]) comes as data, since
//! only the caller knows its own commands.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::holder::LockHolder;
use crate::cluster::ClusterError;

/// How a corrupt state can be brought back.
#[derive(Clone, Debug, PartialEq)]
pub enum Recovery {
    /// Not known where the document was read (the backend fills it in).
    Unknown,
    /// A state file: copy the last good copy over it, or repair it by hand
    /// when the history (`history`) holds none.
    File {
        file: PathBuf,
        good: Option<PathBuf>,
        history: PathBuf,
    },
    /// A revision in the cluster: restore revision `good`, or, when no
    /// kept revision reads, an export or a backup. `damaged` is the one
    /// that does not read.
    Revision { good: Option<u64>, damaged: u64 },
    /// The head Secret's index, without which no revision can be found:
    /// only a backup or an export brings it back.
    Index { namespace: String, secret: String },
}

/// How a backend's lock is released, for telling a waiting user.
#[derive(Clone, Debug, PartialEq)]
pub enum LockKind {
    /// An OS lock on `path`, released by the system when its holder exits.
    File { path: PathBuf },
    /// A Lease, renewed every `renew_every`; it runs out `duration` after
    /// its last renewal.
    Lease {
        renew_every: Duration,
        duration: Duration,
    },
}

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
        /// How it can be restored, in this backend's terms.
        recovery: Box<Recovery>,
    },

    #[error(
        "state {location} has schema version {found}, written by a newer release (this one reads up to version {supported})"
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
        kind: LockKind,
    },

    #[error(
        "this run lost the lock on stack {stack} ({location}): {reason}; it stopped and wrote nothing more"
    )]
    LockLost {
        stack: String,
        location: String,
        reason: String,
    },

    /// The serial cannot grow any more: writing would wrap it to 0, and a
    /// state at serial 0 reads as older than every other, which
    /// `stack import` and the conflict check rely on.
    #[error(
        "refusing to write {location}: it is at serial {serial}, the largest there is, so the next write has no serial above it"
    )]
    SerialExhausted { location: String, serial: u64 },

    #[error(
        "revision {serial} of {location} is not kept; the kept revisions are {}",
        kept_text(kept)
    )]
    RevisionNotKept {
        location: String,
        serial: u64,
        /// The serials that are kept, oldest first.
        kept: Vec<u64>,
    },

    #[error("refusing to use {location} as the state of stack {stack}: {reason}")]
    Foreign {
        location: String,
        stack: String,
        /// What differs from a Secret this backend writes: its type or labels.
        reason: String,
    },

    /// A file or folder of the file backend that is not provably its own
    /// (a symbolic link, a hard-linked or foreign file, a lock file holding
    /// something else); it was left untouched.
    #[error("refusing to use {}: {problem}", path.display())]
    UnsafePath {
        path: PathBuf,
        problem: String,
        /// What to do about it, in the backend's terms.
        hint: String,
    },

    #[error("the state backend namespace `{namespace}` does not exist")]
    BackendNamespaceMissing { namespace: String },

    #[error("cannot {action} {location}: {source}")]
    Cluster {
        action: &'static str,
        location: String,
        /// Boxed to keep every `Result` that carries a state error small.
        #[source]
        source: Box<ClusterError>,
    },
}

/// `3, 4 and 5`, or `none` before the first write.
fn kept_text(kept: &[u64]) -> String {
    match kept {
        [] => "none: the stack has no state yet".to_string(),
        [one] => format!("{one} only"),
        [init @ .., last] => {
            let init: Vec<String> = init.iter().map(u64::to_string).collect();
            format!("{} and {last}", init.join(", "))
        }
    }
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
            source: Box::new(source),
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
