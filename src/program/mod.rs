//! The echo stack as code: a StackConfig in, the desired objects out.
//!
//! Objects are built from the typed `k8s-openapi` structs, so a field name or
//! type mistake is a compile error rather than a rejected apply, and are then
//! turned into JSON for the engine, which handles every kind the same way.

mod echo;

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use serde_json::Value;

use crate::engine::{DesiredResource, ResourceId};
use crate::{FIELD_MANAGER, MANAGED_BY_LABEL, STACK_LABEL};

pub(crate) use echo::config::{RawEchoSection, StackConfig};
pub use echo::{CONFIG_HASH_ANNOTATION, nginx_config};

/// Every object the stack declares, in dependency order: the namespace (if
/// the stack creates it), then each echo service's ConfigMap, Deployment and
/// Service.
pub(crate) fn desired_resources(stack: &StackConfig) -> Vec<DesiredResource> {
    let mut resources = Vec::new();
    let namespace_dep = if stack.create_namespace {
        let ns = Namespace {
            metadata: metadata(stack, &stack.namespace, None),
            ..Namespace::default()
        };
        let resource = desired(ns, Vec::new());
        let id = resource.id.clone();
        resources.push(resource);
        Some(id)
    } else {
        None
    };
    for echo in &stack.program.echoes {
        let base: Vec<ResourceId> = namespace_dep.iter().cloned().collect();

        let config_map = desired(echo::config_map(stack, echo), base.clone());
        let mut deployment_deps = base.clone();
        deployment_deps.push(config_map.id.clone());
        let deployment = desired(
            echo::deployment(stack, echo, &config_map.object),
            deployment_deps,
        );
        let mut service_deps = base;
        service_deps.push(deployment.id.clone());
        let service = desired(echo::service(stack, echo), service_deps);
        resources.extend([config_map, deployment, service]);
    }
    resources
}

/// The labels that mark an object as managed by `stack`.
pub fn ownership_labels(stack: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY_LABEL.to_string(), FIELD_MANAGER.to_string()),
        (STACK_LABEL.to_string(), stack.to_string()),
    ])
}

fn metadata(stack: &StackConfig, name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(ownership_labels(&stack.name)),
        ..ObjectMeta::default()
    }
}

/// Serializes a typed object, adding the `apiVersion` and `kind` that
/// k8s-openapi's serializer writes from the type.
fn desired<K>(object: K, depends_on: Vec<ResourceId>) -> DesiredResource
where
    K: Serialize,
{
    let object = serde_json::to_value(object).expect("k8s-openapi objects serialize to JSON");
    let id = ResourceId::of(&object).expect("program objects carry apiVersion, kind and name");
    DesiredResource {
        id,
        object,
        depends_on,
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
