//! The stack's outputs: where to reach each echo service once it is up.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use echo_iac_engine::DesiredResource;
use echo_iac_engine::EngineError;
use echo_iac_engine::cluster::ClusterError;
use echo_iac_runner::LiveView;

/// The output that says why there are no URLs, when they cannot be known.
pub const URLS_UNKNOWN: &str = "urlsUnknown";

/// Reads the live Services, Deployments and node addresses into outputs:
/// `namespace`, and for the Service what [`service_outputs`] lists (its
/// type, in-cluster URL, node port and node URLs, load-balancer URL, ready
/// replicas), at the top level so that `echo-iac output nodePort` just works. With several Services these sit
/// under `services`, by Service name. Credentials that may not list nodes
/// get no URLs, and an output [`URLS_UNKNOWN`] saying why.
pub async fn collect(
    live_view: &LiveView<'_>,
    namespace: &str,
    desired: &[DesiredResource],
) -> Result<BTreeMap<String, Value>, EngineError> {
    let mut urls_unknown = None;
    let addresses = match live_view.list("v1", "Node", None, None).await {
        Ok(nodes) => node_addresses(&nodes),
        // A Role cannot grant reading nodes, so namespaced credentials get
        // no node addresses; an empty list alone would read as "no nodes".
        Err(ClusterError::Forbidden { .. }) => {
            urls_unknown = Some(
                "these credentials may not list nodes, so the node addresses are unknown; \
                 the service listens on its node port on every node",
            );
            Vec::new()
        }
        Err(e) => return Err(e.into()),
    };
    let service_ids = desired.iter().filter(|d| d.id.kind == "Service");
    let deployment_ids = desired.iter().filter(|d| d.id.kind == "Deployment");
    let live = live_view
        .read(service_ids.clone().chain(deployment_ids).map(|d| &d.id))
        .await?;
    let mut services = BTreeMap::new();
    for service in service_ids {
        // Each object is read once: parsed, not kept (a stack of a thousand
        // echoes would otherwise hold every one of them at the end of `up`).
        let Some(live_service) = live.parsed(&service.id) else {
            continue;
        };
        let ready: i64 = service
            .depends_on
            .iter()
            .filter(|d| d.kind == "Deployment")
            .filter_map(|d| live.parsed(d))
            .map(|d| d["status"]["readyReplicas"].as_i64().unwrap_or(0))
            .sum();
        services.insert(
            service.id.name.clone(),
            service_outputs(namespace, &live_service, ready, &addresses),
        );
    }
    let mut outputs = BTreeMap::new();
    outputs.insert("namespace".to_string(), json!(namespace));
    if let Some(why) = urls_unknown {
        outputs.insert(URLS_UNKNOWN.to_string(), json!(why));
    }
    if services.len() == 1 {
        let only = services.values().next().expect("one service").clone();
        for (key, value) in only.as_object().expect("service outputs are a map") {
            outputs.insert(key.clone(), value.clone());
        }
    } else {
        outputs.insert("services".to_string(), json!(services));
    }
    Ok(outputs)
}

/// One Service's outputs, by what its type offers: every type is reached
/// inside the cluster at `clusterUrl`; NodePort and LoadBalancer also on
/// their `nodePort` of every node (`urls`); LoadBalancer also at the
/// address its load balancer assigned (`loadBalancerUrl`), or, until it has
/// one, `loadBalancerPending` says so.
pub fn service_outputs(
    namespace: &str,
    service: &Value,
    ready_replicas: i64,
    node_addresses: &[String],
) -> Value {
    let name = service["metadata"]["name"].as_str().unwrap_or_default();
    let kind = service["spec"]["type"].as_str().unwrap_or("ClusterIP");
    let mut out = serde_json::Map::new();
    out.insert("serviceType".into(), json!(kind));
    out.insert("clusterUrl".into(), json!(cluster_url(name, namespace)));
    if kind == "NodePort" || kind == "LoadBalancer" {
        let node_port = service["spec"]["ports"][0]["nodePort"].as_i64();
        let urls: Vec<String> = match node_port {
            Some(port) => node_addresses
                .iter()
                .map(|a| format!("http://{a}:{port}"))
                .collect(),
            None => Vec::new(),
        };
        out.insert("nodePort".into(), json!(node_port));
        out.insert("urls".into(), json!(urls));
    }
    if kind == "LoadBalancer" {
        match load_balancer_address(service) {
            Some(address) => {
                out.insert("loadBalancerUrl".into(), json!(format!("http://{address}")));
            }
            None => {
                out.insert(
                    "loadBalancerPending".into(),
                    json!("the load balancer has not assigned an address yet"),
                );
            }
        }
    }
    out.insert("readyReplicas".into(), json!(ready_replicas));
    Value::Object(out)
}

/// Where pods reach a Service through cluster DNS (port 80 needs no port).
pub fn cluster_url(service: &str, namespace: &str) -> String {
    format!("http://{service}.{namespace}.svc.cluster.local")
}

/// The first address a load balancer reports for the Service: its IP, or
/// the hostname some clouds give instead.
pub fn load_balancer_address(service: &Value) -> Option<&str> {
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

/// Each node's InternalIP, in node order, without repeats.
pub fn node_addresses(nodes: &[Value]) -> Vec<String> {
    let mut addresses: Vec<String> = Vec::new();
    for node in nodes {
        let found = node["status"]["addresses"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|a| a["type"] == "InternalIP")
            .and_then(|a| a["address"].as_str());
        if let Some(address) = found
            && !addresses.iter().any(|a| a == address)
        {
            addresses.push(address.to_string());
        }
    }
    addresses
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_addresses_take_internal_ips_once() {
        let nodes = vec![
            json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"},
                                             {"type": "InternalIP", "address": "127.0.10.1"}]}}),
            json!({"status": {"addresses": [{"type": "InternalIP", "address": "127.0.10.2"}]}}),
            json!({"status": {"addresses": [{"type": "InternalIP", "address": "127.0.10.2"}]}}),
            json!({"status": {}}),
        ];
        assert_eq!(node_addresses(&nodes), ["127.0.10.1", "127.0.10.2"]);
    }

    fn service(kind: &str, extra: Value) -> Value {
        let mut service = json!({
            "metadata": {"name": "echo-nodeport-service"},
            "spec": {"type": kind, "ports": [{"port": 80, "nodePort": 30007}]},
        });
        if let Value::Object(extra) = extra {
            for (key, value) in extra {
                service[key] = value;
            }
        }
        service
    }

    fn addresses() -> Vec<String> {
        vec!["127.0.10.1".into(), "10.213.0.2".into()]
    }

    #[test]
    fn cluster_ip_is_reached_inside_the_cluster_only() {
        let mut clusterip = service("ClusterIP", json!({}));
        clusterip["spec"]["ports"][0]
            .as_object_mut()
            .unwrap()
            .remove("nodePort");
        assert_eq!(
            service_outputs("echo-dev", &clusterip, 3, &addresses()),
            json!({
                "serviceType": "ClusterIP",
                "clusterUrl": "http://echo-nodeport-service.echo-dev.svc.cluster.local",
                "readyReplicas": 3,
            })
        );
    }

    #[test]
    fn node_port_adds_a_url_per_node() {
        assert_eq!(
            service_outputs("echo-dev", &service("NodePort", json!({})), 2, &addresses()),
            json!({
                "serviceType": "NodePort",
                "clusterUrl": "http://echo-nodeport-service.echo-dev.svc.cluster.local",
                "nodePort": 30007,
                "urls": ["http://127.0.10.1:30007", "http://10.213.0.2:30007"],
                "readyReplicas": 2,
            })
        );
    }

    #[test]
    fn load_balancer_adds_its_ingress_address_or_says_it_is_pending() {
        let assigned = service(
            "LoadBalancer",
            json!({"status": {"loadBalancer": {"ingress": [{"ip": "10.213.0.200", "ipMode": "VIP"}]}}}),
        );
        assert_eq!(
            service_outputs("echo-dev", &assigned, 1, &addresses()),
            json!({
                "serviceType": "LoadBalancer",
                "clusterUrl": "http://echo-nodeport-service.echo-dev.svc.cluster.local",
                "nodePort": 30007,
                "urls": ["http://127.0.10.1:30007", "http://10.213.0.2:30007"],
                "loadBalancerUrl": "http://10.213.0.200",
                "readyReplicas": 1,
            })
        );
        let named = service(
            "LoadBalancer",
            json!({"status": {"loadBalancer": {"ingress": [{"hostname": "lb.example.com"}]}}}),
        );
        assert_eq!(
            service_outputs("echo-dev", &named, 1, &[])["loadBalancerUrl"],
            "http://lb.example.com"
        );
        let pending = service("LoadBalancer", json!({"status": {"loadBalancer": {}}}));
        let outputs = service_outputs("echo-dev", &pending, 1, &[]);
        assert!(outputs.get("loadBalancerUrl").is_none(), "{outputs:#}");
        assert_eq!(
            outputs["loadBalancerPending"],
            "the load balancer has not assigned an address yet"
        );
    }
}
