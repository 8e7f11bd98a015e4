//! A plan saved for review, and the check that what is about to be applied
//! is exactly what was reviewed.
//!
//! A saved plan holds no object: per step, the operation, the object's id,
//! the uid the state knew it by, and digests of the desired object and of
//! the field changes. Field changes are already masked for Secrets; a
//! desired Secret is digested with Argon2id salted by the stack and the
//! object (as the state seals values), so the file gives no value away.
//! When the same stack is planned again,
//! [`SavedPlan::differences`] says step by step what moved since.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::sensitive;
use crate::state::State;
use crate::{Blocker, DesiredResource, Identity, Plan, ResourceId, Step};

/// The version of the saved plan's format this release writes and reads.
pub const FORMAT: u32 = 1;

/// A plan as reviewed: what `up --plan` must find again before it applies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SavedPlan {
    /// [`FORMAT`] when written.
    pub format: u32,
    /// The program that planned (its identity's name).
    pub program: String,
    /// The program's version.
    pub program_version: String,
    /// The stack planned.
    pub stack: String,
    /// The API server the plan was computed against, without credentials.
    pub server: String,
    /// The kubeconfig context used.
    pub context: String,
    /// The state serial the plan started from.
    pub serial: u64,
    /// When the plan was made (RFC 3339, UTC).
    pub created: String,
    /// Options the plan was made with, which applying it keeps.
    pub options: SavedOptions,
    /// One per step, `same` ones included, in the plan's order.
    pub steps: Vec<SavedStep>,
}

/// Planning options that change what a plan does.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SavedOptions {
    /// Fields owned by other managers are taken.
    pub force_conflicts: bool,
    /// Objects that exist without this stack's labels are taken over.
    pub adopt: bool,
}

/// One step of a saved plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SavedStep {
    /// `create`, `update`, `replace`, `delete` or `same`.
    pub op: String,
    /// The object, as `Kind namespace/name`.
    pub id: String,
    /// The uid the state recorded for it, if any.
    pub uid: Option<String>,
    /// A digest of the object the program declared (none for a delete).
    pub desired: Option<String>,
    /// A digest of the field changes (paths, old and new values, masked).
    pub changes: String,
    /// The protection that blocks the step (`protected by the program`):
    /// a plan is saved only without blocked steps, but one planned again
    /// may have them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked: Option<String>,
}

/// Where the cluster, the state and the program stand for a plan.
pub struct Context<'a> {
    /// Who plans.
    pub identity: &'a Identity,
    /// The program's version.
    pub program_version: &'a str,
    /// The API server, without credentials.
    pub server: &'a str,
    /// The kubeconfig context.
    pub context: &'a str,
    /// The options the plan was made with.
    pub options: SavedOptions,
}

impl SavedPlan {
    /// Records `plan`, made from `state` for `desired`.
    pub fn of(
        plan: &Plan,
        desired: &[DesiredResource],
        state: &State,
        context: &Context<'_>,
    ) -> SavedPlan {
        SavedPlan {
            format: FORMAT,
            program: context.identity.name().to_string(),
            program_version: context.program_version.to_string(),
            stack: plan.stack.clone(),
            server: context.server.to_string(),
            context: context.context.to_string(),
            serial: state.serial,
            created: crate::state::now_rfc3339(),
            options: context.options.clone(),
            steps: plan
                .steps
                .iter()
                .map(|step| saved_step(step, desired, state, context.identity))
                .collect(),
        }
    }

    /// Reads a saved plan, refusing another format's.
    pub fn parse(text: &str) -> Result<SavedPlan, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        match value.get("format").and_then(Value::as_u64) {
            Some(format) if format == u64::from(FORMAT) => {}
            Some(format) => {
                return Err(format!(
                    "it is in format {format}, and this release reads format {FORMAT}"
                ));
            }
            None => return Err("it has no `format`: it is no saved plan".into()),
        }
        // Parsed again from the text, not the value, so a field that does
        // not fit the format is named with its line and column.
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// The plan as a file holds it: pretty JSON with a final newline, which
    /// [`SavedPlan::parse`] reads back.
    pub fn to_text(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("a saved plan serializes");
        text.push('\n');
        text
    }

    /// What differs between this reviewed plan and `now`, the same stack
    /// planned again (in `now`'s own [`Context`] and from `state`): empty
    /// when applying `now` does exactly what was reviewed.
    pub fn differences(&self, now: &SavedPlan) -> Vec<String> {
        let mut found = Vec::new();
        for (what, reviewed, current) in [
            ("program", &self.program, &now.program),
            ("stack", &self.stack, &now.stack),
            ("API server", &self.server, &now.server),
            ("context", &self.context, &now.context),
        ] {
            if reviewed != current {
                found.push(format!(
                    "the plan is for {what} `{reviewed}`, this run is for `{current}`"
                ));
            }
        }
        if !found.is_empty() {
            return found;
        }
        if self.options != now.options {
            found.push(format!(
                "the plan was made with {}, this run asks for {}",
                describe(&self.options),
                describe(&now.options)
            ));
        }
        if self.serial != now.serial {
            found.push(format!(
                "the state moved from serial {} to {}: another run changed the stack since",
                self.serial, now.serial
            ));
        }
        for reviewed in &self.steps {
            match now.steps.iter().find(|s| s.id == reviewed.id) {
                None => found.push(format!(
                    "{}: planned as `{}`, now no longer in the plan",
                    reviewed.id, reviewed.op
                )),
                Some(current) => found.extend(step_differences(reviewed, current)),
            }
        }
        for current in &now.steps {
            if !self.steps.iter().any(|s| s.id == current.id) {
                found.push(format!(
                    "{}: now `{}`, not in the reviewed plan",
                    current.id, current.op
                ));
            }
        }
        found
    }
}

fn describe(options: &SavedOptions) -> String {
    let mut flags = Vec::new();
    if options.force_conflicts {
        flags.push("--force-conflicts");
    }
    if options.adopt {
        flags.push("--adopt");
    }
    if flags.is_empty() {
        "no --force-conflicts or --adopt".into()
    } else {
        flags.join(" and ")
    }
}

fn step_differences(reviewed: &SavedStep, current: &SavedStep) -> Vec<String> {
    let id = &reviewed.id;
    if reviewed.op != current.op {
        return vec![format!(
            "{id}: reviewed as `{}`, now `{}`",
            reviewed.op, current.op
        )];
    }
    let mut found = Vec::new();
    if reviewed.blocked != current.blocked {
        found.push(format!(
            "{id}: reviewed as `{}`{}, now {}",
            reviewed.op,
            reviewed
                .blocked
                .as_deref()
                .map(|b| format!(" (blocked: {b})"))
                .unwrap_or_default(),
            current
                .blocked
                .as_deref()
                .map_or_else(|| "unblocked".to_string(), |b| format!("blocked: {b}"))
        ));
    }
    if reviewed.uid != current.uid {
        found.push(format!(
            "{id}: recorded as another object (uid {} then, {} now)",
            reviewed.uid.as_deref().unwrap_or("none"),
            current.uid.as_deref().unwrap_or("none")
        ));
    }
    if reviewed.desired != current.desired {
        found.push(format!(
            "{id}: the program declares it differently now (the stack file or the program changed)"
        ));
    }
    if reviewed.changes != current.changes {
        found.push(format!(
            "{id}: its field changes differ from the reviewed ones (the object changed in the cluster)"
        ));
    }
    found
}

fn saved_step(
    step: &Step,
    desired: &[DesiredResource],
    state: &State,
    identity: &Identity,
) -> SavedStep {
    let object = desired.iter().find(|d| d.id == step.id);
    SavedStep {
        op: step.op.as_str().to_string(),
        id: step.id.to_string(),
        uid: state.resource(&step.id).map(|r| r.uid.clone()),
        desired: object.map(|d| desired_digest(&d.id, &d.object, identity, &state.stack)),
        changes: hex(&Sha256::digest(changes_text(step).as_bytes())),
        blocked: match &step.blocker {
            Some(Blocker::Protected { by }) => Some(format!("protected by {by}")),
            // Conflicts and rejections show in the field changes already.
            _ => None,
        },
    }
}

/// The field changes as the plan shows them: Secret values already masked.
fn changes_text(step: &Step) -> String {
    let changes: Vec<Value> = step
        .changes
        .iter()
        .map(|c| serde_json::json!([c.path, c.old, c.new]))
        .collect();
    serde_json::json!({"reason": step.reason, "changes": changes}).to_string()
}

fn desired_digest(id: &ResourceId, object: &Value, identity: &Identity, stack: &str) -> String {
    let text = object.to_string();
    if id.kind == "Secret" {
        let context = [
            "saved-plan",
            identity.name(),
            stack,
            id.namespace.as_deref().unwrap_or_default(),
            &id.name,
        ];
        return hex(&sensitive::stable_digest(&context, text.as_bytes()));
    }
    hex(&Sha256::digest(text.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
