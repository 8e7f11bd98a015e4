//! What a stack has applied, as recorded between runs, and the store that
//! keeps it.
//!
//! The engine reads a [`State`] before planning and writes it back after each
//! step, always through a [`StateStore`]: the local file backend
//! (`file://state`) and the cluster backend (`kubernetes://<namespace>`,
//! Secrets and a Lease) are interchangeable behind it.

mod applied;
pub mod backend;
mod document;
mod error;
mod files;
mod history;
mod holder;
mod kube;
mod lease;
mod local;
mod lock;
mod locked;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::ResourceId;

pub use applied::Applied;
pub use backend::{Backend, BackendError};
pub use error::{LockKind, Recovery, StateError};
pub use files::write_private_file;
pub use history::Revision;
pub(crate) use history::change_summary;
pub use holder::LockHolder;
pub use kube::KubeStore;
pub(crate) use kube::is_state_secret;
#[doc(hidden)]
pub use kube::{DecodedHead, decode_head};
pub use local::LocalStore;
pub use lock::StateLock;
pub use locked::{Locked, WritePermit};

/// The schema version this build writes and the newest it can read.
/// Version 1 lacked `writtenBy`, version 2 `operation`; both read as
/// version 3 without them.
pub(crate) const SCHEMA_VERSION: u32 = 3;

/// How many operations a stack's history keeps besides the current one,
/// unless told otherwise.
pub const DEFAULT_HISTORY: usize = 10;

/// Who wrote a revision of the state, for `stack history`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Writer {
    /// The command line, e.g. `echo-iac up`.
    pub command: String,
    /// The user it ran as.
    pub user: String,
    /// The machine it ran on.
    pub host: String,
    /// Its process id.
    pub pid: u32,
}

impl Writer {
    /// This process, running `command`.
    pub fn current(command: &str) -> Self {
        Writer {
            command: command.to_string(),
            user: holder::user_name(),
            host: holder::host_name(),
            pid: std::process::id(),
        }
    }
}

/// The run that wrote a revision. One `up` writes the state several times
/// (the journal records each wave before and after its calls); its writes
/// share one mark, so the history keeps one revision per run: the last
/// thing it wrote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperationMark {
    /// The serial of the run's first write; unique within a stack.
    pub id: u64,
    /// The serial the run started from: the revision before it.
    pub from: u64,
    /// The serial a rollback went back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_to: Option<u64>,
    /// Set on the run's last write when it ended as asked: everything
    /// applied and ready, or deleted. A run that failed or was
    /// interrupted leaves it unset.
    #[serde(default)]
    pub finished: bool,
}

/// One stack's record of what it applied.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct State {
    /// The schema version the document was written in.
    pub version: u32,
    /// The stack the state belongs to.
    pub stack: String,
    /// Grows by one per successful write, so a writer can tell that someone
    /// else wrote since it loaded.
    pub serial: u64,
    /// RFC 3339 time of the last write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated: Option<String>,
    /// Who made the last write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_by: Option<Writer>,
    /// The run that made the last write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<OperationMark>,
    /// The objects the stack manages, in the order they were first applied.
    #[serde(default)]
    pub resources: Vec<ResourceState>,
    /// Operations started and not yet confirmed; any left after a run means
    /// that run was interrupted.
    #[serde(default)]
    pub pending: Vec<PendingOperation>,
    /// The outputs the program read from the stack when it was last up.
    #[serde(default)]
    pub outputs: BTreeMap<String, serde_json::Value>,
}

/// One object this stack manages.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceState {
    /// Who the object is.
    pub id: ResourceId,
    /// Its uid when applied: an object of the same name with another uid is
    /// not this stack's.
    pub uid: String,
    /// What it was applied after, so that it is deleted before them.
    #[serde(default)]
    pub depends_on: Vec<ResourceId>,
    /// The object as this stack applied it, which is what a later diff
    /// compares against rather than the live object's defaulted fields.
    /// Sensitive values hold a salted hash instead (see
    /// [`crate::sensitive`]).
    pub applied: Applied,
    /// The program protected it when it was last applied (see
    /// [`crate::protect`]): a plan that would delete or replace it is
    /// blocked, even once the program no longer declares it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub protect: bool,
    /// The program asked, when it was last applied, that a delete leave it
    /// in the cluster (see [`crate::protect`]).
    #[serde(default, skip_serializing_if = "is_false")]
    pub retain: bool,
    /// What was true of it when this stack last applied it, so that a plan
    /// can prove it unchanged without a dry run (see [`crate::proof`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<crate::proof::Proof>,
}

fn is_false(value: &bool) -> bool {
    !value
}

impl ResourceState {
    /// The record of an object applied with `uid`, neither protected nor
    /// retained.
    pub fn new(
        id: ResourceId,
        uid: String,
        depends_on: Vec<ResourceId>,
        applied: serde_json::Value,
    ) -> Self {
        ResourceState {
            id,
            uid,
            depends_on,
            applied: applied.into(),
            protect: false,
            retain: false,
            proof: None,
        }
    }

    /// What the program asked of the object when it was last applied.
    pub fn options(&self) -> crate::resource::ResourceOptions {
        crate::resource::ResourceOptions {
            protect: self.protect,
            retain: self.retain,
            wait: None,
        }
    }
}

/// A mutating call recorded before it is made.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PendingOperation {
    /// `create`, `update`, `replace` or `delete`; or `wait`, for a readiness
    /// wait that had not yet seen the applied objects work.
    pub op: String,
    /// The object the call was for.
    pub id: ResourceId,
    /// RFC 3339.
    pub started: String,
}

impl State {
    /// The state of a stack that has never been written.
    pub fn empty(stack: &str) -> Self {
        State {
            version: SCHEMA_VERSION,
            stack: stack.to_string(),
            serial: 0,
            updated: None,
            written_by: None,
            operation: None,
            resources: Vec::new(),
            pending: Vec::new(),
            outputs: BTreeMap::new(),
        }
    }

    /// The record of `id`, if the stack manages it.
    pub fn resource(&self, id: &ResourceId) -> Option<&ResourceState> {
        self.resources.iter().find(|r| &r.id == id)
    }

    /// The recorded objects by id: [`State::resource`] searches the list,
    /// which costs a stack of thousands a quadratic time when every object
    /// looks itself up.
    pub fn by_id(&self) -> HashMap<&ResourceId, &ResourceState> {
        self.resources.iter().map(|r| (&r.id, r)).collect()
    }

    /// Replaces the entry with the same id in place, or appends, so the
    /// file's order (and its diffs between serials) stays stable.
    /// Sensitive values are sealed first (see [`crate::sensitive`]): the
    /// state never holds them in the clear, not even in memory.
    pub fn upsert_resource(&mut self, mut resource: ResourceState) {
        if crate::sensitive::is_sensitive_kind(&resource.id) {
            let previous = self.resource(&resource.id).map(|r| r.applied.value());
            resource
                .applied
                .modify(|applied| crate::sensitive::seal(applied, previous.as_ref()));
        }
        match self.resources.iter_mut().find(|r| r.id == resource.id) {
            Some(existing) => *existing = resource,
            None => self.resources.push(resource),
        }
    }

    /// Drops the record of `id`; returns it if there was one.
    pub fn remove_resource(&mut self, id: &ResourceId) -> Option<ResourceState> {
        let index = self.resources.iter().position(|r| &r.id == id)?;
        Some(self.resources.remove(index))
    }

    /// Records that `op` on `id` is about to start. A leftover entry for the
    /// same id is replaced: only the latest attempt says what may be half
    /// done.
    pub(crate) fn begin(&mut self, op: &str, id: ResourceId) {
        self.pending.retain(|p| p.id != id);
        self.pending.push(PendingOperation {
            op: op.to_string(),
            id,
            started: now_rfc3339(),
        });
    }

    /// Clears the pending operation on `id` once it has completed.
    pub fn finish(&mut self, id: &ResourceId) {
        self.pending.retain(|p| &p.id != id);
    }

    /// Whether `self` and `other` were written by the same run: the same
    /// mark, or, for revisions written before runs were marked, the same
    /// writer process.
    pub(crate) fn same_run(&self, other: &State) -> bool {
        match (&self.operation, &other.operation) {
            (Some(a), Some(b)) => a.id == b.id,
            (None, None) => self.written_by.is_some() && self.written_by == other.written_by,
            _ => false,
        }
    }

    /// The revision a rollback left the stack at, while no later run has
    /// applied the program again.
    pub fn rolled_back_to(&self) -> Option<u64> {
        self.operation.as_ref().and_then(|o| o.rollback_to)
    }
}

/// Where a stack's state lives. One writer at a time holds [`StateLock`],
/// and writes go through [`Locked`], which holds it.
/// `Send + Sync` so the engine can share one store across concurrent steps.
#[async_trait::async_trait]
pub trait StateStore: Send + Sync {
    /// The stored state; a stack never written yet gives
    /// [`State::empty`] with serial 0.
    async fn load(&self) -> Result<State, StateError>;

    /// Writes `state` as the next serial and sets `updated` and
    /// `writtenBy`. Refuses when the stored state changed since this store
    /// read or wrote it (another writer), and when this process no longer
    /// holds the stack's lock. On success `state` carries the new serial.
    /// Called through [`Locked::save`], which holds the lock.
    async fn save(&self, state: &mut State, permit: WritePermit) -> Result<(), StateError>;

    /// Writes `state` over whatever is stored, even a state that does not
    /// read (`stack import --force`): the one write that does not refuse a
    /// corrupt state. The stored bytes are kept in the history first, and
    /// the new serial is above every serial kept. Called through
    /// [`Locked::restore`], which holds the lock.
    async fn restore(&self, state: &mut State, permit: WritePermit) -> Result<(), StateError>;

    /// Takes the stack's lock for `command`, failing at once with
    /// [`StateError::Locked`] if another run holds it, or waiting up to
    /// `wait` for it.
    async fn lock(&self, command: &str, wait: Option<Duration>) -> Result<StateLock, StateError>;

    /// The revisions kept, newest first: the current one and its history.
    async fn history(&self) -> Result<Vec<Revision>, StateError>;

    /// One kept revision by serial.
    async fn revision(&self, serial: u64) -> Result<State, StateError>;

    /// Deletes everything this store keeps for the stack: the state, its
    /// kept revisions and the lock, which `lock` (taken from this store)
    /// proves this run holds; when this returns the lock is gone with the
    /// rest, whether it succeeded or not. The state goes first, in one step,
    /// so that a removal cut short leaves the whole state or none of it,
    /// and leftovers that removing again deletes. Nothing the store did not
    /// write itself is touched. Returns what was deleted, as messages name
    /// it, in order.
    async fn remove(&self, lock: StateLock) -> Result<Vec<String>, StateError>;

    /// Where the state lives, for messages.
    fn location(&self) -> String;

    /// Fails once this store's lock may have passed to another run, so
    /// that a run woken up after losing it changes nothing more. Called
    /// before every mutating request.
    fn check_lock(&self) -> Result<(), StateError> {
        Ok(())
    }
}

/// The writer identity and time stamped on a state about to be written as
/// the next serial; returns what to put back if the write fails. Refuses,
/// changing nothing, at the largest serial: it never wraps around to 0.
pub(crate) fn stamp(
    state: &mut State,
    writer: Option<&Writer>,
    location: &str,
) -> Result<Stamp, StateError> {
    let next = state
        .serial
        .checked_add(1)
        .ok_or_else(|| StateError::SerialExhausted {
            location: location.to_string(),
            serial: state.serial,
        })?;
    let before = Stamp {
        version: state.version,
        serial: state.serial,
        updated: state.updated.take(),
        written_by: state.written_by.take(),
    };
    state.version = SCHEMA_VERSION;
    state.serial = next;
    state.updated = Some(now_rfc3339());
    state.written_by = writer.cloned().or_else(|| before.written_by.clone());
    Ok(before)
}

/// What [`stamp`] replaced.
pub(crate) struct Stamp {
    version: u32,
    serial: u64,
    updated: Option<String>,
    written_by: Option<Writer>,
}

impl Stamp {
    pub(crate) fn restore(self, state: &mut State) {
        state.version = self.version;
        state.serial = self.serial;
        state.updated = self.updated;
        state.written_by = self.written_by;
    }
}

/// Polls `try_lock` until it stops answering [`StateError::Locked`] or
/// `wait` has passed; then the last answer says how long it waited.
pub(crate) async fn lock_waiting<F, Fut>(
    wait: Option<Duration>,
    every: Duration,
    mut try_lock: F,
) -> Result<StateLock, StateError>
where
    F: FnMut() -> Fut + Send,
    Fut: Future<Output = Result<StateLock, StateError>> + Send,
{
    let Some(wait) = wait else {
        return try_lock().await;
    };
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match try_lock().await {
            Err(StateError::Locked {
                stack,
                location,
                holder,
                kind,
                ..
            }) => {
                let now = tokio::time::Instant::now();
                if now >= deadline {
                    return Err(StateError::Locked {
                        stack,
                        location,
                        holder,
                        kind,
                        waited: Some(wait),
                    });
                }
                tokio::time::sleep(every.min(deadline - now)).await;
            }
            other => return other,
        }
    }
}

/// Reads a state document as any backend would (schema, version, stack),
/// for `stack import`.
pub fn parse_document(location: &str, bytes: &[u8], stack: &str) -> Result<State, StateError> {
    document::parse(location, bytes, stack)
}

/// The document every backend stores for `state`, as
/// [`parse_document`] reads it: the other half of the round trip the
/// fuzz targets check.
#[doc(hidden)]
pub fn encode_document(state: &State) -> Result<Vec<u8>, StateError> {
    document::encode(state)
}

pub(crate) fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn id(name: &str) -> ResourceId {
        ResourceId::new("v1", "ConfigMap", Some("demo"), name)
    }

    fn resource(name: &str, uid: &str) -> ResourceState {
        ResourceState {
            id: id(name),
            uid: uid.to_string(),
            depends_on: Vec::new(),
            applied: json!({"data": {"k": uid}}).into(),
            protect: false,
            retain: false,
            proof: None,
        }
    }

    #[test]
    fn protect_and_retain_are_written_only_when_set() {
        let text = r#"{"id":{"apiVersion":"v1","kind":"ConfigMap","namespace":"demo","name":"a"},"uid":"1","dependsOn":[],"applied":{}}"#;
        let read: ResourceState = serde_json::from_str(text).unwrap();
        assert!(!read.protect && !read.retain);
        assert_eq!(serde_json::to_string(&read).unwrap(), text);
        let mut guarded = read;
        guarded.protect = true;
        let written = serde_json::to_value(&guarded).unwrap();
        assert_eq!(written["protect"], true);
        assert!(written.get("retain").is_none());
    }

    #[test]
    fn upsert_replaces_in_place_and_keeps_order() {
        let mut state = State::empty("dev");
        state.upsert_resource(resource("a", "1"));
        state.upsert_resource(resource("b", "2"));
        state.upsert_resource(resource("a", "3"));

        let names: Vec<_> = state.resources.iter().map(|r| r.id.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(state.resource(&id("a")).unwrap().uid, "3");
    }

    #[test]
    fn remove_resource_returns_the_removed_entry() {
        let mut state = State::empty("dev");
        state.upsert_resource(resource("a", "1"));

        assert_eq!(state.remove_resource(&id("a")).unwrap().uid, "1");
        assert!(state.remove_resource(&id("a")).is_none());
        assert!(state.resource(&id("a")).is_none());
    }

    #[test]
    fn begin_records_one_pending_operation_per_id_until_finished() {
        let mut state = State::empty("dev");
        state.begin("create", id("a"));
        state.begin("update", id("a"));
        state.begin("delete", id("b"));

        assert_eq!(state.pending.len(), 2);
        assert_eq!(state.pending[0].op, "update");
        humantime::parse_rfc3339(&state.pending[0].started).unwrap();

        state.finish(&id("a"));
        assert_eq!(state.pending.len(), 1);
        assert_eq!(state.pending[0].id, id("b"));
    }

    #[test]
    fn state_serializes_in_camel_case() {
        let mut state = State::empty("dev");
        let mut r = resource("a", "1");
        r.depends_on.push(id("ns"));
        state.upsert_resource(r);

        let value = serde_json::to_value(&state).unwrap();
        assert!(value["resources"][0]["dependsOn"][0]["apiVersion"].is_string());
        assert!(value.get("updated").is_none());
    }
}
