//! Protection and retain-on-delete, planned and carried out against the
//! fake API server.

use serde_json::json;

use super::*;
use crate::plan::{Blocker, Op};
use crate::protect::{Guard, Protections};

fn cm(name: &str) -> Value {
    let mut object = config_map("ns", name, json!({"key": name}));
    object["metadata"]["labels"]["team"] = json!("shop");
    object
}

fn protected(object: &Value) -> DesiredResource {
    let mut declared = desired(object.clone(), &[]);
    declared.options.protect = true;
    declared
}

fn retained(object: &Value) -> DesiredResource {
    let mut declared = desired(object.clone(), &[]);
    declared.options.retain = true;
    declared
}

fn rules(guard: Guard, pattern: &str) -> Protections {
    let mut rules = Protections::new();
    rules.add(guard, pattern.parse().unwrap(), "stacks/dev.yaml:3");
    rules
}

fn blocker(plan: &Plan, object: &Value) -> Option<Blocker> {
    let id = id_of(object);
    plan.steps
        .iter()
        .find(|s| s.id == id)
        .and_then(|s| s.blocker.clone())
}

#[tokio::test]
async fn an_object_the_program_protected_is_not_pruned_once_it_no_longer_declares_it() {
    let stack = Stack::new();
    let (keep, other) = (cm("keep"), cm("other"));
    stack
        .up(&[protected(&keep), desired(other.clone(), &[])])
        .await;
    let state = stack.state().await;
    assert!(state.resource(&id_of(&keep)).unwrap().protect);
    assert!(!state.resource(&id_of(&other)).unwrap().protect);

    // The program drops both: the protection it recorded still holds.
    let plan = stack.plan(&[]).await;
    assert_eq!(
        ops(&plan),
        ["delete ConfigMap ns/keep", "delete ConfigMap ns/other"]
    );
    assert_eq!(
        blocker(&plan, &keep),
        Some(Blocker::Protected {
            by: "the program, when the object was last applied".into()
        })
    );
    assert_eq!(blocker(&plan, &other), None);
    assert_eq!(plan.summary().blocked, 1);

    // Declared again without protection, it may go: the program's word
    // counts while it declares the object.
    stack.up(&[desired(keep.clone(), &[])]).await;
    assert!(!stack.state().await.resource(&id_of(&keep)).unwrap().protect);
    let plan = stack.plan(&[]).await;
    assert_eq!(blocker(&plan, &keep), None);
}

#[tokio::test]
async fn a_protected_object_is_not_replaced() {
    let stack = Stack::new();
    let web = deployment("ns", "web", 1);
    stack.up(&[protected(&web)]).await;
    let mut moved = web.clone();
    moved["spec"]["selector"]["matchLabels"]["app"] = json!("other");
    moved["spec"]["template"]["metadata"]["labels"]["app"] = json!("other");
    let plan = stack.plan(&[protected(&moved)]).await;
    assert_eq!(plan.steps[0].op, Op::Replace);
    assert_eq!(
        blocker(&plan, &web),
        Some(Blocker::Protected {
            by: "the program".into()
        })
    );
    let options = PlanOptions {
        protections: rules(Guard::Protect, "Deployment/ns/w*"),
        ..PlanOptions::default()
    };
    let plan = stack
        .plan_with(&[desired(moved, &[])], options)
        .await
        .unwrap();
    assert_eq!(
        blocker(&plan, &web),
        Some(Blocker::Protected {
            by: "stacks/dev.yaml:3 (protect: Deployment/ns/w*)".into()
        })
    );
}

#[tokio::test]
async fn destroy_is_blocked_by_a_pattern_and_keep_protected_retains_instead() {
    let stack = Stack::new();
    let (keep, other) = (cm("keep"), cm("other"));
    let declared = [desired(keep.clone(), &[]), desired(other.clone(), &[])];
    stack.up(&declared).await;
    let options = || planner::DestroyPlanOptions {
        protections: rules(Guard::Protect, "ConfigMap/ns/kee*"),
        ..planner::DestroyPlanOptions::default()
    };
    let plan = stack.plan_destroy_options(&declared, options()).await;
    assert_eq!(
        blocker(&plan, &keep),
        Some(Blocker::Protected {
            by: "stacks/dev.yaml:3 (protect: ConfigMap/ns/kee*)".into()
        })
    );
    assert!(crate::operation::refuse_blocked(&plan).is_err());

    let plan = stack
        .plan_destroy_options(
            &declared,
            planner::DestroyPlanOptions {
                keep_protected: true,
                ..options()
            },
        )
        .await;
    assert_eq!(
        ops(&plan),
        ["retain ConfigMap ns/keep", "delete ConfigMap ns/other"]
    );
    assert!(plan.blocked().next().is_none());
    let (events, result) = stack.apply(&plan, &declared).await;
    result.unwrap();
    assert!(events.contains(&"finished retain ConfigMap ns/keep".to_string()));
    assert!(stack.fake.get(&id_of(&other)).is_none());
    let live = stack.fake.get(&id_of(&keep)).expect("kept running");
    assert_eq!(
        live["metadata"]["labels"],
        json!({"team": "shop"}),
        "only the ownership labels go"
    );
    assert_eq!(live["data"], json!({"key": "keep"}));
    assert!(stack.state().await.resources.is_empty());
}

#[tokio::test]
async fn a_retained_prune_leaves_the_object_unlabelled_and_adopting_it_again_takes_adopt() {
    let stack = Stack::new();
    let keep = cm("keep");
    stack.up(&[retained(&keep)]).await;
    assert!(stack.state().await.resource(&id_of(&keep)).unwrap().retain);
    let plan = stack.plan(&[]).await;
    assert_eq!(ops(&plan), ["retain ConfigMap ns/keep"]);
    assert_eq!(plan.summary().retain, 1);
    let reason = plan.steps[0].reason.as_deref().unwrap();
    assert!(reason.contains("retained as the program"), "{reason}");
    let (_, result) = stack.apply(&plan, &[]).await;
    result.unwrap();
    let live = stack.fake.get(&id_of(&keep)).expect("kept running");
    assert_eq!(live["metadata"]["labels"], json!({"team": "shop"}));
    let state = stack.state().await;
    assert!(state.resources.is_empty() && state.pending.is_empty());

    // Declared again, it is not the stack's: `up` takes it only with --adopt.
    let plan = stack.plan(&[desired(keep.clone(), &[])]).await;
    assert!(matches!(
        blocker(&plan, &keep),
        Some(Blocker::Unmanaged { .. })
    ));
    let adopt = PlanOptions {
        adopt: true,
        ..PlanOptions::default()
    };
    let plan = stack
        .plan_with(&[desired(keep.clone(), &[])], adopt)
        .await
        .unwrap();
    assert!(plan.blocked().next().is_none());
    let (_, result) = stack.apply(&plan, &[desired(keep.clone(), &[])]).await;
    result.unwrap();
    assert!(stack.state().await.resource(&id_of(&keep)).is_some());
}

#[tokio::test]
async fn a_retain_stopped_after_the_labels_went_converges_and_a_gone_object_is_only_forgotten() {
    let stack = Stack::new();
    let (half, gone) = (cm("half"), cm("gone"));
    stack.up(&[retained(&half), retained(&gone)]).await;
    // As a run stopped between the patch and the state's write leaves it.
    stack.fake.update(&id_of(&half), |object| {
        object["metadata"]["labels"] = json!({"team": "shop"});
    });
    stack.fake.remove(&id_of(&gone));
    let plan = stack.plan(&[]).await;
    assert_eq!(
        ops(&plan),
        ["retain ConfigMap ns/half", "delete ConfigMap ns/gone"]
    );
    let (_, result) = stack.apply(&plan, &[]).await;
    result.unwrap();
    assert!(stack.state().await.resources.is_empty());
    let live = stack.fake.get(&id_of(&half)).expect("kept");
    assert_eq!(live["metadata"]["labels"], json!({"team": "shop"}));
}

#[tokio::test]
async fn a_stack_file_retain_pattern_retains_on_destroy() {
    let stack = Stack::new();
    let keep = cm("keep");
    stack.up(&[desired(keep.clone(), &[])]).await;
    let plan = stack
        .plan_destroy_options(
            &[],
            planner::DestroyPlanOptions {
                protections: rules(Guard::Retain, "ConfigMap/ns/*"),
                ..planner::DestroyPlanOptions::default()
            },
        )
        .await;
    assert_eq!(ops(&plan), ["retain ConfigMap ns/keep"]);
    let reason = plan.steps[0].reason.as_deref().unwrap();
    assert!(
        reason.contains("stacks/dev.yaml:3 (retain: ConfigMap/ns/*)"),
        "{reason}"
    );
}
