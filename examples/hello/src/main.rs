//! The smallest program on the echo-iac runner: a ConfigMap holding a
//! greeting and a Deployment whose pod prints it. Everything else (every
//! command, stack files, state, locking, progress) comes from the runner.

use std::collections::BTreeMap;

use echo_iac_runner::{Error, NoCommands, Program, Resources, Runner};
use echo_iac_runner::{Section, SectionConfig, StackInfo};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::ConfigMapEnvSource;
use k8s_openapi::api::core::v1::{ConfigMap, Container, EnvFromSource, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde::Deserialize;

struct Hello;

/// The stack file's `hello:` section.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    #[serde(default = "Settings::default_greeting")]
    greeting: String,
    #[serde(default = "Settings::default_image")]
    image: String,
}

impl Settings {
    fn default_greeting() -> String {
        "hello".into()
    }
    fn default_image() -> String {
        "busybox:stable".into()
    }
}

impl SectionConfig for Settings {
    const KEY: &'static str = "hello";
}

impl Program for Hello {
    const NAME: &'static str = "hello-iac";
    const ABOUT: &'static str = "A greeting in a ConfigMap, and a pod that prints it";
    type Config = Section<Settings>;
    type Command = NoCommands;

    fn declare(&self, stack: &StackInfo, settings: &Settings) -> Result<Resources, Error> {
        let meta = |name: &str| ObjectMeta {
            name: Some(name.into()),
            namespace: Some(stack.namespace().into()),
            ..ObjectMeta::default()
        };
        let labels = BTreeMap::from([("app".to_string(), "hello".to_string())]);
        let mut resources = stack.resources();
        // The pod reads the greeting at start: a new one must roll it.
        resources.roll_on_config_change();
        resources.add(ConfigMap {
            metadata: meta("hello"),
            data: Some(BTreeMap::from([(
                "GREETING".into(),
                settings.greeting.clone(),
            )])),
            ..ConfigMap::default()
        });
        // Reads the ConfigMap, so the engine applies it first.
        resources.add(Deployment {
            metadata: meta("hello"),
            spec: Some(DeploymentSpec {
                replicas: Some(1),
                selector: LabelSelector {
                    match_labels: Some(labels.clone()),
                    ..LabelSelector::default()
                },
                template: PodTemplateSpec {
                    metadata: Some(ObjectMeta {
                        labels: Some(labels),
                        ..ObjectMeta::default()
                    }),
                    spec: Some(PodSpec {
                        containers: vec![Container {
                            name: "hello".into(),
                            image: Some(settings.image.clone()),
                            command: Some(vec!["sh".into(), "-c".into()]),
                            args: Some(vec!["echo \"$GREETING\"; sleep 3600".into()]),
                            env_from: Some(vec![EnvFromSource {
                                config_map_ref: Some(ConfigMapEnvSource {
                                    name: "hello".into(),
                                    ..ConfigMapEnvSource::default()
                                }),
                                ..EnvFromSource::default()
                            }]),
                            ..Container::default()
                        }],
                        ..PodSpec::default()
                    }),
                },
                ..DeploymentSpec::default()
            }),
            ..Deployment::default()
        });
        Ok(resources)
    }

    // What `hello-iac stack init` writes below the keys every stack has.
    fn stack_file_section(&self) -> Option<String> {
        Some(format!(
            "hello:\n  # What the pod prints.\n  greeting: {}\n  # The pod's image; it needs a shell.\n  image: {}\n",
            Settings::default_greeting(),
            Settings::default_image()
        ))
    }
}

fn main() -> std::process::ExitCode {
    Runner::new(Hello).version(env!("CARGO_PKG_VERSION")).run()
}
