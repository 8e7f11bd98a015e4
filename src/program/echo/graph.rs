//! `echo-iac graph`: the stack drawn as the seed draws it: per echo
//! service, the ConfigMap mounted into the Deployment, the Deployment's
//! pods, the Service selecting them, and the test pod's path to the
//! Service. Live by default (the pods, their IPs and readiness, the node
//! port and load-balancer address the cluster assigned); `--offline` draws
//! what the stack declares.

use serde_json::Value;

use clap::{Args, ValueEnum};

use super::{Echo, EchoConfig, StackConfig, desired_resources};
use echo_iac_engine::ResourceId;
use echo_iac_engine::cluster::Cluster;
use echo_iac_runner::{Error, Session, print};

#[derive(Debug, Args)]
/// `echo-iac graph`'s flags.
pub struct GraphArgs {
    /// The diagram language.
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    pub format: GraphFormat,
    /// Draw the objects the stack declares, without contacting the cluster.
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
/// The diagram languages `graph` writes.
pub enum GraphFormat {
    /// A Mermaid flowchart, as the seed draws the stack.
    Mermaid,
    /// Graphviz dot (`echo-iac graph --format dot | dot -Tsvg`).
    Dot,
}

pub async fn run(session: &Session<Echo>, args: GraphArgs) -> Result<(), Error> {
    let stack = &session.stack;
    let graph = if args.offline {
        Graph::declared(stack)
    } else {
        Graph::live(&session.connect().await?, stack).await?
    };
    print(&match args.format {
        GraphFormat::Mermaid => mermaid(&graph),
        GraphFormat::Dot => dot(&graph),
    });
    Ok(())
}

/// What is drawn: the namespace and one group per echo service.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    pub namespace: String,
    /// Whether the objects were read from the cluster.
    pub live: bool,
    pub echoes: Vec<EchoGraph>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EchoGraph {
    pub config_map: Object,
    pub deployment: Object,
    pub replicas: i64,
    pub ready_replicas: Option<i64>,
    /// The Deployment's pods; empty when offline.
    pub pods: Vec<PodNode>,
    pub app_label: String,
    pub service: Object,
    pub service_type: String,
    pub port: i64,
    pub target_port: i64,
    pub node_port: Option<i64>,
    pub load_balancer: Option<String>,
}

/// An object's name and whether the cluster has it (always true offline).
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub name: String,
    pub exists: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PodNode {
    pub name: String,
    pub ip: Option<String>,
    pub ready: bool,
}

const MOUNT_PATH: &str = "/etc/nginx/conf.d";

impl Graph {
    /// The stack's objects as it declares them.
    pub(crate) fn declared(stack: &StackConfig) -> Graph {
        let desired = desired_resources(stack);
        let echoes = stack
            .program
            .echoes
            .iter()
            .map(|echo| {
                let find = |kind: &str, name: &str| {
                    desired
                        .iter()
                        .find(|d| d.id.kind == kind && d.id.name == name)
                        .map(|d| d.object.clone())
                        .unwrap_or(Value::Null)
                };
                EchoGraph::from_objects(
                    echo,
                    &find("ConfigMap", &echo.config_map_name),
                    &find("Deployment", &echo.deployment_name),
                    &find("Service", &echo.service_name),
                    None,
                )
            })
            .collect();
        Graph {
            namespace: stack.namespace.clone(),
            live: false,
            echoes,
        }
    }

    /// The stack's objects as the cluster holds them, with their pods.
    pub(crate) async fn live(cluster: &Cluster, stack: &StackConfig) -> Result<Graph, Error> {
        let ns = Some(stack.namespace.as_str());
        let mut echoes = Vec::new();
        for echo in &stack.program.echoes {
            let get = |api_version: &'static str, kind: &'static str, name: &str| {
                let id = ResourceId::new(api_version, kind, ns, name);
                async move { cluster.get(&id).await }
            };
            let config_map = get("v1", "ConfigMap", &echo.config_map_name).await?;
            let deployment = get("apps/v1", "Deployment", &echo.deployment_name).await?;
            let service = get("v1", "Service", &echo.service_name).await?;
            let selector = format!("app={}", echo.app_label);
            let pods = cluster.list("v1", "Pod", ns, Some(&selector)).await?;
            echoes.push(EchoGraph::from_objects(
                echo,
                &config_map.unwrap_or(Value::Null),
                &deployment.unwrap_or(Value::Null),
                &service.unwrap_or(Value::Null),
                Some(&pods),
            ));
        }
        Ok(Graph {
            namespace: stack.namespace.clone(),
            live: true,
            echoes,
        })
    }
}

impl EchoGraph {
    /// Reads what is drawn from the objects; `Value::Null` stands for one
    /// that does not exist. `pods` is `None` when they were not read.
    fn from_objects(
        echo: &EchoConfig,
        config_map: &Value,
        deployment: &Value,
        service: &Value,
        pods: Option<&[Value]>,
    ) -> EchoGraph {
        let port = &service["spec"]["ports"][0];
        let mut pods: Vec<PodNode> = pods
            .unwrap_or_default()
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .map(|pod| PodNode {
                name: pod["metadata"]["name"].as_str().unwrap_or("?").to_string(),
                ip: pod["status"]["podIP"].as_str().map(str::to_string),
                ready: pod["status"]["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True"),
            })
            .collect();
        pods.sort_by(|a, b| a.name.cmp(&b.name));
        EchoGraph {
            config_map: object(&echo.config_map_name, config_map),
            deployment: object(&echo.deployment_name, deployment),
            replicas: deployment["spec"]["replicas"]
                .as_i64()
                .unwrap_or(i64::from(echo.replicas)),
            ready_replicas: deployment
                .get("status")
                .map(|s| s["readyReplicas"].as_i64().unwrap_or(0)),
            pods,
            app_label: echo.app_label.clone(),
            service: object(&echo.service_name, service),
            service_type: service["spec"]["type"]
                .as_str()
                .unwrap_or(echo.service_type.as_str())
                .to_string(),
            port: port["port"].as_i64().unwrap_or(80),
            target_port: port["targetPort"].as_i64().unwrap_or(80),
            node_port: port["nodePort"].as_i64(),
            load_balancer: super::outputs::load_balancer_address(service).map(str::to_string),
        }
    }

    fn deployment_label(&self, live: bool) -> String {
        let mut label = format!("Deployment: {}", self.deployment.name);
        if !self.deployment.exists {
            label.push_str(" (missing)");
        } else if let (true, Some(ready)) = (live, self.ready_replicas) {
            label.push_str(&format!(" ({ready}/{} ready)", self.replicas));
        } else {
            label.push_str(&format!(" ({} replicas)", self.replicas));
        }
        label
    }

    /// The Service's lines: name, then type and ports, then what the
    /// cluster assigned.
    fn service_lines(&self) -> Vec<String> {
        let mut name = format!("Service: {}", self.service.name);
        if !self.service.exists {
            name.push_str(" (missing)");
        }
        let mut ports = format!(
            "{}, port {} → {}",
            self.service_type, self.port, self.target_port
        );
        if let Some(node_port) = self.node_port {
            ports.push_str(&format!(", nodePort {node_port}"));
        }
        let mut lines = vec![name, ports];
        if self.service_type == "LoadBalancer" {
            lines.push(match &self.load_balancer {
                Some(address) => format!("load balancer http://{address}"),
                None => "load balancer: no address yet".to_string(),
            });
        }
        lines
    }

    fn pod_lines(pod: &PodNode) -> Vec<String> {
        vec![
            format!("Pod: {}", pod.name),
            format!(
                "{}, {}",
                pod.ip.as_deref().unwrap_or("no IP yet"),
                if pod.ready { "ready" } else { "not ready" }
            ),
        ]
    }

    /// What stands for the pods when none are drawn.
    fn no_pods_line(&self, live: bool) -> String {
        if live {
            "no pods".to_string()
        } else {
            format!("{} pod(s), not read (offline)", self.replicas)
        }
    }

    fn config_map_label(&self) -> String {
        let mut label = format!("ConfigMap: {}", self.config_map.name);
        if !self.config_map.exists {
            label.push_str(" (missing)");
        }
        label
    }
}

fn object(name: &str, value: &Value) -> Object {
    Object {
        name: name.to_string(),
        exists: !value.is_null(),
    }
}

fn title(graph: &Graph) -> String {
    format!(
        "Kubernetes Cluster: namespace {}{}",
        graph.namespace,
        if graph.live { "" } else { " (declared)" }
    )
}

/// A Mermaid flowchart with the seed's layout, ids and colours.
pub fn mermaid(graph: &Graph) -> String {
    let quote = |lines: &[String]| {
        format!(
            "\"{}\"",
            lines
                .iter()
                .map(|l| l.replace('"', "#quot;"))
                .collect::<Vec<_>>()
                .join("<br/>")
        )
    };
    let mut out = String::from("flowchart TD\n");
    out.push_str(&format!(
        "    subgraph Cluster[{}]\n        direction TB\n",
        quote(&[title(graph)])
    ));
    let mut outside = String::new();
    let mut styles = String::new();
    for (i, echo) in graph.echoes.iter().enumerate() {
        let (cm, svc, deploy) = (format!("CM{i}"), format!("Svc{i}"), format!("Deploy{i}"));
        out.push_str(&format!(
            "\n        {cm}[{}]\n",
            quote(&[echo.config_map_label()])
        ));
        out.push_str(&format!(
            "        {svc}[{}]\n",
            quote(&echo.service_lines())
        ));
        out.push_str(&format!(
            "        subgraph {deploy}[{}]\n",
            quote(&[echo.deployment_label(graph.live)])
        ));
        if echo.pods.is_empty() {
            out.push_str(&format!(
                "            Pods{i}[{}]\n",
                quote(&[echo.no_pods_line(graph.live)])
            ));
        }
        for (j, pod) in echo.pods.iter().enumerate() {
            out.push_str(&format!(
                "            Pod{i}_{j}[{}]\n",
                quote(&EchoGraph::pod_lines(pod))
            ));
        }
        out.push_str("        end\n");
        out.push_str(&format!(
            "        {cm} -->|\"Mounts {MOUNT_PATH}\"| {deploy}\n"
        ));
        out.push_str(&format!(
            "        {deploy} -->|\"Selects app: {}\"| {svc}\n",
            echo.app_label
        ));
        outside.push_str(&format!(
            "    Test{i}[\"Test Pod: curl\"] -->|\"curl http://{}\"| {svc}\n",
            echo.service.name
        ));
        if let Some(address) = &echo.load_balancer {
            outside.push_str(&format!(
                "    LB{i}[\"Load balancer: {address}\"] -->|\"port {}\"| {svc}\n",
                echo.port
            ));
        }
        styles.push_str(&format!(
            "    style {cm} fill:#fff3e0,stroke:#e65100\n    style {svc} fill:#e0f2f1,stroke:#00695c\n    style {deploy} fill:#e1f5fe,stroke:#01579b\n"
        ));
    }
    out.push_str("    end\n\n");
    out.push_str(&outside);
    out.push('\n');
    out.push_str(&styles);
    out
}

/// The same drawing in Graphviz dot: the namespace and each Deployment are
/// clusters, and edges to a Deployment end at its border (`compound`).
pub fn dot(graph: &Graph) -> String {
    let quote = |lines: &[String]| {
        format!(
            "\"{}\"",
            lines
                .iter()
                .map(|l| l.replace('\\', "\\\\").replace('"', "\\\""))
                .collect::<Vec<_>>()
                .join("\\n")
        )
    };
    let mut out = String::from(
        "digraph echo {\n    compound=true;\n    rankdir=TB;\n    \
         node [shape=box, style=\"rounded,filled\", fillcolor=white, fontname=\"Helvetica\"];\n    \
         edge [fontname=\"Helvetica\", fontsize=10];\n",
    );
    out.push_str(&format!(
        "    subgraph cluster_namespace {{\n        label={};\n",
        quote(&[title(graph)])
    ));
    let mut outside = String::new();
    for (i, echo) in graph.echoes.iter().enumerate() {
        out.push_str(&format!(
            "        cm{i} [label={}, fillcolor=\"#fff3e0\", color=\"#e65100\"];\n",
            quote(&[echo.config_map_label()])
        ));
        out.push_str(&format!(
            "        svc{i} [label={}, fillcolor=\"#e0f2f1\", color=\"#00695c\"];\n",
            quote(&echo.service_lines())
        ));
        out.push_str(&format!(
            "        subgraph cluster_deployment{i} {{\n            label={};\n            \
             style=filled; fillcolor=\"#e1f5fe\"; color=\"#01579b\";\n",
            quote(&[echo.deployment_label(graph.live)])
        ));
        let anchor = if echo.pods.is_empty() {
            out.push_str(&format!(
                "            pods{i} [label={}];\n",
                quote(&[echo.no_pods_line(graph.live)])
            ));
            format!("pods{i}")
        } else {
            for (j, pod) in echo.pods.iter().enumerate() {
                out.push_str(&format!(
                    "            pod{i}_{j} [label={}];\n",
                    quote(&EchoGraph::pod_lines(pod))
                ));
            }
            format!("pod{i}_0")
        };
        out.push_str("        }\n");
        out.push_str(&format!(
            "        cm{i} -> {anchor} [label=\"Mounts {MOUNT_PATH}\", lhead=cluster_deployment{i}];\n"
        ));
        out.push_str(&format!(
            "        {anchor} -> svc{i} [label=\"Selects app: {}\", ltail=cluster_deployment{i}];\n",
            echo.app_label
        ));
        outside.push_str(&format!(
            "    test{i} [label=\"Test Pod: curl\"];\n    test{i} -> svc{i} [label=\"curl http://{}\"];\n",
            echo.service.name
        ));
        if let Some(address) = &echo.load_balancer {
            outside.push_str(&format!(
                "    lb{i} [label=\"Load balancer: {address}\"];\n    lb{i} -> svc{i} [label=\"port {}\"];\n",
                echo.port
            ));
        }
    }
    out.push_str("    }\n");
    out.push_str(&outside);
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn pod(name: &str, ip: Option<&str>, ready: bool) -> Value {
        json!({
            "metadata": {"name": name},
            "status": {
                "podIP": ip,
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
            },
        })
    }

    /// The seed's stack, live: three pods (one not ready yet), a NodePort.
    fn live_seed() -> Graph {
        let echo = crate::program::echo::seed_echo();
        let pods = vec![
            pod("nginx-echo-nodeport-7d9c-b2", Some("10.214.0.6"), true),
            pod("nginx-echo-nodeport-7d9c-a1", Some("10.214.0.5"), true),
            pod("nginx-echo-nodeport-7d9c-c3", None, false),
        ];
        Graph {
            namespace: "echo-dev".into(),
            live: true,
            echoes: vec![EchoGraph::from_objects(
                &echo,
                &json!({"data": {}}),
                &json!({"spec": {"replicas": 3}, "status": {"readyReplicas": 2}}),
                &json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 80, "nodePort": 30007}]}}),
                Some(&pods),
            )],
        }
    }

    /// Two services: a LoadBalancer with an address, and a ClusterIP whose
    /// Deployment is missing.
    fn live_two() -> Graph {
        let mut web = crate::program::echo::seed_echo();
        web.config_map_name = "web-config".into();
        web.deployment_name = "web".into();
        web.service_name = "web-service".into();
        web.app_label = "web".into();
        let mut api = web.clone();
        api.config_map_name = "api-config".into();
        api.deployment_name = "api".into();
        api.service_name = "api-service".into();
        api.app_label = "api".into();
        Graph {
            namespace: "echo-prod".into(),
            live: true,
            echoes: vec![
                EchoGraph::from_objects(
                    &web,
                    &json!({}),
                    &json!({"spec": {"replicas": 1}, "status": {"readyReplicas": 1}}),
                    &json!({"spec": {"type": "LoadBalancer", "ports": [{"port": 80, "targetPort": 80, "nodePort": 31000}]},
                            "status": {"loadBalancer": {"ingress": [{"ip": "10.213.0.200"}]}}}),
                    Some(&[pod("web-1", Some("10.214.0.9"), true)]),
                ),
                EchoGraph::from_objects(
                    &api,
                    &json!({}),
                    &Value::Null,
                    &json!({"spec": {"type": "ClusterIP", "ports": [{"port": 80, "targetPort": 80}]}}),
                    Some(&[]),
                ),
            ],
        }
    }

    fn offline_seed() -> Graph {
        let echo = crate::program::echo::seed_echo();
        Graph {
            namespace: "echo-dev".into(),
            live: false,
            echoes: vec![EchoGraph::from_objects(
                &echo,
                &json!({}),
                &json!({"spec": {"replicas": 3}}),
                &json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 80, "nodePort": 30007}]}}),
                None,
            )],
        }
    }

    #[test]
    fn live_pods_are_sorted_with_ip_and_readiness() {
        let graph = live_seed();
        let pods = &graph.echoes[0].pods;
        assert_eq!(
            pods.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            [
                "nginx-echo-nodeport-7d9c-a1",
                "nginx-echo-nodeport-7d9c-b2",
                "nginx-echo-nodeport-7d9c-c3"
            ]
        );
        assert_eq!(pods[0].ip.as_deref(), Some("10.214.0.5"));
        assert!(pods[0].ready && !pods[2].ready);
    }

    #[test]
    fn mermaid_of_the_live_seed_stack() {
        insta::assert_snapshot!(mermaid(&live_seed()));
    }

    #[test]
    fn dot_of_the_live_seed_stack() {
        insta::assert_snapshot!(dot(&live_seed()));
    }

    #[test]
    fn mermaid_of_two_services_with_a_load_balancer_and_a_missing_deployment() {
        insta::assert_snapshot!(mermaid(&live_two()));
    }

    #[test]
    fn dot_of_two_services_with_a_load_balancer_and_a_missing_deployment() {
        insta::assert_snapshot!(dot(&live_two()));
    }

    #[test]
    fn mermaid_offline_draws_the_declared_replicas() {
        insta::assert_snapshot!(mermaid(&offline_seed()));
    }

    #[test]
    fn dot_offline_draws_the_declared_replicas() {
        insta::assert_snapshot!(dot(&offline_seed()));
    }
}
