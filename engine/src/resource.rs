//! Identity of a Kubernetes object and the desired objects a program declares.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ready::WaitRule;

/// Identifies one Kubernetes object. Ordering is by kind rank, then name, so
/// sorted lists read in dependency order.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceId {
    /// `v1`, `apps/v1`, `example.com/v1alpha1`.
    pub api_version: String,
    /// `ConfigMap`, `Deployment`.
    pub kind: String,
    /// `None` for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl ResourceId {
    /// The identity of an object of `kind` in `api_version`; `namespace` is
    /// `None` for a cluster-scoped kind.
    pub fn new(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Self {
        ResourceId {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: namespace.map(str::to_string),
            name: name.to_string(),
        }
    }

    /// Reads the identity from an object's `apiVersion`, `kind` and metadata.
    pub fn of(object: &Value) -> Option<Self> {
        let meta = object.get("metadata")?;
        Some(ResourceId {
            api_version: object.get("apiVersion")?.as_str()?.to_string(),
            kind: object.get("kind")?.as_str()?.to_string(),
            namespace: meta
                .get("namespace")
                .and_then(Value::as_str)
                .map(str::to_string),
            name: meta.get("name")?.as_str()?.to_string(),
        })
    }

    /// `namespace/name`, or `name` for cluster-scoped objects.
    pub fn qualified_name(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.qualified_name())
    }
}

/// One object the program wants to exist, with the objects that must be
/// applied (and ready to be referenced) before it.
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredResource {
    /// Who the object is.
    pub id: ResourceId,
    /// The full object as sent with server-side apply.
    pub object: Value,
    /// What must be applied (and ready) before it, and deleted after it.
    pub depends_on: Vec<ResourceId>,
    /// Whether it is protected or retained (see [`crate::protect`]).
    pub options: ResourceOptions,
}

/// What the program asks of one object beyond applying it (see
/// [`crate::protect`] and [`WaitRule`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResourceOptions {
    /// Never deleted or replaced by any plan.
    pub protect: bool,
    /// Left in the cluster, without this stack's labels, when a plan would
    /// delete it.
    pub retain: bool,
    /// What a wait after applying it waits for, instead of the rules of its
    /// kind: declared with
    /// [`Resources::wait_for`](crate::declare::Resources::wait_for), by kind,
    /// or by the object's `<name>.io/wait-for` annotations.
    pub wait: Option<WaitRule>,
}
