//! Custom resources whose CustomResourceDefinition the same stack declares.
//!
//! Such a resource cannot be previewed with a server dry run before its
//! definition exists (the API server serves no such kind yet), so it is
//! planned from its definition: a create or update that runs after the
//! definition, checked locally. Applying then goes in stages: a definition
//! is applied and waited for (`Established`, and its kinds served by
//! discovery of their group version) before anything of its kinds; and a
//! definition is not deleted while objects of its kinds that the stack does
//! not manage exist.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use crate::Cancel;
use crate::cluster::{Cluster, ClusterError};
use crate::error::EngineError;
use crate::plan::Blocker;
use crate::ready::Poll;
use crate::resource::{DesiredResource, ResourceId};

mod schema;
mod versions;

pub(crate) use versions::update_blocker;

/// The kind of a CustomResourceDefinition object.
pub(crate) const CRD_KIND: &str = "CustomResourceDefinition";

/// A kind a CustomResourceDefinition defines, in one of its versions.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct DefinedKind {
    /// `group/version`.
    pub api_version: String,
    /// The kind, as `spec.names.kind` says.
    pub kind: String,
}

impl DefinedKind {
    /// The kind of the object `id`.
    pub fn of(id: &ResourceId) -> Self {
        DefinedKind {
            api_version: id.api_version.clone(),
            kind: id.kind.clone(),
        }
    }
}

/// What a declared definition says of one of its kinds.
#[derive(Clone, Debug)]
pub(crate) struct Definition {
    /// The definition's name (`widgets.example.com`).
    pub crd: String,
    /// Whether the kind's objects live in namespaces (`spec.scope`).
    pub namespaced: bool,
    /// The version's `openAPIV3Schema`, if it has one.
    pub schema: Option<Value>,
}

/// Whether `id` is a CustomResourceDefinition.
pub(crate) fn is_crd(id: &ResourceId) -> bool {
    id.kind == CRD_KIND && id.api_version.starts_with("apiextensions.k8s.io/")
}

/// The kinds a CustomResourceDefinition object defines, one per version
/// it serves.
pub(crate) fn defined_kinds(crd: &Value) -> Vec<DefinedKind> {
    let spec = &crd["spec"];
    let (Some(group), Some(kind)) = (spec["group"].as_str(), spec["names"]["kind"].as_str()) else {
        return Vec::new();
    };
    spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| v["served"].as_bool() != Some(false))
        .filter_map(|v| v["name"].as_str())
        .map(|version| DefinedKind {
            api_version: format!("{group}/{version}"),
            kind: kind.to_string(),
        })
        .collect()
}

/// The kinds the declared definitions define, with what each says of them.
pub(crate) fn declared_definitions(
    desired: &[DesiredResource],
) -> HashMap<DefinedKind, Definition> {
    let mut found = HashMap::new();
    for d in desired.iter().filter(|d| is_crd(&d.id)) {
        let namespaced = d.object["spec"]["scope"] != "Cluster";
        for kind in defined_kinds(&d.object) {
            let version = kind.api_version.rsplit('/').next().unwrap_or_default();
            let schema = d.object["spec"]["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|v| v["name"] == version)
                .map(|v| v["schema"]["openAPIV3Schema"].clone())
                .filter(Value::is_object);
            found.insert(
                kind,
                Definition {
                    crd: d.id.name.clone(),
                    namespaced,
                    schema,
                },
            );
        }
    }
    found
}

/// The kinds, among those the stack's declared definitions define and its
/// objects use, that the cluster does not serve yet: objects of these
/// kinds are planned locally. One discovery request per such kind.
pub(crate) async fn unserved_kinds(
    cluster: &Cluster,
    desired: &[DesiredResource],
    definitions: &HashMap<DefinedKind, Definition>,
) -> Result<HashSet<DefinedKind>, EngineError> {
    let used: HashSet<DefinedKind> = desired
        .iter()
        .map(|d| DefinedKind {
            api_version: d.id.api_version.clone(),
            kind: d.id.kind.clone(),
        })
        .filter(|k| definitions.contains_key(k))
        .collect();
    let mut unserved = HashSet::new();
    for kind in used {
        match cluster.kind(&kind.api_version, &kind.kind).await {
            Ok(_) => {}
            Err(ClusterError::UnknownKind { .. }) => {
                unserved.insert(kind);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(unserved)
}

/// Why a resource of a kind the cluster does not serve yet is checked
/// here.
pub(crate) fn not_served_yet(kind: &DefinedKind, definition: &Definition) -> String {
    format!(
        "validated locally: its kind {} ({}) does not exist yet; it is applied once its CustomResourceDefinition {} is established",
        kind.kind, kind.api_version, definition.crd
    )
}

/// Why a resource whose definition's schema this plan changes is checked
/// here too: the server's dry run knows only the schema it serves now.
pub(crate) fn schema_changing(kind: &DefinedKind, definition: &Definition) -> String {
    format!(
        "validated locally against the {} schema this plan gives CustomResourceDefinition {}, which is applied first",
        kind.api_version, definition.crd
    )
}

/// The kinds whose schema the plan changes: their definition is live, and
/// the declared schema of their version differs from the live one.
pub(crate) fn schema_changes<'a>(
    definitions: impl IntoIterator<Item = (&'a DefinedKind, &'a Definition)>,
    live_definition: impl Fn(&str) -> Option<&'a Value>,
) -> HashMap<DefinedKind, Definition> {
    definitions
        .into_iter()
        .filter(|(kind, definition)| {
            let Some(live) = live_definition(&definition.crd) else {
                return false;
            };
            let version = kind.api_version.rsplit('/').next().unwrap_or_default();
            let live_schema = live["spec"]["versions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|v| v["name"] == version)
                .map(|v| &v["schema"]["openAPIV3Schema"]);
            live_schema.is_some() && live_schema != definition.schema.as_ref()
        })
        .map(|(k, d)| (k.clone(), d.clone()))
        .collect()
}

/// A custom resource checked against its definition as the server would
/// check it.
pub(crate) struct LocalPlan {
    /// What the server would store: unknown fields pruned, defaults added.
    pub planned: Value,
    /// What the definition rejects, if anything.
    pub blocker: Option<Blocker>,
    /// Why the step is planned here, and what only the server can check.
    pub reason: String,
}

/// Checks `object` (of `kind`) against the declared `definition`: its
/// scope, its version's schema and its CEL rules. `reason` says why the
/// check is made here; what only the server can check is added to it.
pub(crate) fn plan_locally(
    object: &Value,
    kind: &DefinedKind,
    definition: &Definition,
    mut reason: String,
) -> LocalPlan {
    let id = ResourceId::of(object).expect("declared objects carry their identity");
    if let Some(message) = scope_error(&id, definition) {
        return LocalPlan {
            planned: object.clone(),
            blocker: Some(Blocker::Refused {
                message,
                fields: vec!["metadata.namespace".to_string()],
            }),
            reason,
        };
    }
    let Some(schema) = &definition.schema else {
        reason.push_str("; its version has no schema, so any fields are kept");
        return LocalPlan {
            planned: object.clone(),
            blocker: None,
            reason,
        };
    };
    let checked = schema::check(object, schema);
    if !checked.unchecked.is_empty() {
        let rules: Vec<String> = checked
            .unchecked
            .iter()
            .map(|(field, rule)| match field.as_str() {
                "" => format!("`{rule}`"),
                field => format!("`{rule}` at {field}"),
            })
            .collect();
        reason.push_str(&format!(
            "; checked only when applied (CEL this tool cannot evaluate): {}",
            rules.join(", ")
        ));
    }
    let blocker = (!checked.violations.is_empty()).then(|| {
        let version = kind.api_version.rsplit('/').next().unwrap_or_default();
        let mut fields: Vec<String> = checked.violations.iter().map(|(f, _)| f.clone()).collect();
        fields.dedup();
        let details: Vec<String> = checked
            .violations
            .iter()
            .map(|(field, message)| match field.as_str() {
                "" => message.clone(),
                field => format!("{field}: {message}"),
            })
            .collect();
        Blocker::Refused {
            message: format!(
                "{} {:?} is invalid against CustomResourceDefinition {} ({version}): {}",
                kind.kind,
                id.name,
                definition.crd,
                details.join("; ")
            ),
            fields,
        }
    });
    LocalPlan {
        planned: checked.object,
        blocker,
        reason,
    }
}

/// What is wrong with the object's namespace for its kind's scope, if
/// anything.
pub(crate) fn scope_error(id: &ResourceId, definition: &Definition) -> Option<String> {
    match (&id.namespace, definition.namespaced) {
        (None, true) => Some(format!(
            "{} is namespaced (CustomResourceDefinition {}), but the object names no namespace",
            id.kind, definition.crd
        )),
        (Some(ns), false) => Some(format!(
            "{} is cluster-scoped (CustomResourceDefinition {}), but the object names namespace {ns}",
            id.kind, definition.crd
        )),
        _ => None,
    }
}

/// Waits until the applied definition `id` is `Established` and the
/// cluster serves each of its kinds (discovery of each kind's group version
/// only), so that objects of its kinds can be applied next.
pub(crate) async fn wait_established(
    cluster: &Cluster,
    id: &ResourceId,
    desired: &Value,
    timeout: Duration,
    cancel: &Cancel,
) -> Result<(), EngineError> {
    let deadline = Instant::now() + timeout;
    let mut poll = Poll::new();
    let mut kinds = defined_kinds(desired);
    loop {
        if cancel.is_cancelled() {
            return Err(EngineError::Interrupted);
        }
        let last = match cluster.get(id).await? {
            Some(live) if established(&live) => {
                let mut waiting = Vec::new();
                for kind in kinds {
                    match cluster.kind(&kind.api_version, &kind.kind).await {
                        Ok(_) => {}
                        Err(ClusterError::UnknownKind { .. }) => waiting.push(kind),
                        Err(e) => return Err(e.into()),
                    }
                }
                if waiting.is_empty() {
                    return Ok(());
                }
                let last = format!(
                    "established, but discovery does not serve {} yet",
                    waiting
                        .iter()
                        .map(|k| format!("{} {}", k.api_version, k.kind))
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                kinds = waiting;
                last
            }
            Some(live) => describe_conditions(&live),
            None => "not found".to_string(),
        };
        if Instant::now() >= deadline {
            return Err(EngineError::Timeout {
                what: format!("{id}"),
                timeout: humantime::format_duration(timeout).to_string(),
                details: format!("  {id}: {last}"),
            });
        }
        poll.wait(cancel).await;
    }
}

fn established(live: &Value) -> bool {
    live["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Established" && c["status"] == "True")
}

fn describe_conditions(live: &Value) -> String {
    let conditions: Vec<String> = live["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let mut line = format!(
                "{}={}",
                c["type"].as_str().unwrap_or("?"),
                c["status"].as_str().unwrap_or("?")
            );
            if let Some(message) = c["message"].as_str().filter(|m| !m.is_empty()) {
                line.push_str(&format!(" ({message})"));
            }
            line
        })
        .collect();
    if conditions.is_empty() {
        "not established yet (no conditions)".to_string()
    } else {
        format!("not established: {}", conditions.join(", "))
    }
}

/// Why a definition the stack created must stay: objects of its kinds that
/// the stack does not manage (`ours` holds the ids the state records).
/// Objects made by a controller (owner references) are the controller's.
pub(crate) async fn foreign_objects(
    cluster: &Cluster,
    crd: &Value,
    ours: &HashSet<ResourceId>,
) -> Result<Option<String>, EngineError> {
    let mut foreign = Vec::new();
    for kind in defined_kinds(crd) {
        let objects = match cluster
            .list(&kind.api_version, &kind.kind, None, None)
            .await
        {
            Ok(objects) => objects,
            // Not served (any more): it holds nothing.
            Err(ClusterError::UnknownKind { .. }) => continue,
            Err(ClusterError::Forbidden { .. }) => {
                return Ok(Some(format!(
                    "objects of its kind {} may exist that this stack does not manage (not allowed to list them)",
                    kind.kind
                )));
            }
            Err(e) => return Err(e.into()),
        };
        for object in objects {
            let Some(id) = ResourceId::of(&object) else {
                continue;
            };
            if ours.contains(&id) || object["metadata"]["ownerReferences"].is_array() {
                continue;
            }
            let name = match &id.namespace {
                Some(ns) => format!("{} {ns}/{}", id.kind, id.name),
                None => format!("{} {}", id.kind, id.name),
            };
            if !foreign.contains(&name) {
                foreign.push(name);
            }
        }
        // All versions of a kind list the same objects.
        break;
    }
    Ok((!foreign.is_empty()).then(|| {
        format!(
            "objects of its kinds exist that this stack does not manage ({})",
            foreign.join(", ")
        )
    }))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn crd(scope: &str) -> Value {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": scope,
                "names": {"kind": "Widget", "plural": "widgets"},
                "versions": [
                    {"name": "v1", "served": true, "storage": true},
                    {"name": "v0", "served": false, "storage": false}]}})
    }

    #[test]
    fn a_definition_defines_its_kind_in_each_served_version() {
        assert_eq!(
            defined_kinds(&crd("Namespaced")),
            [DefinedKind {
                api_version: "example.com/v1".into(),
                kind: "Widget".into()
            }]
        );
        assert!(defined_kinds(&json!({"spec": {}})).is_empty());
    }

    #[test]
    fn the_scope_comes_from_the_definition() {
        let namespaced = Definition {
            crd: "widgets.example.com".into(),
            namespaced: true,
            schema: None,
        };
        let cluster = Definition {
            namespaced: false,
            ..namespaced.clone()
        };
        let in_ns = ResourceId::new("example.com/v1", "Widget", Some("a"), "w");
        let at_top = ResourceId::new("example.com/v1", "Widget", None, "w");
        assert_eq!(scope_error(&in_ns, &namespaced), None);
        assert_eq!(scope_error(&at_top, &cluster), None);
        assert!(
            scope_error(&at_top, &namespaced)
                .unwrap()
                .contains("names no namespace")
        );
        assert!(
            scope_error(&in_ns, &cluster)
                .unwrap()
                .contains("names namespace a")
        );
    }
}
