//! The quorum stack: a ConfigMap of settings, a headless Service that gives
//! each member a stable DNS name, a StatefulSet of members started one at a
//! time, and a PodDisruptionBudget that keeps a majority up during node
//! drains, and a Secret with the members' password, which they read from
//! their environment. Written only against the engine's public API.

use std::collections::BTreeMap;

use echo_iac_engine::declare::DeclareError;
use echo_iac_engine::declare::Resources;
use echo_iac_engine::{DesiredResource, Identity};
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource, Namespace,
    PodSpec, PodTemplateSpec, Secret, SecretKeySelector, Service, ServicePort, ServiceSpec, Volume,
    VolumeMount,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::Deserialize;

/// The stack file: where the cluster is, and the settings of this stack.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackFile {
    #[serde(default)]
    pub kubeconfig: Option<String>,
    #[serde(default)]
    pub context: Option<String>,
    pub namespace: String,
    /// Whether the stack creates (and on destroy deletes) its namespace.
    #[serde(default = "default_true", rename = "createNamespace")]
    pub create_namespace: bool,
    #[serde(default = "default_replicas")]
    pub replicas: i32,
    pub image: String,
    #[serde(default = "default_greeting")]
    pub greeting: String,
    /// The password the members share. Never recorded or shown: the
    /// engine keeps a Secret's values out of its state and plans.
    pub password: String,
    /// Node selector for the members, e.g. to keep them on fake nodes.
    #[serde(default, rename = "nodeSelector")]
    pub node_selector: BTreeMap<String, String>,
}

fn default_true() -> bool {
    true
}

fn default_replicas() -> i32 {
    3
}

fn default_greeting() -> String {
    "hello".to_string()
}

pub const NAME: &str = "quorum";

pub fn identity() -> Identity {
    Identity::new("quorum-iac")
}

/// Every object of the stack. Dependencies come from references: the
/// StatefulSet names the Service (`serviceName`), mounts the ConfigMap and
/// reads the Secret, and everything names the namespace.
pub fn declare(stack: &str, file: &StackFile) -> Result<Vec<DesiredResource>, DeclareError> {
    let ns = file.namespace.as_str();
    let labels = BTreeMap::from([("app".to_string(), NAME.to_string())]);
    let meta = |name: &str, namespace: Option<&str>| ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        ..ObjectMeta::default()
    };
    let mut resources = Resources::new(&identity(), stack);
    resources.add(StatefulSet {
        metadata: meta(NAME, Some(ns)),
        spec: Some(StatefulSetSpec {
            service_name: Some(NAME.to_string()),
            replicas: Some(file.replicas),
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels.clone()),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    node_selector: (!file.node_selector.is_empty())
                        .then(|| file.node_selector.clone()),
                    containers: vec![Container {
                        name: "member".to_string(),
                        image: Some(file.image.clone()),
                        command: Some(vec![
                            "httpd".into(),
                            "-f".into(),
                            "-h".into(),
                            "/config".into(),
                        ]),
                        env: Some(vec![EnvVar {
                            name: "MEMBER_PASSWORD".into(),
                            value_from: Some(EnvVarSource {
                                secret_key_ref: Some(SecretKeySelector {
                                    name: format!("{NAME}-auth"),
                                    key: "password".into(),
                                    ..SecretKeySelector::default()
                                }),
                                ..EnvVarSource::default()
                            }),
                            ..EnvVar::default()
                        }]),
                        ports: Some(vec![ContainerPort {
                            name: Some("http".into()),
                            container_port: 80,
                            ..ContainerPort::default()
                        }]),
                        volume_mounts: Some(vec![VolumeMount {
                            name: "config".into(),
                            mount_path: "/config".into(),
                            ..VolumeMount::default()
                        }]),
                        ..Container::default()
                    }],
                    volumes: Some(vec![Volume {
                        name: "config".into(),
                        config_map: Some(ConfigMapVolumeSource {
                            name: format!("{NAME}-config"),
                            ..ConfigMapVolumeSource::default()
                        }),
                        ..Volume::default()
                    }]),
                    ..PodSpec::default()
                }),
            },
            ..StatefulSetSpec::default()
        }),
        ..StatefulSet::default()
    });
    resources.add(PodDisruptionBudget {
        metadata: meta(NAME, Some(ns)),
        spec: Some(PodDisruptionBudgetSpec {
            min_available: Some(IntOrString::Int(file.replicas / 2 + 1)),
            selector: Some(LabelSelector {
                match_labels: Some(labels.clone()),
                ..LabelSelector::default()
            }),
            ..PodDisruptionBudgetSpec::default()
        }),
        ..PodDisruptionBudget::default()
    });
    resources.add(Service {
        metadata: meta(NAME, Some(ns)),
        spec: Some(ServiceSpec {
            cluster_ip: Some("None".into()),
            selector: Some(labels),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                target_port: Some(IntOrString::String("http".into())),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    });
    resources.add(ConfigMap {
        metadata: meta(&format!("{NAME}-config"), Some(ns)),
        data: Some(BTreeMap::from([(
            "index.html".to_string(),
            format!("{}\n", file.greeting),
        )])),
        ..ConfigMap::default()
    });
    resources.add(Secret {
        metadata: meta(&format!("{NAME}-auth"), Some(ns)),
        type_: Some("Opaque".into()),
        string_data: Some(BTreeMap::from([(
            "password".to_string(),
            file.password.clone(),
        )])),
        ..Secret::default()
    });
    if file.create_namespace {
        resources.add(Namespace {
            metadata: meta(ns, None),
            ..Namespace::default()
        });
    }
    resources.finish()
}
