//! The stack's outputs: where to reach each echo service once it is up.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use echo_iac_engine::DesiredResource;
use echo_iac_engine::EngineError;
use echo_iac_engine::cluster::{Cluster, ClusterError};
use echo_iac_engine::live::Live;

/// The output that says why there are no URLs, when they cannot be known.
pub const URLS_UNKNOWN: &str = "urlsUnknown";

/// Reads the live Services, Deployments and node addresses into outputs:
/// `namespace`, and for the Service its `nodePort`, one URL per node address
/// and the ready replicas behind it, at the top level so that
/// `echo-iac output nodePort` just works. With several Services these sit
/// under `services`, by Service name. Credentials that may not list nodes
/// get no URLs, and an output [`URLS_UNKNOWN`] saying why.
pub async fn collect(
    cluster: &Cluster,
    namespace: &str,
    desired: &[DesiredResource],
) -> Result<BTreeMap<String, Value>, EngineError> {
    let mut urls_unknown = None;
    let addresses = match cluster.list("v1", "Node", None, None).await {
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
    let live = Live::read(
        cluster,
        service_ids.clone().chain(deployment_ids).map(|d| &d.id),
    )
    .await?;
    let mut services = BTreeMap::new();
    for service in service_ids {
        let Some(live_service) = live.get(&service.id) else {
            continue;
        };
        let node_port = live_service["spec"]["ports"][0]["nodePort"].as_i64();
        let ready: i64 = service
            .depends_on
            .iter()
            .filter(|d| d.kind == "Deployment")
            .filter_map(|d| live.get(d))
            .map(|d| d["status"]["readyReplicas"].as_i64().unwrap_or(0))
            .sum();
        let urls: Vec<String> = match node_port {
            Some(port) => addresses
                .iter()
                .map(|a| format!("http://{a}:{port}"))
                .collect(),
            None => Vec::new(),
        };
        services.insert(
            service.id.name.clone(),
            json!({"nodePort": node_port, "urls": urls, "readyReplicas": ready}),
        );
    }
    let mut outputs = BTreeMap::new();
    outputs.insert("namespace".to_string(), json!(namespace));
    if let Some(why) = urls_unknown {
        outputs.insert(URLS_UNKNOWN.to_string(), json!(why));
    }
    if services.len() == 1 {
        let only = services.values().next().expect("one service").clone();
        for key in ["nodePort", "urls", "readyReplicas"] {
            outputs.insert(key.to_string(), only[key].clone());
        }
    } else {
        outputs.insert("services".to_string(), json!(services));
    }
    Ok(outputs)
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
}
