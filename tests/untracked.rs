//! Objects that carry a stack's labels but that its state does not record.
//! Labels are not proof of ownership: anyone who may label a ConfigMap in
//! the namespace can give it a stack's labels, so only what the program
//! declares is taken back or deleted unasked.

use crate::harness::{TestStack, node_port};
use crate::util;

fn body(port: i32) -> String {
    format!("echo:\n  replicas: 1\n  nodePort: {port}\n")
}

/// A ConfigMap that the stack never made, labelled as stack `dev`'s.
fn plant(stack: &TestStack, name: &str) -> String {
    util::apply_yaml(
        &stack.namespace,
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels:\n    app.kubernetes.io/managed-by: echo-iac\n    echo-iac.io/stack: dev\ndata:\n  owner: someone else\n"
        ),
    );
    uid(stack, name)
}

fn uid(stack: &TestStack, name: &str) -> String {
    stack.get("configmap", name)["metadata"]["uid"]
        .as_str()
        .expect("a uid")
        .to_string()
}

#[test]
fn an_unrelated_configmap_given_the_stacks_labels_survives_refresh_up_and_destroy() {
    let stack = TestStack::new("untracked");
    stack.write(&body(node_port()));
    stack.ok(&["up", "--yes"]);
    let theirs = plant(&stack, "theirs");

    let plan = stack.plan();
    assert_eq!(plan["untracked"][0]["name"], "theirs", "{plan:#}");
    assert_eq!(plan["untracked"][0]["declared"], false, "{plan:#}");
    stack
        .ok(&["preview"])
        .assert_contains("neither in its state nor declared by it; left in place")
        .assert_contains(&format!(
            "--delete-untracked ConfigMap/{}/theirs",
            stack.namespace
        ));

    stack
        .ok(&["refresh", "--yes"])
        .assert_contains("Left out of the state")
        .assert_contains("theirs");
    let state = stack.state().expect("a state");
    assert!(
        !state.to_string().contains("\"theirs\""),
        "refresh recorded the stray ConfigMap: {state:#}"
    );
    stack.ok(&["up", "--yes"]);
    assert_eq!(uid(&stack, "theirs"), theirs, "up deleted it");

    stack
        .ok(&["destroy", "--yes"])
        .assert_contains("1 untracked object(s) were left in place");
    assert!(!stack.exists("deployment", "nginx-echo-nodeport"));
    assert_eq!(uid(&stack, "theirs"), theirs, "destroy --yes deleted it");
    stack
        .ok(&["destroy", "--yes"])
        .assert_contains("were left in place");
    assert_eq!(uid(&stack, "theirs"), theirs);
}

#[test]
fn destroy_deletes_untracked_objects_only_when_named_or_asked_for_all() {
    let stack = TestStack::new("untracked-del");
    stack.write(&body(node_port()));
    stack.ok(&["up", "--yes"]);
    let a = plant(&stack, "theirs-a");
    plant(&stack, "theirs-b");

    // A name that matches nothing stops the run before any delete.
    stack
        .run(&["destroy", "--yes", "--delete-untracked", "ConfigMap/typo"])
        .assert_code(1)
        .assert_contains("--delete-untracked ConfigMap/typo")
        .assert_contains(&format!("ConfigMap/{}/theirs-a", stack.namespace));
    assert!(stack.exists("deployment", "nginx-echo-nodeport"));
    assert_eq!(uid(&stack, "theirs-a"), a);

    stack
        .ok(&[
            "destroy",
            "--yes",
            "--delete-untracked",
            "configmap/theirs-b",
        ])
        .assert_contains("the stack does not declare it: deleted as asked");
    assert!(!stack.exists("configmap", "theirs-b"));
    assert_eq!(uid(&stack, "theirs-a"), a);
    assert!(!stack.exists("deployment", "nginx-echo-nodeport"));

    stack.ok(&["destroy", "--yes", "--delete-untracked"]);
    assert!(!stack.exists("configmap", "theirs-a"));
    stack
        .ok(&["destroy", "--yes"])
        .assert_contains("Nothing to destroy");
}
