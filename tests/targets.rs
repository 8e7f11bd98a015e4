//! `--target`: preview, up and destroy limited to some of a stack's
//! objects, against the local control plane.

use crate::harness::{TestStack, node_port, plan_changes, step};

fn echo(replicas: i32, port: i32, message: Option<&str>) -> String {
    let message = message.map_or(String::new(), |m| format!("  message: {m}\n"));
    format!("echo:\n  replicas: {replicas}\n  nodePort: {port}\n{message}")
}

fn config_text(stack: &TestStack) -> String {
    stack.get("configmap", "nginx-echo-config")["data"]["default.conf"]
        .as_str()
        .expect("the ConfigMap has its config")
        .to_string()
}

#[test]
fn up_with_a_target_changes_only_that_object_and_leaves_the_rest_pending() {
    let stack = TestStack::new("target-up");
    let port = node_port();
    stack.write(&echo(2, port, None));
    stack.ok(&["up", "--yes"]);
    let config_before = config_text(&stack);

    stack.write(&echo(1, port, Some("Hi from target")));
    let target = format!("Deployment/{}/nginx-echo-nodeport", stack.namespace);
    stack
        .ok(&["preview", "--target", &target])
        .assert_contains("2 left out by --target");
    let run = stack.ok(&["preview", "--json", "--target", &target]);
    let plan: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        plan_changes(&plan),
        [step("update", "Deployment", "nginx-echo-nodeport")]
    );
    assert_eq!(plan["summary"]["leftOut"], 2, "{plan:#}");
    let mut left: Vec<&str> = plan["leftOut"]
        .as_array()
        .expect("the ids left out")
        .iter()
        .map(|id| id["kind"].as_str().unwrap())
        .collect();
    left.sort_unstable();
    assert_eq!(left, ["ConfigMap", "Service"], "{plan:#}");

    stack.ok(&["up", "--target", &target, "--yes"]);
    let deploy = stack.get("deployment", "nginx-echo-nodeport");
    assert_eq!(deploy["spec"]["replicas"], 1);
    assert_eq!(config_text(&stack), config_before, "the ConfigMap changed");
    let state = stack.state().expect("a state");
    let recorded_config = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"]["kind"] == "ConfigMap")
        .expect("the ConfigMap stays in the state");
    assert!(
        !recorded_config.to_string().contains("Hi from target"),
        "the state records a ConfigMap that was not applied: {recorded_config:#}"
    );

    let plan = stack.plan();
    assert_eq!(
        plan_changes(&plan),
        [step("update", "ConfigMap", "nginx-echo-config")]
    );
    assert_eq!(plan["summary"]["leftOut"], 0);
}

#[test]
fn target_dependencies_bring_the_config_map_along_on_up_and_destroy() {
    let stack = TestStack::new("target-deps");
    let port = node_port();
    stack.write(&echo(2, port, None));
    stack.ok(&["up", "--yes"]);
    let service_before = stack.get("service", "echo-nodeport-service");

    stack.write(&echo(1, port, Some("Hi with dependencies")));
    let target = "Deployment/nginx-echo-nodeport";
    stack
        .ok(&["up", "--target", target, "--target-dependencies", "--yes"])
        .assert_contains("1 left out by --target");
    assert!(config_text(&stack).contains("Hi with dependencies"));
    assert_eq!(
        stack.get("deployment", "nginx-echo-nodeport")["spec"]["replicas"],
        1
    );
    assert_eq!(
        stack.get("service", "echo-nodeport-service")["metadata"]["resourceVersion"],
        service_before["metadata"]["resourceVersion"],
        "the Service left out was written"
    );
    assert!(plan_changes(&stack.plan()).is_empty(), "{:#}", stack.plan());

    stack
        .ok(&[
            "destroy",
            "--target",
            target,
            "--target-dependencies",
            "--yes",
        ])
        .assert_contains("left out by --target");
    assert!(!stack.exists("deployment", "nginx-echo-nodeport"));
    assert!(!stack.exists("configmap", "nginx-echo-config"));
    assert!(stack.exists("service", "echo-nodeport-service"));
    let state = stack.state().expect("a state").to_string();
    assert!(state.contains("\"echo-nodeport-service\""), "{state}");
    assert!(!state.contains("\"nginx-echo-config\""), "{state}");
}

#[test]
fn destroy_with_a_target_deletes_only_that_object() {
    let stack = TestStack::new("target-destroy");
    stack.write(&echo(1, node_port(), None));
    stack.ok(&["up", "--yes"]);

    // KIND/NAME means the stack's namespace; the kind's case does not matter.
    stack
        .ok(&[
            "destroy",
            "--target",
            "service/echo-nodeport-service",
            "--yes",
        ])
        .assert_contains("left out by --target");
    assert!(!stack.exists("service", "echo-nodeport-service"));
    assert!(stack.exists("deployment", "nginx-echo-nodeport"));
    assert!(stack.exists("configmap", "nginx-echo-config"));
    let state = stack.state().expect("a state").to_string();
    assert!(!state.contains("\"echo-nodeport-service\""), "{state}");
    assert!(state.contains("\"nginx-echo-nodeport\""), "{state}");
    assert!(state.contains("\"nginx-echo-config\""), "{state}");

    let plan = stack.plan();
    assert_eq!(
        plan_changes(&plan),
        [step("create", "Service", "echo-nodeport-service")]
    );
}

#[test]
fn an_unknown_target_exits_1_naming_the_closest_ids_and_changes_nothing() {
    let stack = TestStack::new("target-unknown");
    let port = node_port();
    stack.write(&echo(2, port, None));
    stack.ok(&["up", "--yes"]);
    stack.write(&echo(1, port, None));

    let typo = format!("Deployment/{}/nginx-echo-nodeprot", stack.namespace);
    for verb in ["preview", "up", "destroy"] {
        let mut args = vec![verb, "--target", typo.as_str()];
        if verb != "preview" {
            args.push("--yes");
        }
        stack
            .run(&args)
            .assert_code(1)
            .assert_contains(&format!("target `{typo}` names no object"))
            .assert_contains(&format!(
                "did you mean `Deployment/{}/nginx-echo-nodeport`",
                stack.namespace
            ));
    }
    assert_eq!(
        stack.get("deployment", "nginx-echo-nodeport")["spec"]["replicas"],
        2
    );
    assert!(stack.exists("service", "echo-nodeport-service"));
}
