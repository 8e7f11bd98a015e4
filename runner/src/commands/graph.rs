//! `graph`: any program's stack drawn as a Mermaid flowchart or Graphviz
//! dot, from generic rules rather than from what one program declares:
//!
//! - every declared object is a box, in the namespace's frame (the
//!   Namespace itself is the frame);
//! - a dependency is an arrow from what is needed to what needs it,
//!   labelled with the reference when it is one a pod makes (a ConfigMap
//!   or Secret mounted at a path or read into the environment);
//! - a Deployment, StatefulSet or DaemonSet is a frame holding its pods,
//!   found live by its selector, with their IPs and readiness;
//! - a Service (or a disruption budget) selecting a workload's pod template
//!   labels is an arrow from the workload to it (`Selects app: web`);
//! - each smoke test the program declares is a curl pod outside the frame
//!   with its request to its Service, and a load balancer's address points
//!   at its Service too.
//!
//! Objects that touch through arrows are drawn together, in the order the
//! program declares them: boxes first, then workload frames, then arrows.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use super::Session;
use super::labels;
use crate::cli::{GraphArgs, GraphFormat};
use crate::error::Error;
use crate::print;
use crate::program::Program;
use crate::smoke::SmokeTest;
use echo_iac_engine::cluster::Cluster;
use echo_iac_engine::live::Live;
use echo_iac_engine::{DesiredResource, ResourceId};

pub(crate) async fn run<P: Program>(session: &Session<P>, args: GraphArgs) -> Result<(), Error> {
    let desired = if args.offline {
        session.desired_offline()?
    } else {
        session.desired().await?
    };
    let tests = session
        .program()
        .smoke_tests(&session.info(), &session.stack.program);
    let live = if args.offline {
        None
    } else {
        Some(LiveObjects::read(&session.connect().await?, &desired).await?)
    };
    let graph = Graph::new(
        &graph_name(P::NAME),
        &session.stack.namespace,
        &desired,
        &tests,
        live.as_ref(),
    );
    print(&match args.format {
        GraphFormat::Mermaid => graph.mermaid(),
        GraphFormat::Dot => graph.dot(),
    });
    Ok(())
}

/// The dot graph's name: the program's, without its `-iac` suffix.
fn graph_name(program: &str) -> String {
    program
        .strip_suffix("-iac")
        .unwrap_or(program)
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// What the cluster holds for a drawing: the declared objects that exist,
/// and each workload's pods.
#[derive(Debug, Default)]
pub struct LiveObjects {
    objects: HashMap<ResourceId, Value>,
    pods: HashMap<ResourceId, Vec<Value>>,
}

impl LiveObjects {
    /// Nothing read yet: every object is missing and no workload has pods.
    pub fn new() -> Self {
        LiveObjects::default()
    }

    /// `object` exists in the cluster, as given.
    pub fn object(mut self, object: Value) -> Self {
        if let Some(id) = ResourceId::of(&object) {
            self.objects.insert(id, object);
        }
        self
    }

    /// `pods` are the pods of the workload `workload`.
    pub fn pods(mut self, workload: &ResourceId, pods: Vec<Value>) -> Self {
        self.pods.insert(workload.clone(), pods);
        self
    }

    /// Reads the declared objects (one list per kind, as a preview does),
    /// then each workload's pods by its selector.
    pub(crate) async fn read(
        cluster: &Cluster,
        desired: &[DesiredResource],
    ) -> Result<Self, Error> {
        let drawn = desired.iter().filter(|d| d.id.kind != "Namespace");
        let live = Live::read(cluster, drawn.clone().map(|d| &d.id)).await?;
        let mut objects = LiveObjects::new();
        for resource in drawn {
            let Some(object) = live.get(&resource.id) else {
                continue;
            };
            if labels::is_workload(&resource.id.kind) {
                let query = labels::selector_of(object).and_then(|s| labels::query(&s));
                let pods = match query {
                    Some(query) => {
                        let namespace = resource.id.namespace.as_deref();
                        cluster.list("v1", "Pod", namespace, Some(&query)).await?
                    }
                    None => Vec::new(),
                };
                objects = objects.pods(&resource.id, pods);
            }
            objects = objects.object(object.clone());
        }
        Ok(objects)
    }
}

/// A drawing of one stack, ready to be written as Mermaid or dot.
#[derive(Debug, Clone, PartialEq)]
pub struct Graph {
    name: String,
    namespace: String,
    live: bool,
    nodes: Vec<Node>,
    groups: Vec<Group>,
    tests: Vec<TestPath>,
}

#[derive(Debug, Clone, PartialEq)]
struct Node {
    kind: String,
    name: String,
    /// Mermaid's id; dot's is its lower case (a workload's frame is
    /// `cluster_<kind><n>` in dot).
    id: String,
    shape: Shape,
    style: Option<(&'static str, &'static str)>,
    /// A Service's load balancer, when it has an address: (address, port).
    load_balancer: Option<(String, i64)>,
}

#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Box {
        lines: Vec<String>,
    },
    Workload {
        number: usize,
        label: String,
        pods: Vec<PodNode>,
        no_pods: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
struct PodNode {
    name: String,
    ip: Option<String>,
    ready: bool,
}

/// Objects drawn together: indices into `nodes`, boxes then workloads.
#[derive(Debug, Clone, PartialEq)]
struct Group {
    members: Vec<usize>,
    edges: Vec<Edge>,
}

#[derive(Debug, Clone, PartialEq)]
struct Edge {
    from: usize,
    to: usize,
    label: Option<String>,
}

/// A smoke test's curl pod and its request to a Service.
#[derive(Debug, Clone, PartialEq)]
struct TestPath {
    number: usize,
    url: String,
    service: usize,
}

impl Graph {
    /// The drawing of `desired` (in the stack's `namespace`) with the
    /// program's smoke tests; live when `live` is given, else of what the
    /// stack declares. `name` names the dot graph.
    pub fn new(
        name: &str,
        namespace: &str,
        desired: &[DesiredResource],
        tests: &[SmokeTest],
        live: Option<&LiveObjects>,
    ) -> Graph {
        let drawn: Vec<&DesiredResource> = desired
            .iter()
            .filter(|d| d.id.kind != "Namespace")
            .collect();
        let index: HashMap<&ResourceId, usize> =
            drawn.iter().enumerate().map(|(i, d)| (&d.id, i)).collect();
        // What the drawing reads: the live object when there is one, else
        // the declared one (for a missing object, what it would be).
        let current: Vec<&Value> = drawn
            .iter()
            .map(|d| live.and_then(|l| l.objects.get(&d.id)).unwrap_or(&d.object))
            .collect();
        let exists = |d: &DesiredResource| live.is_none_or(|l| l.objects.contains_key(&d.id));

        let mut numbers: BTreeMap<String, usize> = BTreeMap::new();
        let mut next = |prefix: &str| {
            let n = numbers.entry(prefix.to_string()).or_insert(0);
            *n += 1;
            *n - 1
        };
        let nodes: Vec<Node> = drawn
            .iter()
            .zip(&current)
            .map(|(d, object)| {
                let kind = d.id.kind.as_str();
                let missing = if exists(d) { "" } else { " (missing)" };
                let title = format!("{kind}: {}{missing}", d.id.name);
                if labels::is_workload(kind) {
                    let number = next("workload");
                    let pods = live.map(|l| pods_of(l.pods.get(&d.id))).unwrap_or_default();
                    return Node {
                        kind: kind.to_string(),
                        name: d.id.name.clone(),
                        id: format!("{}{number}", prefix(kind)),
                        shape: Shape::Workload {
                            number,
                            label: workload_label(
                                kind,
                                &d.id.name,
                                object,
                                &d.object,
                                exists(d),
                                live.is_some(),
                            ),
                            pods,
                            no_pods: no_pods_line(kind, object, &d.object, live.is_some()),
                        },
                        style: style(kind),
                        load_balancer: None,
                    };
                }
                let mut lines = vec![title];
                let mut load_balancer = None;
                if kind == "Service" {
                    lines.extend(service_lines(object, &mut load_balancer));
                }
                let prefix = prefix(kind);
                Node {
                    kind: kind.to_string(),
                    name: d.id.name.clone(),
                    id: format!("{prefix}{}", next(&prefix)),
                    shape: Shape::Box { lines },
                    style: style(kind),
                    load_balancer,
                }
            })
            .collect();

        let edges = edges(&drawn, &current, &index);
        let groups = groups(&nodes, edges);
        let tests = tests
            .iter()
            .enumerate()
            .filter_map(|(number, test)| {
                let service = nodes
                    .iter()
                    .position(|n| n.kind == "Service" && n.name == test.service())?;
                Some(TestPath {
                    number,
                    url: test.url(),
                    service,
                })
            })
            .collect();
        Graph {
            name: name.to_string(),
            namespace: namespace.to_string(),
            live: live.is_some(),
            nodes,
            groups,
            tests,
        }
    }

    fn title(&self) -> String {
        format!(
            "Kubernetes Cluster: namespace {}{}",
            self.namespace,
            if self.live { "" } else { " (declared)" }
        )
    }

    /// What is drawn outside the namespace, per Service in drawing order:
    /// its smoke tests' curl pods, then its load balancer.
    fn outside(&self) -> Vec<Outside<'_>> {
        let mut outside = Vec::new();
        for &member in self.groups.iter().flat_map(|g| &g.members) {
            for test in self.tests.iter().filter(|t| t.service == member) {
                outside.push(Outside::Test(test));
            }
            if let Some((address, port)) = &self.nodes[member].load_balancer {
                outside.push(Outside::LoadBalancer {
                    service: member,
                    address,
                    port: *port,
                });
            }
        }
        outside
    }

    /// A Mermaid flowchart: the namespace and each workload are subgraphs.
    pub fn mermaid(&self) -> String {
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
            quote(&[self.title()])
        ));
        let mut styles = String::new();
        for group in &self.groups {
            out.push('\n');
            for &member in &group.members {
                let node = &self.nodes[member];
                match &node.shape {
                    Shape::Box { lines } => {
                        out.push_str(&format!("        {}[{}]\n", node.id, quote(lines)));
                    }
                    Shape::Workload {
                        number,
                        label,
                        pods,
                        no_pods,
                    } => {
                        out.push_str(&format!(
                            "        subgraph {}[{}]\n",
                            node.id,
                            quote(std::slice::from_ref(label))
                        ));
                        if pods.is_empty() {
                            out.push_str(&format!(
                                "            Pods{number}[{}]\n",
                                quote(std::slice::from_ref(no_pods))
                            ));
                        }
                        for (j, pod) in pods.iter().enumerate() {
                            out.push_str(&format!(
                                "            Pod{number}_{j}[{}]\n",
                                quote(&pod.lines())
                            ));
                        }
                        out.push_str("        end\n");
                    }
                }
                if let Some((fill, stroke)) = node.style {
                    styles.push_str(&format!(
                        "    style {} fill:{fill},stroke:{stroke}\n",
                        node.id
                    ));
                }
            }
            for edge in &group.edges {
                let (from, to) = (&self.nodes[edge.from].id, &self.nodes[edge.to].id);
                match &edge.label {
                    Some(label) => out.push_str(&format!(
                        "        {from} -->|\"{}\"| {to}\n",
                        label.replace('"', "#quot;")
                    )),
                    None => out.push_str(&format!("        {from} --> {to}\n")),
                }
            }
        }
        out.push_str("    end\n\n");
        let outside = self.outside();
        for item in &outside {
            match item {
                Outside::Test(test) => out.push_str(&format!(
                    "    Test{}[\"Test Pod: curl\"] -->|\"curl {}\"| {}\n",
                    test.number, test.url, self.nodes[test.service].id
                )),
                Outside::LoadBalancer {
                    service,
                    address,
                    port,
                } => out.push_str(&format!(
                    "    LB{}[\"Load balancer: {address}\"] -->|\"port {port}\"| {}\n",
                    number_of(&self.nodes[*service].id),
                    self.nodes[*service].id
                )),
            }
        }
        if !outside.is_empty() {
            out.push('\n');
        }
        out.push_str(&styles);
        out
    }

    /// The same drawing in Graphviz dot: the namespace and each workload
    /// are clusters, and arrows to a workload end at its border
    /// (`compound`).
    pub fn dot(&self) -> String {
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
        let mut out = format!(
            "digraph {} {{\n    compound=true;\n    rankdir=TB;\n    \
             node [shape=box, style=\"rounded,filled\", fillcolor=white, fontname=\"Helvetica\"];\n    \
             edge [fontname=\"Helvetica\", fontsize=10];\n",
            self.name
        );
        out.push_str(&format!(
            "    subgraph cluster_namespace {{\n        label={};\n",
            quote(&[self.title()])
        ));
        for group in &self.groups {
            for &member in &group.members {
                let node = &self.nodes[member];
                let colors = node
                    .style
                    .map(|(fill, stroke)| format!(", fillcolor=\"{fill}\", color=\"{stroke}\""))
                    .unwrap_or_default();
                match &node.shape {
                    Shape::Box { lines } => out.push_str(&format!(
                        "        {} [label={}{colors}];\n",
                        node.id.to_lowercase(),
                        quote(lines)
                    )),
                    Shape::Workload {
                        number,
                        label,
                        pods,
                        no_pods,
                    } => {
                        out.push_str(&format!(
                            "        subgraph {} {{\n            label={};\n",
                            self.dot_frame(member),
                            quote(std::slice::from_ref(label))
                        ));
                        if let Some((fill, stroke)) = node.style {
                            out.push_str(&format!(
                                "            style=filled; fillcolor=\"{fill}\"; color=\"{stroke}\";\n"
                            ));
                        }
                        if pods.is_empty() {
                            out.push_str(&format!(
                                "            pods{number} [label={}];\n",
                                quote(std::slice::from_ref(no_pods))
                            ));
                        }
                        for (j, pod) in pods.iter().enumerate() {
                            out.push_str(&format!(
                                "            pod{number}_{j} [label={}];\n",
                                quote(&pod.lines())
                            ));
                        }
                        out.push_str("        }\n");
                    }
                }
            }
            for edge in &group.edges {
                let mut attributes = Vec::new();
                if let Some(label) = &edge.label {
                    attributes.push(format!("label={}", quote(std::slice::from_ref(label))));
                }
                if matches!(self.nodes[edge.to].shape, Shape::Workload { .. }) {
                    attributes.push(format!("lhead={}", self.dot_frame(edge.to)));
                }
                if matches!(self.nodes[edge.from].shape, Shape::Workload { .. }) {
                    attributes.push(format!("ltail={}", self.dot_frame(edge.from)));
                }
                let attributes = if attributes.is_empty() {
                    String::new()
                } else {
                    format!(" [{}]", attributes.join(", "))
                };
                out.push_str(&format!(
                    "        {} -> {}{attributes};\n",
                    self.dot_anchor(edge.from),
                    self.dot_anchor(edge.to)
                ));
            }
        }
        out.push_str("    }\n");
        for item in self.outside() {
            match item {
                Outside::Test(test) => out.push_str(&format!(
                    "    test{n} [label=\"Test Pod: curl\"];\n    test{n} -> {} [label={}];\n",
                    self.dot_anchor(test.service),
                    quote(&[format!("curl {}", test.url)]),
                    n = test.number
                )),
                Outside::LoadBalancer {
                    service,
                    address,
                    port,
                } => {
                    let n = number_of(&self.nodes[service].id);
                    out.push_str(&format!(
                        "    lb{n} [label={}];\n    lb{n} -> {} [label=\"port {port}\"];\n",
                        quote(&[format!("Load balancer: {address}")]),
                        self.dot_anchor(service)
                    ));
                }
            }
        }
        out.push_str("}\n");
        out
    }

    /// A workload's dot cluster: `cluster_deployment0`.
    fn dot_frame(&self, node: usize) -> String {
        let node = &self.nodes[node];
        match &node.shape {
            Shape::Workload { number, .. } => {
                format!("cluster_{}{number}", node.kind.to_lowercase())
            }
            Shape::Box { .. } => node.id.to_lowercase(),
        }
    }

    /// Where dot's arrows to and from a node end: a workload's first pod
    /// (the arrow is then clipped to the frame).
    fn dot_anchor(&self, node: usize) -> String {
        let node = &self.nodes[node];
        match &node.shape {
            Shape::Workload { number, pods, .. } if pods.is_empty() => format!("pods{number}"),
            Shape::Workload { number, .. } => format!("pod{number}_0"),
            Shape::Box { .. } => node.id.to_lowercase(),
        }
    }
}

enum Outside<'a> {
    Test(&'a TestPath),
    LoadBalancer {
        service: usize,
        address: &'a str,
        port: i64,
    },
}

/// The number at the end of a node's id (`Svc1` → 1).
fn number_of(id: &str) -> &str {
    id.trim_start_matches(|c: char| !c.is_ascii_digit())
}

/// A short id prefix per kind; any other kind is its own prefix.
fn prefix(kind: &str) -> String {
    match kind {
        "ConfigMap" => "CM",
        "Service" => "Svc",
        "Deployment" => "Deploy",
        "StatefulSet" => "Sts",
        "DaemonSet" => "DS",
        "PersistentVolumeClaim" => "PVC",
        "PodDisruptionBudget" => "PDB",
        other => other,
    }
    .chars()
    .filter(char::is_ascii_alphanumeric)
    .collect()
}

/// Fill and stroke colours: settings orange, Secrets rose, Services teal,
/// workloads blue; anything else plain.
fn style(kind: &str) -> Option<(&'static str, &'static str)> {
    match kind {
        "ConfigMap" => Some(("#fff3e0", "#e65100")),
        "Secret" => Some(("#fce4ec", "#880e4f")),
        "Service" => Some(("#e0f2f1", "#00695c")),
        kind if labels::is_workload(kind) => Some(("#e1f5fe", "#01579b")),
        _ => None,
    }
}

impl PodNode {
    fn lines(&self) -> Vec<String> {
        vec![
            format!("Pod: {}", self.name),
            format!(
                "{}, {}",
                self.ip.as_deref().unwrap_or("no IP yet"),
                if self.ready { "ready" } else { "not ready" }
            ),
        ]
    }
}

/// A workload's pods that are not being deleted, by name.
fn pods_of(pods: Option<&Vec<Value>>) -> Vec<PodNode> {
    let mut pods: Vec<PodNode> = pods
        .into_iter()
        .flatten()
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
    pods
}

/// How many pods a workload wants: `spec.replicas` (1 when unset), or for
/// a DaemonSet what its status says, `None` when it says nothing yet.
fn replicas(kind: &str, object: &Value, declared: &Value) -> Option<i64> {
    if kind == "DaemonSet" {
        return object["status"]["desiredNumberScheduled"].as_i64();
    }
    Some(
        object["spec"]["replicas"]
            .as_i64()
            .or_else(|| declared["spec"]["replicas"].as_i64())
            .unwrap_or(1),
    )
}

fn workload_label(
    kind: &str,
    name: &str,
    object: &Value,
    declared: &Value,
    exists: bool,
    live: bool,
) -> String {
    let mut label = format!("{kind}: {name}");
    let wanted = replicas(kind, object, declared);
    let ready = object.get("status").map(|s| {
        s[if kind == "DaemonSet" {
            "numberReady"
        } else {
            "readyReplicas"
        }]
        .as_i64()
        .unwrap_or(0)
    });
    match (exists, live, ready, wanted) {
        (false, _, _, _) => label.push_str(" (missing)"),
        (true, true, Some(ready), Some(wanted)) => {
            label.push_str(&format!(" ({ready}/{wanted} ready)"));
        }
        (_, _, _, Some(wanted)) => label.push_str(&format!(" ({wanted} replicas)")),
        (_, _, _, None) => label.push_str(" (one pod per node)"),
    }
    label
}

/// What stands for a workload's pods when none are drawn.
fn no_pods_line(kind: &str, object: &Value, declared: &Value, live: bool) -> String {
    match (live, replicas(kind, object, declared)) {
        (true, _) => "no pods".to_string(),
        (false, Some(wanted)) => format!("{wanted} pod(s), not read (offline)"),
        (false, None) => "pods not read (offline)".to_string(),
    }
}

/// A Service's lines below its name: type and ports, then its load
/// balancer (whose address, when it has one, is also drawn outside).
fn service_lines(service: &Value, load_balancer: &mut Option<(String, i64)>) -> Vec<String> {
    let spec = &service["spec"];
    let kind = spec["type"].as_str().unwrap_or("ClusterIP");
    let mut first = if spec["clusterIP"] == "None" {
        format!("{kind} (headless)")
    } else {
        kind.to_string()
    };
    let ports = spec["ports"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for port in ports {
        let number = port["port"].as_i64().unwrap_or(0);
        let target = match &port["targetPort"] {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => number.to_string(),
        };
        first.push_str(&format!(", port {number} → {target}"));
        if let Some(node_port) = port["nodePort"].as_i64() {
            first.push_str(&format!(", nodePort {node_port}"));
        }
    }
    let mut lines = vec![first];
    if kind == "LoadBalancer" {
        let address = load_balancer_address(service);
        lines.push(match address {
            Some(address) => format!("load balancer http://{address}"),
            None => "load balancer: no address yet".to_string(),
        });
        let port = ports.first().and_then(|p| p["port"].as_i64()).unwrap_or(80);
        *load_balancer = address.map(|a| (a.to_string(), port));
    }
    lines
}

/// The first address a load balancer reports for the Service: its IP, or
/// the hostname some clouds give instead.
fn load_balancer_address(service: &Value) -> Option<&str> {
    service["status"]["loadBalancer"]["ingress"]
        .as_array()?
        .iter()
        .find_map(|ingress| {
            ingress["ip"]
                .as_str()
                .or_else(|| ingress["hostname"].as_str())
                .filter(|a| !a.is_empty())
        })
}

/// The arrows: each dependency (a selection when one side selects the
/// other's pods, else labelled with the reference), then each selection
/// that is no dependency. One arrow per pair.
fn edges(
    drawn: &[&DesiredResource],
    current: &[&Value],
    index: &HashMap<&ResourceId, usize>,
) -> Vec<Edge> {
    let selects = |selector: usize, workload: usize| -> Option<String> {
        if !labels::is_workload(&drawn[workload].id.kind)
            || labels::is_workload(&drawn[selector].id.kind)
        {
            return None;
        }
        let selection = labels::selector_of(current[selector])?;
        let template = labels::template_labels(current[workload])?;
        labels::matches(&selection, template)
            .then(|| format!("Selects {}", labels::describe(&selection)))
    };
    let mut edges: Vec<Edge> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (to, resource) in drawn.iter().enumerate() {
        for dependency in &resource.depends_on {
            let Some(&from) = index.get(dependency) else {
                continue;
            };
            if !seen.insert((from.min(to), from.max(to))) {
                continue;
            }
            edges.push(if let Some(label) = selects(to, from) {
                Edge {
                    from,
                    to,
                    label: Some(label),
                }
            } else if let Some(label) = selects(from, to) {
                Edge {
                    from: to,
                    to: from,
                    label: Some(label),
                }
            } else {
                Edge {
                    from,
                    to,
                    label: reference_label(drawn[from], current[to]),
                }
            });
        }
    }
    for selector in 0..drawn.len() {
        for workload in 0..drawn.len() {
            if seen.contains(&(selector.min(workload), selector.max(workload))) {
                continue;
            }
            if let Some(label) = selects(selector, workload) {
                seen.insert((selector.min(workload), selector.max(workload)));
                edges.push(Edge {
                    from: workload,
                    to: selector,
                    label: Some(label),
                });
            }
        }
    }
    edges
}

/// How `dependent`'s pods use `dependency`, when it is a reference a pod
/// makes: `Mounts /etc/app`, `Env PASSWORD`, `Env from all keys`,
/// `Runs as`, `Pulls images with`.
fn reference_label(dependency: &DesiredResource, dependent: &Value) -> Option<String> {
    let spec = labels::pod_spec(dependent)?;
    let name = dependency.id.name.as_str();
    let (volume_key, volume_name, key_ref, from_ref) = match dependency.id.kind.as_str() {
        "ConfigMap" => ("configMap", "name", "configMapKeyRef", "configMapRef"),
        "Secret" => ("secret", "secretName", "secretKeyRef", "secretRef"),
        "PersistentVolumeClaim" => ("persistentVolumeClaim", "claimName", "", ""),
        "ServiceAccount" => {
            return (spec["serviceAccountName"] == name).then(|| "Runs as".to_string());
        }
        _ => return None,
    };
    let projected_key = if dependency.id.kind == "Secret" {
        "secret"
    } else {
        volume_key
    };
    let volumes: Vec<&str> = spec["volumes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|v| {
            v[volume_key][volume_name] == name
                || v["projected"]["sources"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|s| s[projected_key]["name"] == name)
        })
        .filter_map(|v| v["name"].as_str())
        .collect();
    let containers: Vec<&Value> = ["initContainers", "containers"]
        .iter()
        .flat_map(|key| spec[*key].as_array().into_iter().flatten())
        .collect();
    let mut paths: Vec<&str> = Vec::new();
    let mut variables: Vec<&str> = Vec::new();
    let mut all_keys = false;
    for container in &containers {
        for mount in container["volumeMounts"].as_array().into_iter().flatten() {
            if mount["name"].as_str().is_some_and(|v| volumes.contains(&v)) {
                if let Some(path) = mount["mountPath"].as_str().filter(|p| !paths.contains(p)) {
                    paths.push(path);
                }
            }
        }
        if key_ref.is_empty() {
            continue;
        }
        for variable in container["env"].as_array().into_iter().flatten() {
            if variable["valueFrom"][key_ref]["name"] == name {
                if let Some(v) = variable["name"].as_str().filter(|v| !variables.contains(v)) {
                    variables.push(v);
                }
            }
        }
        all_keys |= container["envFrom"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|source| source[from_ref]["name"] == name);
    }
    let mut parts = Vec::new();
    if !paths.is_empty() {
        parts.push(format!("Mounts {}", paths.join(", ")));
    }
    if !variables.is_empty() {
        parts.push(format!("Env {}", variables.join(", ")));
    }
    if all_keys {
        parts.push("Env from all keys".to_string());
    }
    let pulls = spec["imagePullSecrets"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|s| s["name"] == name);
    if pulls && dependency.id.kind == "Secret" {
        parts.push("Pulls images with".to_string());
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Objects joined by arrows, each group in the order of its first object;
/// in a group boxes come first, then workload frames, then the arrows.
fn groups(nodes: &[Node], edges: Vec<Edge>) -> Vec<Group> {
    let mut root: Vec<usize> = (0..nodes.len()).collect();
    fn find(root: &mut [usize], mut i: usize) -> usize {
        while root[i] != i {
            root[i] = root[root[i]];
            i = root[i];
        }
        i
    }
    for edge in &edges {
        let (a, b) = (find(&mut root, edge.from), find(&mut root, edge.to));
        root[a.max(b)] = a.min(b);
    }
    let mut order: Vec<usize> = Vec::new();
    let mut groups: HashMap<usize, Group> = HashMap::new();
    for i in 0..nodes.len() {
        let r = find(&mut root, i);
        if !groups.contains_key(&r) {
            order.push(r);
        }
        groups
            .entry(r)
            .or_insert_with(|| Group {
                members: Vec::new(),
                edges: Vec::new(),
            })
            .members
            .push(i);
    }
    for edge in edges {
        let r = find(&mut root, edge.from);
        groups
            .get_mut(&r)
            .expect("every node has a group")
            .edges
            .push(edge);
    }
    order
        .into_iter()
        .map(|r| {
            let mut group = groups.remove(&r).expect("grouped");
            group
                .members
                .sort_by_key(|&i| (matches!(nodes[i].shape, Shape::Workload { .. }), i));
            group
        })
        .collect()
}

#[cfg(test)]
mod tests;
