//! The backups stack: a CustomResourceDefinition for the kind
//! `BackupSchedule`, whose schema bounds each field and whose CEL rule ties
//! two of them, and one BackupSchedule per entry of the stack file's
//! `backups.schedules`. Written only against the runner's and the engine's
//! public API.
//!
//! Before the kind exists, `preview` checks each schedule against the
//! definition's schema and rule on this machine, as the API server would,
//! so a setting out of bounds is refused before anything is applied. `up`
//! applies the definition, waits until it is established, applies the
//! schedules and then waits until a backup controller reports each one
//! `Ready`; `Ready=False` fails the wait at once with the controller's
//! message. This program ships no controller: without one, `up` waits until
//! its `--timeout` and fails there (the tests play the controller by
//! patching the schedules' status).

use std::collections::BTreeMap;

use echo_iac_engine::EngineError;
use echo_iac_runner::{Error, LiveView, NoCommands, Outputs, Program, ResourceId, Resources};
use echo_iac_runner::{Section, SectionConfig, StackInfo, WaitRule, outputs_of};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, CustomResourceDefinitionNames, CustomResourceDefinitionSpec,
    CustomResourceDefinitionVersion, CustomResourceSubresourceStatus, CustomResourceSubresources,
    CustomResourceValidation, JSON, JSONSchemaProps, JSONSchemaPropsOrArray, ValidationRule,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// The kind the definition defines.
pub const KIND: &str = "BackupSchedule";
/// Its one version.
pub const VERSION: &str = "v1";
const PLURAL: &str = "backupschedules";

/// The rule that ties retention to its floor, as the definition states it.
pub const RETAIN_RULE: &str = "self.retain >= self.minimumRetain";

/// What a controller sets once it has taken a schedule on, and what the
/// wait waits for.
pub const READY: &str = "condition=Ready";
/// What a controller sets when it cannot run a schedule: the wait stops at
/// once with its message.
pub const FAILED: &str = "condition=Ready=False";

/// The stack file's `backups:` section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Settings {
    /// The API group of the kind. The definition is cluster-wide, so two
    /// stacks on one cluster that must not share it each take their own.
    #[serde(default = "default_group")]
    pub group: String,
    /// One BackupSchedule each.
    #[serde(default)]
    pub schedules: Vec<Schedule>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            group: default_group(),
            schedules: Vec::new(),
        }
    }
}

impl SectionConfig for Settings {
    const KEY: &'static str = "backups";
}

fn default_group() -> String {
    "backups.example.com".to_string()
}

/// One entry of `backups.schedules`: a BackupSchedule's name and its
/// `spec`. The values go to the BackupSchedule as they are, unchecked here:
/// the definition's schema and rule check them, in `preview` already, and
/// name what is wrong in their own words. A field left out takes the
/// definition's default.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Schedule {
    /// The BackupSchedule's name; not part of its spec.
    #[serde(skip_serializing)]
    pub name: String,
    /// What to back up, as the controller names it (`postgres/orders`).
    pub target: String,
    /// When, as a cron expression or `@hourly`, `@daily`, `@weekly`,
    /// `@monthly`.
    pub schedule: String,
    /// How many backups to keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain: Option<i64>,
    /// The fewest backups `retain` may keep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_retain: Option<i64>,
    /// Pauses the schedule without deleting it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

/// A BackupSchedule as it is applied.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BackupSchedule<'a> {
    api_version: String,
    kind: &'static str,
    metadata: ObjectMeta,
    spec: &'a Schedule,
}

/// The backups program.
pub struct Backups;

impl Program for Backups {
    const NAME: &'static str = "backups-iac";
    const ABOUT: &'static str = "Backup schedules as custom resources, with their definition, waited on until a controller takes them on";
    type Config = Section<Settings>;
    type Command = NoCommands;

    fn declare(&self, stack: &StackInfo, settings: &Settings) -> Result<Resources, Error> {
        Ok(declare(stack, settings))
    }

    fn stack_file_section(&self) -> Option<String> {
        Some(format!(
            "\
# Backup schedules, as BackupSchedule objects of a CustomResourceDefinition
# this stack applies too. A backup controller must report each one
# `Ready`: `up` waits for that, and without a controller it waits until its
# --timeout.
backups:
  # The kind's API group; the definition is cluster-wide.
  group: {}
  # Each: name, target, schedule (cron, or @hourly/@daily/@weekly/@monthly),
  # and optionally retain (1-90, default 7), minimumRetain (default 1; retain
  # may not be below it) and suspend (default false).
  schedules:
  - name: orders-nightly
    target: postgres/orders
    schedule: \"0 2 * * *\"
    retain: 14
  - name: media-weekly
    target: s3/media
    schedule: \"@weekly\"
",
            default_group()
        ))
    }

    async fn outputs(
        &self,
        stack: &StackInfo,
        settings: &Settings,
        live: &LiveView<'_>,
    ) -> Result<Outputs, EngineError> {
        let api_version = format!("{}/{VERSION}", settings.group);
        let mut schedules = BTreeMap::new();
        for schedule in &settings.schedules {
            let id = ResourceId::new(&api_version, KIND, Some(stack.namespace()), &schedule.name);
            let live = live.get(&id).await?.unwrap_or_default();
            schedules.insert(schedule.name.clone(), ready_condition(&live));
        }
        Ok(outputs_of(&BackupsOutputs {
            definition: definition_name(&settings.group),
            schedules,
        }))
    }
}

/// What `backups-iac output` shows once the stack is up.
#[derive(Serialize)]
struct BackupsOutputs {
    /// The CustomResourceDefinition's name.
    definition: String,
    /// Each schedule's `Ready` condition as the controller last reported
    /// it: `True`, or its status and message.
    schedules: BTreeMap<String, String>,
}

fn ready_condition(live: &serde_json::Value) -> String {
    let conditions = live["status"]["conditions"].as_array();
    let Some(ready) = conditions
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Ready")
    else {
        return "no Ready condition yet".to_string();
    };
    let status = ready["status"].as_str().unwrap_or("Unknown");
    match ready["message"].as_str().filter(|m| !m.is_empty()) {
        Some(message) if status != "True" => format!("{status}: {message}"),
        _ => status.to_string(),
    }
}

/// The definition's name for `group`: `backupschedules.<group>`.
pub fn definition_name(group: &str) -> String {
    format!("{PLURAL}.{group}")
}

/// The definition, then the schedules, each waited on by the kind's rule.
/// The schedules refer to the definition by their kind, so they are applied
/// once it is established.
pub fn declare(stack: &StackInfo, settings: &Settings) -> Resources {
    let api_version = format!("{}/{VERSION}", settings.group);
    let mut resources = stack.resources();
    resources.add(definition(&settings.group));
    for schedule in &settings.schedules {
        resources.add(BackupSchedule {
            api_version: api_version.clone(),
            kind: KIND,
            metadata: ObjectMeta {
                name: Some(schedule.name.clone()),
                namespace: Some(stack.namespace().to_string()),
                ..ObjectMeta::default()
            },
            spec: schedule,
        });
    }
    // A BackupSchedule has no status of its own until a controller writes
    // one, so by the kind's rules it would be ready as soon as it exists.
    let rule = WaitRule::new(READY)
        .and_then(|rule| rule.failing_on(FAILED))
        .expect("the wait rule is well-formed");
    resources.wait_for_kind(&api_version, KIND, rule);
    resources
}

/// The CustomResourceDefinition of BackupSchedule in `group`.
pub fn definition(group: &str) -> CustomResourceDefinition {
    CustomResourceDefinition {
        metadata: ObjectMeta {
            name: Some(definition_name(group)),
            ..ObjectMeta::default()
        },
        spec: CustomResourceDefinitionSpec {
            group: group.to_string(),
            scope: "Namespaced".to_string(),
            names: CustomResourceDefinitionNames {
                kind: KIND.to_string(),
                list_kind: Some(format!("{KIND}List")),
                plural: PLURAL.to_string(),
                singular: Some("backupschedule".to_string()),
                ..CustomResourceDefinitionNames::default()
            },
            versions: vec![CustomResourceDefinitionVersion {
                name: VERSION.to_string(),
                served: true,
                storage: true,
                schema: Some(CustomResourceValidation {
                    open_api_v3_schema: Some(object(
                        "A schedule of backups of one target, run by a backup controller.",
                        [("spec", spec_schema()), ("status", status_schema())],
                        &["spec"],
                    )),
                }),
                // The controller reports through the status subresource,
                // which a spec apply never overwrites.
                subresources: Some(CustomResourceSubresources {
                    status: Some(CustomResourceSubresourceStatus(serde_json::json!({}))),
                    ..CustomResourceSubresources::default()
                }),
                ..CustomResourceDefinitionVersion::default()
            }],
            ..CustomResourceDefinitionSpec::default()
        },
        ..CustomResourceDefinition::default()
    }
}

fn spec_schema() -> JSONSchemaProps {
    let integer =
        |description: &str, minimum: f64, maximum: Option<f64>, default: i64| JSONSchemaProps {
            description: Some(description.to_string()),
            type_: Some("integer".to_string()),
            minimum: Some(minimum),
            maximum,
            default: Some(JSON(default.into())),
            ..JSONSchemaProps::default()
        };
    JSONSchemaProps {
        x_kubernetes_validations: Some(vec![ValidationRule {
            rule: RETAIN_RULE.to_string(),
            message: Some("retain must not be below minimumRetain".to_string()),
            field_path: Some(".retain".to_string()),
            ..ValidationRule::default()
        }]),
        ..object(
            "What to back up, when, and how many backups to keep.",
            [
                (
                    "target",
                    JSONSchemaProps {
                        min_length: Some(1),
                        ..string("What to back up, as the controller names it.")
                    },
                ),
                (
                    "schedule",
                    JSONSchemaProps {
                        pattern: Some(
                            r"^(@(hourly|daily|weekly|monthly)|(\S+\s+){4}\S+)$".to_string(),
                        ),
                        ..string("A cron expression, or @hourly, @daily, @weekly, @monthly.")
                    },
                ),
                (
                    "retain",
                    integer("How many backups to keep.", 1.0, Some(90.0), 7),
                ),
                (
                    "minimumRetain",
                    integer("The fewest backups retain may keep.", 1.0, None, 1),
                ),
                (
                    "suspend",
                    JSONSchemaProps {
                        description: Some("Pauses the schedule.".to_string()),
                        type_: Some("boolean".to_string()),
                        default: Some(JSON(false.into())),
                        ..JSONSchemaProps::default()
                    },
                ),
            ],
            &["target", "schedule"],
        )
    }
}

/// What a controller reports: conditions, as Kubernetes' own kinds do.
fn status_schema() -> JSONSchemaProps {
    let condition = object(
        "",
        [
            ("type", string("")),
            ("status", string("True, False or Unknown.")),
            ("reason", string("")),
            ("message", string("")),
            (
                "lastTransitionTime",
                JSONSchemaProps {
                    format: Some("date-time".to_string()),
                    ..string("")
                },
            ),
            (
                "observedGeneration",
                JSONSchemaProps {
                    type_: Some("integer".to_string()),
                    ..JSONSchemaProps::default()
                },
            ),
        ],
        &["type", "status"],
    );
    object(
        "Set by the backup controller.",
        [(
            "conditions",
            JSONSchemaProps {
                type_: Some("array".to_string()),
                items: Some(JSONSchemaPropsOrArray::Schema(Box::new(condition))),
                x_kubernetes_list_type: Some("map".to_string()),
                x_kubernetes_list_map_keys: Some(vec!["type".to_string()]),
                ..JSONSchemaProps::default()
            },
        )],
        &[],
    )
}

fn object<const N: usize>(
    description: &str,
    properties: [(&str, JSONSchemaProps); N],
    required: &[&str],
) -> JSONSchemaProps {
    JSONSchemaProps {
        description: (!description.is_empty()).then(|| description.to_string()),
        type_: Some("object".to_string()),
        properties: Some(
            properties
                .into_iter()
                .map(|(name, schema)| (name.to_string(), schema))
                .collect(),
        ),
        required: (!required.is_empty()).then(|| required.iter().map(|r| r.to_string()).collect()),
        ..JSONSchemaProps::default()
    }
}

fn string(description: &str) -> JSONSchemaProps {
    JSONSchemaProps {
        description: (!description.is_empty()).then(|| description.to_string()),
        type_: Some("string".to_string()),
        ..JSONSchemaProps::default()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_new_stack_file_loads_back_with_two_schedules() {
        let root = Path::new("/projects/backups");
        let text = echo_iac_runner::new_stack_file(&Backups, "dev", "backups-dev", None, root)
            .unwrap_or_else(|e| panic!("{e}"));
        let stack = echo_iac_runner::stack::parse::<Section<Settings>>(
            "dev",
            &root.join("stacks/dev.yaml"),
            &text,
            root,
        )
        .unwrap();
        assert_eq!(stack.program.group, "backups.example.com");
        let names: Vec<&str> = stack
            .program
            .schedules
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        assert_eq!(names, ["orders-nightly", "media-weekly"]);
        assert!(text.contains("--timeout"), "{text}");
    }
}
