//! Ctrl-C and SIGTERM during `up`: the first stops new steps, lets the one
//! in flight finish and be recorded, and exits 130; a second exits at once.
//! Either way the state is consistent and the next `up` converges. Pause
//! points (`ECHO_IAC_FAULT=<point>:<n>:pause`) put the signal at a known step.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{TestStack, node_port, plan_changes, step};

fn echo(port: i32) -> String {
    format!("echo:\n  replicas: 1\n  nodePort: {port}\n")
}

fn kinds(state: &Value, list: &str) -> Vec<String> {
    state[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {state:#}"))
        .iter()
        .map(|r| {
            let kind = r["id"]["kind"].as_str().unwrap();
            match r["op"].as_str() {
                Some(op) => format!("{op} {kind}"),
                None => kind.to_string(),
            }
        })
        .collect()
}

fn assert_up_converges(stack: &TestStack) {
    stack.ok(&["up", "--yes"]);
    let state = stack.state().unwrap();
    assert_eq!(kinds(&state, "pending"), Vec::<String>::new());
    assert_eq!(
        kinds(&state, "resources"),
        ["ConfigMap", "Deployment", "Service"]
    );
    stack.ok(&["preview", "--expect-no-changes"]);
    stack.ok(&["destroy", "--yes"]);
}

#[test]
fn first_interrupt_between_steps_finishes_the_step_in_flight_and_exits_130() {
    for (signal, prefix) in [
        (libc::SIGINT, "sigint-step"),
        (libc::SIGTERM, "sigterm-step"),
    ] {
        let stack = TestStack::new(prefix);
        stack.write(&echo(node_port()));
        let mut up = stack.spawn(
            &["up", "--yes"],
            &[("ECHO_IAC_FAULT", "before-apply:2:pause")],
        );
        up.wait_for_pause("before-apply:2");
        up.signal(signal);
        let run = up.wait(Duration::from_secs(60));
        run.assert_code(130)
            .assert_contains("Interrupted")
            .assert_contains("steps in flight were finished and recorded");

        // The Deployment was in flight: applied and recorded. The Service
        // never started.
        let state = stack.state().expect("the state parses");
        assert_eq!(kinds(&state, "resources"), ["ConfigMap", "Deployment"]);
        assert_eq!(kinds(&state, "pending"), Vec::<String>::new());
        assert!(stack.exists("deployment", "nginx-echo-nodeport"));
        assert!(!stack.exists("service", "echo-nodeport-service"));

        let plan = stack.plan();
        assert_eq!(
            plan_changes(&plan),
            [step("create", "Service", "echo-nodeport-service")]
        );
        assert_up_converges(&stack);
    }
}

#[test]
fn interrupt_while_waiting_for_readiness_exits_130_and_is_reported() {
    let stack = TestStack::new("sigint-wait");
    stack.write(&echo(node_port()));
    let mut up = stack.spawn(&["up", "--yes"], &[("ECHO_IAC_FAULT", "wait:1:pause")]);
    up.wait_for_pause("wait:1");
    up.signal(libc::SIGINT);
    // Without stopping the wait, the interrupt would be ignored until the
    // stack became ready or the 5 minute timeout passed.
    let run = up.wait(Duration::from_secs(10));
    run.assert_code(130);

    let state = stack.state().expect("the state parses");
    assert_eq!(
        kinds(&state, "resources"),
        ["ConfigMap", "Deployment", "Service"]
    );
    assert_eq!(
        kinds(&state, "pending"),
        ["wait ConfigMap", "wait Deployment", "wait Service"]
    );
    stack
        .run(&["preview"])
        .assert_code(0)
        .assert_contains("an earlier run stopped before finishing")
        .assert_contains("wait Deployment");
    stack.ok(&["up", "--yes"]).assert_contains("Recovered");
    assert_up_converges(&stack);
}

#[test]
fn second_interrupt_exits_at_once_and_the_next_up_recovers() {
    let stack = TestStack::new("sigint-twice");
    stack.write(&echo(node_port()));
    let mut up = stack.spawn(
        &["up", "--yes"],
        &[("ECHO_IAC_FAULT", "before-apply:2:pause,after-apply:2:pause")],
    );
    up.wait_for_pause("before-apply:2");
    up.signal(libc::SIGINT);
    // The first interrupt lets the Deployment's apply go ahead; the second
    // comes after the apply returned and before it was recorded.
    up.wait_for_pause("after-apply:2");
    up.signal(libc::SIGINT);
    let run = up.wait(Duration::from_secs(10));
    run.assert_code(130);

    let state = stack.state().expect("the state parses");
    assert_eq!(kinds(&state, "resources"), ["ConfigMap"]);
    assert_eq!(kinds(&state, "pending"), ["create Deployment"]);
    assert!(stack.exists("deployment", "nginx-echo-nodeport"));
    stack
        .run(&["preview"])
        .assert_code(0)
        .assert_contains("create Deployment");
    stack.ok(&["up", "--yes"]).assert_contains("Recovered");
    assert_up_converges(&stack);
}

#[test]
fn interrupt_during_destroys_last_step_exits_130_though_the_step_finished() {
    let stack = TestStack::new("sigint-destroy");
    stack.write(&echo(node_port()));
    stack.ok(&["up", "--yes"]);
    // Deletes run dependents first: Service, Deployment, then the
    // ConfigMap, the last step.
    let mut destroy = stack.spawn(
        &["destroy", "--yes"],
        &[("ECHO_IAC_FAULT", "delete:3:pause")],
    );
    destroy.wait_for_pause("delete:3");
    destroy.signal(libc::SIGINT);
    let run = destroy.wait(Duration::from_secs(60));
    run.assert_code(130).assert_contains("Interrupted");
    assert!(!run.stdout.contains("Destroyed stack"), "{run}");

    // The delete was sent. Foreground deletion leaves the ConfigMap until
    // the garbage collector is done with it: if the run saw it gone, it
    // is forgotten; if not, the wait stopped and the delete is pending.
    let state = stack.state().expect("the state parses");
    let left = kinds(&state, "resources");
    assert!(left.is_empty() || left == ["ConfigMap"], "{left:?}");
    if !left.is_empty() {
        assert_eq!(kinds(&state, "pending"), ["delete ConfigMap"]);
    }
    stack.ok(&["destroy", "--yes"]);
    let state = stack.state().expect("the state parses");
    assert_eq!(kinds(&state, "resources"), Vec::<String>::new());
    assert_eq!(kinds(&state, "pending"), Vec::<String>::new());
    assert!(!stack.exists("configmap", "nginx-echo-config"));
}
