//! Node ports are allocated cluster-wide by the API server, so a Service can
//! be refused because of an object in another namespace. This module names
//! the holder of a taken port, and finds the deletes in a plan that free a
//! port a create needs: those must run before the create (a stack moving to
//! a new namespace with the same node port), and the create is then
//! validated as it will be, once the port is free.

use std::collections::HashSet;

use serde_json::Value;

use super::plan::{Op, Plan};
use super::resource::ResourceId;
use crate::cluster::{Cluster, ClusterError};
use crate::identity::Identity;
use crate::state::State;

/// The API server's words for a node port another Service holds.
const TAKEN: &str = "provided port is already allocated";

pub(crate) fn is_port_taken(status: &kube::core::Status) -> bool {
    status.message.contains(TAKEN)
}

/// The node ports an object asks for (a Service's `spec.ports[].nodePort`).
pub fn node_ports(object: &Value) -> Vec<i64> {
    if object["kind"] != "Service" {
        return Vec::new();
    }
    object["spec"]["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["nodePort"].as_i64())
        .collect()
}

/// The object without the node ports it asks for, so that a dry run checks
/// everything else about it while the port is still held.
pub(crate) fn without_node_ports(object: &Value) -> Value {
    let mut object = object.clone();
    if let Some(ports) = object["spec"]["ports"].as_array_mut() {
        for port in ports {
            if let Some(port) = port.as_object_mut() {
                port.remove("nodePort");
            }
        }
    }
    object
}

/// Puts the desired node ports back into what a dry run of
/// [`without_node_ports`] returned (the server picked others for it).
pub(crate) fn restore_node_ports(planned: &mut Value, desired: &Value) {
    let (Some(planned), Some(desired)) = (
        planned["spec"]["ports"].as_array_mut(),
        desired["spec"]["ports"].as_array(),
    ) else {
        return;
    };
    for (p, d) in planned.iter_mut().zip(desired) {
        if let Some(port) = d.get("nodePort") {
            p["nodePort"] = port.clone();
        }
    }
}

/// A Service that holds a node port.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Holder {
    pub port: i64,
    pub id: ResourceId,
    pub uid: String,
    /// The program and stack that manage it, if one of this identity's
    /// stacks does.
    pub stack: Option<(String, String)>,
}

impl Holder {
    /// `Service ns/name (echo-iac stack `dev`)`.
    pub fn describe(&self) -> String {
        match &self.stack {
            Some((program, stack)) => format!("{} ({program} stack `{stack}`)", self.id),
            None => self.id.to_string(),
        }
    }
}

/// Who holds each of `ports`, from a list of Services in every namespace.
/// `None` when these credentials may not list Services cluster-wide.
pub(crate) async fn holders(
    cluster: &Cluster,
    ports: &[i64],
) -> Result<Option<Vec<Holder>>, ClusterError> {
    let services = match cluster.list("v1", "Service", None, None).await {
        Ok(services) => services,
        Err(ClusterError::Forbidden { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    Ok(Some(holders_in(cluster.identity(), &services, ports)))
}

fn holders_in(identity: &Identity, services: &[Value], ports: &[i64]) -> Vec<Holder> {
    let mut found = Vec::new();
    for service in services {
        let Some(id) = ResourceId::of(service) else {
            continue;
        };
        let stack = identity
            .owning_stack(service)
            .map(|stack| (identity.name().to_string(), stack));
        for port in node_ports(service) {
            if ports.contains(&port) {
                found.push(Holder {
                    port,
                    id: id.clone(),
                    uid: service["metadata"]["uid"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                    stack: stack.clone(),
                });
            }
        }
    }
    found
}

/// The message for a refused node port: the server's words, then who
/// holds each port.
pub(crate) fn taken_message(
    server_message: &str,
    holders: Option<&[Holder]>,
    ports: &[i64],
) -> String {
    match holders {
        Some([]) => format!(
            "{server_message}; no Service holds node port {} any more (it was freed since): run `preview` again",
            list(ports)
        ),
        Some(holders) => {
            let named: Vec<String> = holders
                .iter()
                .map(|h| format!("node port {} is held by {}", h.port, h.describe()))
                .collect();
            format!("{server_message}; {}", named.join(", "))
        }
        None => format!(
            "{server_message} (the holder is not named: these credentials may not list Services in all namespaces)"
        ),
    }
}

fn list(ports: &[i64]) -> String {
    ports
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The deletes of `plan` that free a node port one of its creates, updates
/// or replaces asks for, judged from the objects as the state recorded
/// them; plus, since dependents are deleted first, everything being deleted
/// that depends on those. They run before the plan's applies.
pub(crate) fn deletes_to_run_first(
    plan: &Plan,
    wanted: impl Fn(&ResourceId) -> Vec<i64>,
    state: &State,
) -> HashSet<ResourceId> {
    let wanted: HashSet<i64> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.op, Op::Create | Op::Update | Op::Replace))
        .flat_map(|s| wanted(&s.id))
        .collect();
    let deleting: HashSet<&ResourceId> = plan
        .steps
        .iter()
        .filter(|s| s.op == Op::Delete)
        .map(|s| &s.id)
        .collect();
    let mut first: HashSet<ResourceId> = state
        .resources
        .iter()
        .filter(|r| deleting.contains(&r.id))
        .filter(|r| {
            node_ports(&r.applied.value())
                .iter()
                .any(|p| wanted.contains(p))
        })
        .map(|r| r.id.clone())
        .collect();
    loop {
        let more: Vec<ResourceId> = state
            .resources
            .iter()
            .filter(|r| deleting.contains(&r.id) && !first.contains(&r.id))
            .filter(|r| r.depends_on.iter().any(|d| first.contains(d)))
            .map(|r| r.id.clone())
            .collect();
        if more.is_empty() {
            return first;
        }
        first.extend(more);
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::plan::Step;
    use crate::state::ResourceState;

    fn service(ns: &str, name: &str, port: i64, stack: Option<&str>) -> Value {
        let mut labels = json!({});
        if let Some(stack) = stack {
            labels = json!(Identity::new("echo-iac").ownership_labels(stack));
        }
        json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"namespace": ns, "name": name, "uid": format!("uid-{name}"), "labels": labels},
            "spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": port}]}})
    }

    #[test]
    fn the_holder_is_named_with_its_stack() {
        let services = [
            service("a", "web", 30007, Some("prod")),
            service("b", "other", 30008, None),
        ];
        let holders = holders_in(&Identity::new("echo-iac"), &services, &[30007]);
        assert_eq!(holders.len(), 1);
        let message = taken_message(
            "spec.ports[0].nodePort: Invalid value: 30007: provided port is already allocated",
            Some(&holders),
            &[30007],
        );
        assert!(
            message.ends_with("node port 30007 is held by Service a/web (echo-iac stack `prod`)"),
            "{message}"
        );
        let plain = holders_in(&Identity::new("echo-iac"), &services, &[30008]);
        assert_eq!(plain[0].describe(), "Service b/other");
    }

    #[test]
    fn stripping_and_restoring_node_ports_round_trips() {
        let desired = service("a", "web", 30007, None);
        let stripped = without_node_ports(&desired);
        assert!(node_ports(&stripped).is_empty());
        let mut planned = stripped.clone();
        planned["spec"]["ports"][0]["nodePort"] = json!(31999);
        restore_node_ports(&mut planned, &desired);
        assert_eq!(node_ports(&planned), vec![30007]);
    }

    #[test]
    fn a_delete_that_frees_a_wanted_port_runs_first_with_its_dependents() {
        let old = ResourceId::new("v1", "Service", Some("old"), "svc");
        let old_dep = ResourceId::new("v1", "ConfigMap", Some("old"), "uses-svc");
        let unrelated = ResourceId::new("v1", "ConfigMap", Some("old"), "cm");
        let new = ResourceId::new("v1", "Service", Some("new"), "svc");
        let mut state = State::empty("dev");
        for (id, applied, deps) in [
            (&old, service("old", "svc", 30007, None), vec![]),
            (&old_dep, json!({}), vec![old.clone()]),
            (&unrelated, json!({}), vec![]),
        ] {
            state.upsert_resource(ResourceState {
                id: id.clone(),
                uid: "u".into(),
                depends_on: deps,
                applied: applied.into(),
                protect: false,
                retain: false,
                proof: None,
            });
        }
        let plan = Plan {
            stack: "dev".into(),
            steps: vec![
                Step::bare(Op::Create, &new),
                Step::bare(Op::Delete, &old),
                Step::bare(Op::Delete, &old_dep),
                Step::bare(Op::Delete, &unrelated),
            ],
            interrupted: Vec::new(),
            untracked: Vec::new(),
            left_out: Vec::new(),
        };
        let wanted = |id: &ResourceId| if id == &new { vec![30007] } else { vec![] };
        let first = deletes_to_run_first(&plan, wanted, &state);
        assert_eq!(first, HashSet::from([old.clone(), old_dep.clone()]));
        let none = deletes_to_run_first(&plan, |_| vec![30008], &state);
        assert!(none.is_empty());
    }
}
