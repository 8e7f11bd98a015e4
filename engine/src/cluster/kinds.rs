//! Where each kind lives in the API: the built-in kinds from k8s-openapi's
//! types, so that a stack of built-in kinds needs no discovery round trip
//! (and works for credentials that may not read the discovery documents),
//! and every other kind (CRDs, aggregated APIs) from the API server's
//! discovery document of its group version, read once per run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use k8s_openapi::api::admissionregistration::v1 as admission;
use k8s_openapi::api::apps::v1 as apps;
use k8s_openapi::api::autoscaling::v2 as autoscaling;
use k8s_openapi::api::batch::v1 as batch;
use k8s_openapi::api::coordination::v1 as coordination;
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::api::discovery::v1 as discovery;
use k8s_openapi::api::networking::v1 as networking;
use k8s_openapi::api::policy::v1 as policy;
use k8s_openapi::api::rbac::v1 as rbac;
use k8s_openapi::api::scheduling::v1 as scheduling;
use k8s_openapi::api::storage::v1 as storage;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use kube::api::ApiResource;

/// A kind's API: its paths, and whether its objects live in namespaces.
#[derive(Clone, Debug)]
pub struct Kind {
    /// Its group, version, kind and plural, as kube's dynamic API takes them.
    pub resource: ApiResource,
    /// Whether its objects live in namespaces.
    pub namespaced: bool,
}

macro_rules! built_in {
    ($api_version:expr, $kind:expr; $($ty:ty => $namespaced:expr),* $(,)?) => {{
        $(
            if $api_version == <$ty as k8s_openapi::Resource>::API_VERSION
                && $kind == <$ty as k8s_openapi::Resource>::KIND
            {
                return Some(Kind {
                    resource: ApiResource::erase::<$ty>(&()),
                    namespaced: $namespaced,
                });
            }
        )*
        None
    }};
}

/// The API of a built-in kind, without asking the server.
pub(crate) fn built_in(api_version: &str, kind: &str) -> Option<Kind> {
    const NS: bool = true;
    const CLUSTER: bool = false;
    built_in!(api_version, kind;
        core::Namespace => CLUSTER,
        core::Node => CLUSTER,
        core::PersistentVolume => CLUSTER,
        core::ConfigMap => NS,
        core::Secret => NS,
        core::Service => NS,
        core::ServiceAccount => NS,
        core::Pod => NS,
        core::PersistentVolumeClaim => NS,
        core::Endpoints => NS,
        core::LimitRange => NS,
        core::ResourceQuota => NS,
        core::Event => NS,
        apps::Deployment => NS,
        apps::StatefulSet => NS,
        apps::DaemonSet => NS,
        apps::ReplicaSet => NS,
        apps::ControllerRevision => NS,
        batch::Job => NS,
        batch::CronJob => NS,
        policy::PodDisruptionBudget => NS,
        autoscaling::HorizontalPodAutoscaler => NS,
        networking::Ingress => NS,
        networking::NetworkPolicy => NS,
        networking::IngressClass => CLUSTER,
        discovery::EndpointSlice => NS,
        coordination::Lease => NS,
        rbac::Role => NS,
        rbac::RoleBinding => NS,
        rbac::ClusterRole => CLUSTER,
        rbac::ClusterRoleBinding => CLUSTER,
        scheduling::PriorityClass => CLUSTER,
        storage::StorageClass => CLUSTER,
        admission::ValidatingWebhookConfiguration => CLUSTER,
        admission::MutatingWebhookConfiguration => CLUSTER,
        apiextensions::CustomResourceDefinition => CLUSTER,
    )
}

/// Whether objects of this built-in kind own nothing but what the server
/// makes for them (a Service's EndpointSlices): deleting one need not wait
/// for its dependents. Workloads own the pods they run, and a kind not
/// built in may own anything its controller made.
pub fn owns_no_work(api_version: &str, kind: &str) -> bool {
    matches!(
        (api_version, kind),
        (
            "v1",
            "ConfigMap"
                | "Secret"
                | "Service"
                | "ServiceAccount"
                | "PersistentVolumeClaim"
                | "Endpoints"
                | "LimitRange"
                | "ResourceQuota"
        ) | (
            "rbac.authorization.k8s.io/v1",
            "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding"
        ) | (
            "networking.k8s.io/v1",
            "Ingress" | "NetworkPolicy" | "IngressClass"
        ) | ("policy/v1", "PodDisruptionBudget")
            | ("autoscaling/v2", "HorizontalPodAutoscaler")
            | ("scheduling.k8s.io/v1", "PriorityClass")
            | ("storage.k8s.io/v1", "StorageClass")
            | ("coordination.k8s.io/v1", "Lease")
            | ("discovery.k8s.io/v1", "EndpointSlice")
    )
}

/// The kinds discovered in this run, and for each group version, the lock
/// its discovery holds: lookups of one group version at once (a proof
/// reads the admission kinds of one group together) share one request.
#[derive(Default)]
pub(super) struct Discovered {
    kinds: Mutex<HashMap<(String, String), Kind>>,
    rounds: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Instant>>>>>,
}

impl Discovered {
    /// The kind, when a discovery in this run found it.
    pub(super) fn get(&self, api_version: &str, kind: &str) -> Option<Kind> {
        let key = (api_version.to_string(), kind.to_string());
        self.kinds.lock().expect("not poisoned").get(&key).cloned()
    }

    /// Records the kinds of one group version's discovery document.
    pub(super) fn insert(&self, api_version: &str, found: impl IntoIterator<Item = Kind>) {
        let mut kinds = self.kinds.lock().expect("not poisoned");
        for kind in found {
            kinds
                .entry((api_version.to_string(), kind.resource.kind.clone()))
                .or_insert(kind);
        }
    }

    /// The lock a discovery of `api_version` holds, which guards when the
    /// last one finished: a lookup that waited for a discovery finished
    /// after it asked need not send its own, found or not. A kind not found
    /// is not remembered beyond that, as a CRD may be served any moment.
    pub(super) fn round(&self, api_version: &str) -> Arc<tokio::sync::Mutex<Option<Instant>>> {
        self.rounds
            .lock()
            .expect("not poisoned")
            .entry(api_version.to_string())
            .or_default()
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_kinds_know_their_paths_and_scope() {
        let deployment = built_in("apps/v1", "Deployment").unwrap();
        assert_eq!(deployment.resource.plural, "deployments");
        assert!(deployment.namespaced);
        let crd = built_in("apiextensions.k8s.io/v1", "CustomResourceDefinition").unwrap();
        assert_eq!(crd.resource.plural, "customresourcedefinitions");
        assert!(!crd.namespaced);
        assert!(!built_in("v1", "Namespace").unwrap().namespaced);
        assert!(built_in("example.com/v1", "Widget").is_none());
        assert!(built_in("apps/v1beta1", "Deployment").is_none());
    }
}
