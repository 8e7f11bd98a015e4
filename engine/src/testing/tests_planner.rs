//! Planning `up` and `destroy` against the fake API server.

use serde_json::json;

use super::*;
use crate::plan::{Blocker, Conflict, Op};
use crate::state::{PendingOperation, ResourceState};

fn cm(name: &str, value: &str) -> Value {
    config_map("ns", name, json!({"key": value}))
}

/// A state that records `objects` as the fake holds them.
fn recorded(fake: &FakeApi, objects: &[(&Value, &[&Value])]) -> State {
    let mut state = State::empty(STACK);
    for (object, deps) in objects {
        let live = fake.get(&id_of(object)).expect("stored");
        state.upsert_resource(ResourceState {
            id: id_of(object),
            uid: live["metadata"]["uid"].as_str().unwrap().to_string(),
            depends_on: deps.iter().map(|d| id_of(d)).collect(),
            applied: (*object).clone().into(),
            protect: false,
            retain: false,
            proof: None,
        });
    }
    state
}

#[tokio::test]
async fn a_new_stack_plans_a_create_per_object_from_a_dry_run_and_writes_nothing() {
    let stack = Stack::new();
    let config = cm("web", "v1");
    let deploy = deployment("ns", "web", 2);
    let desired = [desired(config.clone(), &[]), desired(deploy, &[&config])];
    let plan = stack.plan(&desired).await;
    assert_eq!(
        ops(&plan),
        ["create ConfigMap ns/web", "create Deployment ns/web"]
    );
    let change = plan.steps[0]
        .changes
        .iter()
        .find(|c| c.path == "data")
        .expect("the data is shown as added");
    assert_eq!(change.old, None);
    assert_eq!(change.new, Some(json!({"key": "v1"})));
    assert!(
        stack.fake.mutations().is_empty(),
        "{:?}",
        stack.fake.mutations()
    );
    let dry_runs = stack
        .fake
        .requests()
        .iter()
        .filter(|r| r.verb == Verb::Patch && r.dry_run())
        .count();
    assert_eq!(dry_runs, 2);
    assert!(stack.fake.get(&id_of(&config)).is_none());
}

#[tokio::test]
async fn an_applied_object_plans_as_same_and_is_not_applied_again() {
    let stack = Stack::new();
    let desired = [desired(cm("web", "v1"), &[])];
    stack.up(&desired).await;
    let before = stack.fake.get(&desired[0].id).unwrap();
    stack.fake.clear_log();

    let plan = stack.plan(&desired).await;
    assert_eq!(ops(&plan), ["same ConfigMap ns/web"]);
    assert!(!plan.has_changes());
    let (_, result) = stack.apply(&plan, &desired).await;
    result.unwrap();
    assert!(stack.fake.mutations().is_empty());
    let after = stack.fake.get(&desired[0].id).unwrap();
    assert_eq!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
}

#[tokio::test]
async fn an_object_the_state_proves_unchanged_is_planned_without_a_dry_run_unless_full() {
    let stack = Stack::new();
    let desired = [desired(deployment("ns", "web", 2), &[])];
    stack.up(&desired).await;
    assert!(stack.state().await.resources[0].proof.is_some());
    let dry_runs = |fake: &FakeApi| {
        let count = fake.requests().iter().filter(|r| r.dry_run()).count();
        fake.clear_log();
        count
    };
    stack.fake.clear_log();

    let proven = stack.plan(&desired).await;
    assert_eq!(ops(&proven), ["same Deployment ns/web"]);
    assert_eq!(dry_runs(&stack.fake), 0);
    let full = PlanOptions {
        full: true,
        ..PlanOptions::default()
    };
    let checked = stack.plan_with(&desired, full).await.unwrap();
    assert_eq!(checked.steps, proven.steps);
    assert_eq!(dry_runs(&stack.fake), 1);
    // Another server version may default or validate otherwise.
    stack.fake.set_version("v1.37.0");
    assert_eq!(ops(&stack.plan(&desired).await), ["same Deployment ns/web"]);
    assert_eq!(dry_runs(&stack.fake), 1);
}

#[tokio::test]
async fn a_stack_too_small_to_repay_a_proofs_reads_is_dry_run_whole() {
    let stack = Stack::new();
    let mut desired: Vec<DesiredResource> = (0..planner::PROVE_FROM - 1)
        .map(|i| desired(config_map("ns", &format!("c{i}"), json!({"k": "v"})), &[]))
        .collect();
    stack.up(&desired).await;
    let count = |fake: &FakeApi| {
        let requests = fake.requests();
        fake.clear_log();
        let dry_runs = requests.iter().filter(|r| r.dry_run()).count();
        let admission = requests
            .iter()
            .filter(|r| r.path.contains("admissionregistration"))
            .count();
        (dry_runs, admission)
    };
    stack.fake.clear_log();
    let default = PlanOptions::default();
    let small = stack.plan_with(&desired, default.clone()).await.unwrap();
    assert!(small.steps.iter().all(|s| s.op == Op::Same));
    assert_eq!(count(&stack.fake), (planner::PROVE_FROM - 1, 0));

    desired.push(super::desired(
        config_map("ns", "last", json!({"k": "v"})),
        &[],
    ));
    stack.up(&desired).await;
    stack.fake.clear_log();
    let large = stack.plan_with(&desired, default).await.unwrap();
    assert!(large.steps.iter().all(|s| s.op == Op::Same));
    let (dry_runs, admission) = count(&stack.fake);
    assert_eq!(dry_runs, 0);
    assert!(admission > 0);
}

#[tokio::test]
async fn a_changed_field_plans_an_update_naming_the_field_with_old_and_new_values() {
    let stack = Stack::new();
    stack.up(&[desired(deployment("ns", "web", 3), &[])]).await;
    let plan = stack
        .plan(&[desired(deployment("ns", "web", 1), &[])])
        .await;
    assert_eq!(ops(&plan), ["update Deployment ns/web"]);
    let changes = &plan.steps[0].changes;
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert_eq!(changes[0].path, "spec.replicas");
    assert_eq!(changes[0].old, Some(json!(3)));
    assert_eq!(changes[0].new, Some(json!(1)));
    assert!(plan.steps[0].blocker.is_none());
}

#[tokio::test]
async fn an_immutable_field_from_the_dry_run_plans_a_replace_naming_it() {
    let stack = Stack::new();
    stack.up(&[desired(deployment("ns", "web", 1), &[])]).await;
    let mut changed = deployment("ns", "web", 1);
    changed["spec"]["selector"]["matchLabels"]["app"] = json!("other");
    changed["spec"]["template"]["metadata"]["labels"]["app"] = json!("other");
    let plan = stack.plan(&[desired(changed, &[])]).await;
    assert_eq!(ops(&plan), ["replace Deployment ns/web"]);
    let step = &plan.steps[0];
    let reason = step.reason.as_deref().unwrap();
    assert!(
        reason.starts_with("spec.selector cannot be changed"),
        "{reason}"
    );
    assert!(
        step.changes
            .iter()
            .any(|c| c.path == "spec.selector.matchLabels.app"),
        "{:?}",
        step.changes
    );
}

#[tokio::test]
async fn objects_the_program_no_longer_declares_are_deleted_dependents_first() {
    let stack = Stack::new();
    let config = cm("web", "v1");
    let deploy = deployment("ns", "web", 1);
    let svc = service("ns", "web", None);
    let all = [
        desired(config.clone(), &[]),
        desired(deploy.clone(), &[&config]),
        desired(svc.clone(), &[&deploy]),
    ];
    stack.up(&all).await;
    let plan = stack.plan(&[]).await;
    assert_eq!(
        ops(&plan),
        [
            "delete Service ns/web",
            "delete Deployment ns/web",
            "delete ConfigMap ns/web"
        ]
    );
    assert!(
        plan.steps
            .iter()
            .all(|s| s.reason.as_deref() == Some("no longer declared by the stack"))
    );
}

#[tokio::test]
async fn a_recorded_object_deleted_out_of_band_plans_a_create_saying_so() {
    let stack = Stack::new();
    let desired = [desired(cm("web", "v1"), &[])];
    stack.up(&desired).await;
    stack.fake.remove(&desired[0].id);
    let plan = stack.plan(&desired).await;
    assert_eq!(ops(&plan), ["create ConfigMap ns/web"]);
    assert!(
        plan.steps[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("deleted outside shop-iac")
    );
}

#[tokio::test]
async fn a_pruned_object_that_was_recreated_outside_is_left_alone() {
    let stack = Stack::new();
    let old = cm("old", "v1");
    stack.up(&[desired(old.clone(), &[])]).await;
    stack.fake.remove(&id_of(&old));
    stack.fake.insert(old.clone());
    let plan = stack.plan(&[]).await;
    assert_eq!(ops(&plan), ["delete ConfigMap ns/old"]);
    assert!(
        plan.steps[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("another uid")
    );
    let (events, result) = stack.apply(&plan, &[]).await;
    result.unwrap();
    assert!(stack.fake.get(&id_of(&old)).is_some(), "the newcomer stays");
    assert!(
        events.iter().any(|e| e.contains("left alone")),
        "{events:?}"
    );
    assert!(stack.state().await.resources.is_empty());
}

#[tokio::test]
async fn an_unchanged_object_recreated_outside_under_the_stacks_labels_is_recorded_again() {
    let stack = Stack::new();
    let web = cm("web", "v1");
    let declared = [desired(web.clone(), &[])];
    stack.up(&declared).await;
    // Deleted and created again as it was, labels and all (a restore from
    // a backup, or kubectl get, delete and create).
    stack.fake.remove(&id_of(&web));
    let again = stack.fake.insert(web.clone());

    let plan = stack.plan(&declared).await;
    assert_eq!(ops(&plan), ["update ConfigMap ns/web"]);
    assert!(plan.steps[0].changes.is_empty(), "{:?}", plan.steps[0]);
    assert!(
        plan.steps[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("recreated outside shop-iac"),
        "{:?}",
        plan.steps[0].reason
    );
    let (_, result) = stack.apply(&plan, &declared).await;
    result.unwrap();
    assert_eq!(
        stack.state().await.resources[0].uid,
        again["metadata"]["uid"].as_str().unwrap()
    );
    assert_eq!(ops(&stack.plan(&declared).await), ["same ConfigMap ns/web"]);
    // It is the stack's again: once no longer declared, it is deleted.
    let plan = stack.plan(&[]).await;
    assert_eq!(ops(&plan), ["delete ConfigMap ns/web"]);
    assert_eq!(
        plan.steps[0].reason.as_deref(),
        Some("no longer declared by the stack")
    );
}

#[tokio::test]
async fn a_pruned_object_already_gone_is_dropped_from_the_state() {
    let stack = Stack::new();
    let old = cm("old", "v1");
    stack.up(&[desired(old.clone(), &[])]).await;
    stack.fake.remove(&id_of(&old));
    let plan = stack.plan(&[]).await;
    assert!(
        plan.steps[0]
            .reason
            .as_deref()
            .unwrap()
            .starts_with("already gone")
    );
    stack.fake.clear_log();
    let (_, result) = stack.apply(&plan, &[]).await;
    result.unwrap();
    assert!(stack.state().await.resources.is_empty());
    // The uid-guarded delete finds nothing; nothing else is sent.
    assert_eq!(stack.fake.mutations(), ["DELETE configmaps ns/old"]);
}

#[tokio::test]
async fn a_field_another_manager_owns_blocks_the_update_naming_field_and_manager() {
    let stack = Stack::new();
    let ours = deployment("ns", "web", 3);
    stack.up(&[desired(ours.clone(), &[])]).await;
    let mut scaled = ours.clone();
    scaled["spec"]["replicas"] = json!(5);
    stack.fake.apply_as("kubectl", scaled);

    let mut wanted = ours.clone();
    wanted["spec"]["replicas"] = json!(2);
    let plan = stack.plan(&[desired(wanted.clone(), &[])]).await;
    let step = &plan.steps[0];
    assert_eq!(step.op, Op::Update);
    assert_eq!(
        step.blocker,
        Some(Blocker::Conflicts {
            conflicts: vec![Conflict {
                path: "spec.replicas".into(),
                manager: "kubectl".into()
            }]
        })
    );
    // What forcing would do is shown, so the conflict can be judged.
    assert_eq!(step.changes[0].old, Some(json!(5)));
    assert_eq!(step.changes[0].new, Some(json!(2)));
    assert_eq!(plan.summary().blocked, 1);

    let forced = stack
        .plan_with(
            &[desired(wanted, &[])],
            PlanOptions {
                force_conflicts: true,
                ..PlanOptions::default()
            },
        )
        .await
        .unwrap();
    assert!(forced.steps[0].blocker.is_none());
    assert_eq!(forced.steps[0].op, Op::Update);
}

#[tokio::test]
async fn an_unmanaged_object_of_the_same_name_is_never_taken_over_silently() {
    let stack = Stack::new();
    let mut theirs = cm("web", "theirs");
    theirs["metadata"]["labels"] = json!({});
    stack.fake.apply_as("kubectl", theirs);
    let desired = [desired(cm("web", "ours"), &[])];
    let plan = stack.plan(&desired).await;
    assert_eq!(plan.steps[0].op, Op::Update);
    assert_eq!(
        plan.steps[0].blocker,
        Some(Blocker::Unmanaged {
            owner: Some("written by kubectl".into())
        })
    );

    let adopted = stack
        .plan_with(
            &desired,
            PlanOptions {
                adopt: true,
                force_conflicts: true,
                ..PlanOptions::default()
            },
        )
        .await
        .unwrap();
    assert!(adopted.steps[0].blocker.is_none());
}

#[tokio::test]
async fn an_object_of_another_stack_is_blocked_naming_that_stack() {
    let stack = Stack::new();
    let mut theirs = cm("web", "v1");
    theirs["metadata"]["labels"][STACK_LABEL] = json!("prod");
    stack.fake.apply_as(FIELD_MANAGER, theirs);
    let plan = stack.plan(&[desired(cm("web", "v1"), &[])]).await;
    assert_eq!(
        plan.steps[0].blocker,
        Some(Blocker::Unmanaged {
            owner: Some("managed by shop-iac stack `prod`".into())
        })
    );
}

#[tokio::test]
async fn objects_carrying_the_stacks_labels_outside_its_state_are_reported_untracked() {
    let stack = Stack::new();
    let declared = stack.fake.apply_as(FIELD_MANAGER, cm("declared", "v1"));
    stack.fake.apply_as(FIELD_MANAGER, cm("stray", "v1"));
    let mut owned = cm("owned-by-controller", "v1");
    owned["metadata"]["ownerReferences"] =
        json!([{"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "x"}]);
    stack.fake.insert(owned);
    let mut foreign = cm("other-stack", "v1");
    foreign["metadata"]["labels"][STACK_LABEL] = json!("prod");
    stack.fake.insert(foreign);

    let plan = stack.plan(&[desired(cm("declared", "v1"), &[])]).await;
    let found: Vec<(String, bool)> = plan
        .untracked
        .iter()
        .map(|u| (u.id.name.clone(), u.declared))
        .collect();
    assert_eq!(
        found,
        [("declared".to_string(), true), ("stray".to_string(), false)]
    );
    assert_eq!(plan.untracked[0].uid, declared["metadata"]["uid"]);
    // Labelled as ours, so applied again without a blocker.
    assert_eq!(ops(&plan), ["same ConfigMap ns/declared"]);
    assert!(plan.steps[0].blocker.is_none());
}

#[tokio::test]
async fn the_kubernetes_backends_own_secrets_are_never_untracked_objects() {
    let stack = Stack::new();
    let secret = |name: &str, type_: &str| {
        let mut object = cm(name, "v1");
        object["kind"] = json!("Secret");
        object["type"] = json!(type_);
        object.as_object_mut().unwrap().remove("data");
        object
    };
    // The state of this very stack, kept in the stack's own namespace.
    stack.fake.apply_as(
        FIELD_MANAGER,
        secret("shop-iac-state-dev", "shop-iac.io/state"),
    );
    stack.fake.apply_as(
        FIELD_MANAGER,
        secret("shop-iac-state-dev-1", "shop-iac.io/state-part"),
    );
    stack
        .fake
        .apply_as(FIELD_MANAGER, secret("stray", "Opaque"));

    let plan = stack.plan(&[desired(secret("app", "Opaque"), &[])]).await;
    let found: Vec<&str> = plan.untracked.iter().map(|u| u.id.name.as_str()).collect();
    assert_eq!(found, ["stray"]);
}

#[tokio::test]
async fn a_rejected_dry_run_blocks_the_step_with_the_servers_reason_and_field() {
    let stack = Stack::new();
    let plan = stack
        .plan(&[desired(service("ns", "web", Some(80)), &[])])
        .await;
    let Some(Blocker::Rejected { message, fields }) = &plan.steps[0].blocker else {
        panic!("{:?}", plan.steps[0]);
    };
    assert!(message.contains("not in the valid range"), "{message}");
    assert_eq!(fields, &["spec.ports[0].nodePort"]);
}

#[tokio::test]
async fn objects_bound_for_a_namespace_the_stack_creates_are_validated_elsewhere() {
    let stack = Stack::new();
    let ns = namespace("fresh");
    let config = config_map("fresh", "web", json!({"k": "v"}));
    let plan = stack
        .plan(&[desired(ns.clone(), &[]), desired(config, &[&ns])])
        .await;
    assert_eq!(
        ops(&plan),
        ["create Namespace fresh", "create ConfigMap fresh/web"]
    );
    let stand_in = stack
        .fake
        .requests()
        .into_iter()
        .find(|r| r.verb == Verb::Create)
        .expect("a validation");
    assert_eq!(stand_in.to_string(), "POST configmaps in default (dry run)");
    assert!(stack.fake.mutations().is_empty());
}

#[tokio::test]
async fn a_namespace_that_is_missing_or_terminating_stops_the_plan() {
    let stack = Stack::new();
    let err = stack
        .plan_with(
            &[desired(config_map("absent", "web", json!({})), &[])],
            PlanOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EngineError::NamespaceMissing(ns) if ns == "absent"),
        "{err}"
    );

    stack.fake.insert(namespace("leaving"));
    stack.fake.update(&id_of(&namespace("leaving")), |ns| {
        ns["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        ns["status"]["phase"] = json!("Terminating");
    });
    let err = stack
        .plan_with(
            &[desired(config_map("leaving", "web", json!({})), &[])],
            PlanOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, EngineError::NamespaceTerminating(ns) if ns == "leaving"),
        "{err}"
    );
}

#[tokio::test]
async fn an_object_being_deleted_plans_a_replace_once_it_is_gone() {
    let stack = Stack::new();
    let desired = [desired(cm("web", "v1"), &[])];
    stack.up(&desired).await;
    stack.fake.update(&desired[0].id, |o| {
        o["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
    });
    let plan = stack.plan(&desired).await;
    assert_eq!(plan.steps[0].op, Op::Replace);
    assert_eq!(
        plan.steps[0].reason.as_deref(),
        Some("being deleted since 2026-01-01T00:00:00Z; it is recreated once it is gone")
    );
}

#[tokio::test]
async fn live_objects_are_read_with_one_list_per_kind_and_namespace() {
    let stack = Stack::new();
    let desired: Vec<DesiredResource> = (0..5)
        .map(|i| desired(cm(&format!("c{i}"), "v"), &[]))
        .chain([desired(deployment("ns", "web", 1), &[])])
        .collect();
    stack.plan(&desired).await;
    let reads: Vec<String> = stack
        .fake
        .requests()
        .iter()
        .filter(|r| matches!(r.verb, Verb::Get | Verb::List))
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        reads,
        [
            "GET deployments in ns",
            "GET configmaps in ns",
            "GET namespaces ns"
        ]
    );
}

#[tokio::test]
async fn credentials_that_may_not_list_read_each_object_by_name() {
    let stack = Stack::new();
    stack
        .fake
        .inject(Fault::on(Verb::List).resource("configmaps").status(403));
    let desired = [desired(cm("a", "v"), &[]), desired(cm("b", "v"), &[])];
    let plan = stack.plan(&desired).await;
    assert_eq!(plan.summary().create, 2);
    let reads: Vec<String> = stack
        .fake
        .requests()
        .iter()
        .filter(|r| matches!(r.verb, Verb::Get | Verb::List))
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        reads,
        [
            "GET configmaps in ns",
            "GET configmaps ns/a",
            "GET configmaps ns/b",
            "GET namespaces ns"
        ]
    );
}

#[tokio::test]
async fn a_create_the_server_refuses_is_blocked_rather_than_an_error() {
    let stack = Stack::new();
    stack
        .fake
        .inject(Fault::on(Verb::Patch).dry_run(true).status(400));
    let plan = stack.plan(&[desired(cm("a", "v"), &[])]).await;
    assert!(matches!(
        plan.steps[0].blocker,
        Some(Blocker::Rejected { .. })
    ));
}

#[tokio::test]
async fn destroy_deletes_recorded_and_asked_for_untracked_objects_dependents_first_namespaces_last()
{
    let stack = Stack::new();
    let ns = namespace("app");
    let config = config_map("app", "web", json!({}));
    let deploy = deployment("app", "web", 1);
    let mut labelled_ns = ns.clone();
    labelled_ns["metadata"]["labels"] = stack_labels();
    let all = [
        desired(labelled_ns.clone(), &[]),
        desired(config.clone(), &[&labelled_ns]),
        desired(deploy.clone(), &[&config]),
    ];
    stack.up(&all).await;
    stack
        .fake
        .apply_as(FIELD_MANAGER, config_map("app", "stray", json!({})));
    let plan = stack.plan_destroy_with(&all, DeleteUntracked::All).await;
    assert_eq!(
        ops(&plan),
        [
            "delete ConfigMap app/stray",
            "delete Deployment app/web",
            "delete ConfigMap app/web",
            "delete Namespace app"
        ]
    );
    let (_, result) = stack.apply(&plan, &all).await;
    result.unwrap();
    assert!(stack.fake.get(&id_of(&ns)).is_none());
    assert!(stack.state().await.resources.is_empty());
}

#[tokio::test]
async fn destroy_leaves_untracked_objects_the_program_does_not_declare_unless_asked() {
    let stack = Stack::new();
    let web = [desired(cm("web", "v1"), &[])];
    stack.up(&web).await;
    // Anyone who may label a ConfigMap can make it look like the stack's.
    let stray = stack.fake.apply_as("kubectl", cm("stray", "theirs"));

    let plan = stack.plan_destroy(&web).await;
    assert_eq!(ops(&plan), ["delete ConfigMap ns/web"]);
    let listed: Vec<(String, bool)> = plan
        .untracked
        .iter()
        .map(|u| (u.id.to_string(), u.declared))
        .collect();
    assert_eq!(listed, [("ConfigMap ns/stray".to_string(), false)]);
    let (_, result) = stack.apply(&plan, &web).await;
    result.unwrap();
    assert!(stack.fake.get(&id_of(&cm("web", "v1"))).is_none());
    assert_eq!(
        stack.fake.get(&id_of(&stray)).unwrap()["metadata"]["uid"],
        stray["metadata"]["uid"],
        "the stray ConfigMap is left in place"
    );
}

#[tokio::test]
async fn destroy_deletes_only_the_untracked_objects_named() {
    let stack = Stack::new();
    let web = [desired(cm("web", "v1"), &[])];
    stack.up(&web).await;
    stack.fake.apply_as("kubectl", cm("a", "theirs"));
    stack.fake.apply_as("kubectl", cm("b", "theirs"));

    let named = DeleteUntracked::Named(vec!["configmap/ns/a".parse().unwrap()]);
    let plan = stack.plan_destroy_with(&web, named).await;
    assert_eq!(
        ops(&plan),
        ["delete ConfigMap ns/a", "delete ConfigMap ns/web"]
    );
    assert_eq!(
        plan.steps[0].reason.as_deref(),
        Some(
            "carries this stack's labels but is not in its state, and the stack does not declare it: deleted as asked"
        )
    );
    let (_, result) = stack.apply(&plan, &web).await;
    result.unwrap();
    assert!(stack.fake.get(&id_of(&cm("a", "theirs"))).is_none());
    assert!(stack.fake.get(&id_of(&cm("b", "theirs"))).is_some());
}

#[tokio::test]
async fn destroy_after_a_lost_state_deletes_the_untracked_objects_the_program_declares() {
    let stack = Stack::new();
    let config = cm("web", "v1");
    let deploy = deployment("ns", "web", 1);
    let all = [
        desired(config.clone(), &[]),
        desired(deploy.clone(), &[&config]),
    ];
    stack.up(&all).await;
    stack.set_state(State::empty(STACK)).await;

    let plan = stack.plan_destroy(&all).await;
    let mut deleted = ops(&plan);
    deleted.sort();
    assert_eq!(
        deleted,
        ["delete ConfigMap ns/web", "delete Deployment ns/web"]
    );
    assert!(plan.steps.iter().all(
        |s| s.reason.as_deref() == Some("carries this stack's labels but is not in its state")
    ));
    let (_, result) = stack.apply(&plan, &all).await;
    result.unwrap();
    assert!(stack.fake.get(&id_of(&config)).is_none());
    assert!(stack.fake.get(&id_of(&deploy)).is_none());
}

#[tokio::test]
async fn destroy_deletes_an_untracked_object_after_the_recorded_ones_that_depend_on_it() {
    let stack = Stack::new();
    let config = cm("web", "v1");
    let deploy = deployment("ns", "web", 1);
    let all = [
        desired(config.clone(), &[]),
        desired(deploy.clone(), &[&config]),
    ];
    stack.up(&all).await;
    // The ConfigMap was deleted outside, dropped from the state by a
    // refresh, then restored with its labels: untracked, while the
    // Deployment's record still depends on it.
    let mut state = stack.state().await;
    state.remove_resource(&id_of(&config));
    stack.set_state(state).await;

    let plan = stack.plan_destroy(&all).await;
    assert_eq!(
        ops(&plan),
        ["delete Deployment ns/web", "delete ConfigMap ns/web"]
    );
    let (events, result) = stack.apply(&plan, &all).await;
    result.unwrap();
    let started: Vec<&String> = events.iter().filter(|e| e.starts_with("started")).collect();
    assert_eq!(
        started,
        [
            "started delete Deployment ns/web",
            "started delete ConfigMap ns/web"
        ]
    );
}

#[tokio::test]
async fn a_namespace_holding_an_untracked_object_left_in_place_is_kept() {
    let stack = Stack::new();
    let mut ns = namespace("app");
    ns["metadata"]["labels"] = stack_labels();
    let config = config_map("app", "web", json!({}));
    let all = [desired(ns.clone(), &[]), desired(config.clone(), &[&ns])];
    stack.up(&all).await;
    stack
        .fake
        .apply_as("kubectl", config_map("app", "stray", json!({})));

    let plan = stack.plan_destroy(&all).await;
    assert_eq!(
        ops(&plan),
        ["delete ConfigMap app/web", "delete Namespace app"]
    );
    let (events, result) = stack.apply(&plan, &all).await;
    result.unwrap();
    assert!(
        events.iter().any(|e| e.contains(
            "kept: namespace app holds objects this stack does not manage (ConfigMap stray)"
        )),
        "{events:?}"
    );
    assert!(stack.fake.get(&id_of(&ns)).is_some());
    assert!(
        stack
            .fake
            .get(&id_of(&config_map("app", "stray", json!({}))))
            .is_some()
    );
}

#[tokio::test]
async fn an_interrupted_create_is_reported_and_deleted_only_if_it_carries_the_labels() {
    let stack = Stack::new();
    let made = stack.fake.apply_as(FIELD_MANAGER, cm("made", "v"));
    let mut state = recorded(&stack.fake, &[]);
    for name in ["made", "never-made"] {
        state.pending.push(PendingOperation {
            op: "create".into(),
            id: id_of(&cm(name, "v")),
            started: "2026-01-01T00:00:00Z".into(),
        });
    }
    stack.set_state(state).await;
    let plan = stack.plan(&[]).await;
    assert_eq!(plan.interrupted.len(), 2);
    assert!(plan.interrupted[0].starts_with("create ConfigMap ns/made (started"));
    assert_eq!(ops(&plan), ["delete ConfigMap ns/made"]);
    assert_eq!(
        plan.steps[0].reason.as_deref(),
        Some("created by an interrupted run and never recorded")
    );
    assert!(
        plan.untracked.is_empty(),
        "pending objects are not untracked"
    );
    let (_, result) = stack.apply(&plan, &[]).await;
    result.unwrap();
    assert!(stack.fake.get(&id_of(&made)).is_none());
}

#[tokio::test]
async fn a_field_no_longer_declared_is_removed_unless_another_manager_owns_it() {
    let stack = Stack::new();
    stack
        .up(&[desired(
            config_map("ns", "web", json!({"a": "1", "b": "2"})),
            &[],
        )])
        .await;
    stack.fake.apply_as(
        "kubectl",
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"namespace": "ns", "name": "web"}, "data": {"c": "3"}}),
    );
    let desired = [desired(config_map("ns", "web", json!({"a": "1"})), &[])];
    let plan = stack.plan(&desired).await;
    assert_eq!(ops(&plan), ["update ConfigMap ns/web"]);
    let changes: Vec<(&str, Option<&Value>, Option<&Value>)> = plan.steps[0]
        .changes
        .iter()
        .map(|c| (c.path.as_str(), c.old.as_ref(), c.new.as_ref()))
        .collect();
    assert_eq!(changes, [("data.b", Some(&json!("2")), None)]);
    stack.up(&desired).await;
    let live = stack.fake.get(&desired[0].id).unwrap();
    assert_eq!(live["data"], json!({"a": "1", "c": "3"}));
}

#[tokio::test]
async fn another_programs_objects_are_never_claimed_even_for_the_same_stack_name() {
    let stack = Stack::new();
    let other = stack.fake.cluster(Identity::new("other-iac"));
    let mut theirs = cm("web", "v1");
    theirs["metadata"]["labels"] =
        json!({MANAGED_BY_LABEL: "other-iac", "other-iac.io/stack": STACK});
    other.apply(&theirs, false, false).await.unwrap();

    let plan = stack.plan(&[desired(cm("web", "v1"), &[])]).await;
    assert_eq!(
        plan.steps[0].blocker,
        Some(Blocker::Unmanaged {
            owner: Some("written by other-iac".into())
        })
    );
    assert!(plan.untracked.is_empty());
    let destroy = stack.plan_destroy(&[desired(cm("web", "v1"), &[])]).await;
    assert!(destroy.steps.is_empty(), "{:?}", ops(&destroy));
}

#[tokio::test]
async fn a_plan_without_objects_keeps_its_changes_and_no_copies() {
    let stack = Stack::new();
    stack
        .up(&[
            desired(cm("web", "v1"), &[]),
            desired(cm("gone", "v1"), &[]),
        ])
        .await;
    let new = [desired(cm("web", "v2"), &[]), desired(cm("new", "v1"), &[])];
    let lean = stack
        .plan_with(
            &new,
            PlanOptions {
                objects: false,
                ..PlanOptions::default()
            },
        )
        .await
        .unwrap();
    let full = stack.plan(&new).await;
    assert_eq!(ops(&lean), ops(&full));
    assert_eq!(ops(&full).len(), 3, "{:?}", ops(&full));
    for (lean, full) in lean.steps.iter().zip(&full.steps) {
        assert_eq!(lean.changes, full.changes);
        assert!(lean.live.is_none() && lean.planned.is_none());
        assert!(full.live.is_some() || full.planned.is_some());
    }
}
