//! Runs killed with SIGKILL at each kind of step (through the fault points
//! `ECHO_IAC_FAULT` switches on): the state still parses, the next preview
//! says what was interrupted, the next `up` converges and says it recovered,
//! and `destroy` leaves nothing behind.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{Run, TestStack, node_port};
use crate::util;

const CONFIG_MAP: &str = "ConfigMap";
const DEPLOYMENT: &str = "Deployment";
const SERVICE: &str = "Service";

fn echo(port: i32) -> String {
    format!("echo:\n  replicas: 2\n  nodePort: {port}\n")
}

/// Runs `args` with the fault `point` switched on and checks that it fired.
fn crash(stack: &TestStack, args: &[&str], point: &str) -> Run {
    let run = stack.run_env(args, &[("ECHO_IAC_FAULT", point)]);
    run.assert_killed();
    run
}

/// The pending operations in the state file, as `op kind`.
fn pending(stack: &TestStack) -> Vec<String> {
    let state = stack.state().expect("the state file exists");
    state["pending"]
        .as_array()
        .expect("pending is a list")
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["op"].as_str().unwrap(),
                p["id"]["kind"].as_str().unwrap()
            )
        })
        .collect()
}

/// The kinds recorded in the state file, in order.
fn recorded(stack: &TestStack) -> Vec<String> {
    let state = stack.state().expect("the state file exists");
    state["resources"]
        .as_array()
        .expect("resources is a list")
        .iter()
        .map(|r| r["id"]["kind"].as_str().unwrap().to_string())
        .collect()
}

/// Every object in the stack's namespace but the cluster's own root CA
/// bundle; EndpointSlices are left to the garbage collector, so not listed.
fn objects_left(namespace: &str) -> Vec<String> {
    util::kubectl_ok(&[
        "get",
        "configmaps,deployments,replicasets,pods,services",
        "-n",
        namespace,
        "-o",
        "name",
    ])
    .lines()
    .filter(|l| *l != "configmap/kube-root-ca.crt")
    .map(str::to_string)
    .collect()
}

fn labelled_objects(namespace: &str, stack: &str) -> Vec<String> {
    util::kubectl_ok(&[
        "get",
        "configmaps,deployments,services",
        "-n",
        namespace,
        "-l",
        &format!("echo-iac.io/stack={stack}"),
        "-o",
        "name",
    ])
    .lines()
    .map(str::to_string)
    .collect()
}

/// The preview, text and JSON, names each of `interrupted` (`op Kind`) as
/// left unfinished by an earlier run, and fails on nothing.
fn assert_preview_reports(stack: &TestStack, interrupted: &[&str]) {
    let plan = stack.plan();
    let reported: Vec<&str> = plan["interrupted"]
        .as_array()
        .unwrap_or_else(|| panic!("the plan has no `interrupted` list: {plan:#}"))
        .iter()
        .map(|i| i.as_str().unwrap())
        .collect();
    for op in interrupted {
        assert!(
            reported.iter().any(|r| r.starts_with(op)),
            "preview does not report `{op}` as interrupted: {reported:?}"
        );
    }
    assert_eq!(reported.len(), interrupted.len(), "{reported:?}");
    let text = stack.run(&["preview"]);
    text.assert_code(0)
        .assert_contains("an earlier run stopped before finishing");
    for op in interrupted {
        text.assert_contains(op);
    }
}

/// `up` finishes what was interrupted and says so; the stack then matches
/// the program and the state matches the cluster.
fn assert_up_recovers(stack: &TestStack) {
    let up = stack.ok(&["up", "--yes"]);
    up.assert_contains("Recovered");
    assert_converged(stack);
}

fn assert_converged(stack: &TestStack) {
    let state = stack.state().unwrap();
    assert_eq!(pending(stack), Vec::<String>::new(), "{state:#}");
    assert_eq!(recorded(stack), [CONFIG_MAP, DEPLOYMENT, SERVICE]);
    for resource in state["resources"].as_array().unwrap() {
        let kind = resource["id"]["kind"].as_str().unwrap();
        let name = resource["id"]["name"].as_str().unwrap();
        assert_eq!(
            resource["uid"],
            stack.get(kind, name)["metadata"]["uid"],
            "the state's uid of {kind} {name} is not the live one"
        );
    }
    let deploy = stack.get("deployment", "nginx-echo-nodeport");
    assert_eq!(deploy["status"]["availableReplicas"], 2, "{deploy:#}");
    assert_eq!(state["outputs"]["readyReplicas"], 2, "{state:#}");
    stack.ok(&["preview", "--expect-no-changes"]);
}

fn assert_destroy_leaves_nothing(stack: &TestStack) {
    stack.ok(&["destroy", "--yes"]);
    assert_eq!(objects_left(&stack.namespace), Vec::<String>::new());
    let state = stack.state().unwrap();
    assert_eq!(state["resources"], Value::Array(Vec::new()), "{state:#}");
    assert_eq!(state["pending"], Value::Array(Vec::new()), "{state:#}");
}

#[test]
fn up_killed_before_its_first_apply_is_reported_and_recovered() {
    let stack = TestStack::new("crash-first");
    stack.write(&echo(node_port()));

    crash(&stack, &["up", "--yes"], "before-apply:1");
    assert_eq!(pending(&stack), ["create ConfigMap"]);
    assert_eq!(recorded(&stack), Vec::<String>::new());
    assert_eq!(
        labelled_objects(&stack.namespace, "dev"),
        Vec::<String>::new()
    );

    assert_preview_reports(&stack, &["create ConfigMap"]);
    assert_up_recovers(&stack);
    assert_destroy_leaves_nothing(&stack);
}

#[test]
fn up_killed_after_an_apply_adopts_the_unrecorded_object() {
    let stack = TestStack::new("crash-after");
    stack.write(&echo(node_port()));

    crash(&stack, &["up", "--yes"], "after-apply:1");
    // The ConfigMap exists, but the run died before recording it.
    assert!(stack.exists("configmap", "nginx-echo-config"));
    assert_eq!(pending(&stack), ["create ConfigMap"]);
    assert_eq!(recorded(&stack), Vec::<String>::new());

    assert_preview_reports(&stack, &["create ConfigMap"]);
    let uid = stack.get("configmap", "nginx-echo-config")["metadata"]["uid"].clone();
    assert_up_recovers(&stack);
    assert_eq!(
        stack.get("configmap", "nginx-echo-config")["metadata"]["uid"],
        uid,
        "the ConfigMap was recreated instead of taken into the state"
    );
    assert_destroy_leaves_nothing(&stack);
}

#[test]
fn up_killed_between_applies_is_reported_and_recovered() {
    let stack = TestStack::new("crash-between");
    stack.write(&echo(node_port()));

    crash(&stack, &["up", "--yes"], "before-apply:2");
    assert_eq!(recorded(&stack), [CONFIG_MAP]);
    assert_eq!(pending(&stack), ["create Deployment"]);
    assert!(!stack.exists("deployment", "nginx-echo-nodeport"));

    assert_preview_reports(&stack, &["create Deployment"]);
    assert_up_recovers(&stack);
    assert_destroy_leaves_nothing(&stack);
}

#[test]
fn destroy_after_a_crash_removes_the_objects_created_just_before_it() {
    let stack = TestStack::new("crash-destroy");
    stack.write(&echo(node_port()));

    crash(&stack, &["up", "--yes"], "after-apply:2");
    // The Deployment and its pods exist; only the ConfigMap is recorded.
    assert!(stack.exists("deployment", "nginx-echo-nodeport"));
    assert_eq!(recorded(&stack), [CONFIG_MAP]);
    assert_eq!(pending(&stack), ["create Deployment"]);

    assert_destroy_leaves_nothing(&stack);
    assert_eq!(
        labelled_objects(&stack.namespace, "dev"),
        Vec::<String>::new()
    );
}

#[test]
fn up_killed_while_waiting_for_readiness_is_reported_and_recovered() {
    let stack = TestStack::new("crash-wait");
    stack.write(&echo(node_port()));

    crash(&stack, &["up", "--yes"], "wait:1");
    // Everything was applied and recorded; only the wait was cut short.
    assert_eq!(recorded(&stack), [CONFIG_MAP, DEPLOYMENT, SERVICE]);
    assert_eq!(
        pending(&stack),
        ["wait ConfigMap", "wait Deployment", "wait Service"]
    );

    assert_preview_reports(
        &stack,
        &["wait ConfigMap", "wait Deployment", "wait Service"],
    );
    assert_up_recovers(&stack);
    assert_destroy_leaves_nothing(&stack);
}

/// The file backend's temp files of unfinished state writes.
fn state_temp_files(stack: &TestStack) -> Vec<String> {
    std::fs::read_dir(stack.project.root().join("state"))
        .expect("the state folder exists")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with(".dev.json.tmp-"))
        .collect()
}

#[test]
fn up_killed_before_a_state_file_rename_keeps_the_previous_revision() {
    let stack = TestStack::new("crash-state-write");
    stack.write(&echo(node_port()));

    // The second write is written to its temp file and synced, and the run
    // dies before renaming it over the state file.
    crash(&stack, &["up", "--yes"], "state-write:2");
    let state = stack.state().expect("the first write is in place");
    assert_eq!(state["serial"], 1, "{state:#}");
    assert_eq!(pending(&stack), ["create ConfigMap"]);
    assert_eq!(recorded(&stack), Vec::<String>::new());
    assert_eq!(state_temp_files(&stack).len(), 1);

    assert_preview_reports(&stack, &["create ConfigMap"]);
    assert_up_recovers(&stack);
    assert_eq!(state_temp_files(&stack), Vec::<String>::new());
    assert_destroy_leaves_nothing(&stack);
}

#[test]
fn destroy_killed_after_a_delete_is_reported_and_recovered() {
    for (nth, kind, name) in [
        (1, SERVICE, "echo-nodeport-service"),
        // Deleted with foreground propagation: still terminating, pods
        // first, when the next run starts.
        (2, DEPLOYMENT, "nginx-echo-nodeport"),
    ] {
        let stack = TestStack::new(&format!("crash-delete-{nth}"));
        stack.write(&echo(node_port()));
        stack.ok(&["up", "--yes"]);

        crash(&stack, &["destroy", "--yes"], &format!("delete:{nth}"));
        let op = format!("delete {kind}");
        assert!(pending(&stack).contains(&op), "{:?}", pending(&stack));
        assert!(recorded(&stack).iter().any(|k| k == kind));

        assert_preview_reports(&stack, &[&op]);
        assert_up_recovers(&stack);
        assert!(stack.exists(&kind.to_lowercase(), name));
        assert_destroy_leaves_nothing(&stack);
    }
}

#[test]
fn destroy_killed_after_a_delete_finishes_on_the_next_destroy() {
    let stack = TestStack::new("crash-destroy-twice");
    stack.write(&echo(node_port()));
    stack.ok(&["up", "--yes"]);

    crash(&stack, &["destroy", "--yes"], "delete:2");
    assert_destroy_leaves_nothing(&stack);
}

/// Deletes a namespace the stack created, when the test ends however it ends.
struct NamespaceGuard(String);

impl Drop for NamespaceGuard {
    fn drop(&mut self) {
        let _ = util::kubectl(&[
            "delete",
            "namespace",
            &self.0,
            "--wait=false",
            "--ignore-not-found",
        ]);
    }
}

#[test]
fn destroy_after_a_crash_removes_a_namespace_created_just_before_it() {
    let stack = TestStack::for_new_namespace("echo-crash-ns");
    let _guard = NamespaceGuard(stack.namespace.clone());
    stack.write(&format!("createNamespace: true\n{}", echo(node_port())));

    crash(&stack, &["up", "--yes"], "after-apply:1");
    let namespace = util::kubectl_json(&["get", "namespace", &stack.namespace]);
    assert_eq!(namespace["metadata"]["labels"]["echo-iac.io/stack"], "dev");
    assert_eq!(pending(&stack), ["create Namespace"]);
    assert_preview_reports(&stack, &["create Namespace"]);

    stack.ok(&["destroy", "--yes"]);
    util::wait_for(Duration::from_secs(60), "the namespace to be gone", || {
        if util::kubectl(&["get", "namespace", &stack.namespace])
            .status
            .success()
        {
            Err("still there".to_string())
        } else {
            Ok(())
        }
    });
    assert_eq!(stack.state().unwrap()["pending"], Value::Array(Vec::new()));
}

#[test]
fn object_left_terminating_by_a_killed_destroy_is_recreated_once_gone() {
    let stack = TestStack::new("crash-terminating");
    stack.write(&echo(node_port()));
    stack.ok(&["up", "--yes"]);
    let old_uid = stack.get("deployment", "nginx-echo-nodeport")["metadata"]["uid"].clone();
    let hold =
        util::FinalizerHold::new("deployment", "nginx-echo-nodeport", Some(&stack.namespace));

    crash(&stack, &["destroy", "--yes"], "delete:2");
    let deploy = stack.get("deployment", "nginx-echo-nodeport");
    assert!(
        deploy["metadata"]["deletionTimestamp"].is_string(),
        "{deploy:#}"
    );

    // Applying to the terminating object would "succeed" and leave `up`
    // waiting for an object about to vanish; the plan recreates it instead.
    let preview = stack.run(&["preview"]);
    preview
        .assert_code(0)
        .assert_contains("replace")
        .assert_contains("being deleted");
    let up = stack.run(&["up", "--yes", "--timeout", "3s"]);
    up.assert_code(1)
        .assert_contains("nginx-echo-nodeport")
        .assert_contains(util::TEST_FINALIZER);

    drop(hold);
    assert_up_recovers(&stack);
    assert_ne!(
        stack.get("deployment", "nginx-echo-nodeport")["metadata"]["uid"],
        old_uid
    );
    assert_destroy_leaves_nothing(&stack);
}
