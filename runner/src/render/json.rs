//! The machine-readable plan printed by `--json`.
//!
//! The shape is a contract with scripts, so it is spelled out here field by
//! field rather than derived from the engine types: renaming a Rust field must
//! not change the output. Every key is always present (`null` when empty), so
//! consumers never have to tell a missing key from an empty one.

use serde_json::{Value, json};

use echo_iac_engine::{Change, Plan, Step};

/// The plan as one JSON document:
/// `{"stack", "steps": [{"op", "kind", "namespace", "name", "changes":
/// [{"path", "old", "new"}], "reason", "blocker"}], "summary", "interrupted",
/// "untracked": [{"kind", "namespace", "name", "uid", "declared"}],
/// "leftOut": [{"kind", "namespace", "name"}]}`, the last the objects
/// `--target` left out (their count is the summary's `leftOut`).
/// Unchanged steps are included; `namespace` is null for cluster-scoped
/// objects, `old`/`new` null for an added/removed field, and `"(sensitive)"`
/// in place of a Secret's values.
pub(crate) fn plan_json(plan: &Plan) -> Value {
    json!({
        "stack": plan.stack,
        "steps": plan.steps.iter().map(step_json).collect::<Vec<_>>(),
        "summary": plan.summary(),
        "interrupted": plan.interrupted,
        "untracked": plan.untracked.iter().map(|u| json!({
            "kind": u.id.kind,
            "namespace": u.id.namespace,
            "name": u.id.name,
            "uid": u.uid,
            "declared": u.declared,
        })).collect::<Vec<_>>(),
        "leftOut": plan.left_out.iter().map(|id| json!({
            "kind": id.kind,
            "namespace": id.namespace,
            "name": id.name,
        })).collect::<Vec<_>>(),
    })
}

fn step_json(step: &Step) -> Value {
    json!({
        "op": step.op.as_str(),
        "kind": step.id.kind,
        "namespace": step.id.namespace,
        "name": step.id.name,
        "changes": step.changes.iter().map(change_json).collect::<Vec<_>>(),
        "reason": step.reason,
        "blocker": step.blocker,
    })
}

fn change_json(change: &Change) -> Value {
    json!({
        "path": change.path,
        "old": change.old,
        "new": change.new,
    })
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn json_plan_with_every_op() {
        insta::assert_json_snapshot!(plan_json(&every_op_plan()));
    }

    #[test]
    fn json_plan_shows_secret_values_only_as_sensitive() {
        let text = plan_json(&secret_plan()).to_string();
        for value in SECRET_VALUES {
            assert!(!text.contains(value), "{value} shown: {text}");
        }
        let value = plan_json(&secret_plan());
        let changed = &value["steps"][1]["changes"];
        assert_eq!(
            changed[1],
            serde_json::json!({"path": "data.password", "old": "(sensitive)", "new": "(sensitive)"})
        );
    }

    #[test]
    fn json_plan_names_each_object_targets_left_out() {
        let mut plan = unchanged_plan();
        let left = plan.steps.remove(0).id;
        plan.left_out.push(left.clone());
        let value = plan_json(&plan);
        assert_eq!(
            value["leftOut"],
            serde_json::json!([{"kind": left.kind, "namespace": left.namespace, "name": left.name}])
        );
        assert_eq!(value["summary"]["leftOut"], 1);
    }

    #[test]
    fn json_plan_shows_a_retained_step_and_a_protected_one() {
        let value = plan_json(&guarded_plan());
        let steps = value["steps"].as_array().unwrap();
        assert_eq!(steps[1]["op"], "retain");
        assert_eq!(steps[1]["kind"], "ConfigMap");
        assert!(
            steps[1]["reason"]
                .as_str()
                .unwrap()
                .starts_with("retained as the program asks")
        );
        assert_eq!(
            steps[2]["blocker"],
            json!({"kind": "protected", "by": "stacks/dev.yaml:8 (protect: Namespace/echo-dev)"})
        );
        assert_eq!(value["summary"]["retain"], 1);
        assert_eq!(value["summary"]["blocked"], 1);
        assert_eq!(value["summary"]["delete"], 1);
    }

    #[test]
    fn json_plan_with_blockers() {
        insta::assert_json_snapshot!(plan_json(&blocked_plan()));
    }

    #[test]
    fn json_plan_without_changes_still_lists_every_step() {
        let value = plan_json(&unchanged_plan());
        assert_eq!(value["steps"].as_array().map(Vec::len), Some(3));
        insta::assert_json_snapshot!(value);
    }
}
