//! Protection and retain-on-delete, from the stack file's `protect:` and
//! `retain:`, on the local control plane: a protected object is never
//! deleted or replaced, and a retained one keeps running once the stack
//! lets it go.

use serde_json::Value;

use crate::harness::{TestStack, node_port};
use crate::util;

const OWNERSHIP_LABELS: [&str; 2] = ["app.kubernetes.io/managed-by", "echo-iac.io/stack"];

/// Deletes a namespace the stack created (or kept) when the test ends.
struct NamespaceGuard(String);

impl Drop for NamespaceGuard {
    fn drop(&mut self) {
        util::kubectl(&[
            "delete",
            "namespace",
            &self.0,
            "--wait=false",
            "--ignore-not-found",
        ]);
    }
}

fn echo(port: i32) -> String {
    format!("echo:\n  replicas: 1\n  nodePort: {port}\n")
}

fn echoes(services: &[(&str, i32)]) -> String {
    let mut text = "echoes:\n".to_string();
    for (name, port) in services {
        text.push_str(&format!(
            "  - name: {name}\n    replicas: 1\n    nodePort: {port}\n"
        ));
    }
    text
}

/// The ids (`Kind/name`) the state records.
fn recorded(stack: &TestStack) -> Vec<String> {
    stack.state().expect("a state")["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["id"]["kind"].as_str().unwrap(),
                r["id"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

fn assert_unlabelled(object: &Value) {
    let labels = &object["metadata"]["labels"];
    for label in OWNERSHIP_LABELS {
        assert!(
            labels.get(label).is_none(),
            "{label} is still on {object:#}"
        );
    }
}

fn uid(object: &Value) -> String {
    object["metadata"]["uid"]
        .as_str()
        .expect("a uid")
        .to_string()
}

#[test]
fn a_protected_namespace_stops_destroy_and_keep_protected_keeps_it_running_unlabelled() {
    let stack = TestStack::for_new_namespace("protect-ns");
    let _guard = NamespaceGuard(stack.namespace.clone());
    let ns = stack.namespace.clone();
    stack.write(&format!(
        "createNamespace: true\nprotect:\n  - Namespace/{ns}\n{}",
        echo(node_port())
    ));
    stack.ok(&["up", "--yes"]);
    let namespace_uid = uid(&util::kubectl_json(&["get", "namespace", &ns]));

    let refused = stack.run(&["destroy", "--yes"]);
    refused
        .assert_code(1)
        .assert_contains("destroy deleted nothing")
        .assert_contains(&format!(
            "Namespace {ns} (protected by stacks/dev.yaml:6 (protect: Namespace/{ns}))"
        ))
        .assert_contains("destroy --keep-protected");
    assert!(
        stack.exists("deployment", "nginx-echo-nodeport"),
        "{refused}"
    );
    assert_eq!(recorded(&stack).len(), 4);

    // --json: the plan, its blocked step named, is the document.
    let refused = stack.run(&["destroy", "--yes", "--json"]);
    refused.assert_code(1);
    let plan: Value = serde_json::from_str(&refused.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {refused}"));
    let blocked: Vec<&Value> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["blocker"].is_null())
        .collect();
    assert_eq!(blocked.len(), 1, "{plan:#}");
    assert_eq!(blocked[0]["kind"], "Namespace");
    assert_eq!(blocked[0]["blocker"]["kind"], "protected");
    assert!(stack.exists("configmap", "nginx-echo-config"));

    let kept = stack.ok(&["destroy", "--yes", "--keep-protected"]);
    kept.assert_contains("retain")
        .assert_contains("1 object(s) retained");
    for (kind, name) in [
        ("deployment", "nginx-echo-nodeport"),
        ("service", "echo-nodeport-service"),
        ("configmap", "nginx-echo-config"),
    ] {
        assert!(!stack.exists(kind, name), "{kind} {name} survived: {kept}");
    }
    let namespace = util::kubectl_json(&["get", "namespace", &ns]);
    assert_eq!(
        uid(&namespace),
        namespace_uid,
        "the namespace was recreated"
    );
    assert_eq!(namespace["status"]["phase"], "Active", "{namespace:#}");
    assert_unlabelled(&namespace);
    assert!(recorded(&stack).is_empty(), "{:?}", recorded(&stack));
}

#[test]
fn a_protected_namespace_blocks_its_prune_and_a_protected_deployment_its_replace() {
    let stack = TestStack::for_new_namespace("protect-prune");
    let _guard = NamespaceGuard(stack.namespace.clone());
    let ns = stack.namespace.clone();
    let port = node_port();
    let protect = format!("protect:\n  - Namespace/{ns}\n  - Deployment/{ns}/nginx-echo-*\n");
    stack.write(&format!("createNamespace: true\n{protect}{}", echo(port)));
    stack.ok(&["up", "--yes"]);
    let deployment_uid = uid(&stack.get("deployment", "nginx-echo-nodeport"));

    // No longer created by the stack: a prune of the namespace.
    stack.write(&format!("createNamespace: false\n{protect}{}", echo(port)));
    stack
        .run(&["preview"])
        .assert_code(1)
        .assert_contains(&format!(
            "! protected by stacks/dev.yaml:6 (protect: Namespace/{ns})"
        ))
        .assert_contains("never deleted or replaced");
    let plan: Value = serde_json::from_str(&stack.run(&["preview", "--json"]).stdout).unwrap();
    let step = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "Namespace")
        .cloned()
        .expect("a step for the namespace");
    assert_eq!(step["op"], "delete", "{plan:#}");
    assert_eq!(step["blocker"]["kind"], "protected", "{plan:#}");
    assert_eq!(plan["summary"]["blocked"], 1);
    stack.run(&["up", "--yes"]).assert_code(1);
    assert!(util::kubectl(&["get", "namespace", &ns]).status.success());
    assert!(recorded(&stack).contains(&format!("Namespace/{ns}")));

    // A new selector cannot be applied in place: a replace, blocked.
    stack.write(&format!(
        "createNamespace: true\n{protect}echo:\n  replicas: 1\n  nodePort: {port}\n  appLabel: echo-moved\n"
    ));
    stack
        .run(&["preview"])
        .assert_code(1)
        .assert_contains("replace")
        .assert_contains(&format!(
            "! protected by stacks/dev.yaml:7 (protect: Deployment/{ns}/nginx-echo-*)"
        ));
    stack
        .run(&["up", "--yes"])
        .assert_code(1)
        .assert_contains(&format!(
            "! protected by stacks/dev.yaml:7 (protect: Deployment/{ns}/nginx-echo-*)"
        ));
    assert_eq!(
        uid(&stack.get("deployment", "nginx-echo-nodeport")),
        deployment_uid,
        "the protected Deployment was replaced"
    );

    // Back as it was, the stack destroys the rest and keeps the protected.
    stack.write(&format!("createNamespace: true\n{protect}{}", echo(port)));
    stack.ok(&["destroy", "--yes", "--keep-protected"]);
    assert_unlabelled(&stack.get("deployment", "nginx-echo-nodeport"));
    assert!(!stack.exists("service", "echo-nodeport-service"));
}

#[test]
fn a_retained_configmap_outlives_a_prune_and_destroy_and_comes_back_only_with_adopt() {
    let stack = TestStack::new("retain");
    let ns = stack.namespace.clone();
    let (web, api) = (node_port(), node_port());
    let retain = format!("retain:\n  - ConfigMap/{ns}/*\n");
    stack.write(&format!(
        "{retain}{}",
        echoes(&[("web", web), ("api", api)])
    ));
    stack.ok(&["up", "--yes"]);
    let api_config = uid(&stack.get("configmap", "api-config"));

    // `api` is dropped: its ConfigMap is retained, the rest deleted.
    stack.write(&format!("{retain}{}", echoes(&[("web", web)])));
    let plan: Value = serde_json::from_str(&stack.run(&["preview", "--json"]).stdout).unwrap();
    let retained: Vec<&Value> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["op"] == "retain")
        .collect();
    assert_eq!(retained.len(), 1, "{plan:#}");
    assert_eq!(retained[0]["name"], "api-config");
    assert!(
        retained[0]["reason"].as_str().unwrap().contains(&format!(
            "retained as stacks/dev.yaml:5 (retain: ConfigMap/{ns}/*) asks"
        )),
        "{plan:#}"
    );
    assert_eq!(plan["summary"]["retain"], 1);
    stack
        .ok(&["up", "--yes"])
        .assert_contains(&format!("ConfigMap {ns}/api-config retained"));
    let kept = stack.get("configmap", "api-config");
    assert_eq!(uid(&kept), api_config);
    assert_unlabelled(&kept);
    assert!(kept["data"]["default.conf"].is_string(), "{kept:#}");
    assert!(!stack.exists("deployment", "api"));
    assert!(!recorded(&stack).contains(&"ConfigMap/api-config".to_string()));

    // Declared again, it is not the stack's until adopted.
    stack.write(&format!(
        "{retain}{}",
        echoes(&[("web", web), ("api", api)])
    ));
    stack
        .run(&["up", "--yes"])
        .assert_code(1)
        .assert_contains("--adopt");
    stack.ok(&["up", "--yes", "--adopt"]);
    assert_eq!(uid(&stack.get("configmap", "api-config")), api_config);
    assert!(recorded(&stack).contains(&"ConfigMap/api-config".to_string()));

    // destroy deletes the rest and leaves both ConfigMaps running.
    stack
        .ok(&["destroy", "--yes"])
        .assert_contains("2 object(s) retained");
    for name in ["web-config", "api-config"] {
        assert_unlabelled(&stack.get("configmap", name));
    }
    assert!(!stack.exists("deployment", "web"));
    assert!(recorded(&stack).is_empty());
}

#[test]
fn a_retain_killed_after_the_labels_went_is_finished_by_the_next_run() {
    let stack = TestStack::new("retain-crash");
    let ns = stack.namespace.clone();
    stack.write(&format!(
        "retain:\n  - ConfigMap/{ns}/nginx-echo-config\n{}",
        echo(node_port())
    ));
    stack.ok(&["up", "--yes"]);
    let config = uid(&stack.get("configmap", "nginx-echo-config"));

    let killed = stack.run_env(&["destroy", "--yes"], &[("ECHO_IAC_FAULT", "retain:1")]);
    killed.assert_killed();
    assert_unlabelled(&stack.get("configmap", "nginx-echo-config"));
    let state = stack.state().expect("a state");
    let pending: Vec<&str> = state["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["op"].as_str().unwrap())
        .collect();
    assert_eq!(pending, ["retain"], "{state:#}");
    assert!(recorded(&stack).contains(&"ConfigMap/nginx-echo-config".to_string()));

    // The object carries no labels now; the next destroy still retains it
    // (it is the one the state records) and finishes.
    stack
        .ok(&["destroy", "--yes"])
        .assert_contains("an earlier run stopped before finishing")
        .assert_contains("retain");
    assert!(recorded(&stack).is_empty());
    assert_eq!(stack.state().unwrap()["pending"], Value::Array(Vec::new()));
    assert_eq!(uid(&stack.get("configmap", "nginx-echo-config")), config);
}

#[test]
fn destroy_retains_the_namespace_it_created_when_it_retains_an_object_in_it() {
    let stack = TestStack::for_new_namespace("retain-ns");
    let _guard = NamespaceGuard(stack.namespace.clone());
    let ns = stack.namespace.clone();
    stack.write(&format!(
        "createNamespace: true\nretain:\n  - ConfigMap/{ns}/nginx-echo-config\n{}",
        echo(node_port())
    ));
    stack.ok(&["up", "--yes"]);
    let destroyed = stack.ok(&["destroy", "--yes"]);
    destroyed
        .assert_contains("holds retained objects (ConfigMap nginx-echo-config)")
        .assert_contains("2 object(s) retained");
    let namespace = util::kubectl_json(&["get", "namespace", &ns]);
    assert_eq!(namespace["status"]["phase"], "Active", "{destroyed}");
    assert_unlabelled(&namespace);
    assert_unlabelled(&stack.get("configmap", "nginx-echo-config"));
    assert!(!stack.exists("deployment", "nginx-echo-nodeport"));
    assert!(recorded(&stack).is_empty());
}
