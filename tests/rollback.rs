//! `rollback` and `up --rollback-on-failure` on the real node: the pods
//! answer the message of the revision gone back to, what the newer
//! revision added is gone, and the history says what happened.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{TestStack, node_port};
use crate::real_node::{answered_ip, http_get, place_on_real_node, real_node};
use crate::util;

/// `echoes:` with `web` (and `api`, when given a port), placed by the
/// namespace's annotations on the real node.
fn echoes(web: (i32, u32, &str), api: Option<i32>) -> String {
    let (port, replicas, message) = web;
    let mut text = format!(
        "echoes:\n  - name: web\n    replicas: {replicas}\n    nodePort: {port}\n    message: {message}\n"
    );
    if let Some(port) = api {
        text.push_str(&format!(
            "  - name: api\n    replicas: 1\n    nodePort: {port}\n    message: From api\n"
        ));
    }
    text
}

fn serial(stack: &TestStack) -> u64 {
    stack.state().expect("a state")["serial"]
        .as_u64()
        .expect("a serial")
}

/// Waits until ten answers in a row carry `message`.
fn wait_for_message(addr: SocketAddr, message: &str) {
    util::wait_for(
        Duration::from_secs(60),
        &format!("only `{message}` from {addr}"),
        || {
            for _ in 0..10 {
                let (_, body) = http_get(addr)?;
                answered_ip(&body, message).ok_or(format!("answered {body:?}"))?;
            }
            Ok(())
        },
    );
}

fn replicas(stack: &TestStack, deployment: &str) -> Value {
    stack.get("deployment", deployment)["spec"]["replicas"].clone()
}

#[test]
fn rollback_brings_back_the_first_revisions_message_replicas_and_services() {
    let (_, node_ip) = real_node();
    let stack = TestStack::new("rollback");
    place_on_real_node(&stack.namespace);
    let (web_port, api_port) = (node_port(), node_port());
    let web: SocketAddr = format!("{node_ip}:{web_port}").parse().unwrap();

    stack.write(&echoes((web_port, 3, "Message A"), None));
    stack.ok(&["up", "--yes"]);
    let first = serial(&stack);
    wait_for_message(web, "Message A");

    stack.write(&echoes((web_port, 2, "Message B"), Some(api_port)));
    stack.ok(&["up", "--yes"]);
    wait_for_message(web, "Message B");
    assert!(stack.exists("service", "api-service"));

    // The preview of a rollback is the plan back: the added service goes.
    let started = Instant::now();
    let run = stack.ok(&["rollback", "--yes"]);
    let took = started.elapsed();
    run.assert_contains(&format!("Rolling back to revision {first}"))
        .assert_contains(&format!("Rolled back to revision {first}"));
    assert!(
        run.stdout
            .lines()
            .any(|l| l.contains("- ") && l.contains("api-service")),
        "the preview does not delete api-service:\n{run}"
    );
    eprintln!(
        "rollback on the real node: {:.1}s to revision {first}, ready",
        took.as_secs_f64()
    );

    wait_for_message(web, "Message A");
    assert_eq!(replicas(&stack, "web"), 3);
    assert!(!stack.exists("service", "api-service"));
    assert!(!stack.exists("deployment", "api"));
    assert!(!stack.exists("configmap", "api-config"));

    let history = stack.ok(&["stack", "history"]);
    history.assert_contains(&format!("rollback to {first}"));
    // One revision per run: two ups and the rollback, all finished.
    let rows: Vec<&str> = history
        .stdout
        .lines()
        .filter(|l| l.contains(" up") || l.contains(" rollback"))
        .collect();
    assert_eq!(rows.len(), 3, "{history}");
    assert!(rows.iter().all(|r| r.contains("finished")), "{history}");

    // The stack file still says B: preview says so, and plans it again.
    let preview = stack.ok(&["preview"]);
    preview.assert_contains(&format!("is rolled back to revision {first}"));
    assert!(
        preview
            .stdout
            .lines()
            .any(|l| l.contains("+ ") && l.contains("api-service")),
        "preview does not re-create api-service:\n{preview}"
    );
    assert_eq!(stack.plan()["rolledBackTo"], first);
    let listed = stack.ok(&["stack", "ls"]);
    listed.assert_contains(&format!("rolled back to revision {first}"));

    // A revision that is not kept is named with the kept ones.
    let run = stack.run(&["rollback", "--yes", "999"]);
    run.assert_code(1).assert_contains("the kept revisions are");

    // `up` applies the program again and the note goes.
    stack.ok(&["up", "--yes"]);
    wait_for_message(web, "Message B");
    let preview = stack.ok(&["preview"]);
    assert!(!preview.stdout.contains("rolled back"), "{preview}");
    assert!(stack.plan().get("rolledBackTo").is_none());
}

#[test]
fn up_rollback_on_failure_goes_back_while_the_pods_keep_answering() {
    let (_, node_ip) = real_node();
    let stack = TestStack::new("rollback-on-failure");
    place_on_real_node(&stack.namespace);
    let port = node_port();
    let addr: SocketAddr = format!("{node_ip}:{port}").parse().unwrap();
    stack.write(&format!(
        "echo:\n  replicas: 2\n  nodePort: {port}\n  message: Before\n"
    ));
    stack.ok(&["up", "--yes"]);
    let good = serial(&stack);
    wait_for_message(addr, "Before");

    // Ask at least every second, all through the failed up and the rollback.
    let stop = Arc::new(AtomicBool::new(false));
    let asker = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut answers = Vec::new();
            let mut last_ok = Instant::now();
            let mut longest = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                let asked = Instant::now();
                let answer = http_get(addr);
                if answer.is_ok() {
                    longest = longest.max(asked - last_ok);
                    last_ok = Instant::now();
                }
                answers.push(answer);
                thread::sleep(Duration::from_millis(250));
            }
            (answers, longest)
        })
    };

    stack.write(&format!(
        "echo:\n  replicas: 2\n  nodePort: {port}\n  message: After\n  image: nginx:does-not-exist\n"
    ));
    let started = Instant::now();
    let run = stack.run(&[
        "up",
        "--yes",
        "--rollback-on-failure",
        "--wait-grace",
        "10s",
    ]);
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let (answers, longest) = asker.join().unwrap();

    run.assert_code(1)
        .assert_contains("cannot become ready")
        .assert_contains(&format!("Rolling back to revision {good}"))
        .assert_contains(&format!(
            "the stack is back at revision {good}, which is ready"
        ));
    let failed: Vec<&Result<(u16, String), String>> = answers
        .iter()
        .filter(|a| !matches!(a, Ok((200, body)) if answered_ip(body, "Before").is_some()))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of {} answers were not `Before`: {failed:?}",
        failed.len(),
        answers.len()
    );
    assert!(answers.len() > 10, "only {} answers", answers.len());
    eprintln!(
        "up --rollback-on-failure: exited after {:.1}s (wait grace 10s); {} answers, all `Before`; longest gap {:.2}s",
        took.as_secs_f64(),
        answers.len(),
        longest.as_secs_f64()
    );
    assert!(
        took < Duration::from_secs(120),
        "took {took:?} with a 10s wait grace"
    );

    let deployment = stack.get("deployment", "nginx-echo-nodeport");
    assert_eq!(
        deployment["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:alpine"
    );
    let history = stack.ok(&["stack", "history"]);
    history
        .assert_contains("unfinished")
        .assert_contains(&format!("rollback to {good}"));
    let state = stack.state().unwrap();
    assert!(state["pending"].as_array().unwrap().is_empty(), "{state:#}");
    assert_eq!(state["operation"]["rollbackTo"], good);
}

#[test]
fn a_rollback_killed_half_way_finishes_when_run_again() {
    let stack = TestStack::new("rollback-crash");
    let port = node_port();
    let echo =
        |message: &str| format!("echo:\n  replicas: 2\n  nodePort: {port}\n  message: {message}\n");
    let served = |stack: &TestStack| {
        stack.get("configmap", "nginx-echo-config")["data"]["default.conf"]
            .as_str()
            .unwrap()
            .to_string()
    };
    stack.write(&echo("Message A"));
    stack.ok(&["up", "--yes"]);
    let first = serial(&stack);
    stack.write(&echo("Message B"));
    stack.ok(&["up", "--yes"]);

    // Killed after its first apply, before recording it.
    let run = stack.run_env(
        &["rollback", "--yes"],
        &[("ECHO_IAC_FAULT", "after-apply:1")],
    );
    run.assert_killed();
    let state = stack.state().unwrap();
    assert_eq!(state["operation"]["rollbackTo"], first, "{state:#}");
    assert_eq!(state["operation"]["finished"], false, "{state:#}");
    assert!(
        !state["pending"].as_array().unwrap().is_empty(),
        "{state:#}"
    );

    // Run again, it goes on to the same revision (not back to B).
    let again = stack.ok(&["rollback", "--yes"]);
    again
        .assert_contains(&format!("Rolled back to revision {first}"))
        .assert_contains("Recovered");
    assert!(served(&stack).contains("Message A"), "{}", served(&stack));
    let state = stack.state().unwrap();
    assert!(state["pending"].as_array().unwrap().is_empty(), "{state:#}");
    assert_eq!(state["operation"]["finished"], true, "{state:#}");
    let deploy = stack.get("deployment", "nginx-echo-nodeport");
    assert_eq!(deploy["status"]["availableReplicas"], 2, "{deploy:#}");
}

#[test]
fn a_rollback_never_deletes_a_protected_object() {
    let stack = TestStack::new("rollback-protect");
    let (web, api) = (node_port(), node_port());
    stack.write(&echoes((web, 1, "Message A"), None));
    stack.ok(&["up", "--yes"]);
    let protect = format!("protect: [Service/{}/api-service]\n", stack.namespace);
    stack.write(&format!(
        "{protect}{}",
        echoes((web, 1, "Message B"), Some(api))
    ));
    stack.ok(&["up", "--yes"]);

    // Going back would delete api-service, which the stack file protects.
    let run = stack.run(&["rollback", "--yes"]);
    run.assert_code(1)
        .assert_contains("api-service")
        .assert_contains("protect");
    assert!(stack.exists("service", "api-service"));
    let config = stack.get("configmap", "web-config");
    assert!(
        config["data"]["default.conf"]
            .as_str()
            .unwrap()
            .contains("Message B"),
        "the blocked rollback changed web-config: {config:#}"
    );
}
