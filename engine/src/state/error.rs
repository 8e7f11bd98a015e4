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
        /// The state file.
        file: PathBuf,
        /// The newest copy in the history that still reads.
        good: Option<PathBuf>,
        /// The folder of kept copies.
        history: PathBuf,
    },
    /// A revision in the cluster: restore revision `good`, or, when no
    /// kept revision reads, an export or a backup. `damaged` is the one
    /// that does not read.
    Revision {
        /// The newest kept revision that still reads.
        good: Option<u64>,
        /// The revision that does not read.
        damaged: u64,
    },
    /// The head Secret's index, without which no revision can be found:
    /// only a backup or an export brings it back.
    Index {
        /// Where the state's Secrets are.
        namespace: String,
        /// The head Secret.
        secret: String,
    },
}

/// How a backend's lock is released, for telling a waiting user.
#[derive(Clone, Debug, PartialEq)]
pub enum LockKind {
    /// An OS lock on `path`, released by the system when its holder exits.
    File {
        /// The lock file.
        path: PathBuf,
    },
    /// A Lease, renewed every `renew_every`; it runs out `duration` after
    /// its last renewal.
    Lease {
        /// How often its holder renews it.
        renew_every: Duration,
        /// How long it holds after the last renewal.
        duration: Duration,
    },
}

/// What went wrong reading, writing or locking a stack's state.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// A file of the file backend could not be read or written.
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        /// What was being done (`write state file`).
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's error.
        #[source]
        source: io::Error,
    },

    /// The state could not be turned into JSON.
    #[error("cannot encode the state of stack {stack}: {source}")]
    Encode {
        /// The stack.
        stack: String,
        /// The encoder's error.
        #[source]
        source: serde_json::Error,
    },

    /// The stored state does not read as a state: it is never overwritten.
    #[error("state {location} is corrupt: {reason}{}", last_good_note(last_good.as_deref()))]
    Corrupt {
        /// The file or Secret.
        location: String,
        /// The newest kept copy that still reads as a valid state.
        last_good: Option<String>,
        /// Why it does not read.
        reason: String,
        /// How it can be restored, in this backend's terms.
        recovery: Box<Recovery>,
    },

    /// The state was written by a newer release, in a schema this one cannot read.
    #[error(
        "state {location} has schema version {found}, written by a newer release (this one reads up to version {supported})"
    )]
    NewerVersion {
        /// The file or Secret.
        location: String,
        /// The schema version it has.
        found: u64,
        /// The newest schema version this release reads.
        supported: u32,
    },

    /// The stored state is another stack's.
    #[error("state {location} belongs to stack `{found}`, not `{expected}`")]
    WrongStack {
        /// The file or Secret.
        location: String,
        /// The stack asked for.
        expected: String,
        /// The stack it names.
        found: String,
    },

    /// Another run wrote the state since this one loaded it.
    #[error(
        "refusing to write {location}: it is at serial {on_disk}, but this run started from serial {loaded}, so another run wrote it in the meantime"
    )]
    Conflict {
        /// The file or Secret.
        location: String,
        /// The serial stored now.
        on_disk: u64,
        /// The serial this run loaded.
        loaded: u64,
    },

    /// Another run holds the stack's lock.
    #[error("stack {stack} is {}locked by {}{}", if waited.is_some() { "still " } else { "" }, holder_text(holder.as_deref()), waited_text(*waited))]
    Locked {
        /// The stack.
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

    /// This run's lock may now be another's (a Lease not renewed in time, or taken over).
    #[error(
        "this run lost the lock on stack {stack} ({location}): {reason}; it stopped and wrote nothing more"
    )]
    LockLost {
        /// The stack.
        stack: String,
        /// The lock file or Lease.
        location: String,
        /// Why the lock may be someone else's.
        reason: String,
    },

    /// The serial cannot grow any more: writing would wrap it to 0, and a
    /// state at serial 0 reads as older than every other, which
    /// `stack import` and the conflict check rely on.
    #[error(
        "refusing to write {location}: it is at serial {serial}, the largest there is, so the next write has no serial above it"
    )]
    SerialExhausted {
        /// The file or Secret.
        location: String,
        /// Its serial.
        serial: u64,
    },

    /// The revision asked for is not among those kept.
    #[error(
        "revision {serial} of {location} is not kept; the kept revisions are {}",
        kept_text(kept)
    )]
    RevisionNotKept {
        /// Where the state is.
        location: String,
        /// The revision asked for.
        serial: u64,
        /// The serials that are kept, oldest first.
        kept: Vec<u64>,
    },

    /// A Secret where the state should be that this backend did not write.
    #[error("refusing to use {location} as the state of stack {stack}: {reason}")]
    Foreign {
        /// The Secret.
        location: String,
        /// The stack whose state it was taken for.
        stack: String,
        /// What differs from a Secret this backend writes: its type or labels.
        reason: String,
    },

    /// A file or folder of the file backend that is not provably its own
    /// (a symbolic link, a hard-linked or foreign file, a lock file holding
    /// something else); it was left untouched.
    #[error("refusing to use {}: {problem}", path.display())]
    UnsafePath {
        /// The file or folder.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// What to do about it, in the backend's terms.
        hint: String,
    },

    /// The namespace of the cluster backend does not exist.
    #[error("the state backend namespace `{namespace}` does not exist")]
    BackendNamespaceMissing {
        /// The namespace.
        namespace: String,
    },

    /// A request of the cluster backend failed.
    #[error("cannot {action} {location}: {source}")]
    Cluster {
        /// What was being done (`read the lock`).
        action: &'static str,
        /// The Secret or Lease.
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
    /// An [`StateError::Io`] for doing `action` to `path`.
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
