//! The cluster backend (`kubernetes://<namespace>`): a stack's state kept in
//! Secrets of the stack's own cluster, its lock in a Lease, so that every
//! machine that runs the stack (laptops, CI) shares one state and one lock.
//!
//! The head Secret `echo-iac-state-<stack>` is the commit point. Its
//! `index.json` lists the revisions kept, newest first, each with the
//! SHA-256 of its document; small revisions are stored gzipped beside it
//! (`state.<serial>.gz`), one too large for one object (1 MiB) is written
//! first to immutable part Secrets `echo-iac-state-<stack>-<serial>-<hash>-<i>`
//! that the index then names. Every write of the head is conditional on the
//! resourceVersion last read, so two writers can never both succeed, and a
//! reader sees either the old or the new revision, never a mix.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, ListParams, PostParams, Preconditions};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::document::{encode, parse};
use super::error::{LockKind, Recovery};
use super::lease::{Fence, LeaseLock, Observed};
use super::lock::Held;
use super::{
    DEFAULT_HISTORY, LockHolder, OperationMark, Revision, State, StateError, StateLock, StateStore,
    WritePermit, Writer, change_summary, lock_waiting, stamp,
};
use crate::ResourceId;
use crate::cluster::{Cluster, ClusterError};
use crate::fault::{self, Point};
use crate::identity::Identity;

/// A revision compressed to more than this goes to part Secrets.
const INLINE_LIMIT: usize = 256 * 1024;
/// Bytes per part Secret, well under the 1 MiB limit on a Secret's data.
const PART_SIZE: usize = 768 * 1024;
/// What the head's data may hold in all; older inline revisions are
/// dropped from the history to stay under it.
const HEAD_BUDGET: usize = 900 * 1024;
/// The most a revision may decompress to: far above any stack's state
/// (about 1 KB per object), far below what a machine running echo-iac has.
const DOCUMENT_LIMIT: usize = 256 * 1024 * 1024;
// Checked when compiling: parts and the head stay under the 1 MiB limit
// on a Secret's data, with room for keys and the index.
const _: () = {
    const SECRET_LIMIT: usize = 1024 * 1024;
    assert!(PART_SIZE + 64 < SECRET_LIMIT);
    assert!(HEAD_BUDGET + 64 * 1024 < SECRET_LIMIT);
    assert!(INLINE_LIMIT < HEAD_BUDGET);
};
/// The index format this build writes and the newest it reads. Format 1
/// lacked the revisions' `operation`; it reads as format 2 without it.
const INDEX_FORMAT: u32 = 2;
const INDEX_KEY: &str = "index.json";
/// The Secret types of heads and parts, under the identity's domain.
const HEAD_TYPE: &str = "state";

/// Whether `object` is one of the Secrets the Kubernetes backend keeps a
/// state in (a head or a part). They carry the stack's ownership labels
/// but are the state itself, never an object the stack declares: a
/// destroy that took them for lost objects would delete the state it is
/// writing.
pub(crate) fn is_state_secret(identity: &Identity, object: &serde_json::Value) -> bool {
    object["kind"] == "Secret"
        && object["type"]
            .as_str()
            .is_some_and(|t| t == identity.key(HEAD_TYPE) || t == identity.key(PART_TYPE))
}
const PART_TYPE: &str = "state-part";
/// Label tying a part Secret to its stack's head.
const PART_OF_LABEL: &str = "state-of";
/// How often a waiting lock request looks at the lease again.
const LOCK_POLL: Duration = Duration::from_millis(500);

/// The head Secret's index.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Index {
    format: u32,
    /// Newest first; the first is the current state.
    revisions: Vec<StoredRevision>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StoredRevision {
    serial: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    updated: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    written_by: Option<Writer>,
    /// SHA-256 of the uncompressed document, hex.
    sha256: String,
    /// Size of the uncompressed document.
    size: usize,
    resources: usize,
    summary: String,
    /// The run that wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    operation: Option<OperationMark>,
    /// The part Secrets holding the compressed document, in order; absent
    /// when it is stored in the head under [`inline_key`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parts: Option<Vec<String>>,
}

/// The head as last read or written by this store.
#[derive(Clone, Debug)]
struct Head {
    /// `None` when the head does not exist yet.
    resource_version: Option<String>,
    index: Index,
    data: BTreeMap<String, Vec<u8>>,
    /// The current state, for the summary of the next revision.
    current: Option<State>,
}

impl Index {
    fn empty() -> Self {
        Index {
            format: INDEX_FORMAT,
            revisions: Vec::new(),
        }
    }
}

impl Head {
    /// A head with no revision: none written yet, or one being replaced
    /// whole (`resource_version` then names it).
    fn empty(resource_version: Option<String>) -> Self {
        Head {
            resource_version,
            index: Index::empty(),
            data: BTreeMap::new(),
            current: None,
        }
    }
}

/// One stack's state in one namespace of its cluster.
pub struct KubeStore {
    cluster: Cluster,
    namespace: String,
    stack: String,
    head: Mutex<Option<Head>>,
    /// Set once this store holds the lock; checked before every write.
    fence: Mutex<Option<Fence>>,
    writer: Mutex<Option<Writer>>,
    /// How many earlier runs' revisions the history keeps.
    keep: usize,
    /// The run last written (by the id of its mark) and the revision it
    /// started from, which its revision's summary is told against.
    base: Mutex<Option<(u64, Option<State>)>>,
    /// The lease's resourceVersion as first seen by a waiting lock request,
    /// and when: unchanged for a lease duration, it ran out.
    observed: Mutex<Option<(String, Instant)>>,
}

impl std::fmt::Debug for KubeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeStore")
            .field("namespace", &self.namespace)
            .field("stack", &self.stack)
            .finish_non_exhaustive()
    }
}

pub(crate) fn head_name(identity: &Identity, stack: &str) -> String {
    format!("{}-state-{stack}", identity.name())
}

fn inline_key(serial: u64) -> String {
    format!("state.{serial}.gz")
}

impl KubeStore {
    /// The state of `stack` in Secrets in `namespace` of `cluster`, locked by
    /// a Lease there.
    pub fn new(cluster: Cluster, namespace: &str, stack: &str) -> Self {
        KubeStore {
            cluster,
            namespace: namespace.to_string(),
            stack: stack.to_string(),
            head: Mutex::new(None),
            fence: Mutex::new(None),
            writer: Mutex::new(None),
            keep: DEFAULT_HISTORY,
            base: Mutex::new(None),
            observed: Mutex::new(None),
        }
    }

    /// Keeps the last revision of `runs` earlier runs in the history
    /// (at least one), instead of [`DEFAULT_HISTORY`].
    pub fn keep_history(mut self, runs: usize) -> Self {
        self.keep = runs.max(1);
        self
    }

    fn head_id(&self) -> ResourceId {
        ResourceId::new("v1", "Secret", Some(&self.namespace), &self.head_name())
    }

    fn describe(&self) -> String {
        format!("Secret {}/{}", self.namespace, self.head_name())
    }

    fn describe_revision(&self, serial: u64) -> String {
        format!("revision {serial} in {}", self.describe())
    }

    /// Reads the head and the current state, and remembers both for the
    /// next write.
    async fn read_head(&self) -> Result<Head, StateError> {
        let mut head = self.read_index().await?;
        if let Some(current) = head.index.revisions.first().cloned() {
            match self.read_revision(&head, &current).await {
                Ok(state) => head.current = Some(state),
                Err(StateError::Corrupt { reason, .. }) => {
                    return Err(self.corrupt(&head, current.serial, reason).await);
                }
                Err(e) => return Err(e),
            }
        }
        *self.head.lock().expect("never poisoned") = Some(head.clone());
        Ok(head)
    }

    /// Reads the head's index and inline revisions, without reading the
    /// current revision (which may be the damaged one).
    async fn read_index(&self) -> Result<Head, StateError> {
        let id = self.head_id();
        let api = self.cluster.typed::<Secret>(&self.namespace);
        let name = self.head_name();
        let found = self
            .cluster
            .call("read", &id, || async { api.get_opt(&name).await })
            .await
            .map_err(|e| StateError::cluster("read the state in", &self.describe(), e))?;
        Ok(match found {
            None => {
                self.check_namespace().await?;
                Head::empty(None)
            }
            Some(secret) => {
                // Anyone who may create Secrets here could have made this
                // one: one that is not a head of this stack is neither
                // read nor written over.
                if let Some(reason) = self.foreign(&secret, HEAD_TYPE) {
                    return Err(StateError::Foreign {
                        location: self.describe(),
                        stack: self.stack.clone(),
                        reason,
                    });
                }
                let data = secret_data(secret.data);
                Head {
                    resource_version: secret.metadata.resource_version,
                    index: self.parse_index(&data)?,
                    data,
                    current: None,
                }
            }
        })
    }

    fn parse_index(&self, data: &BTreeMap<String, Vec<u8>>) -> Result<Index, StateError> {
        parse_index(&self.describe(), &self.namespace, &self.head_name(), data)
    }

    /// A namespace that does not exist makes every read a plain 404; a dry
    /// run of the head's creation tells the two apart.
    async fn check_namespace(&self) -> Result<(), StateError> {
        let api = self.cluster.typed::<Secret>(&self.namespace);
        let probe = self.secret(self.head_name(), HEAD_TYPE, BTreeMap::new(), None);
        let params = PostParams {
            dry_run: true,
            field_manager: Some(self.cluster.identity().field_manager().to_string()),
        };
        let id = self.head_id();
        match self
            .cluster
            .call("check", &id, || async { api.create(&params, &probe).await })
            .await
        {
            Ok(_) => Ok(()),
            Err(ClusterError::Api { status, .. }) if status.code == 404 => {
                Err(StateError::BackendNamespaceMissing {
                    namespace: self.namespace.clone(),
                })
            }
            Err(ClusterError::Api { status, .. }) if status.code == 409 => Ok(()),
            // A reader without `create` on Secrets can still preview.
            Err(ClusterError::Forbidden { .. }) => Ok(()),
            Err(e) => Err(StateError::cluster(
                "read the state in",
                &self.describe(),
                e,
            )),
        }
    }

    /// The document of one revision, checked against its hash.
    async fn read_revision(
        &self,
        head: &Head,
        revision: &StoredRevision,
    ) -> Result<State, StateError> {
        let location = self.describe_revision(revision.serial);
        let corrupt = |reason: String| StateError::Corrupt {
            location: location.clone(),
            last_good: None,
            reason,
            recovery: Box::new(Recovery::Unknown),
        };
        let compressed = match &revision.parts {
            None => head
                .data
                .get(&inline_key(revision.serial))
                .cloned()
                .ok_or_else(|| {
                    corrupt(format!("the head has no `{}`", inline_key(revision.serial)))
                })?,
            Some(parts) => {
                let api = self.cluster.typed::<Secret>(&self.namespace);
                let mut bytes = Vec::new();
                for part in parts {
                    let id = ResourceId::new("v1", "Secret", Some(&self.namespace), part);
                    let secret = self
                        .cluster
                        .call("read", &id, || async { api.get_opt(part).await })
                        .await
                        .map_err(|e| StateError::cluster("read the state in", &id.to_string(), e))?
                        .ok_or_else(|| corrupt(format!("its part Secret {part} is missing")))?;
                    if let Some(reason) = self.foreign(&secret, PART_TYPE) {
                        return Err(corrupt(format!(
                            "its part Secret {part} was not written by this backend: {reason}"
                        )));
                    }
                    let chunk = secret
                        .data
                        .and_then(|mut d| d.remove("part"))
                        .ok_or_else(|| corrupt(format!("its part Secret {part} is empty")))?;
                    bytes.extend_from_slice(&chunk.0);
                }
                bytes
            }
        };
        decode_revision(&location, &self.stack, &compressed, revision)
    }

    /// The corrupt-state error for the current revision, naming the newest
    /// kept revision that still reads.
    async fn corrupt(&self, head: &Head, serial: u64, reason: String) -> StateError {
        let mut good = None;
        for revision in head.index.revisions.iter().skip(1) {
            if self.read_revision(head, revision).await.is_ok() {
                good = Some(revision.serial);
                break;
            }
        }
        StateError::Corrupt {
            location: self.describe_revision(serial),
            last_good: good.map(|g| self.describe_revision(g)),
            reason,
            recovery: Box::new(Recovery::Revision {
                good,
                damaged: serial,
            }),
        }
    }

    fn head_name(&self) -> String {
        head_name(self.cluster.identity(), &self.stack)
    }

    /// Why `secret` is not a Secret this store writes as `type_` (a head or
    /// a part): its type, or a label it lacks; `None` when it is one.
    fn foreign(&self, secret: &Secret, type_: &str) -> Option<String> {
        let identity = self.cluster.identity();
        let expected = identity.key(type_);
        match secret.type_.as_deref() {
            Some(found) if found == expected => {}
            Some(found) => return Some(format!("its type is `{found}`, not `{expected}`")),
            None => return Some(format!("it has no type (expected `{expected}`)")),
        }
        let mut labels = identity.ownership_labels(&self.stack);
        if type_ == PART_TYPE {
            labels.insert(identity.key(PART_OF_LABEL), self.stack.clone());
        }
        let found = secret.metadata.labels.as_ref();
        labels
            .into_iter()
            .find(|(key, value)| found.and_then(|f| f.get(key)) != Some(value))
            .map(|(key, value)| format!("it lacks the label {key}={value}"))
    }

    /// Whether `name` is one this store gives a part:
    /// `<head>-<serial>-<12 hex digits of the hash>-<index>`. A stack whose
    /// name extends this one's (`dev` and `dev-2`) has parts of another shape.
    pub(crate) fn is_part_name(&self, name: &str) -> bool {
        let Some(rest) = name
            .strip_prefix(&self.head_name())
            .and_then(|r| r.strip_prefix('-'))
        else {
            return false;
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let parts: Vec<&str> = rest.split('-').collect();
        matches!(parts.as_slice(), [serial, hash, index]
            if digits(serial)
                && hash.len() == 12
                && hash.bytes().all(|b| b.is_ascii_hexdigit())
                && digits(index))
    }

    fn secret(
        &self,
        name: String,
        type_: &str,
        data: BTreeMap<String, Vec<u8>>,
        resource_version: Option<String>,
    ) -> Secret {
        let identity = self.cluster.identity();
        let mut labels = identity.ownership_labels(&self.stack);
        if type_ == PART_TYPE {
            labels.insert(identity.key(PART_OF_LABEL), self.stack.clone());
        }
        Secret {
            metadata: ObjectMeta {
                name: Some(name),
                namespace: Some(self.namespace.clone()),
                labels: Some(labels),
                resource_version,
                ..ObjectMeta::default()
            },
            type_: Some(identity.key(type_)),
            immutable: (type_ == PART_TYPE).then_some(true),
            data: Some(data.into_iter().map(|(k, v)| (k, ByteString(v))).collect()),
            ..Secret::default()
        }
    }

    /// Writes the parts of a large revision, before the head names them.
    async fn write_parts(
        &self,
        serial: u64,
        sha256: &str,
        compressed: &[u8],
    ) -> Result<Vec<String>, StateError> {
        let api = self.cluster.typed::<Secret>(&self.namespace);
        let mut names = Vec::new();
        for (i, chunk) in compressed.chunks(PART_SIZE).enumerate() {
            let name = format!("{}-{serial}-{}-{i}", self.head_name(), short(sha256));
            let secret = self.secret(
                name.clone(),
                PART_TYPE,
                BTreeMap::from([("part".to_string(), chunk.to_vec())]),
                None,
            );
            let id = ResourceId::new("v1", "Secret", Some(&self.namespace), &name);
            match self
                .cluster
                .call("write", &id, || async {
                    api.create(&PostParams::default(), &secret).await
                })
                .await
            {
                Ok(_) => {}
                // Named by the document's hash: an existing part of that
                // name holds these very bytes (a retried write).
                Err(ClusterError::Api { status, .. }) if status.code == 409 => {}
                Err(e) => {
                    return Err(StateError::cluster(
                        "write the state to",
                        &id.to_string(),
                        e,
                    ));
                }
            }
            names.push(name);
        }
        Ok(names)
    }

    /// Deletes part Secrets of this stack that no kept revision names:
    /// revisions dropped from the history, and writes that lost a race.
    /// Only Secrets this store would have written are deleted: of its part
    /// type, with its labels and a name of its parts' shape; the label
    /// alone, which anyone who may label a Secret can set, does not do.
    async fn collect_parts(&self, index: &Index) {
        let api = self.cluster.typed::<Secret>(&self.namespace);
        let params = ListParams::default().labels(&format!(
            "{}={}",
            self.cluster.identity().key(PART_OF_LABEL),
            self.stack
        ));
        let id = ResourceId::new("v1", "Secret", Some(&self.namespace), "*");
        let Ok(parts) = self
            .cluster
            .call("list", &id, || async { api.list(&params).await })
            .await
        else {
            return;
        };
        let named: std::collections::HashSet<&str> = index
            .revisions
            .iter()
            .filter_map(|r| r.parts.as_ref())
            .flatten()
            .map(String::as_str)
            .collect();
        for part in parts.items {
            let Some(name) = part.metadata.name.clone() else {
                continue;
            };
            let ours = self.is_part_name(&name) && self.foreign(&part, PART_TYPE).is_none();
            if ours && !named.contains(name.as_str()) {
                let id = ResourceId::new("v1", "Secret", Some(&self.namespace), &name);
                let _ = self
                    .cluster
                    .call("delete", &id, || async {
                        api.delete(&name, &DeleteParams::default()).await
                    })
                    .await;
            }
        }
    }

    fn check_fence(&self) -> Result<(), StateError> {
        match &*self.fence.lock().expect("never poisoned") {
            Some(fence) => fence.check(),
            None => Ok(()),
        }
    }

    async fn try_lock(&self, command: &str) -> Result<StateLock, StateError> {
        let observed = &self.observed;
        let stale = |version: &str| {
            let mut seen = observed.lock().expect("never poisoned");
            match &*seen {
                Some((v, since)) if v == version => {
                    since.elapsed() > super::lease::LEASE_DURATION + Duration::from_secs(1)
                }
                _ => {
                    *seen = Some((version.to_string(), Instant::now()));
                    false
                }
            }
        };
        let (found, _) =
            LeaseLock::observe(&self.cluster, &self.namespace, &self.stack, stale).await?;
        let location = format!(
            "Lease {}/{}",
            self.namespace,
            super::lease::lease_name(self.cluster.identity(), &self.stack)
        );
        let locked = |holder: Option<Box<LockHolder>>| StateError::Locked {
            stack: self.stack.clone(),
            location: location.clone(),
            holder,
            waited: None,
            kind: LockKind::Lease {
                renew_every: super::lease::RENEW_EVERY,
                duration: super::lease::LEASE_DURATION,
            },
        };
        let lease = match found {
            Observed::Held(holder) => return Err(locked(holder)),
            Observed::Free(lease) => lease,
        };
        let holder = LockHolder::current(command);
        match LeaseLock::take(&self.cluster, &self.namespace, &self.stack, lease, holder).await? {
            Some(lock) => {
                *self.fence.lock().expect("never poisoned") = Some(lock.fence());
                *self.writer.lock().expect("never poisoned") = Some(Writer::current(command));
                Ok(StateLock::from(lock))
            }
            // Another run took it between the read and the write: say who.
            None => {
                match LeaseLock::observe(&self.cluster, &self.namespace, &self.stack, |_| false)
                    .await?
                    .0
                {
                    Observed::Held(holder) => Err(locked(holder)),
                    Observed::Free(_) => Err(locked(None)),
                }
            }
        }
    }

    /// The head's resourceVersion if it now holds exactly `revision`:
    /// after a write whose answer was lost, the retry's conflict may be
    /// with the write itself.
    async fn landed(&self, revision: &StoredRevision) -> Option<String> {
        let head = self.read_index().await.ok()?;
        let current = head.index.revisions.first()?;
        (current.serial == revision.serial && current.sha256 == revision.sha256)
            .then_some(head.resource_version)
            .flatten()
    }

    async fn write_head(
        &self,
        head: &Head,
        index: &Index,
        data: BTreeMap<String, Vec<u8>>,
    ) -> Result<Secret, ClusterError> {
        let api = self.cluster.typed::<Secret>(&self.namespace);
        let mut data = data;
        data.insert(
            INDEX_KEY.to_string(),
            serde_json::to_vec(index).expect("indexes serialize"),
        );
        let mut secret = self.secret(
            self.head_name(),
            HEAD_TYPE,
            data,
            head.resource_version.clone(),
        );
        if let Some(current) = index.revisions.first() {
            secret.metadata.annotations = Some(BTreeMap::from([(
                self.cluster.identity().key("serial"),
                current.serial.to_string(),
            )]));
        }
        let id = self.head_id();
        let params = PostParams::default();
        match &head.resource_version {
            Some(_) => {
                self.cluster
                    .call("write", &id, || async {
                        api.replace(&self.head_name(), &params, &secret).await
                    })
                    .await
            }
            None => {
                self.cluster
                    .call("write", &id, || async {
                        api.create(&params, &secret).await
                    })
                    .await
            }
        }
    }
}

#[async_trait::async_trait]
impl StateStore for KubeStore {
    async fn load(&self) -> Result<State, StateError> {
        let head = self.read_head().await?;
        Ok(head.current.unwrap_or_else(|| State::empty(&self.stack)))
    }

    async fn save(&self, state: &mut State, _: WritePermit) -> Result<(), StateError> {
        self.check_fence()?;
        if state.stack != self.stack {
            return Err(StateError::WrongStack {
                location: self.describe(),
                expected: self.stack.clone(),
                found: state.stack.clone(),
            });
        }
        let cached = self.head.lock().expect("never poisoned").clone();
        let head = match cached {
            Some(head) => head,
            None => self.read_head().await?,
        };
        let stored_serial = head.current.as_ref().map_or(0, |s| s.serial);
        if stored_serial > state.serial {
            return Err(StateError::Conflict {
                location: self.describe(),
                on_disk: stored_serial,
                loaded: state.serial,
            });
        }

        self.commit(state, &head).await
    }

    async fn restore(&self, state: &mut State, _: WritePermit) -> Result<(), StateError> {
        self.check_fence()?;
        // The damaged head's kept revisions stay named in the index; only
        // the current one is replaced. A head whose index does not read is
        // replaced whole.
        let head = match self.read_index().await {
            Ok(head) => head,
            Err(StateError::Corrupt { .. }) => {
                let api = self.cluster.typed::<Secret>(&self.namespace);
                let name = self.head_name();
                let found = self
                    .cluster
                    .call("read", &self.head_id(), || async {
                        api.get_opt(&name).await
                    })
                    .await
                    .map_err(|e| StateError::cluster("read the state in", &self.describe(), e))?;
                Head::empty(found.and_then(|s| s.metadata.resource_version))
            }
            Err(e) => return Err(e),
        };
        let newest = head
            .index
            .revisions
            .iter()
            .map(|r| r.serial)
            .max()
            .unwrap_or(0);
        state.serial = state.serial.max(newest);
        self.commit(state, &head).await
    }

    async fn lock(&self, command: &str, wait: Option<Duration>) -> Result<StateLock, StateError> {
        lock_waiting(wait, LOCK_POLL, || self.try_lock(command)).await
    }

    async fn history(&self) -> Result<Vec<Revision>, StateError> {
        let head = self.read_index().await?;
        Ok(head
            .index
            .revisions
            .iter()
            .map(|r| Revision {
                serial: r.serial,
                updated: r.updated.clone(),
                written_by: r.written_by.clone(),
                summary: r.summary.clone(),
                resources: r.resources,
                operation: r.operation.clone(),
            })
            .collect())
    }

    async fn revision(&self, serial: u64) -> Result<State, StateError> {
        let head = self.read_index().await?;
        let revision = head
            .index
            .revisions
            .iter()
            .find(|r| r.serial == serial)
            .ok_or_else(|| {
                let mut kept: Vec<u64> = head.index.revisions.iter().map(|r| r.serial).collect();
                kept.sort_unstable();
                StateError::RevisionNotKept {
                    location: self.describe(),
                    serial,
                    kept,
                }
            })?;
        self.read_revision(&head, revision).await
    }

    async fn remove(&self, lock: StateLock) -> Result<Vec<String>, StateError> {
        let lease = match lock {
            StateLock(Held::Lease(lease)) => *lease,
            lock => {
                lock.release().await;
                return Err(StateError::LockLost {
                    stack: self.stack.clone(),
                    location: self.describe(),
                    reason: "the lock it was given is not this store's".to_string(),
                });
            }
        };
        let mut removed = Vec::new();
        let deleted = self.remove_secrets(&mut removed).await;
        // The lease goes whatever became of the Secrets: a removal that
        // failed half-way is run again, and takes the lock anew.
        let lease = match deleted {
            Ok(()) => lease.delete().await,
            Err(e) => {
                lease.release().await;
                return Err(e);
            }
        };
        removed.push(lease?);
        *self.head.lock().expect("never poisoned") = None;
        Ok(removed)
    }

    fn location(&self) -> String {
        self.describe()
    }

    fn check_lock(&self) -> Result<(), StateError> {
        self.check_fence()
    }
}

impl KubeStore {
    /// Deletes the head, then the part Secrets of this stack, each only if
    /// it is provably this store's (its type and labels, as a read checks
    /// them; a part also by the shape of its name), and each on the
    /// condition that it is the object just read.
    async fn remove_secrets(&self, removed: &mut Vec<String>) -> Result<(), StateError> {
        let api = self.cluster.typed::<Secret>(&self.namespace);
        let name = self.head_name();
        let id = self.head_id();
        self.check_fence()?;
        let found = self
            .cluster
            .call("read", &id, || async { api.get_opt(&name).await })
            .await
            .map_err(|e| StateError::cluster("read the state in", &self.describe(), e))?;
        if let Some(head) = found {
            if let Some(reason) = self.foreign(&head, HEAD_TYPE) {
                return Err(StateError::Foreign {
                    location: self.describe(),
                    stack: self.stack.clone(),
                    reason,
                });
            }
            // How many revisions go with it, for the message; a head whose
            // index does not read is removed all the same.
            let revisions = self
                .parse_index(&secret_data(head.data.clone()))
                .map(|index| index.revisions.len())
                .ok();
            self.delete_secret(&name, &head).await?;
            removed.push(match revisions {
                Some(n) => format!("{} (the state, {n} revision(s) kept)", self.describe()),
                None => format!("{} (the state)", self.describe()),
            });
        }

        let params = ListParams::default().labels(&format!(
            "{}={}",
            self.cluster.identity().key(PART_OF_LABEL),
            self.stack
        ));
        let list_id = ResourceId::new("v1", "Secret", Some(&self.namespace), "*");
        let parts = self
            .cluster
            .call("list", &list_id, || async { api.list(&params).await })
            .await
            .map_err(|e| StateError::cluster("list the state's parts in", &self.namespace, e))?;
        for part in parts.items {
            let Some(name) = part.metadata.name.clone() else {
                continue;
            };
            if self.is_part_name(&name) && self.foreign(&part, PART_TYPE).is_none() {
                self.delete_secret(&name, &part).await?;
                removed.push(format!(
                    "Secret {}/{name} (a part of the state)",
                    self.namespace
                ));
            }
        }
        Ok(())
    }

    /// Deletes `secret`, named `name`, on the condition that it is still
    /// the object read (same uid and resourceVersion).
    async fn delete_secret(&self, name: &str, secret: &Secret) -> Result<(), StateError> {
        let api = self.cluster.typed::<Secret>(&self.namespace);
        let id = ResourceId::new("v1", "Secret", Some(&self.namespace), name);
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: secret.metadata.uid.clone(),
                resource_version: secret.metadata.resource_version.clone(),
            }),
            ..DeleteParams::default()
        };
        self.check_fence()?;
        match self
            .cluster
            .call("delete", &id, || async { api.delete(name, &params).await })
            .await
        {
            Ok(_) => Ok(()),
            // Gone already: a retried request whose first answer was lost.
            Err(ClusterError::Api { status, .. }) if status.code == 404 => Ok(()),
            // A 409 (another writer changed it since it was read) too: it
            // is left as it is, and says why.
            Err(e) => Err(StateError::cluster("delete", &id.to_string(), e)),
        }
    }
}

impl KubeStore {
    /// Stamps `state` as the next serial and writes it over `head`; on
    /// failure `state` is as it was.
    async fn commit(&self, state: &mut State, head: &Head) -> Result<(), StateError> {
        let writer = self.writer.lock().expect("never poisoned").clone();
        let before = stamp(state, writer.as_ref(), &self.describe())?;
        let result = self.write(state, head).await;
        if result.is_err() {
            before.restore(state);
        }
        result
    }

    /// Writes the stamped `state` as the head's new current revision.
    async fn write(&self, state: &State, head: &Head) -> Result<(), StateError> {
        let document = encode(state)?;
        let sha256 = hex(&Sha256::digest(&document));
        let mut compressed = Vec::new();
        {
            let mut encoder = GzEncoder::new(&mut compressed, Compression::default());
            encoder
                .write_all(&document)
                .expect("writing to memory cannot fail");
            encoder.finish().expect("writing to memory cannot fail");
        }
        let inline = compressed.len() <= INLINE_LIMIT;
        let parts = if inline {
            None
        } else {
            self.check_fence()?;
            Some(self.write_parts(state.serial, &sha256, &compressed).await?)
        };
        // A run's earlier writes are its journal, not revisions: only the
        // last write of each run is kept, told against the run before.
        let same_run = head.current.as_ref().is_some_and(|c| c.same_run(state));
        let base = {
            let mut base = self.base.lock().expect("never poisoned");
            let run = state.operation.as_ref().map(|o| o.id);
            match (&*base, run) {
                (Some((id, from)), Some(run)) if *id == run && same_run => from.clone(),
                _ => {
                    if let Some(run) = run {
                        *base = Some((run, head.current.clone()));
                    }
                    head.current.clone()
                }
            }
        };
        let revision = StoredRevision {
            serial: state.serial,
            updated: state.updated.clone(),
            written_by: state.written_by.clone(),
            sha256,
            size: document.len(),
            resources: state.resources.len(),
            summary: change_summary(base.as_ref(), state),
            operation: state.operation.clone(),
            parts,
        };

        // The new revision first, then as much history as fits.
        let mut data = BTreeMap::new();
        if inline {
            data.insert(inline_key(state.serial), compressed);
        }
        let mut index = Index::empty();
        index.revisions.push(revision.clone());
        let mut used: usize = data.values().map(Vec::len).sum();
        let earlier = head.index.revisions.iter().skip(usize::from(same_run));
        for old in earlier.take(self.keep) {
            let key = inline_key(old.serial);
            match (&old.parts, head.data.get(&key)) {
                (Some(_), _) => index.revisions.push(old.clone()),
                (None, Some(bytes)) if used + bytes.len() + 1024 <= HEAD_BUDGET => {
                    used += bytes.len();
                    data.insert(key, bytes.clone());
                    index.revisions.push(old.clone());
                }
                _ => break,
            }
        }

        self.check_fence()?;
        // Never asked: a state-write pause ends only on SIGUSR1.
        fault::reached(Point::StateWrite, &crate::Cancel::default()).await;
        self.check_fence()?;
        let result = self.write_head(head, &index, data.clone()).await;
        let landed = match &result {
            Err(ClusterError::Api { status, .. }) if status.code == 409 => {
                self.landed(&revision).await
            }
            _ => None,
        };
        let written = match result {
            Ok(secret) => secret.metadata.resource_version,
            // The write went through and its answer was lost.
            Err(_) if landed.is_some() => landed,
            Err(ClusterError::Api { status, .. }) if status.code == 409 => {
                let on_disk = self
                    .read_head()
                    .await
                    .ok()
                    .and_then(|h| h.current.map(|s| s.serial))
                    .unwrap_or(0);
                return Err(StateError::Conflict {
                    location: self.describe(),
                    on_disk,
                    loaded: state.serial - 1,
                });
            }
            Err(ClusterError::Api { status, .. })
                if status.code == 404 && status.message.contains("namespaces") =>
            {
                return Err(StateError::BackendNamespaceMissing {
                    namespace: self.namespace.clone(),
                });
            }
            Err(e) => {
                return Err(StateError::cluster(
                    "write the state to",
                    &self.describe(),
                    e,
                ));
            }
        };

        let had_parts =
            head.index.revisions.iter().any(|r| r.parts.is_some()) || revision.parts.is_some();
        *self.head.lock().expect("never poisoned") = Some(Head {
            resource_version: written,
            index: index.clone(),
            data,
            current: Some(state.clone()),
        });
        if had_parts {
            self.collect_parts(&index).await;
        }
        Ok(())
    }
}

/// Reads the index of head Secret `head` in `namespace` (described as
/// `location` in errors) from the head's data.
fn parse_index(
    location: &str,
    namespace: &str,
    head: &str,
    data: &BTreeMap<String, Vec<u8>>,
) -> Result<Index, StateError> {
    let corrupt = |reason: String| StateError::Corrupt {
        location: location.to_string(),
        last_good: None,
        reason,
        recovery: Box::new(Recovery::Index {
            namespace: namespace.to_string(),
            secret: head.to_string(),
        }),
    };
    let bytes = data
        .get(INDEX_KEY)
        .ok_or_else(|| corrupt(format!("it has no `{INDEX_KEY}`")))?;
    let index: Index = serde_json::from_slice(bytes)
        .map_err(|e| corrupt(format!("its `{INDEX_KEY}` does not parse: {e}")))?;
    if index.format > INDEX_FORMAT || index.format == 0 {
        return Err(StateError::NewerVersion {
            location: location.to_string(),
            found: u64::from(index.format),
            supported: INDEX_FORMAT,
        });
    }
    Ok(index)
}

/// The state of `stack` in one revision, from its compressed document
/// (inline or its parts joined), checked against the index's size, hash
/// and serial.
fn decode_revision(
    location: &str,
    stack: &str,
    compressed: &[u8],
    revision: &StoredRevision,
) -> Result<State, StateError> {
    let corrupt = |reason: String| StateError::Corrupt {
        location: location.to_string(),
        last_good: None,
        reason,
        recovery: Box::new(Recovery::Unknown),
    };
    // The index's size is only a hint: an edited index could ask for more
    // memory than there is, so no more than a head's worth is reserved.
    let mut document = Vec::with_capacity(revision.size.min(HEAD_BUDGET));
    // A few kilobytes of gzip can expand to gigabytes, so reading stops one
    // byte past the size the index gives (a document is written with its
    // exact size) and past a bound no state reaches.
    let limit = revision.size.min(DOCUMENT_LIMIT);
    GzDecoder::new(compressed)
        .take(u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut document)
        .map_err(|e| corrupt(format!("it does not decompress: {e}")))?;
    if document.len() > limit {
        return Err(corrupt(format!(
            "it decompresses to more than {limit} bytes{}",
            if limit == revision.size {
                ", the size the index gives"
            } else {
                ", more than any state holds"
            }
        )));
    }
    let digest = hex(&Sha256::digest(&document));
    if digest != revision.sha256 {
        return Err(corrupt(format!(
            "its checksum does not match (stored {}, computed {digest})",
            short(&revision.sha256)
        )));
    }
    let state = parse(location, &document, stack)?;
    if state.serial != revision.serial {
        return Err(corrupt(format!(
            "it holds serial {} where the index says {}",
            state.serial, revision.serial
        )));
    }
    Ok(state)
}

/// What a read finds in a head Secret's data, decoded without a cluster.
#[doc(hidden)]
#[derive(Debug)]
pub struct DecodedHead {
    /// The index as this build writes it back.
    pub index: Vec<u8>,
    /// Each revision the index lists, newest first: its serial and what
    /// reading it gives.
    pub revisions: Vec<(u64, Result<State, StateError>)>,
}

/// Decodes the head Secret of `stack` in `namespace` as a read does:
/// `head` is the head's data, `parts` the `part` value of each part
/// Secret by name. The seam by which the fuzz targets reach the decoding
/// a cluster would otherwise stand in front of.
#[doc(hidden)]
pub fn decode_head(
    identity: &Identity,
    namespace: &str,
    stack: &str,
    head: &BTreeMap<String, Vec<u8>>,
    parts: &BTreeMap<String, Vec<u8>>,
) -> Result<DecodedHead, StateError> {
    let head_name = head_name(identity, stack);
    let describe = format!("Secret {namespace}/{head_name}");
    let index = parse_index(&describe, namespace, &head_name, head)?;
    let revisions = index
        .revisions
        .iter()
        .map(|revision| {
            let location = format!("revision {} in {describe}", revision.serial);
            let compressed = match &revision.parts {
                None => {
                    let key = inline_key(revision.serial);
                    head.get(&key)
                        .cloned()
                        .ok_or_else(|| format!("the head has no `{key}`"))
                }
                Some(names) => names
                    .iter()
                    .map(|name| {
                        parts
                            .get(name)
                            .ok_or_else(|| format!("its part Secret {name} is missing"))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(|chunks| chunks.into_iter().flatten().copied().collect()),
            };
            let state = match compressed {
                Ok(bytes) => decode_revision(&location, stack, &bytes, revision),
                Err(reason) => Err(StateError::Corrupt {
                    location,
                    last_good: None,
                    reason,
                    recovery: Box::new(Recovery::Unknown),
                }),
            };
            (revision.serial, state)
        })
        .collect();
    Ok(DecodedHead {
        index: serde_json::to_vec(&index).expect("an index serializes"),
        revisions,
    })
}

fn secret_data(data: Option<BTreeMap<String, ByteString>>) -> BTreeMap<String, Vec<u8>> {
    data.unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.0))
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The first 12 characters of a hash, for messages. Characters, not bytes:
/// the index is read from a Secret anyone with access could have edited.
fn short(sha256: &str) -> &str {
    sha256
        .char_indices()
        .nth(12)
        .map_or(sha256, |(end, _)| &sha256[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_stack() {
        assert_eq!(
            head_name(&Identity::new("echo-iac"), "dev"),
            "echo-iac-state-dev"
        );
        assert_eq!(inline_key(7), "state.7.gz");
        assert_eq!(short("0123456789abcdef"), "0123456789ab");
    }

    fn revision(sha256: &str, size: usize) -> StoredRevision {
        StoredRevision {
            serial: 1,
            updated: None,
            written_by: None,
            sha256: sha256.into(),
            size,
            resources: 0,
            summary: String::new(),
            operation: None,
            parts: None,
        }
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn an_edited_hash_that_is_not_hex_is_reported_not_a_panic() {
        let compressed = gzip(b"{}");
        let err = decode_revision(
            "r",
            "dev",
            &compressed,
            &revision("\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}x\u{20ac}z", 2),
        )
        .unwrap_err();
        assert!(err.to_string().contains("checksum does not match"), "{err}");
        assert_eq!(short("ééééé€x"), "ééééé€x");
        assert_eq!(short("éééééééééééééé"), "éééééééééééé");
    }

    #[test]
    fn an_edited_size_reserves_no_more_than_a_head_holds() {
        let document = br#"{"version": 3, "stack": "dev", "serial": 1}"#;
        let sha256 = hex(&Sha256::digest(document));
        let state =
            decode_revision("r", "dev", &gzip(document), &revision(&sha256, usize::MAX)).unwrap();
        assert_eq!(state.serial, 1);
    }

    #[test]
    fn a_revision_that_decompresses_past_its_size_stops_there() {
        // 64 MiB of zeros compress to about 64 KiB.
        let bomb = gzip(&vec![0u8; 64 * 1024 * 1024]);
        assert!(bomb.len() < 128 * 1024);
        let err = decode_revision("r", "dev", &bomb, &revision("ab", 100)).unwrap_err();
        assert!(
            err.to_string()
                .contains("decompresses to more than 100 bytes, the size the index gives"),
            "{err}"
        );
        let err = decode_revision("r", "dev", &bomb, &revision("ab", usize::MAX)).unwrap_err();
        assert!(err.to_string().contains("checksum does not match"), "{err}");
    }

    #[test]
    fn index_round_trips_and_rejects_unknown_fields() {
        let index = Index {
            format: INDEX_FORMAT,
            revisions: vec![StoredRevision {
                serial: 3,
                updated: Some("2026-01-01T00:00:00Z".into()),
                written_by: None,
                sha256: "ab".into(),
                size: 10,
                resources: 1,
                summary: "1 added".into(),
                operation: None,
                parts: Some(vec!["p-0".into()]),
            }],
        };
        let text = serde_json::to_string(&index).unwrap();
        assert_eq!(serde_json::from_str::<Index>(&text).unwrap(), index);
        assert!(serde_json::from_str::<Index>(r#"{"format":2,"revisions":[],"x":1}"#).is_err());
    }
}
