//! `echo-iac test` on the real node (tests/real_node.rs has how it runs):
//! its curl pod asks each Service by name through cluster DNS (CoreDNS), and
//! a LoadBalancer Service gets an address from MetalLB's pool. Needs the
//! real node with its add-ons (node-up.sh starts them); like every cluster
//! test it fails, never skips, without them. The last two tests need only
//! the control plane: on kwok's nodes no container runs.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use crate::harness::{TestStack, node_port, plan_changes, step};
use crate::real_node::{ON_REAL_NODE, curl_image, http_get, real_node};
use crate::util;

const TEST_POD_LABEL: &str = "echo-iac.io/test-of";

/// Cluster DNS must be there for the curl pod to find the Service by name.
fn cluster_dns() {
    let dns = util::kubectl(&["get", "service", "kube-dns", "-n", "kube-system"]);
    assert!(
        dns.status.success(),
        "the cluster has no kube-system/kube-dns Service: the real node's add-ons \
         (CoreDNS, MetalLB) are not running; restart it with `make cluster-node`"
    );
}

/// The stack file: one echo service of `service_type` on the real node.
fn echo_section(service_type: &str, node_port: Option<i32>, image: &str) -> String {
    let port = node_port
        .map(|p| format!("  nodePort: {p}\n"))
        .unwrap_or_default();
    format!(
        "echo:\n  replicas: 3\n  serviceType: {service_type}\n{port}  \
         testImage: {image}\n{ON_REAL_NODE}"
    )
}

/// Runs `echo-iac test --json` until it passes with answers from at least
/// two pods (kube-proxy applies new endpoints at most once a second, so the
/// first run after `up` may reach only the first pod that was ready).
fn test_passes_with_two_pods(stack: &TestStack) -> Value {
    util::wait_for(
        Duration::from_secs(60),
        "`echo-iac test` to pass with answers from 2 or more pods",
        || {
            let run = stack.run(&["test", "--json"]);
            let report: Value =
                serde_json::from_str(&run.stdout).map_err(|e| format!("not JSON ({e}):\n{run}"))?;
            let service = &report["services"][0];
            if run.code == 0
                && report["passed"] == true
                && service["distinctPods"].as_u64().unwrap_or(0) >= 2
            {
                Ok(report)
            } else {
                Err(format!("{run}"))
            }
        },
    )
}

fn assert_report(report: &Value, requests: usize) {
    let service = &report["services"][0];
    assert_eq!(service["service"], "echo-nodeport-service", "{report:#}");
    assert_eq!(service["url"], "http://echo-nodeport-service", "{report:#}");
    assert_eq!(service["requests"], requests, "{report:#}");
    assert_eq!(service["ok"], requests, "{report:#}");
    let answers = service["answers"].as_array().unwrap();
    assert_eq!(answers.len(), requests, "{report:#}");
    for answer in answers {
        let body = answer["body"].as_str().unwrap();
        assert!(
            body.starts_with("Hello! I am Pod: ") && answer["podName"].is_string(),
            "{answer:#}"
        );
    }
}

/// No test pod is left once `echo-iac test` has returned.
fn assert_no_test_pods(stack: &TestStack) {
    let left = util::kubectl_json(&["get", "pods", "-n", &stack.namespace, "-l", TEST_POD_LABEL]);
    assert_eq!(
        left["items"].as_array().unwrap().len(),
        0,
        "test pods left: {left:#}"
    );
}

fn destroy(stack: &TestStack) {
    stack.ok(&["destroy", "--yes"]);
}

/// Runs one type end to end: up, `echo-iac test` passes with two or more
/// pods, the text report has one line per answer, and no pod is left.
fn passes_for(service_type: &str, prefix: &str) -> TestStack {
    let (node, _) = real_node();
    cluster_dns();
    let stack = TestStack::new(prefix);
    let port = (service_type != "ClusterIP").then(node_port);
    stack.write(&echo_section(service_type, port, &curl_image(&node)));
    stack.ok(&["up", "--yes"]);
    let pods = stack.echo_pods();
    for pod in &pods {
        assert_eq!(pod["spec"]["nodeName"], node.as_str(), "{pod:#}");
    }
    let report = test_passes_with_two_pods(&stack);
    assert_report(&report, 10);
    assert_no_test_pods(&stack);
    let text = stack.ok(&["test", "--requests", "4"]);
    assert_eq!(
        text.stdout.matches("Hello! I am Pod: ").count(),
        4,
        "{text}"
    );
    text.assert_contains("4/4 answers from a live pod");
    assert_no_test_pods(&stack);
    stack
}

#[test]
fn echo_iac_test_passes_for_a_cluster_ip_service() {
    let stack = passes_for("ClusterIP", "test-clusterip");
    destroy(&stack);
}

#[test]
fn echo_iac_test_passes_for_a_node_port_service() {
    let stack = passes_for("NodePort", "test-nodeport");
    destroy(&stack);
}

#[test]
fn echo_iac_test_passes_for_a_load_balancer_service_and_its_address_answers() {
    let stack = passes_for("LoadBalancer", "test-lb");
    let outputs = util::wait_for(Duration::from_secs(30), "a loadBalancerUrl output", || {
        // `up` records the outputs again, with the address once MetalLB
        // has assigned one.
        let run = stack.ok(&["up", "--yes"]);
        let outputs = stack.state().unwrap()["outputs"].clone();
        outputs["loadBalancerUrl"]
            .is_string()
            .then_some(outputs.clone())
            .ok_or(format!("{run}"))
    });
    let url = outputs["loadBalancerUrl"].as_str().unwrap();
    let ip = url.strip_prefix("http://").expect("an http URL");
    assert!(ip.starts_with("10.213.0."), "not in MetalLB's pool: {url}");
    let addr: SocketAddr = format!("{ip}:80").parse().unwrap();
    let (status, body) = util::wait_for(Duration::from_secs(30), url, || http_get(addr));
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("Hello! I am Pod: "), "{body:?}");
    destroy(&stack);
}

#[test]
fn load_balancer_to_cluster_ip_is_an_update_and_the_node_port_stops_answering() {
    let (node, node_ip) = real_node();
    cluster_dns();
    let image = curl_image(&node);
    let stack = TestStack::new("test-lb-to-clusterip");
    let port = node_port();
    stack.write(&echo_section("LoadBalancer", Some(port), &image));
    stack.ok(&["up", "--yes"]);
    test_passes_with_two_pods(&stack);
    let addr: SocketAddr = format!("{node_ip}:{port}").parse().unwrap();
    util::wait_for(Duration::from_secs(30), "the node port to answer", || {
        http_get(addr)
    });

    stack.write(&echo_section("ClusterIP", None, &image));
    let plan = stack.plan();
    let changes = plan_changes(&plan);
    assert!(
        changes.contains(&step("update", "Service", "echo-nodeport-service")),
        "{plan:#}"
    );
    assert!(
        !changes.iter().any(|(op, _, _)| op == "replace"),
        "{plan:#}"
    );
    stack.ok(&["up", "--yes"]);
    util::wait_for(
        Duration::from_secs(30),
        &format!("{addr} to stop answering"),
        || match http_get(addr) {
            Err(_) => Ok(()),
            Ok(answer) => Err(format!("it still answers {answer:?}")),
        },
    );
    let report = test_passes_with_two_pods(&stack);
    assert_report(&report, 10);
    destroy(&stack);
}

#[test]
fn echo_iac_test_fails_on_a_test_image_that_cannot_be_pulled_and_leaves_no_pod() {
    real_node();
    cluster_dns();
    let stack = TestStack::new("test-bad-image");
    stack.write(&echo_section(
        "ClusterIP",
        None,
        "localhost/echo-iac/no-such-curl:1",
    ));
    stack.ok(&["up", "--yes"]);
    stack
        .run(&["test", "--timeout", "60s"])
        .assert_code(1)
        .assert_contains("cannot start")
        .assert_contains("testImage");
    assert_no_test_pods(&stack);
    destroy(&stack);
}

#[test]
fn echo_iac_test_interrupted_deletes_its_pod_and_exits_130() {
    let (node, _) = real_node();
    cluster_dns();
    let stack = TestStack::new("test-interrupt");
    let section = echo_section("ClusterIP", None, &curl_image(&node));
    stack.write(&section);
    stack.ok(&["up", "--yes"]);
    // A node selector no node matches (the stack is not brought up with
    // it, so only the test pod gets it): the run is still waiting for the
    // pod to be scheduled when the interrupt comes.
    stack.write(&section.replace("echo-iac.io/node: real", "echo-iac.io/node: nowhere"));
    let running = stack.spawn(&["test", "--timeout", "2m"], &[]);
    util::wait_for(Duration::from_secs(30), "the test pod", || {
        let pods =
            util::kubectl_json(&["get", "pods", "-n", &stack.namespace, "-l", TEST_POD_LABEL]);
        (!pods["items"].as_array().unwrap().is_empty())
            .then_some(())
            .ok_or("no test pod yet".to_string())
    });
    running.signal(libc::SIGINT);
    let run = running.wait(Duration::from_secs(30));
    run.assert_code(130).assert_contains("was deleted");
    assert_no_test_pods(&stack);
    destroy(&stack);
}

#[test]
fn echo_iac_test_before_up_says_to_run_up() {
    let stack = TestStack::new("test-before-up");
    stack.write("echo:\n  replicas: 1\n  serviceType: ClusterIP\n");
    stack
        .run(&["test"])
        .assert_code(1)
        .assert_contains("echo-nodeport-service does not exist")
        .assert_contains("run `echo-iac up` first");
}

#[test]
fn echo_iac_test_times_out_on_a_pod_that_never_finishes_and_deletes_it() {
    // kwok runs no container, so its curl pod stays Running for ever.
    let stack = TestStack::new("test-timeout");
    stack.write("echo:\n  replicas: 1\n  serviceType: ClusterIP\n");
    stack.ok(&["up", "--yes"]);
    stack
        .run(&["test", "--timeout", "3s"])
        .assert_code(1)
        .assert_contains("did not finish in time: phase Running on node kwok-node-")
        .assert_contains("--timeout");
    assert_no_test_pods(&stack);
}

#[test]
fn echo_iac_test_on_a_node_that_starts_no_containers_says_so_within_seconds() {
    // kwok reports the curl pod Running, and no container ever writes a line.
    let stack = TestStack::new("test-no-output");
    stack.write("echo:\n  replicas: 1\n  serviceType: ClusterIP\n");
    stack.ok(&["up", "--yes"]);
    let start = std::time::Instant::now();
    let run = stack.run(&["test", "--timeout", "2m"]);
    let took = start.elapsed();
    run.assert_code(1)
        .assert_contains("has written no output")
        .assert_contains("on node kwok-node-")
        .assert_contains("may start no containers");
    assert!(took < Duration::from_secs(30), "took {took:?}: {run}");
    assert_no_test_pods(&stack);
}
