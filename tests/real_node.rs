//! The seed's own check, for real: on the node that `make cluster-node`
//! starts beside the kwok nodes (a kubelet, containerd and kube-proxy in a
//! network namespace of this machine; see tests/cluster/node-up.sh),
//! `curl http://<node IP>:<node port>` answers `Hello! I am Pod: <pod IP>`.
//!
//! The node is tainted, so that the suite's other pods stay on the kwok
//! nodes. This test's namespace places its pods there with the annotations
//! of the PodNodeSelector and PodTolerationRestriction admission plugins,
//! which tests/cluster/up.sh enables; the stack itself is the seed's.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{TestStack, node_port};
use crate::util;
pub use crate::util::http_get;

/// node-up.sh's node: its label and taint.
pub const NODE_LABEL: &str = "echo-iac.io/node=real";
const NODE_SELECTOR_ANNOTATION: &str = "scheduler.alpha.kubernetes.io/node-selector";
const TOLERATIONS_ANNOTATION: &str = "scheduler.alpha.kubernetes.io/defaultTolerations";
const TOLERATION: &str =
    r#"[{"key":"echo-iac.io/node","operator":"Equal","value":"real","effect":"NoSchedule"}]"#;

/// The real node's name and InternalIP; panics with how to start it when it
/// is missing or not Ready.
pub fn real_node() -> (String, String) {
    const HOW: &str = "the real node is not running: run `make cluster-node` \
        (as root, after `make cluster`), or `make test`, which starts it";
    let nodes = util::kubectl_json(&["get", "nodes", "-l", NODE_LABEL]);
    let node = nodes["items"]
        .as_array()
        .and_then(|items| items.first())
        .unwrap_or_else(|| panic!("no node labelled {NODE_LABEL}; {HOW}"));
    let name = node["metadata"]["name"].as_str().unwrap_or("?").to_string();
    let ready = node["status"]["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
        .map(|c| c["status"] == "True")
        .unwrap_or(false);
    assert!(ready, "node {name} is not Ready; {HOW}");
    let ip = node["status"]["addresses"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["type"] == "InternalIP"))
        .and_then(|a| a["address"].as_str())
        .unwrap_or_else(|| panic!("node {name} has no InternalIP; {HOW}"))
        .to_string();
    (name, ip)
}

/// The curl image, as the real node's kubelet lists it: node-up.sh imports
/// `localhost/echo-iac/curl:<Debian version>`, so the tests follow whatever
/// version the node was built with.
pub fn curl_image(node: &str) -> String {
    let node = util::kubectl_json(&["get", "node", node]);
    node["status"]["images"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|image| image["names"].as_array().into_iter().flatten())
        .filter_map(Value::as_str)
        .find(|name| name.starts_with("localhost/echo-iac/curl:"))
        .unwrap_or_else(|| {
            panic!(
                "the real node {node} has no localhost/echo-iac/curl image; \
                 restart it with this checkout's scripts: make cluster-node"
            )
        })
        .to_string()
}

/// The IPs of the Deployment's pods that are Running.
fn pod_ips(stack: &TestStack) -> BTreeSet<String> {
    let pods = stack.echo_pods();
    pods.iter()
        .filter(|p| p["status"]["phase"] == "Running")
        .filter_map(|p| p["status"]["podIP"].as_str().map(str::to_string))
        .collect()
}

/// The pod IP in an answer `<message>: <ip>\n`, if it is one.
pub fn answered_ip<'a>(body: &'a str, message: &str) -> Option<&'a str> {
    body.strip_suffix('\n')?
        .strip_prefix(message)?
        .strip_prefix(": ")
}

/// Sends `count` requests; every one must be `200 <message>: <ip>` with the
/// IP of one of the Deployment's pods. Returns the pod IPs that answered.
fn answers_from_pods(
    stack: &TestStack,
    addr: SocketAddr,
    message: &str,
    count: usize,
) -> BTreeSet<String> {
    let pods = pod_ips(stack);
    let mut seen = BTreeSet::new();
    for _ in 0..count {
        let (status, body) = http_get(addr).unwrap_or_else(|e| panic!("GET http://{addr}/: {e}"));
        assert_eq!(
            status, 200,
            "GET http://{addr}/ answered {status}: {body:?}"
        );
        let ip = answered_ip(&body, message).unwrap_or_else(|| {
            panic!("GET http://{addr}/ answered {body:?}, not \"{message}: <pod IP>\"")
        });
        assert!(
            pods.contains(ip),
            "GET http://{addr}/ answered from {ip}, which is not one of the pods {pods:?}"
        );
        seen.insert(ip.to_string());
    }
    seen
}

/// Makes the namespace's pods run on the real node (see the module doc).
pub fn place_on_real_node(namespace: &str) {
    util::kubectl_ok(&[
        "annotate",
        "namespace",
        namespace,
        &format!("{NODE_SELECTOR_ANNOTATION}={NODE_LABEL}"),
        &format!("{TOLERATIONS_ANNOTATION}={TOLERATION}"),
    ]);
}

/// The stack-file lines that place the echo pods on the real node, for a
/// namespace the stack creates (and so cannot annotate beforehand).
pub const ON_REAL_NODE: &str = "  nodeSelector:\n    echo-iac.io/node: real\n  tolerations:\n    - {key: echo-iac.io/node, operator: Equal, value: real, effect: NoSchedule}\n";

#[test]
fn the_seed_stack_answers_on_the_real_nodes_node_port() {
    let (node, node_ip) = real_node();
    let stack = TestStack::new("real-node");
    place_on_real_node(&stack.namespace);
    let port = node_port();
    let addr: SocketAddr = format!("{node_ip}:{port}").parse().unwrap();
    stack.write(&format!("echo:\n  replicas: 3\n  nodePort: {port}\n"));

    // up: the seed's stack, unchanged but for the node port.
    let start = Instant::now();
    stack.ok(&["up", "--yes"]);
    let up_took = start.elapsed();
    let pods = stack.echo_pods();
    for pod in &pods {
        assert_eq!(
            pod["spec"]["nodeName"], node,
            "pod {} is not on the real node {node}: the API server needs \
             --enable-admission-plugins=PodNodeSelector,PodTolerationRestriction \
             (tests/cluster/up.sh sets it; restart with `make cluster-down cluster`)",
            pod["metadata"]["name"]
        );
    }
    let url = format!("http://{node_ip}:{port}");
    let state = stack.state().expect("up wrote the state");
    assert!(
        state["outputs"]["urls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u.as_str() == Some(&url)),
        "the outputs do not list {url}: {:#}",
        state["outputs"]
    );

    let first = util::wait_for(
        Duration::from_secs(60),
        &format!("an answer from {url}"),
        || http_get(addr),
    );
    eprintln!(
        "real node: `up` took {:.1}s; first answer from {url} after {:.1}s: {} {:?}",
        up_took.as_secs_f64(),
        start.elapsed().as_secs_f64(),
        first.0,
        first.1
    );
    // kube-proxy applies endpoint changes at most once a second, so the
    // first answers may all come from the first pod that was ready.
    util::wait_for(
        Duration::from_secs(30),
        "answers from more than one pod",
        || {
            let seen = answers_from_pods(&stack, addr, "Hello! I am Pod", 30);
            if seen.len() > 1 {
                Ok(())
            } else {
                Err(format!("30 requests to {url} all reached {seen:?}"))
            }
        },
    );

    // A new message rolls the pods; once the rollout is done every answer
    // has it.
    stack.write(&format!(
        "echo:\n  replicas: 3\n  nodePort: {port}\n  message: Hi from the real node\n"
    ));
    stack.ok(&["up", "--yes"]);
    util::wait_for(Duration::from_secs(60), "only the new message", || {
        for _ in 0..10 {
            let (_, body) = http_get(addr)?;
            answered_ip(&body, "Hi from the real node").ok_or(format!("answered {body:?}"))?;
        }
        Ok(())
    });
    answers_from_pods(&stack, addr, "Hi from the real node", 30);

    // destroy: the port no longer answers.
    stack.ok(&["destroy", "--yes"]);
    util::wait_for(
        Duration::from_secs(30),
        &format!("{url} to stop answering"),
        || match http_get(addr) {
            Err(_) => Ok(()),
            Ok(answer) => Err(format!("it still answers {answer:?}")),
        },
    );
    let left: Value = util::kubectl_json(&["get", "pods", "-n", &stack.namespace]);
    assert!(
        left["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| !p["metadata"]["deletionTimestamp"].is_null()),
        "pods left after destroy: {left:#}"
    );
}
