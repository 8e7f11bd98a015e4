//! The local control plane (`make cluster`) is a real Kubernetes 1.36 API
//! server whose fake nodes run pods: what the rest of the suite relies on.

use std::time::Duration;

use serde_json::Value;

use crate::util::{TestNamespace, kubectl_json, kubectl_ok, try_apply_yaml, wait_for};

/// The seed's three manifests as published (`seed_with_node_port` moves the
/// node port).
const SEED: &str = include_str!("fixtures/seed.yaml");

/// Node ports are allocated cluster-wide while tests run in parallel, each in
/// its own namespace, so no test may use the seed's 30007. Every test that
/// needs a node port reserves its own here.
const SEED_TEST_NODE_PORT: u16 = 30100;
const ALLOCATION_TEST_NODE_PORT: u16 = 30101;

fn seed_with_node_port(port: u16) -> String {
    let seed = SEED.replace("nodePort: 30007", &format!("nodePort: {port}"));
    assert_ne!(seed, SEED, "the seed's nodePort line moved");
    seed
}

fn node_port_service(name: &str, port: u16) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  type: NodePort\n  \
         selector:\n    app: {name}\n  ports:\n    - port: 80\n      nodePort: {port}\n"
    )
}

/// Applies `yaml`, waiting while its node port is still held by a Service of
/// an earlier run whose namespace is being deleted.
fn apply_when_node_port_free(ns: &TestNamespace, yaml: &str) {
    wait_for(Duration::from_secs(30), "the node port to be free", || {
        let output = try_apply_yaml(ns, yaml);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        if output.status.success() {
            Ok(())
        } else if stderr.contains("provided port is already allocated") {
            Err(stderr)
        } else {
            panic!("kubectl apply failed ({}): {stderr}", output.status)
        }
    })
}

fn condition_status<'a>(object: &'a Value, kind: &str) -> Option<&'a str> {
    object["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)?["status"]
        .as_str()
}

#[test]
fn nodes_are_ready_and_server_is_1_36() {
    // The kwok nodes; the real node (`make cluster-node`) may run beside them.
    let nodes = kubectl_json(&["get", "nodes", "-l", "type=kwok"]);
    let nodes = nodes["items"].as_array().expect("a node list");
    assert_eq!(nodes.len(), 3, "expected the 3 kwok nodes: {nodes:#?}");
    for node in nodes {
        let name = node["metadata"]["name"].as_str().unwrap_or("?");
        assert_eq!(
            condition_status(node, "Ready"),
            Some("True"),
            "node {name} is not Ready"
        );
        let internal_ip = node["status"]["addresses"]
            .as_array()
            .and_then(|a| a.iter().find(|a| a["type"] == "InternalIP"))
            .and_then(|a| a["address"].as_str())
            .unwrap_or_else(|| panic!("node {name} has no InternalIP"));
        assert!(
            internal_ip.starts_with("127."),
            "node {name} has a non-loopback InternalIP {internal_ip}"
        );
    }

    let version: Value =
        serde_json::from_str(&kubectl_ok(&["version", "-o", "json"])).expect("version JSON");
    let server = version["serverVersion"]["gitVersion"]
        .as_str()
        .unwrap_or_default();
    assert!(
        server.starts_with("v1.36."),
        "server version is {server:?}, expected v1.36.x"
    );
}

#[test]
fn seed_manifests_become_available_with_three_ready_endpoints() {
    let ns = TestNamespace::new("control-plane-seed");
    apply_when_node_port_free(&ns, &seed_with_node_port(SEED_TEST_NODE_PORT));

    wait_for(Duration::from_secs(60), "3 available replicas", || {
        let deployment =
            kubectl_json(&["get", "deployment", "nginx-echo-nodeport", "-n", ns.name()]);
        let available = deployment["status"]["availableReplicas"]
            .as_i64()
            .unwrap_or(0);
        if available == 3 {
            Ok(())
        } else {
            Err(format!("{available} available: {}", deployment["status"]))
        }
    });
    wait_for(Duration::from_secs(60), "3 ready endpoints", || {
        let slices = kubectl_json(&[
            "get",
            "endpointslices",
            "-n",
            ns.name(),
            "-l",
            "kubernetes.io/service-name=echo-nodeport-service",
        ]);
        let ready = slices["items"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|slice| slice["endpoints"].as_array().into_iter().flatten())
            .filter(|endpoint| endpoint["conditions"]["ready"] == true)
            .count();
        if ready == 3 {
            Ok(())
        } else {
            Err(format!("{ready} ready endpoints: {slices}"))
        }
    });

    let service = kubectl_json(&["get", "service", "echo-nodeport-service", "-n", ns.name()]);
    assert_eq!(service["spec"]["ports"][0]["nodePort"], SEED_TEST_NODE_PORT);
    let pods = kubectl_json(&["get", "pods", "-n", ns.name(), "-l", "app=echo-nodeport"]);
    let pods = pods["items"].as_array().expect("a pod list");
    assert_eq!(pods.len(), 3);
    for pod in pods {
        assert_eq!(
            pod["status"]["phase"], "Running",
            "pod {}",
            pod["metadata"]["name"]
        );
    }
}

#[test]
fn a_second_service_cannot_take_an_allocated_node_port() {
    let ns = TestNamespace::new("control-plane-node-port");
    apply_when_node_port_free(&ns, &node_port_service("first", ALLOCATION_TEST_NODE_PORT));

    let output = try_apply_yaml(&ns, &node_port_service("second", ALLOCATION_TEST_NODE_PORT));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "the second Service was accepted");
    assert!(
        stderr.contains("provided port is already allocated"),
        "unexpected rejection: {stderr}"
    );
    let services = kubectl_ok(&["get", "services", "-n", ns.name(), "-o", "name"]);
    assert_eq!(services.trim(), "service/first");
}
