//! `echo-iac graph` and the outputs per service type, against the control
//! plane with its kwok nodes: kwok's pods get IPs and become Ready, which
//! is all a drawing and the outputs read.

use serde_json::Value;

use crate::harness::{TestStack, node_port};
use crate::util;

/// The live pods of the stack's Deployment: (name, IP).
fn live_pods(stack: &TestStack, app: &str) -> Vec<(String, String)> {
    let pods = util::kubectl_json(&[
        "get",
        "pods",
        "-n",
        &stack.namespace,
        "-l",
        &format!("app={app}"),
    ]);
    pods["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap().to_string(),
                p["status"]["podIP"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn graph_names_the_configmap_deployment_service_and_each_live_pod() {
    let stack = TestStack::new("graph");
    let port = node_port();
    stack.write(&format!("echo:\n  replicas: 2\n  nodePort: {port}\n"));
    stack.ok(&["up", "--yes"]);
    let pods = live_pods(&stack, "echo-nodeport");
    assert_eq!(pods.len(), 2, "{pods:?}");

    let mermaid = stack.ok(&["graph"]).stdout;
    assert!(mermaid.starts_with("flowchart TD\n"), "{mermaid}");
    for needle in [
        format!("namespace {}", stack.namespace),
        "CM0[\"ConfigMap: nginx-echo-config\"]".to_string(),
        "Deploy0[\"Deployment: nginx-echo-nodeport (2/2 ready)\"]".to_string(),
        format!("Service: echo-nodeport-service<br/>NodePort, port 80 → 80, nodePort {port}"),
        "CM0 -->|\"Mounts /etc/nginx/conf.d\"| Deploy0".to_string(),
        "Deploy0 -->|\"Selects app: echo-nodeport\"| Svc0".to_string(),
        "Test0[\"Test Pod: curl\"] -->|\"curl http://echo-nodeport-service\"| Svc0".to_string(),
    ] {
        assert!(mermaid.contains(&needle), "no {needle:?} in:\n{mermaid}");
    }
    for (name, ip) in &pods {
        assert!(!ip.is_empty(), "pod {name} has no IP");
        let line = format!("Pod: {name}<br/>{ip}, ready");
        assert!(mermaid.contains(&line), "no {line:?} in:\n{mermaid}");
    }

    let dot = stack.ok(&["graph", "--format", "dot"]).stdout;
    assert!(dot.starts_with("digraph echo {"), "{dot}");
    assert!(
        dot.contains("label=\"ConfigMap: nginx-echo-config\"")
            && dot.contains("label=\"Deployment: nginx-echo-nodeport (2/2 ready)\"")
            && dot.contains("label=\"Service: echo-nodeport-service\\nNodePort"),
        "{dot}"
    );
    for (name, ip) in &pods {
        let label = format!("label=\"Pod: {name}\\n{ip}, ready\"");
        assert!(dot.contains(&label), "no {label:?} in:\n{dot}");
    }

    // Scaled down outside echo-iac: the drawing is of what is live.
    util::kubectl_ok(&[
        "scale",
        "deployment/nginx-echo-nodeport",
        "--replicas=1",
        "-n",
        &stack.namespace,
    ]);
    util::wait_for(
        std::time::Duration::from_secs(30),
        "one pod in the drawing",
        || {
            let mermaid = stack.run(&["graph"]).stdout;
            let drawn = mermaid.matches("Pod: nginx-echo-nodeport-").count();
            if drawn == 1 && mermaid.contains("(1/1 ready)") {
                Ok(())
            } else {
                Err(format!("{drawn} pods drawn:\n{mermaid}"))
            }
        },
    );
}

#[test]
fn graph_offline_draws_the_declared_stack_without_a_cluster() {
    let stack = TestStack::new("graph-offline");
    // No cluster behind this kubeconfig: only --offline can work.
    stack.project.write_stack(
        "dev",
        &format!(
            "kubeconfig: {}/nowhere\nnamespace: {}\n\
             echoes:\n  - name: web\n    replicas: 4\n    serviceType: LoadBalancer\n    nodePort: 31999\n  \
             - name: api\n    serviceType: ClusterIP\n",
            stack.project.root().display(),
            stack.namespace
        ),
    );
    let run = stack.ok(&["graph", "--offline"]);
    for needle in [
        "(declared)",
        "ConfigMap: web-config",
        "Deployment: web (4 replicas)",
        "4 pod(s), not read (offline)",
        "Service: web-service<br/>LoadBalancer, port 80 → 80, nodePort 31999<br/>load balancer: no address yet",
        "Service: api-service<br/>ClusterIP, port 80 → 80\"",
        "curl http://api-service",
    ] {
        assert!(run.stdout.contains(needle), "no {needle:?} in:\n{run}");
    }
    let dot = stack.ok(&["graph", "--offline", "--format", "dot"]).stdout;
    assert!(dot.contains("subgraph cluster_deployment1"), "{dot}");
    stack
        .run(&["graph"])
        .assert_code(1)
        .assert_contains("no kubeconfig found");
}

#[test]
fn outputs_list_what_each_service_type_offers() {
    let stack = TestStack::new("outputs-types");
    let port = node_port();
    stack.write(&format!("echo:\n  replicas: 1\n  nodePort: {port}\n"));
    stack.ok(&["up", "--yes"]);
    let outputs = stack.state().unwrap()["outputs"].clone();
    let cluster_url = format!(
        "http://echo-nodeport-service.{}.svc.cluster.local",
        stack.namespace
    );
    assert_eq!(outputs["serviceType"], "NodePort", "{outputs:#}");
    assert_eq!(outputs["clusterUrl"], cluster_url.as_str(), "{outputs:#}");
    assert_eq!(outputs["nodePort"], port, "{outputs:#}");
    let urls = outputs["urls"].as_array().unwrap();
    assert!(
        !urls.is_empty()
            && urls
                .iter()
                .all(|u| u.as_str().unwrap().ends_with(&format!(":{port}"))),
        "{outputs:#}"
    );
    assert!(outputs.get("loadBalancerUrl").is_none(), "{outputs:#}");
    assert_eq!(
        stack.ok(&["output", "nodePort"]).stdout.trim(),
        port.to_string()
    );
    assert_eq!(
        stack.ok(&["output", "clusterUrl"]).stdout.trim(),
        cluster_url
    );

    // ClusterIP: reached inside the cluster only, so no node port and no
    // node URLs, and `output nodePort` says what there is instead.
    stack.write("echo:\n  replicas: 1\n  serviceType: ClusterIP\n");
    stack.ok(&["up", "--yes"]);
    let outputs = stack.state().unwrap()["outputs"].clone();
    assert_eq!(outputs["serviceType"], "ClusterIP", "{outputs:#}");
    assert_eq!(outputs["clusterUrl"], cluster_url.as_str(), "{outputs:#}");
    for absent in ["nodePort", "urls", "loadBalancerUrl"] {
        assert!(outputs.get(absent).is_none(), "{absent}: {outputs:#}");
    }
    stack
        .run(&["output", "nodePort"])
        .assert_code(1)
        .assert_contains("outputs are: clusterUrl, namespace, readyReplicas, serviceType");

    // Two services: each under `services`, by name, with its own type.
    let port = node_port();
    stack.write(&format!(
        "echoes:\n  - name: web\n    replicas: 1\n    nodePort: {port}\n  \
         - name: api\n    replicas: 1\n    serviceType: ClusterIP\n"
    ));
    let up = stack.ok(&["up", "--yes"]);
    // Shown as a table, one row each, not as a line of JSON.
    up.assert_contains("services   2 entries:");
    let row = up
        .stdout
        .lines()
        .find(|l| {
            l.trim_start()
                .starts_with("web-service  http://web-service.")
        })
        .unwrap_or_else(|| panic!("no row for web-service: {up}"));
    assert!(row.contains(&port.to_string()), "{row}");
    assert!(!up.stdout.contains("{\""), "{up}");
    let services: Value = stack.state().unwrap()["outputs"]["services"].clone();
    assert_eq!(services["web-service"]["serviceType"], "NodePort");
    assert_eq!(services["web-service"]["nodePort"], port);
    assert_eq!(
        services["api-service"]["clusterUrl"],
        format!("http://api-service.{}.svc.cluster.local", stack.namespace).as_str()
    );
    assert!(
        services["api-service"].get("urls").is_none(),
        "{services:#}"
    );
}
