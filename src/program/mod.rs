//! The echo stack as code: a StackConfig in, the desired objects out.
//!
//! Objects are built from the typed `k8s-openapi` structs, so a field name or
//! type mistake is a compile error rather than a rejected apply, and are then
//! turned into JSON for the engine, which handles every kind the same way.

mod echo;
pub mod outputs;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use echo_iac_engine::DesiredResource;
use echo_iac_engine::Identity;
use echo_iac_engine::declare::Resources;

pub(crate) use echo::config::{EchoConfig, RawEchoSection, StackConfig};
#[cfg(test)]
pub(crate) use echo::config::{Toleration, seed_echo};

/// Every object the stack declares, in dependency order: the namespace (if
/// the stack creates it), then each echo service's ConfigMap, Deployment and
/// Service. The namespace and the mounted ConfigMap are dependencies by
/// reference; the Service waits for its Deployment, so that it is ready
/// once its pods are.
pub(crate) fn desired_resources(stack: &StackConfig) -> Vec<DesiredResource> {
    let mut resources = Resources::new(&identity(), &stack.name);
    if stack.create_namespace {
        resources.add(Namespace {
            metadata: metadata(&stack.namespace, None),
            ..Namespace::default()
        });
    }
    for echo in &stack.program.echoes {
        let config_map = echo::config_map(stack, echo);
        let config = serde_json::to_value(&config_map).expect("ConfigMaps serialize to JSON");
        resources.add(config_map);
        let deployment = resources.add(echo::deployment(stack, echo, &config));
        resources.add_after(echo::service(stack, echo), &[&deployment]);
    }
    resources
        .finish()
        .expect("the echo program declares each object once, with no cycles")
}

/// Who the echo program applies as: field manager `echo-iac`, labels and
/// state under `echo-iac.io/`.
pub fn identity() -> Identity {
    Identity::new("echo-iac")
}

/// A name and namespace; the ownership labels come from [`Resources`].
fn metadata(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        ..ObjectMeta::default()
    }
}

/// The desired objects as one YAML stream, for review or other tools.
pub fn to_yaml(resources: &[DesiredResource]) -> String {
    let mut out = String::new();
    for resource in resources {
        out.push_str("---\n");
        out.push_str(&yaml(&resource.object));
    }
    out
}

fn yaml(object: &Value) -> String {
    serde_saphyr::to_string(object).expect("JSON values serialize to YAML")
}

#[cfg(test)]
mod tests;
