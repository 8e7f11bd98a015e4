//! Tests that take the shared control plane down for a while, so they live
//! in a test binary of their own that runs after the main suite, one test at
//! a time (`cargo test --test disruptive -- --test-threads=1`): run beside
//! other tests, they would make those fail.
//!
//! The API server is killed and started again as `restart.rs` does it. The
//! controller-manager is restarted with it: after its API server was killed,
//! its informers were seen to keep a stale ReplicaSet status for minutes,
//! which made the rollout, not echo-iac, the thing under test.

#[path = "harness.rs"]
mod harness;
#[path = "restart.rs"]
mod restart;
#[path = "util.rs"]
mod util;

use std::time::{Duration, Instant};

use crate::harness::{TestStack, node_port};
use crate::restart::Process;

/// How long the API server stays down.
const OUTAGE: Duration = Duration::from_secs(10);

/// `up` paused at `point`; the API server goes down; `up` goes on, meets
/// the outage and retries; the server comes back after [`OUTAGE`]; `up`
/// completes and the stack is as if nothing had happened.
fn up_survives_an_api_server_outage_at(point: &str, prefix: &str) {
    let stack = TestStack::new(prefix);
    stack.write(&format!(
        "echo:\n  replicas: 2\n  nodePort: {}\n",
        node_port()
    ));
    let mut up = stack.spawn(
        &["up", "--yes"],
        &[("ECHO_IAC_FAULT", &format!("{point}:pause"))],
    );
    up.wait_for_pause(point);

    let mut server = Process::stop("kube-apiserver");
    let stopped = Instant::now();
    up.signal(libc::SIGUSR1);
    up.wait_for_stderr("retrying for up to", OUTAGE);
    std::thread::sleep(OUTAGE.saturating_sub(stopped.elapsed()));
    server.start();
    Process::stop("kube-controller-manager").start();

    let run = up.wait(Duration::from_secs(300));
    run.assert_code(0)
        .assert_contains("connection refused")
        .assert_contains("the stack is ready");

    let state = stack.state().expect("the state parses");
    assert_eq!(state["pending"], serde_json::json!([]), "{state:#}");
    assert_eq!(state["resources"].as_array().unwrap().len(), 3, "{state:#}");
    assert_eq!(state["outputs"]["readyReplicas"], 2, "{state:#}");
    stack.ok(&["preview", "--expect-no-changes"]);
    stack.ok(&["destroy", "--yes"]);
}

#[test]
fn up_completes_when_the_api_server_restarts_between_applies() {
    up_survives_an_api_server_outage_at("after-apply:1", "outage-apply");
}

#[test]
fn up_completes_when_the_api_server_restarts_while_waiting_for_readiness() {
    up_survives_an_api_server_outage_at("wait:1", "outage-wait");
}

/// The cluster backend's state write meets an API server restart: the
/// stored state is then the revision before the write or the one after,
/// never a mix (each revision is checked against its hash when read), and
/// the next command works. The run itself either completes or, if the
/// outage outlasted its lease, stops saying it lost the lock.
#[test]
fn a_state_write_cut_by_an_api_server_restart_leaves_a_whole_revision() {
    let stack = TestStack::new("outage-state");
    let port = node_port();
    let write = |message: &str| {
        stack.write(&format!(
            "backend: kubernetes://{}\necho:\n  replicas: 1\n  nodePort: {port}\n  message: {message}\n",
            stack.namespace
        ));
    };
    let serial = || -> u64 {
        let run = stack.ok(&["stack", "export"]);
        let state: serde_json::Value = serde_json::from_str(&run.stdout).expect("export is JSON");
        state["serial"].as_u64().expect("a serial")
    };
    write("before");
    stack.ok(&["up", "--yes"]);
    let before = serial();

    write("after");
    let mut up = stack.spawn(
        &["up", "--yes"],
        &[("ECHO_IAC_FAULT", "state-write:1:pause")],
    );
    up.wait_for_pause("state-write:1");
    let mut server = Process::stop("kube-apiserver");
    up.signal(libc::SIGUSR1);
    std::thread::sleep(Duration::from_secs(2));
    server.start();
    let run = up.wait(Duration::from_secs(300));
    assert!(
        run.code == 0 || (run.code == 1 && run.all().contains("lost the lock")),
        "{run}"
    );

    let after = serial();
    assert!(after >= before, "serial went from {before} to {after}");
    stack
        .ok(&["up", "--yes"])
        .assert_contains("the stack is ready");
    stack.ok(&["preview", "--expect-no-changes"]);
    stack.ok(&["destroy", "--yes"]);
}
