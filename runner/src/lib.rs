//! echo-iac-runner: the echo-iac command line as a library. A program says
//! what it declares; the runner gives it every command (`preview`, `up`,
//! `destroy`, `refresh`, `render`, `output`, `test`, `graph`,
//! `stack ls|init|rm|history|export|import`,
//! completions and the manual), stack files with located errors, both state backends, locking,
//! progress, confirmation, Ctrl-C, hints and exit codes.
//!
//! A whole program, with one ConfigMap and one Deployment per stack:
//!
//! ```no_run
//! use std::collections::BTreeMap;
//!
//! use echo_iac_runner::{Error, NoCommands, Program, Resources, Runner, Section, SectionConfig, StackInfo};
//! use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
//! use k8s_openapi::api::core::v1::{ConfigMap, Container, PodSpec, PodTemplateSpec};
//! use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
//! use serde::Deserialize;
//!
//! struct Hello;
//!
//! #[derive(Default, Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Settings {
//!     #[serde(default)]
//!     greeting: String,
//! }
//!
//! impl SectionConfig for Settings {
//!     const KEY: &'static str = "hello";
//! }
//!
//! impl Program for Hello {
//!     const NAME: &'static str = "hello-iac";
//!     const ABOUT: &'static str = "A greeting and a pod that says it";
//!     type Config = Section<Settings>;
//!     type Command = NoCommands;
//!
//!     fn declare(&self, stack: &StackInfo, settings: &Settings) -> Result<Resources, Error> {
//!         let meta = |name: &str| ObjectMeta {
//!             name: Some(name.into()),
//!             namespace: Some(stack.namespace().into()),
//!             ..ObjectMeta::default()
//!         };
//!         let labels = BTreeMap::from([("app".to_string(), "hello".to_string())]);
//!         let mut resources = stack.resources();
//!         resources.add(ConfigMap {
//!             metadata: meta("hello"),
//!             data: Some(BTreeMap::from([("greeting".into(), settings.greeting.clone())])),
//!             ..ConfigMap::default()
//!         });
//!         resources.add(Deployment {
//!             metadata: meta("hello"),
//!             spec: Some(DeploymentSpec {
//!                 selector: LabelSelector { match_labels: Some(labels.clone()), ..LabelSelector::default() },
//!                 template: PodTemplateSpec {
//!                     metadata: Some(ObjectMeta { labels: Some(labels), ..ObjectMeta::default() }),
//!                     spec: Some(PodSpec {
//!                         containers: vec![Container {
//!                             name: "hello".into(),
//!                             image: Some("busybox".into()),
//!                             ..Container::default()
//!                         }],
//!                         ..PodSpec::default()
//!                     }),
//!                 },
//!                 ..DeploymentSpec::default()
//!             }),
//!             ..Deployment::default()
//!         });
//!         Ok(resources)
//!     }
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     Runner::new(Hello).run()
//! }
//! ```

#![warn(missing_docs)]

mod cli;
mod commands;
mod error;
mod logging;
mod name;
mod program;
pub mod project;
mod render;
mod runner;
mod smoke;
pub mod stack;
pub mod suggest;

pub use commands::graph;
pub use commands::stack_init::new_stack_file;
pub use commands::{Session, note, print, print_document, watch_interrupts};
pub use error::Error;
pub use program::{ConfigOf, LiveView, NoCommands, Outputs, Program, StackInfo, outputs_of};
pub use runner::Runner;
pub use smoke::{DEFAULT_TEST_IMAGE, Expect, SmokeTest, TestPod};
pub use stack::{NoSettings, ProgramConfig, Section, SectionConfig};

pub use echo_iac_engine::declare::{DeclareError, Resources};
pub use echo_iac_engine::ready::{WaitRule, WaitRuleError};
pub use echo_iac_engine::{DesiredResource, Identity, ResourceId};
