//! Waits that say why and fail fast, on the real node, where images are
//! really pulled (and, with no network, fail to be) and containers really
//! crash.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{TestStack, node_port};
use crate::real_node::{place_on_real_node, real_node};
use crate::util;

/// The applied Deployment as the state recorded it.
fn recorded_deployment(stack: &TestStack) -> Value {
    let state = stack.state().expect("up wrote the state");
    state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"]["kind"] == "Deployment")
        .map(|r| r["applied"].clone())
        .unwrap_or_else(|| panic!("no Deployment in the state: {state:#}"))
}

#[test]
fn an_image_that_cannot_be_pulled_fails_fast_naming_the_image_and_the_pull_error() {
    real_node();
    let stack = TestStack::new("pull-fails");
    place_on_real_node(&stack.namespace);
    let port = node_port();
    stack.write(&format!(
        "echo:\n  replicas: 2\n  nodePort: {port}\n  image: nginx:does-not-exist\n"
    ));

    let start = Instant::now();
    let run = stack.run(&["up", "--yes", "--timeout", "5m"]);
    let took = start.elapsed();
    run.assert_code(1);
    eprintln!("up with an image that cannot be pulled failed after {took:.1?}");
    assert!(
        took < Duration::from_secs(60),
        "up took {took:.1?} to fail, not under 60 s:\n{run}"
    );
    run.assert_contains("cannot become ready")
        .assert_contains("nginx:does-not-exist");
    assert!(
        run.stderr.contains("ErrImagePull") || run.stderr.contains("ImagePullBackOff"),
        "no pull reason in:\n{run}"
    );
    // The pull error itself, as the node reported it.
    assert!(
        run.stderr.contains("failed to pull") || run.stderr.contains("failed to resolve"),
        "no pull error in:\n{run}"
    );
    run.assert_contains("hint: the image cannot be pulled");
    // While it waited it said why, not only a count.
    assert!(
        run.stderr.lines().any(|l| l.contains("0/2 available; ")
            && l.contains("ImagePull")
            && l.contains("(2/2 new pods): ")
            && l.contains("nginx:does-not-exist")),
        "no progress line with the reason:\n{run}"
    );

    // What was applied is recorded.
    let applied = recorded_deployment(&stack);
    assert_eq!(
        applied["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:does-not-exist",
        "{applied:#}"
    );

    // Fixing the image converges.
    stack.write(&format!(
        "echo:\n  replicas: 2\n  nodePort: {port}\n  image: nginx:alpine\n"
    ));
    stack.ok(&["up", "--yes", "--timeout", "2m"]);
    let deployment = stack.get("deployment", "nginx-echo-nodeport");
    assert_eq!(
        deployment["status"]["availableReplicas"], 2,
        "{deployment:#}"
    );
    stack.ok(&["destroy", "--yes"]);
}

#[test]
fn a_container_that_exits_at_once_fails_fast_with_crash_loop_back_off_and_its_log() {
    real_node();
    let stack = TestStack::new("crash-loop");
    place_on_real_node(&stack.namespace);
    let port = node_port();
    stack.write(&format!("echo:\n  replicas: 1\n  nodePort: {port}\n"));
    stack.ok(&["up", "--yes"]);

    // A stack file cannot give nginx a command, so another hand does: the
    // container now starts nginx with a directive it does not know, and
    // nginx exits at once. The fields are kubectl's, so echo-iac keeps
    // them; the next `up` rolls the pods (a new message) and they crash.
    // minReadySeconds keeps the Deployment controller from counting a pod
    // that was Ready for an instant before it died as available (which
    // would complete the rollout, as Kubernetes itself judges one).
    util::kubectl_ok(&[
        "patch",
        "deployment",
        "nginx-echo-nodeport",
        "-n",
        &stack.namespace,
        "--type=json",
        "-p",
        r#"[{"op": "add", "path": "/spec/template/spec/containers/0/args", "value": ["nginx", "-g", "daemon off; no_such_directive on;"]},
            {"op": "add", "path": "/spec/minReadySeconds", "value": 10}]"#,
    ]);
    stack.write(&format!(
        "echo:\n  replicas: 1\n  nodePort: {port}\n  message: Hello again\n"
    ));
    let start = Instant::now();
    let run = stack.run(&["up", "--yes", "--timeout", "5m", "--wait-grace", "15s"]);
    let took = start.elapsed();
    run.assert_code(1);
    eprintln!("up with a crashing container failed after {took:.1?}");
    assert!(
        took < Duration::from_secs(90),
        "up took {took:.1?} to fail:\n{run}"
    );
    run.assert_contains("CrashLoopBackOff")
        .assert_contains("last exit code 1")
        .assert_contains("last log lines:")
        // nginx's own words, from the container's log.
        .assert_contains("unknown directive \"no_such_directive\"")
        .assert_contains("hint: the container exits soon after it starts");
    stack.ok(&["destroy", "--yes"]);
}

#[test]
fn a_timeout_lists_each_unready_object_with_its_reason() {
    real_node();
    let stack = TestStack::new("wait-timeout");
    place_on_real_node(&stack.namespace);
    stack.write(&format!(
        "echo:\n  replicas: 1\n  nodePort: {}\n  image: nginx:no-such-tag\n",
        node_port()
    ));
    // The timeout comes before the grace period ends.
    let run = stack.run(&["up", "--yes", "--timeout", "8s", "--wait-grace", "5m"]);
    run.assert_code(1)
        .assert_contains("did not become ready within 8s")
        .assert_contains(&format!(
            "Deployment {}/nginx-echo-nodeport: 0/1 available",
            stack.namespace
        ))
        .assert_contains("nginx:no-such-tag")
        .assert_contains(&format!(
            "Service {}/echo-nodeport-service: waiting for Deployment",
            stack.namespace
        ));
    assert!(
        !run.stderr.contains("cannot become ready"),
        "failed on the grace period, not the timeout:\n{run}"
    );
    stack.ok(&["destroy", "--yes"]);
}
