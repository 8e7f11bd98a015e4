//! What the engine's own tests run against instead of a cluster: an
//! in-process API server ([`FakeApi`]), objects to feed it, and a state
//! store that records every write.
//!
//! The engine's tests of planning, applying, state and locking live in the
//! `tests_*` files here, one per area; the fake's own tests in `fake_tests`.

use std::sync::Mutex;
use std::time::Duration;

use serde_json::{Value, json};

use crate::state::{Revision, State, StateError, StateLock, StateStore};
use crate::{DesiredResource, FIELD_MANAGER, MANAGED_BY_LABEL, ResourceId, STACK_LABEL};

mod fake;

pub use fake::{Answer, FakeApi, Fault, Logged, Verb};

#[cfg(test)]
mod fake_tests;
#[cfg(test)]
mod tests_apply;
#[cfg(test)]
mod tests_nodeports;
#[cfg(test)]
mod tests_planner;
#[cfg(test)]
mod tests_state;

/// The stack every fixture belongs to.
pub const STACK: &str = "dev";

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
            "spec": {"containers": [{"name": "web", "image": "nginx:alpine"}]},
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

    async fn save(&self, state: &mut State) -> Result<(), StateError> {
        self.inner.save(state).await?;
        self.saves.lock().expect("never poisoned").push(Saved {
            state: state.clone(),
            after_requests: self.fake.request_count(),
        });
        Ok(())
    }

    async fn restore(&self, state: &mut State) -> Result<(), StateError> {
        self.inner.restore(state).await
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

    fn location(&self) -> String {
        self.inner.location()
    }

    fn check_lock(&self) -> Result<(), StateError> {
        self.inner.check_lock()
    }
}
