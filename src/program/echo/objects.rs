//! One echo service: an nginx ConfigMap, a Deployment mounting it, and a
//! Service in front of the Deployment's pods (NodePort unless the stack file
//! sets `serviceType`).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, PodSpec, PodTemplateSpec, Service,
    ServicePort, ServiceSpec, Toleration, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::config::EchoConfig;
use super::metadata;

const CONFIG_KEY: &str = "default.conf";
const CONFIG_VOLUME: &str = "config-volume";
const CONFIG_MOUNT_PATH: &str = "/etc/nginx/conf.d";
const HTTP_PORT: i32 = 80;

/// nginx's `default.conf`: answers every request with the message and the
/// address of the pod that served it.
pub fn nginx_config(message: &str) -> String {
    format!(
        r#"server {{
  listen 80;
  server_name localhost;
  location / {{
    default_type text/plain;
    return 200 "{message}: $server_addr\n";
  }}
}}
"#
    )
}

pub(super) fn config_map(namespace: &str, echo: &EchoConfig) -> ConfigMap {
    ConfigMap {
        metadata: metadata(&echo.config_map_name, Some(namespace)),
        data: Some(BTreeMap::from([(
            CONFIG_KEY.to_string(),
            nginx_config(&echo.message),
        )])),
        ..ConfigMap::default()
    }
}

pub(super) fn deployment(namespace: &str, echo: &EchoConfig) -> Deployment {
    let app = BTreeMap::from([("app".to_string(), echo.app_label.clone())]);
    Deployment {
        metadata: metadata(&echo.deployment_name, Some(namespace)),
        spec: Some(DeploymentSpec {
            replicas: Some(echo.replicas),
            selector: LabelSelector {
                match_labels: Some(app.clone()),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(app),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "nginx".to_string(),
                        image: Some(echo.image.clone()),
                        ports: Some(vec![ContainerPort {
                            container_port: HTTP_PORT,
                            ..ContainerPort::default()
                        }]),
                        volume_mounts: Some(vec![VolumeMount {
                            name: CONFIG_VOLUME.to_string(),
                            mount_path: CONFIG_MOUNT_PATH.to_string(),
                            ..VolumeMount::default()
                        }]),
                        ..Container::default()
                    }],
                    volumes: Some(vec![Volume {
                        name: CONFIG_VOLUME.to_string(),
                        config_map: Some(ConfigMapVolumeSource {
                            name: echo.config_map_name.clone(),
                            ..ConfigMapVolumeSource::default()
                        }),
                        ..Volume::default()
                    }]),
                    node_selector: (!echo.node_selector.is_empty())
                        .then(|| echo.node_selector.clone()),
                    tolerations: (!echo.tolerations.is_empty())
                        .then(|| echo.tolerations.iter().map(toleration).collect()),
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        ..Deployment::default()
    }
}

pub(super) fn service(namespace: &str, echo: &EchoConfig) -> Service {
    Service {
        metadata: metadata(&echo.service_name, Some(namespace)),
        spec: Some(ServiceSpec {
            type_: Some(echo.service_type.as_str().to_string()),
            selector: Some(BTreeMap::from([(
                "app".to_string(),
                echo.app_label.clone(),
            )])),
            ports: Some(vec![ServicePort {
                protocol: Some("TCP".to_string()),
                port: HTTP_PORT,
                target_port: Some(IntOrString::Int(HTTP_PORT)),
                node_port: echo.node_port,
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        ..Service::default()
    }
}

pub(super) fn toleration(t: &super::config::Toleration) -> Toleration {
    Toleration {
        key: t.key.clone(),
        operator: t.operator.clone(),
        value: t.value.clone(),
        effect: t.effect.clone(),
        ..Toleration::default()
    }
}
