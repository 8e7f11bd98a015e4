//! The quorum stack: a ConfigMap of settings, a headless Service that gives
//! each member a stable DNS name, a StatefulSet of members started one at a
//! time, and a PodDisruptionBudget that keeps a majority up during node
//! drains, and a Secret with the members' password, which they read from
//! their environment. Written only against the runner's and the engine's
//! public API.

use std::collections::BTreeMap;

use std::path::PathBuf;

use echo_iac_engine::{EngineError, ResourceId};
use echo_iac_runner::{Error, LiveView, NoCommands, Outputs, Program, Resources};
use echo_iac_runner::{Section, SectionConfig, StackInfo, outputs_of};
use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetSpec};
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, Container, ContainerPort, EnvVar, EnvVarSource, PodSpec,
    PodTemplateSpec, Secret, SecretKeySelector, Service, ServicePort, ServiceSpec, Volume,
    VolumeMount,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde::{Deserialize, Serialize};

/// The stack file's `quorum:` section. The members' password is not among
/// the settings: it comes from `$QUORUM_PASSWORD`, or from the file
/// `passwordFile` names, so that no stack file holds it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    /// How many members the StatefulSet runs.
    #[serde(default = "default_replicas")]
    pub replicas: i32,
    #[serde(default = "default_image")]
    pub image: String,
    /// What each member serves at `/`.
    #[serde(default = "default_greeting")]
    pub greeting: String,
    /// A file holding the members' password, relative to the project
    /// folder; `$QUORUM_PASSWORD` wins over it.
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Node selector for the members, e.g. to keep them on fake nodes.
    #[serde(default)]
    pub node_selector: BTreeMap<String, String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            replicas: default_replicas(),
            image: default_image(),
            greeting: default_greeting(),
            password_file: None,
            node_selector: BTreeMap::new(),
        }
    }
}

impl SectionConfig for Settings {
    const KEY: &'static str = "quorum";
}

fn default_replicas() -> i32 {
    3
}

fn default_image() -> String {
    "docker.io/library/busybox:stable".to_string()
}

fn default_greeting() -> String {
    "hello".to_string()
}

/// Where the members' password comes from, before `passwordFile`.
pub const PASSWORD_ENV: &str = "QUORUM_PASSWORD";

pub const NAME: &str = "quorum";

/// The quorum program.
pub struct Quorum;

impl Program for Quorum {
    const NAME: &'static str = "quorum-iac";
    const ABOUT: &'static str =
        "A replicated StatefulSet behind a headless Service, kept in step with the cluster";
    type Config = Section<Settings>;
    type Command = NoCommands;

    fn declare(&self, stack: &StackInfo, settings: &Settings) -> Result<Resources, Error> {
        let password = password(stack, settings)?;
        Ok(declare(stack, settings, &password))
    }

    /// The settings at their defaults. The password is no setting: the
    /// section names where it comes from, and never holds it.
    fn stack_file_section(&self) -> Option<String> {
        let defaults = Settings::default();
        Some(format!(
            "\
# The quorum: a StatefulSet of members behind a headless Service that gives
# each its own DNS name, and a PodDisruptionBudget that keeps a majority up.
quorum:
  # How many members run.
  replicas: {}
  # The members' image; it must have busybox's httpd.
  image: {}
  # What each member serves at `/`.
  greeting: {}
  # The members' password is never written in a stack file. It comes from
  # the environment variable {PASSWORD_ENV}, or else from the file named
  # here (relative to the project folder; keep it out of version control).
  # passwordFile:
  # Node labels the members must be scheduled on.
  # nodeSelector:
  #   kubernetes.io/os: linux
",
            defaults.replicas, defaults.image, defaults.greeting
        ))
    }

    async fn outputs(
        &self,
        stack: &StackInfo,
        _settings: &Settings,
        live: &LiveView<'_>,
    ) -> Result<Outputs, EngineError> {
        let id = ResourceId::new("apps/v1", "StatefulSet", Some(stack.namespace()), NAME);
        let set = live.get(&id).await?.unwrap_or_default();
        let ready = set["status"]["readyReplicas"].as_i64().unwrap_or(0);
        let service = format!("{NAME}.{}.svc.cluster.local", stack.namespace());
        let members = (0..set["spec"]["replicas"].as_i64().unwrap_or(0))
            .map(|i| format!("{NAME}-{i}.{service}"))
            .collect();
        Ok(outputs_of(&QuorumOutputs {
            service,
            members,
            ready_members: ready,
        }))
    }
}

/// What `quorum-iac output` shows once the stack is up.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct QuorumOutputs {
    /// The headless Service's DNS name.
    service: String,
    /// Each member's own DNS name.
    members: Vec<String>,
    ready_members: i64,
}

/// The members' password: `$QUORUM_PASSWORD`, else the file `passwordFile`
/// names. Never a setting, so no stack file holds it.
fn password(stack: &StackInfo, settings: &Settings) -> Result<String, Error> {
    if let Ok(password) = std::env::var(PASSWORD_ENV) {
        if !password.is_empty() {
            return Ok(password);
        }
    }
    let Some(file) = &settings.password_file else {
        return Err(Error::refused(
            format!(
                "no password for the members: {PASSWORD_ENV} is not set and the stack file names no `passwordFile`"
            ),
            format!(
                "set {PASSWORD_ENV}, or add `passwordFile: PATH` (relative to the project) under `quorum:`"
            ),
        ));
    };
    let path = stack.project_dir().join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::refused(
            format!(
                "cannot read the members' password from {}: {e}",
                path.display()
            ),
            format!("create the file, fix `passwordFile`, or set {PASSWORD_ENV}"),
        )
    })?;
    let password = text.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(Error::refused(
            format!("{} is empty", path.display()),
            "write the members' password into it",
        ));
    }
    Ok(password)
}

/// Every object of the stack. Dependencies come from references: the
/// StatefulSet names the Service (`serviceName`), mounts the ConfigMap and
/// reads the Secret, and everything names the namespace. The members read
/// the greeting and the password at start, so a change to either rolls
/// them: the engine keeps a hash of both in their pod template.
pub fn declare(stack: &StackInfo, file: &Settings, password: &str) -> Resources {
    let ns = stack.namespace();
    let labels = BTreeMap::from([("app".to_string(), NAME.to_string())]);
    let meta = |name: &str, namespace: Option<&str>| ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        ..ObjectMeta::default()
    };
    let mut resources = stack.resources();
    resources.roll_on_config_change();
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
            password.to_string(),
        )])),
        ..Secret::default()
    });
    resources
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_new_stack_file_loads_back_and_holds_no_password() {
        let root = Path::new("/projects/quorum");
        let text = echo_iac_runner::new_stack_file(&Quorum, "dev", "quorum-dev", None, root)
            .unwrap_or_else(|e| panic!("{e}"));
        let stack = echo_iac_runner::stack::parse::<Section<Settings>>(
            "dev",
            &root.join("stacks/dev.yaml"),
            &text,
            root,
        )
        .unwrap();
        assert_eq!(stack.program.replicas, 3);
        assert_eq!(stack.program.password_file, None);
        assert!(text.contains("  # passwordFile:\n"), "{text}");
        assert!(text.contains(PASSWORD_ENV), "{text}");
        let settings: Vec<&str> = text
            .lines()
            .map(str::trim_start)
            .filter(|line| !line.starts_with('#'))
            .collect();
        assert!(
            settings
                .iter()
                .all(|line| !line.to_lowercase().contains("password")),
            "{text}"
        );
    }
}
