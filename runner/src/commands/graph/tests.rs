//! The generic drawing on a stack that is not echo's: a quorum of members
//! (a StatefulSet) behind a headless Service, with their settings in a
//! ConfigMap, their password in a Secret and a disruption budget.

use serde_json::{Value, json};

use super::*;
use echo_iac_engine::Identity;
use echo_iac_engine::declare::Resources;

const NS: &str = "quorum-dev";

fn quorum() -> Vec<DesiredResource> {
    let meta = |name: &str| json!({"name": name, "namespace": NS});
    let mut resources = Resources::new(&Identity::new("quorum-iac"), "dev");
    resources.add(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}));
    resources.add(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta("quorum"),
        "spec": {
            "serviceName": "quorum",
            "replicas": 3,
            "selector": {"matchLabels": {"app": "quorum"}},
            "template": {
                "metadata": {"labels": {"app": "quorum"}},
                "spec": {
                    "containers": [{
                        "name": "member",
                        "image": "busybox",
                        "env": [{"name": "MEMBER_PASSWORD",
                                 "valueFrom": {"secretKeyRef": {"name": "quorum-auth", "key": "password"}}}],
                        "volumeMounts": [{"name": "config", "mountPath": "/config"}],
                    }],
                    "volumes": [{"name": "config", "configMap": {"name": "quorum-config"}}],
                },
            },
        },
    }));
    resources.add(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("quorum-config"),
                         "data": {"index.html": "hello"}}),
    );
    resources.add(
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta("quorum-auth"),
                         "stringData": {"password": "not drawn"}}),
    );
    resources.add(
        json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("quorum"),
                         "spec": {"clusterIP": "None", "selector": {"app": "quorum"},
                                  "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}}),
    );
    resources.add(json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": meta("quorum"),
                         "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "quorum"}}}}));
    resources.finish().unwrap()
}

fn pod(name: &str, ip: &str, ready: bool) -> Value {
    json!({
        "metadata": {"name": name},
        "status": {"podIP": ip, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]},
    })
}

fn live_quorum(desired: &[DesiredResource]) -> LiveObjects {
    let mut live = LiveObjects::new();
    for resource in desired {
        let mut object = resource.object.clone();
        if resource.id.kind == "StatefulSet" {
            object["status"] = json!({"readyReplicas": 1});
            live = live.pods(
                &resource.id,
                vec![
                    pod("quorum-1", "10.214.0.8", false),
                    pod("quorum-0", "10.214.0.7", true),
                ],
            );
        }
        // The budget was deleted outside the program.
        if resource.id.kind != "PodDisruptionBudget" {
            live = live.object(object);
        }
    }
    live
}

#[test]
fn a_stateful_set_stack_is_drawn_from_its_references_and_selectors() {
    let desired = quorum();
    let graph = Graph::new("quorum", NS, &desired, &[], Some(&live_quorum(&desired)));
    insta::assert_snapshot!(graph.mermaid(), @r#"
    flowchart TD
        subgraph Cluster["Kubernetes Cluster: namespace quorum-dev"]
            direction TB

            CM0["ConfigMap: quorum-config"]
            Secret0["Secret: quorum-auth"]
            Svc0["Service: quorum<br/>ClusterIP (headless), port 80 → http"]
            PDB0["PodDisruptionBudget: quorum (missing)"]
            subgraph Sts0["StatefulSet: quorum (1/3 ready)"]
                Pod0_0["Pod: quorum-0<br/>10.214.0.7, ready"]
                Pod0_1["Pod: quorum-1<br/>10.214.0.8, not ready"]
            end
            CM0 -->|"Mounts /config"| Sts0
            Secret0 -->|"Env MEMBER_PASSWORD"| Sts0
            Sts0 -->|"Selects app: quorum"| Svc0
            Sts0 -->|"Selects app: quorum"| PDB0
        end

        style CM0 fill:#fff3e0,stroke:#e65100
        style Secret0 fill:#fce4ec,stroke:#880e4f
        style Svc0 fill:#e0f2f1,stroke:#00695c
        style Sts0 fill:#e1f5fe,stroke:#01579b
    "#);
    let dot = graph.dot();
    assert!(dot.starts_with("digraph quorum {"), "{dot}");
    for needle in [
        "subgraph cluster_statefulset0 {",
        "pod0_0 -> svc0 [label=\"Selects app: quorum\", ltail=cluster_statefulset0];",
        "cm0 -> pod0_0 [label=\"Mounts /config\", lhead=cluster_statefulset0];",
        "pdb0 [label=\"PodDisruptionBudget: quorum (missing)\"];",
    ] {
        assert!(dot.contains(needle), "no {needle:?} in:\n{dot}");
    }
    assert!(!dot.contains("not drawn") && !graph.mermaid().contains("not drawn"));
}

#[test]
fn offline_a_stack_without_smoke_tests_draws_no_test_pod() {
    let desired = quorum();
    let graph = Graph::new("quorum", NS, &desired, &[], None);
    let mermaid = graph.mermaid();
    assert!(
        mermaid.contains("namespace quorum-dev (declared)"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("StatefulSet: quorum (3 replicas)"),
        "{mermaid}"
    );
    assert!(
        mermaid.contains("Pods0[\"3 pod(s), not read (offline)\"]"),
        "{mermaid}"
    );
    assert!(!mermaid.contains("Test"), "{mermaid}");
    assert!(!graph.dot().contains("test0"));
}

#[test]
fn a_smoke_test_draws_its_curl_pod_to_its_service() {
    let desired = quorum();
    let tests = [
        SmokeTest::http("quorum").path("/healthz"),
        SmokeTest::http("elsewhere"),
    ];
    let graph = Graph::new("quorum", NS, &desired, &tests, None);
    let mermaid = graph.mermaid();
    assert!(
        mermaid
            .contains("    Test0[\"Test Pod: curl\"] -->|\"curl http://quorum/healthz\"| Svc0\n"),
        "{mermaid}"
    );
    // A test of a Service the stack does not declare has nothing to point at.
    assert!(!mermaid.contains("Test1"), "{mermaid}");
}

#[test]
fn unrelated_objects_are_drawn_apart_and_a_daemon_set_counts_its_nodes() {
    let mut resources = Resources::new(&Identity::new("agents-iac"), "dev");
    resources.add(json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "namespace": NS},
        "spec": {"selector": {"matchLabels": {"app": "agent"}},
                 "template": {"metadata": {"labels": {"app": "agent"}}, "spec": {"containers": []}}}}));
    resources.add(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "notes", "namespace": NS}}));
    let desired = resources.finish().unwrap();
    let mermaid = Graph::new("agents", NS, &desired, &[], None).mermaid();
    assert!(
        mermaid.contains("DaemonSet: agent (one pod per node)"),
        "{mermaid}"
    );
    assert!(mermaid.contains("pods not read (offline)"), "{mermaid}");
    // Two groups: no arrow joins them, and each starts after a blank line.
    assert!(!mermaid.contains("-->"), "{mermaid}");
    assert_eq!(mermaid.matches("\n\n        ").count(), 2, "{mermaid}");
    assert_eq!(graph_name("agents-iac"), "agents");
}
