//! Saving a plan for review and finding it again before applying it.

use serde_json::json;

use super::*;
use crate::saved_plan::{Context, SavedOptions, SavedPlan};

fn context(identity: &Identity) -> Context<'_> {
    Context {
        identity,
        program_version: "1.0.0",
        server: "https://127.0.0.1:6443/",
        context: "local",
        options: SavedOptions::default(),
    }
}

async fn saved(stack: &Stack, desired: &[DesiredResource]) -> SavedPlan {
    let plan = stack.plan(desired).await;
    let identity = identity();
    SavedPlan::of(&plan, desired, &stack.state().await, &context(&identity))
}

fn secret(password: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"namespace": "ns", "name": "auth", "labels": stack_labels()},
        "stringData": {"password": password}})
}

#[tokio::test]
async fn the_same_stack_planned_again_is_the_reviewed_plan() {
    let stack = Stack::new();
    let first = [
        desired(config_map("ns", "settings", json!({"a": "1"})), &[]),
        desired(deployment("ns", "web", 2), &[]),
    ];
    stack.up(&first).await;
    let changed = [
        desired(config_map("ns", "settings", json!({"a": "2"})), &[]),
        desired(deployment("ns", "web", 3), &[]),
    ];
    let reviewed = saved(&stack, &changed).await;
    assert_eq!(reviewed.steps.len(), 2);
    assert!(
        reviewed.steps.iter().all(|s| s.op == "update"),
        "{reviewed:?}"
    );

    let read = SavedPlan::parse(&reviewed.to_text()).unwrap();
    assert_eq!(read, reviewed);
    assert_eq!(
        reviewed.differences(&saved(&stack, &changed).await),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn what_moved_since_the_review_is_named() {
    let stack = Stack::new();
    let before = [
        desired(config_map("ns", "settings", json!({"a": "1"})), &[]),
        desired(deployment("ns", "web", 2), &[]),
    ];
    stack.up(&before).await;
    let changed = [
        desired(config_map("ns", "settings", json!({"a": "1"})), &[]),
        desired(deployment("ns", "web", 3), &[]),
    ];
    let reviewed = saved(&stack, &changed).await;

    // Someone scales the Deployment: the reviewed 2 → 3 is now 5 → 3.
    let web = id_of(&deployment("ns", "web", 2));
    stack.fake.apply_as(
        "kubectl",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"namespace": "ns", "name": "web"}, "spec": {"replicas": 5}}),
    );
    let found = reviewed.differences(&saved(&stack, &changed).await);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with(&web.to_string()), "{found:?}");

    // The program declares something else: another stack file.
    let other = [
        desired(config_map("ns", "settings", json!({"a": "9"})), &[]),
        desired(deployment("ns", "web", 4), &[]),
    ];
    let found = reviewed.differences(&saved(&stack, &other).await);
    assert!(
        found.contains(&"ConfigMap ns/settings: reviewed as `same`, now `update`".to_string()),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|d| d.starts_with("Deployment ns/web: the program declares it differently")),
        "{found:?}"
    );

    // Another run wrote the state since.
    let mut now = saved(&stack, &changed).await;
    now.serial += 1;
    let found = reviewed.differences(&now);
    assert!(found.iter().any(|d| d.contains("serial")), "{found:?}");
}

#[tokio::test]
async fn a_saved_plan_holds_no_secret_value() {
    let stack = Stack::new();
    stack.up(&[desired(secret("first-pw-91x"), &[])]).await;
    let reviewed = saved(&stack, &[desired(secret("second-pw-37q"), &[])]).await;
    assert_eq!(reviewed.steps[0].op, "update");
    let text = serde_json::to_string(&reviewed).unwrap();
    for value in ["first-pw-91x", "second-pw-37q"] {
        assert!(!text.contains(value), "{value} in {text}");
        let base64 =
            serde_json::to_string(&k8s_openapi::ByteString(value.as_bytes().to_vec())).unwrap();
        assert!(
            !text.contains(base64.trim_matches('"')),
            "{value} in {text}"
        );
    }
    // Another password is another plan, though the changes read alike.
    let other = saved(&stack, &[desired(secret("third-pw-55z"), &[])]).await;
    assert!(!reviewed.differences(&other).is_empty());
}

#[test]
fn a_plan_of_another_format_is_refused_saying_which() {
    let err = SavedPlan::parse(r#"{"format": 9}"#).unwrap_err();
    assert!(err.contains("format 9"), "{err}");
    let err = SavedPlan::parse(r#"{"steps": []}"#).unwrap_err();
    assert!(err.contains("no saved plan"), "{err}");
}

#[test]
fn a_field_that_does_not_fit_the_format_is_named_with_its_line() {
    let err = SavedPlan::parse("{\n  \"format\": 1,\n  \"program\": 7\n}").unwrap_err();
    assert!(err.contains("line 3"), "{err}");
    let err = SavedPlan::parse("{\"format\": 1}").unwrap_err();
    assert!(
        err.contains("missing field") && err.contains("line 1"),
        "{err}"
    );
}

#[tokio::test]
async fn a_prune_reviewed_as_a_delete_differs_once_retained_or_protected() {
    use crate::protect::{Guard, Protections};
    let stack = Stack::new();
    let old = config_map("ns", "old", json!({"a": "1"}));
    stack.up(&[desired(old.clone(), &[])]).await;
    let reviewed = saved(&stack, &[]).await;
    assert_eq!(reviewed.steps[0].op, "delete");
    assert_eq!(reviewed.steps[0].blocked, None);
    let text = serde_json::to_string(&reviewed).unwrap();
    assert!(!text.contains("blocked"), "{text}");

    let planned_with = async |guard| {
        let mut rules = Protections::new();
        rules.add(
            guard,
            "ConfigMap/ns/old".parse().unwrap(),
            "stacks/dev.yaml:4",
        );
        let options = PlanOptions {
            protections: rules,
            ..PlanOptions::default()
        };
        let plan = stack.plan_with(&[], options).await.unwrap();
        SavedPlan::of(&plan, &[], &stack.state().await, &context(&identity()))
    };
    let retained = planned_with(Guard::Retain).await;
    assert_eq!(
        reviewed.differences(&retained),
        ["ConfigMap ns/old: reviewed as `delete`, now `retain`"]
    );
    let protected = planned_with(Guard::Protect).await;
    assert_eq!(
        reviewed.differences(&protected),
        [
            "ConfigMap ns/old: reviewed as `delete`, now blocked: protected by stacks/dev.yaml:4 (protect: ConfigMap/ns/old)"
        ]
    );
    // The saved form carries it, and reads back.
    let text = serde_json::to_string(&protected).unwrap();
    assert_eq!(SavedPlan::parse(&text).unwrap(), protected);
}
