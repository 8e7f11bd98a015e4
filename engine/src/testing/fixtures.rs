//! The engine's own test fixtures: a program that is not echo-iac, objects
//! to feed the fake API server, and a state store that records every write.

pub(crate) use std::sync::Mutex;

pub(crate) use crate::Cancel;
pub(crate) use std::time::Duration;

pub(crate) use serde_json::{Value, json};

pub(crate) use crate::apply::{self, ApplyOptions, Event, Journal};
pub(crate) use crate::cluster::Cluster;
pub(crate) use crate::planner::{self, PlanOptions};
pub(crate) use crate::state::{
    LocalStore, Locked, Revision, State, StateError, StateLock, StateStore, WritePermit,
};
pub(crate) use crate::untracked::DeleteUntracked;
pub(crate) use crate::{DesiredResource, EngineError, Identity, Plan, ResourceId};

pub(crate) use super::FakeApi;

/// The program the tests act as: not echo-iac, so that a name the engine
/// took from anywhere but its [`Identity`] shows up as a failure.
pub const PROGRAM: &str = "shop-iac";
/// Its field manager and stack label, spelled out as a reader of the
/// cluster sees them.
pub const FIELD_MANAGER: &str = "shop-iac";
pub const STACK_LABEL: &str = "shop-iac.io/stack";
pub use crate::MANAGED_BY_LABEL;

/// The stack every fixture belongs to.
pub const STACK: &str = "dev";

pub fn identity() -> Identity {
    Identity::new(PROGRAM)
}

pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// The labels `up` puts on what [`STACK`] manages.
pub fn stack_labels() -> Value {
    json!({MANAGED_BY_LABEL: FIELD_MANAGER, STACK_LABEL: STACK})
}

/// A ConfigMap of [`STACK`] holding `data`.
pub fn config_map(ns: &str, name: &str, data: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"namespace": ns, "name": name, "labels": stack_labels()},
        "data": data})
}

/// A Deployment of [`STACK`] whose pods carry `app: <name>`.
pub fn deployment(ns: &str, name: &str, replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"namespace": ns, "name": name, "labels": stack_labels()},
    "spec": {
        "replicas": replicas,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "web", "image": "registry.example/web:1.0"}]},
        },
    }})
}

/// A Service of [`STACK`], of type NodePort when `node_port` is given.
pub fn service(ns: &str, name: &str, node_port: Option<i64>) -> Value {
    let mut port = json!({"port": 80, "targetPort": 80, "protocol": "TCP"});
    let mut spec = json!({"selector": {"app": name}, "type": "ClusterIP"});
    if let Some(node_port) = node_port {
        port["nodePort"] = json!(node_port);
        spec["type"] = json!("NodePort");
    }
    spec["ports"] = json!([port]);
    json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"namespace": ns, "name": name, "labels": stack_labels()},
        "spec": spec})
}

pub fn id_of(object: &Value) -> ResourceId {
    ResourceId::of(object).expect("fixtures carry their identity")
}

/// `object`, depending on `depends_on`.
pub fn desired(object: Value, depends_on: &[&Value]) -> DesiredResource {
    DesiredResource {
        id: id_of(&object),
        depends_on: depends_on.iter().map(|o| id_of(o)).collect(),
        options: Default::default(),
        object,
    }
}

/// One write the [`Recorder`] passed on.
#[derive(Clone, Debug)]
pub struct Saved {
    pub state: State,
    /// How many requests the fake had answered when the write was made,
    /// which places it among them.
    pub after_requests: usize,
}

/// A state store that passes everything to `inner` and records each
/// successful save with where it fell among the fake's requests.
pub struct Recorder<S> {
    pub inner: S,
    fake: FakeApi,
    saves: Mutex<Vec<Saved>>,
}

impl<S> Recorder<S> {
    pub fn new(inner: S, fake: &FakeApi) -> Self {
        Recorder {
            inner,
            fake: fake.clone(),
            saves: Mutex::new(Vec::new()),
        }
    }

    pub fn saves(&self) -> Vec<Saved> {
        self.saves.lock().expect("never poisoned").clone()
    }
}

#[async_trait::async_trait]
impl<S: StateStore> StateStore for Recorder<S> {
    async fn load(&self) -> Result<State, StateError> {
        self.inner.load().await
    }

    async fn save(&self, state: &mut State, permit: WritePermit) -> Result<(), StateError> {
        self.inner.save(state, permit).await?;
        self.saves.lock().expect("never poisoned").push(Saved {
            state: state.clone(),
            after_requests: self.fake.request_count(),
        });
        Ok(())
    }

    async fn restore(&self, state: &mut State, permit: WritePermit) -> Result<(), StateError> {
        self.inner.restore(state, permit).await
    }

    async fn lock(&self, command: &str, wait: Option<Duration>) -> Result<StateLock, StateError> {
        self.inner.lock(command, wait).await
    }

    async fn history(&self) -> Result<Vec<Revision>, StateError> {
        self.inner.history().await
    }

    async fn revision(&self, serial: u64) -> Result<State, StateError> {
        self.inner.revision(serial).await
    }

    async fn remove(&self, lock: StateLock) -> Result<Vec<String>, StateError> {
        self.inner.remove(lock).await
    }

    fn location(&self) -> String {
        self.inner.location()
    }

    fn check_lock(&self) -> Result<(), StateError> {
        self.inner.check_lock()
    }
}

/// A state store that keeps the state's document in memory, for tests
/// that set up hundreds of stacks, where the file store's two syncs of the
/// disk per write would be most of their time. Each write is encoded and
/// each load read back as any store does, and refused as the file store's
/// is when the stored serial is ahead; only the lock is a file.
pub struct MemoryStore {
    document: Mutex<Option<Vec<u8>>>,
    locks: LocalStore,
}

impl MemoryStore {
    /// A store whose lock file is in `dir`.
    pub fn new(dir: &std::path::Path) -> Self {
        MemoryStore {
            document: Mutex::new(None),
            locks: LocalStore::new(dir.to_path_buf(), STACK, &identity()),
        }
    }

    fn write(&self, state: &mut State, check_serial: bool) -> Result<(), StateError> {
        let mut document = self.document.lock().expect("never poisoned");
        if check_serial && let Some(bytes) = &*document {
            let stored = crate::state::parse_document(&self.location(), bytes, STACK)?;
            if stored.serial > state.serial {
                return Err(StateError::Conflict {
                    location: self.location(),
                    on_disk: stored.serial,
                    loaded: state.serial,
                });
            }
        }
        let before = crate::state::stamp(state, None, &self.location())?;
        match crate::state::encode_document(state) {
            Ok(bytes) => {
                *document = Some(bytes);
                Ok(())
            }
            Err(e) => {
                before.restore(state);
                Err(e)
            }
        }
    }
}

#[async_trait::async_trait]
impl StateStore for MemoryStore {
    async fn load(&self) -> Result<State, StateError> {
        match &*self.document.lock().expect("never poisoned") {
            Some(bytes) => crate::state::parse_document(&self.location(), bytes, STACK),
            None => Ok(State::empty(STACK)),
        }
    }

    async fn save(&self, state: &mut State, _: WritePermit) -> Result<(), StateError> {
        self.write(state, true)
    }

    async fn restore(&self, state: &mut State, _: WritePermit) -> Result<(), StateError> {
        self.write(state, false)
    }

    async fn lock(&self, command: &str, wait: Option<Duration>) -> Result<StateLock, StateError> {
        self.locks.lock(command, wait).await
    }

    /// Only the current revision: no history is kept.
    async fn history(&self) -> Result<Vec<Revision>, StateError> {
        let state = self.load().await?;
        Ok(vec![Revision::of(&state, None)])
    }

    async fn revision(&self, serial: u64) -> Result<State, StateError> {
        let state = self.load().await?;
        if state.serial == serial {
            return Ok(state);
        }
        Err(StateError::io(
            "read",
            std::path::Path::new("memory"),
            std::io::Error::new(std::io::ErrorKind::NotFound, "no history is kept"),
        ))
    }

    async fn remove(&self, lock: StateLock) -> Result<Vec<String>, StateError> {
        *self.document.lock().expect("never poisoned") = None;
        self.locks.remove(lock).await
    }

    fn location(&self) -> String {
        "memory".to_string()
    }
}

/// A stack under test: the fake cluster, holding namespace `ns`, and a
/// state whose writes are recorded: a file state in a temporary folder,
/// or (`Stack::in_memory`) a [`MemoryStore`].
pub struct Stack<S = LocalStore> {
    pub fake: FakeApi,
    pub cluster: Cluster,
    pub store: Recorder<S>,
    pub(super) _dir: tempfile::TempDir,
}

/// How long applies wait for deleted objects to be gone.
pub const TIMEOUT: Duration = Duration::from_secs(30);

impl Default for Stack {
    fn default() -> Self {
        Stack::new()
    }
}

impl Stack {
    pub fn new() -> Self {
        Stack::with_store(|dir| LocalStore::new(dir.to_path_buf(), STACK, &identity()))
    }
}

impl Stack<MemoryStore> {
    pub fn in_memory() -> Self {
        Stack::with_store(MemoryStore::new)
    }
}

impl<S: StateStore> Stack<S> {
    fn with_store(store: impl FnOnce(&std::path::Path) -> S) -> Self {
        let fake = FakeApi::new();
        fake.insert(namespace("ns"));
        let dir = tempfile::tempdir().expect("a temporary folder");
        let store = Recorder::new(store(dir.path()), &fake);
        Stack {
            cluster: fake.cluster(identity()),
            fake,
            store,
            _dir: dir,
        }
    }

    pub async fn state(&self) -> State {
        self.store.load().await.expect("the state loads")
    }

    /// Writes `state` as the stored state.
    pub async fn set_state(&self, mut state: State) {
        state.serial = self.state().await.serial;
        self.store
            .inner
            .save(&mut state, WritePermit::HELD)
            .await
            .expect("saved");
    }

    /// Plans `up` with proofs read from the first provable object on, so
    /// that the small stacks of these tests exercise them.
    pub async fn plan(&self, desired: &[DesiredResource]) -> Plan {
        let options = PlanOptions {
            prove_from: 1,
            ..PlanOptions::default()
        };
        self.plan_with(desired, options).await.expect("a plan")
    }

    pub async fn plan_with(
        &self,
        desired: &[DesiredResource],
        options: PlanOptions,
    ) -> Result<Plan, EngineError> {
        let state = self.state().await;
        let options = PlanOptions {
            concurrency: 4,
            ..options
        };
        planner::plan_up(&self.cluster, STACK, desired, &state, &options).await
    }

    pub async fn plan_destroy(&self, desired: &[DesiredResource]) -> Plan {
        self.plan_destroy_with(desired, DeleteUntracked::None).await
    }

    /// Plans a destroy that deletes the untracked objects `delete_untracked`
    /// selects.
    pub async fn plan_destroy_with(
        &self,
        desired: &[DesiredResource],
        delete_untracked: DeleteUntracked,
    ) -> Plan {
        self.plan_destroy_options(
            desired,
            planner::DestroyPlanOptions {
                delete_untracked,
                ..planner::DestroyPlanOptions::default()
            },
        )
        .await
    }

    /// Plans a destroy with `options` (four objects at a time).
    pub async fn plan_destroy_options(
        &self,
        desired: &[DesiredResource],
        options: planner::DestroyPlanOptions,
    ) -> Plan {
        let state = self.state().await;
        let options = planner::DestroyPlanOptions {
            concurrency: 4,
            ..options
        };
        planner::plan_destroy(&self.cluster, STACK, desired, &state, &options)
            .await
            .expect("a destroy plan")
    }

    /// Carries out `plan`; returns the events, as `started create
    /// ConfigMap ns/a`, and the result.
    pub async fn apply(
        &self,
        plan: &Plan,
        desired: &[DesiredResource],
    ) -> (Vec<String>, Result<(), EngineError>) {
        self.apply_cancelled(plan, desired, &Cancel::default())
            .await
    }

    pub async fn apply_cancelled(
        &self,
        plan: &Plan,
        desired: &[DesiredResource],
        cancel: &Cancel,
    ) -> (Vec<String>, Result<(), EngineError>) {
        let locked = self.locked().await;
        let journal = Journal::new(&locked, self.state().await);
        let options = ApplyOptions {
            force_conflicts: false,
            concurrency: 4,
            timeout: TIMEOUT,
            cancel,
        };
        let events = Mutex::new(Vec::new());
        let on_event = |event: Event<'_>| {
            let line = match event {
                Event::Started { op, id } => format!("started {} {id}", op.as_str()),
                Event::Finished { op, id, .. } => format!("finished {} {id}", op.as_str()),
                Event::Note { id, message } => format!("note {id}: {message}"),
            };
            events.lock().expect("never poisoned").push(line);
        };
        let result =
            apply::apply_plan(&self.cluster, plan, desired, &journal, &options, &on_event).await;
        (events.into_inner().expect("never poisoned"), result)
    }

    /// The store with the stack's lock held, as a run holds it.
    pub async fn locked(&self) -> Locked<'_> {
        Locked::acquire(&self.store, "test", None)
            .await
            .expect("the stack is not locked")
    }

    /// Plans and applies `desired`, failing the test on any error.
    pub async fn up(&self, desired: &[DesiredResource]) -> Plan {
        let plan = self.plan(desired).await;
        assert!(plan.blocked().next().is_none(), "blocked: {:?}", plan.steps);
        let (_, result) = self.apply(&plan, desired).await;
        result.expect("the apply succeeds");
        plan
    }
}

/// The ops of a plan as `create ConfigMap ns/a`.
pub fn ops(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .map(|s| format!("{} {}", s.op.as_str(), s.id))
        .collect()
}
