//! The plan a person reviewed is the plan that is applied: `preview
//! --save-plan FILE`, then `up --plan FILE`, which applies exactly that or
//! changes nothing and says what moved.

use crate::harness::{TestStack, node_port};
use crate::util;

fn echo(replicas: i32, message: &str, port: i32) -> String {
    format!("echo:\n  replicas: {replicas}\n  message: {message}\n  nodePort: {port}\n")
}

/// What each object holds that a run could change: its generation, spec or
/// data, labels and annotations. A refused `up --plan` changes none of
/// them (a resourceVersion also moves with the controllers' status writes).
fn contents(stack: &TestStack) -> Vec<String> {
    [
        ("configmap", "nginx-echo-config"),
        ("deployment", "nginx-echo-nodeport"),
        ("service", "echo-nodeport-service"),
    ]
    .iter()
    .map(|(kind, name)| {
        let object = stack.get(kind, name);
        serde_json::json!([
            object["metadata"]["generation"],
            object["metadata"]["labels"],
            object["metadata"]["annotations"],
            object["spec"],
            object["data"],
        ])
        .to_string()
    })
    .collect()
}

/// Brings the stack up, changes the stack file and saves the plan of that
/// change; returns the plan file's path.
fn reviewed(stack: &TestStack, port: i32) -> std::path::PathBuf {
    stack.write(&echo(1, "Hello", port));
    stack.ok(&["up", "--yes"]);
    stack.write(&echo(2, "Reviewed", port));
    let file = stack.project.root().join("plan.json");
    stack
        .ok(&["preview", "--save-plan", file.to_str().unwrap()])
        .assert_contains("up --plan");
    file
}

#[test]
fn a_saved_plan_is_applied_exactly_and_a_preview_after_it_shows_nothing() {
    let stack = TestStack::new("plan-ok");
    let file = reviewed(&stack, node_port());
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        !text.contains("Reviewed"),
        "the plan holds the object: {text}"
    );

    // A foreign annotation changes nothing the plan does.
    util::kubectl_ok(&[
        "annotate",
        "deployment/nginx-echo-nodeport",
        "team.example.com/owner=web",
        "-n",
        &stack.namespace,
    ]);
    // Without a terminal and without --yes: a reviewed plan asks nobody.
    stack
        .ok(&["up", "--plan", file.to_str().unwrap()])
        .assert_contains("change(s) applied");
    assert_eq!(
        stack.get("deployment", "nginx-echo-nodeport")["spec"]["replicas"],
        2
    );
    let config = stack.get("configmap", "nginx-echo-config");
    assert!(
        config["data"]["default.conf"]
            .as_str()
            .unwrap()
            .contains("Reviewed"),
        "{config}"
    );
    stack.ok(&["preview", "--expect-no-changes"]);

    // Applied once, the plan no longer describes what applying would do.
    stack
        .run(&["up", "--plan", file.to_str().unwrap()])
        .assert_code(1)
        .assert_contains("nothing was changed")
        .assert_contains("serial");
}

#[test]
fn what_moved_since_the_review_stops_up_plan_and_changes_nothing() {
    let stack = TestStack::new("plan-moved");
    let port = node_port();
    let file = reviewed(&stack, port);
    let file = file.to_str().unwrap();

    // A scale: the reviewed 1 → 2 would now be 4 → 2, over kubectl's field.
    util::kubectl_ok(&[
        "scale",
        "deployment/nginx-echo-nodeport",
        "--replicas=4",
        "-n",
        &stack.namespace,
    ]);
    let before = contents(&stack);
    stack
        .run(&["up", "--plan", file])
        .assert_code(1)
        .assert_contains("spec.replicas");
    // Taking the field was not reviewed either.
    stack
        .run(&["up", "--plan", file, "--force-conflicts"])
        .assert_code(1)
        .assert_contains("--force-conflicts")
        .assert_contains("Deployment")
        .assert_contains("nothing was changed");
    assert_eq!(contents(&stack), before);
}

#[test]
fn an_edit_of_an_object_the_plan_leaves_alone_stops_up_plan() {
    let stack = TestStack::new("plan-same");
    let port = node_port();
    let file = reviewed(&stack, port);
    let file = file.to_str().unwrap();
    // The Service is `same` in the plan; someone edits a field echo-iac
    // owns, so applying now would also change the Service.
    util::kubectl_ok(&[
        "patch",
        "service/echo-nodeport-service",
        "--type=json",
        "-p",
        r#"[{"op":"replace","path":"/spec/ports/0/targetPort","value":81}]"#,
        "-n",
        &stack.namespace,
    ]);
    let before = contents(&stack);
    stack
        .run(&["up", "--plan", file])
        .assert_code(1)
        .assert_contains("Service")
        .assert_contains("nothing was changed");
    assert_eq!(contents(&stack), before);
}

#[test]
fn another_up_or_an_edited_stack_file_stops_up_plan() {
    let stack = TestStack::new("plan-edit");
    let port = node_port();
    let file = reviewed(&stack, port);
    let file = file.to_str().unwrap();

    // The stack file is edited after the review.
    stack.write(&echo(3, "Reviewed", port));
    let before = contents(&stack);
    stack
        .run(&["up", "--plan", file])
        .assert_code(1)
        .assert_contains("Deployment")
        .assert_contains("nothing was changed");
    assert_eq!(contents(&stack), before);

    // An `up` from elsewhere writes the state in between.
    stack.write(&echo(2, "Reviewed", port));
    stack.ok(&["up", "--yes"]);
    stack
        .run(&["up", "--plan", file])
        .assert_code(1)
        .assert_contains("another run changed the stack");

    // A plan too old, or no plan at all, is refused before the cluster is
    // asked anything.
    stack
        .run(&["up", "--plan", file, "--plan-max-age", "0s"])
        .assert_code(1)
        .assert_contains("--plan-max-age");
    std::fs::write(stack.project.root().join("bad.json"), "{\"format\": 7}").unwrap();
    stack
        .run(&[
            "up",
            "--plan",
            stack.project.root().join("bad.json").to_str().unwrap(),
        ])
        .assert_code(1)
        .assert_contains("format 7");
}
