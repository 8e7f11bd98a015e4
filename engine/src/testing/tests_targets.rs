//! Plans limited to targets, and `up` and `destroy` carrying them out,
//! against the fake API server.

use serde_json::json;

use super::*;
use crate::operation::{self, DestroyOptions, Silent, UpOptions};
use crate::target::Targets;

fn targets(texts: &[&str]) -> Targets {
    Targets::new(
        texts.iter().map(|t| t.parse().expect("a target")).collect(),
        Some("ns".into()),
    )
}

fn targeted(texts: &[&str]) -> PlanOptions {
    PlanOptions {
        targets: Some(targets(texts)),
        ..PlanOptions::default()
    }
}

fn destroy_targeted(targets: Targets) -> planner::DestroyPlanOptions {
    planner::DestroyPlanOptions {
        concurrency: 4,
        targets: Some(targets),
        ..planner::DestroyPlanOptions::default()
    }
}

fn left_out(plan: &Plan) -> Vec<String> {
    plan.left_out.iter().map(ToString::to_string).collect()
}

/// Carries out a destroy `plan` made from `state`.
async fn destroy(stack: &Stack, state: State, plan: &Plan, desired: &[DesiredResource]) -> State {
    let locked = stack.locked().await;
    operation::destroy(
        &stack.cluster,
        &locked,
        state,
        plan,
        desired,
        &DestroyOptions {
            concurrency: 4,
            timeout: TIMEOUT,
            ..DestroyOptions::default()
        },
        &Silent,
    )
    .await
    .unwrap()
}

/// A stack of a ConfigMap, a Deployment that depends on it, and a
/// ConfigMap the program will stop declaring, all applied.
async fn applied_stack() -> (Stack, Value, Value, Value) {
    let stack = Stack::new();
    let config = config_map("ns", "web", json!({"message": "old"}));
    let deploy = deployment("ns", "web", 1);
    let old = config_map("ns", "old", json!({}));
    stack
        .up(&[
            desired(config.clone(), &[]),
            desired(deploy.clone(), &[&config]),
            desired(old.clone(), &[]),
        ])
        .await;
    (stack, config, deploy, old)
}

#[tokio::test]
async fn a_targeted_update_leaves_other_objects_untouched_and_unpruned() {
    let (stack, config, deploy, old) = applied_stack().await;
    let before = stack.state().await;
    let new_config = config_map("ns", "web", json!({"message": "new"}));
    let new_deploy = deployment("ns", "web", 3);
    let desired = [
        desired(new_config.clone(), &[]),
        desired(new_deploy.clone(), &[&new_config]),
    ];

    let plan = stack
        .plan_with(&desired, targeted(&["deployment/ns/web"]))
        .await
        .unwrap();
    assert_eq!(ops(&plan), ["update Deployment ns/web"]);
    assert_eq!(left_out(&plan), ["ConfigMap ns/old", "ConfigMap ns/web"]);
    assert_eq!(plan.summary().left_out, 2);
    assert_eq!(plan.summary().update, 1);

    let (_, result) = stack.apply(&plan, &desired).await;
    result.unwrap();
    assert_eq!(
        stack.fake.get(&id_of(&deploy)).unwrap()["spec"]["replicas"],
        3
    );
    assert_eq!(
        stack.fake.get(&id_of(&config)).unwrap()["data"]["message"],
        "old"
    );
    assert!(stack.fake.get(&id_of(&old)).is_some(), "not pruned");
    let after = stack.state().await;
    for id in [id_of(&config), id_of(&old)] {
        assert_eq!(after.resource(&id), before.resource(&id), "{id}");
    }
    assert_eq!(after.resource(&id_of(&deploy)).unwrap().applied, new_deploy);

    // The rest is still to do.
    let plan = stack.plan(&desired).await;
    assert_eq!(
        ops(&plan),
        [
            "update ConfigMap ns/web",
            "same Deployment ns/web",
            "delete ConfigMap ns/old"
        ]
    );
    assert!(plan.left_out.is_empty());
}

#[tokio::test(start_paused = true)]
async fn up_with_a_targeted_plan_applies_only_the_target_and_keeps_the_rest_of_the_state() {
    let (stack, config, deploy, old) = applied_stack().await;
    let mut state = stack.state().await;
    state
        .outputs
        .insert("url".into(), json!("http://example.test"));
    stack.set_state(state).await;
    let before = stack.state().await;
    let new_config = config_map("ns", "web", json!({"message": "new"}));
    let desired = [
        desired(new_config.clone(), &[]),
        desired(deployment("ns", "web", 3), &[&new_config]),
    ];
    let plan = stack
        .plan_with(&desired, targeted(&["ConfigMap/web"]))
        .await
        .unwrap();
    assert_eq!(ops(&plan), ["update ConfigMap ns/web"]);

    let locked = stack.locked().await;
    let applied = operation::up(
        &stack.cluster,
        &locked,
        stack.state().await,
        &plan,
        &desired,
        &UpOptions {
            concurrency: 4,
            timeout: TIMEOUT,
            ..UpOptions::default()
        },
        &Silent,
    )
    .await
    .unwrap();
    let state = applied.finish(before.outputs.clone()).await.unwrap();
    assert_eq!(
        stack.fake.get(&id_of(&config)).unwrap()["data"]["message"],
        "new"
    );
    assert_eq!(
        stack.fake.get(&id_of(&deploy)).unwrap()["spec"]["replicas"],
        1
    );
    assert!(stack.fake.get(&id_of(&old)).is_some(), "not pruned");
    for id in [id_of(&deploy), id_of(&old)] {
        assert_eq!(state.resource(&id), before.resource(&id), "{id}");
    }
    assert_eq!(state.resource(&id_of(&config)).unwrap().applied, new_config);
}

#[tokio::test(start_paused = true)]
async fn a_targeted_destroy_deletes_only_the_target_and_keeps_the_rest_of_the_state() {
    let (stack, config, deploy, old) = applied_stack().await;
    let mut state = stack.state().await;
    state
        .outputs
        .insert("url".into(), json!("http://example.test"));
    stack.set_state(state).await;
    let before = stack.state().await;
    let desired = [
        desired(config.clone(), &[]),
        desired(deploy.clone(), &[&config]),
        desired(old.clone(), &[]),
    ];
    let plan = planner::plan_destroy(
        &stack.cluster,
        STACK,
        &desired,
        &before,
        &destroy_targeted(targets(&["Deployment/ns/web"])),
    )
    .await
    .unwrap();
    assert_eq!(ops(&plan), ["delete Deployment ns/web"]);
    assert_eq!(left_out(&plan), ["ConfigMap ns/old", "ConfigMap ns/web"]);

    let state = destroy(&stack, before.clone(), &plan, &desired).await;
    assert!(stack.fake.get(&id_of(&deploy)).is_none());
    assert!(stack.fake.get(&id_of(&config)).is_some());
    assert!(stack.fake.get(&id_of(&old)).is_some());
    assert!(state.resource(&id_of(&deploy)).is_none());
    for id in [id_of(&config), id_of(&old)] {
        assert_eq!(state.resource(&id), before.resource(&id), "{id}");
    }
    assert_eq!(state.outputs, before.outputs, "the stack still has objects");
    assert_eq!(stack.state().await, state);
}

#[tokio::test]
async fn a_targeted_destroy_of_an_object_already_gone_drops_it_from_the_state() {
    let (stack, config, deploy, old) = applied_stack().await;
    stack
        .fake
        .remove(&id_of(&deploy))
        .expect("the Deployment was applied");
    let before = stack.state().await;
    let desired = [
        desired(config.clone(), &[]),
        desired(deploy.clone(), &[&config]),
        desired(old.clone(), &[]),
    ];
    let plan = planner::plan_destroy(
        &stack.cluster,
        STACK,
        &desired,
        &before,
        &destroy_targeted(targets(&["Deployment/ns/web"])),
    )
    .await
    .unwrap();
    assert_eq!(ops(&plan), ["delete Deployment ns/web"]);
    assert!(
        plan.steps[0]
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("already gone")),
        "{:?}",
        plan.steps[0].reason
    );

    let state = destroy(&stack, before.clone(), &plan, &desired).await;
    assert!(state.resource(&id_of(&deploy)).is_none(), "{state:#?}");
    for id in [id_of(&config), id_of(&old)] {
        assert_eq!(state.resource(&id), before.resource(&id), "{id}");
    }
    assert_eq!(stack.state().await, state);
}

#[tokio::test]
async fn target_dependencies_pull_in_the_config_map_a_deployment_depends_on() {
    let (stack, ..) = applied_stack().await;
    let new_config = config_map("ns", "web", json!({"message": "new"}));
    let desired = [
        desired(new_config.clone(), &[]),
        desired(deployment("ns", "web", 3), &[&new_config]),
    ];
    let mut options = targeted(&["Deployment/web"]);
    options.targets.as_mut().unwrap().dependencies = true;
    let plan = stack.plan_with(&desired, options).await.unwrap();
    assert_eq!(
        ops(&plan),
        ["update ConfigMap ns/web", "update Deployment ns/web"]
    );
    assert_eq!(left_out(&plan), ["ConfigMap ns/old"]);

    // Destroying with dependencies deletes the Deployment, then its
    // ConfigMap.
    let mut with_deps = targets(&["Deployment/ns/web"]);
    with_deps.dependencies = true;
    let plan = planner::plan_destroy(
        &stack.cluster,
        STACK,
        &desired,
        &stack.state().await,
        &destroy_targeted(with_deps),
    )
    .await
    .unwrap();
    assert_eq!(
        ops(&plan),
        ["delete Deployment ns/web", "delete ConfigMap ns/web"]
    );
}

#[tokio::test]
async fn a_glob_targets_every_object_whose_name_matches() {
    let stack = Stack::new();
    let desired = [
        desired(config_map("ns", "web-a", json!({})), &[]),
        desired(config_map("ns", "web-b", json!({})), &[]),
        desired(config_map("ns", "api", json!({})), &[]),
    ];
    let plan = stack
        .plan_with(&desired, targeted(&["ConfigMap/ns/web-*"]))
        .await
        .unwrap();
    assert_eq!(
        ops(&plan),
        ["create ConfigMap ns/web-a", "create ConfigMap ns/web-b"]
    );
    assert_eq!(left_out(&plan), ["ConfigMap ns/api"]);
}

#[tokio::test]
async fn an_unknown_target_is_an_error_naming_the_stacks_objects_before_any_request() {
    let (stack, config, deploy, _) = applied_stack().await;
    let desired = [
        desired(config.clone(), &[]),
        desired(deploy.clone(), &[&config]),
    ];
    let requests = stack.fake.requests().len();
    let err = stack
        .plan_with(&desired, targeted(&["Deployment/ns/wbe"]))
        .await
        .unwrap_err();
    match err {
        EngineError::UnknownTarget { target, known } => {
            assert_eq!(target, "Deployment/ns/wbe");
            assert_eq!(
                known,
                ["ConfigMap/ns/old", "ConfigMap/ns/web", "Deployment/ns/web"]
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(stack.fake.requests().len(), requests, "nothing was sent");
}

#[tokio::test(start_paused = true)]
async fn a_wait_an_earlier_run_left_pending_stays_pending_for_objects_left_out() {
    let (stack, config, deploy, old) = applied_stack().await;
    let mut state = stack.state().await;
    for object in [&config, &deploy, &old] {
        state.begin(operation::WAIT_OP, id_of(object));
    }
    stack.set_state(state).await;
    let desired = [
        desired(config.clone(), &[]),
        desired(deploy.clone(), &[&config]),
        desired(old.clone(), &[]),
    ];
    let plan = stack
        .plan_with(&desired, targeted(&["ConfigMap/ns/web"]))
        .await
        .unwrap();
    assert_eq!(plan.interrupted.len(), 1, "{:?}", plan.interrupted);

    let locked = stack.locked().await;
    let applied = operation::up(
        &stack.cluster,
        &locked,
        stack.state().await,
        &plan,
        &desired,
        &UpOptions {
            concurrency: 4,
            timeout: TIMEOUT,
            ..UpOptions::default()
        },
        &Silent,
    )
    .await
    .unwrap();
    let state = applied.finish(Default::default()).await.unwrap();
    let pending: Vec<String> = state.pending.iter().map(|p| p.id.to_string()).collect();
    assert_eq!(pending, ["Deployment ns/web", "ConfigMap ns/old"]);
}
