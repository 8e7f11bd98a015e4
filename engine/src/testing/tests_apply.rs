//! Carrying out plans against the fake API server: waves in dependency
//! order, the journal in the state, and recovery after an interruption.

use serde_json::json;

use super::*;
use crate::cluster::ClusterError;
use crate::plan::Op;
use crate::state::PendingOperation;

/// Namespace `app` (the stack's), a ConfigMap, a Deployment using it and
/// a Service in front: four waves.
fn echo_stack() -> Vec<DesiredResource> {
    let mut ns = namespace("app");
    ns["metadata"]["labels"] = stack_labels();
    let config = config_map("app", "web", json!({"default.conf": "server {}"}));
    let deploy = deployment("app", "web", 2);
    let svc = service("app", "web", None);
    vec![
        desired(ns.clone(), &[]),
        desired(config.clone(), &[&ns]),
        desired(deploy.clone(), &[&ns, &config]),
        desired(svc, &[&ns, &deploy]),
    ]
}

/// The real (not dry-run) applies, in the order they were sent.
fn applies(fake: &FakeApi) -> Vec<String> {
    fake.requests()
        .iter()
        .filter(|r| r.verb == Verb::Patch && !r.dry_run())
        .map(|r| format!("{}/{}", r.plural, r.name.as_deref().unwrap_or_default()))
        .collect()
}

#[tokio::test]
async fn applies_run_in_dependency_order_and_record_each_uid() {
    let stack = Stack::new();
    let desired = echo_stack();
    stack.up(&desired).await;
    assert_eq!(
        applies(&stack.fake),
        [
            "namespaces/app",
            "configmaps/web",
            "deployments/web",
            "services/web"
        ]
    );
    let state = stack.state().await;
    assert!(state.pending.is_empty());
    for d in &desired {
        let live = stack.fake.get(&d.id).expect("applied");
        let recorded = state.resource(&d.id).expect("recorded");
        assert_eq!(live["metadata"]["uid"], recorded.uid.as_str());
        assert_eq!(recorded.depends_on, d.depends_on);
        assert_eq!(recorded.applied, d.object);
    }
}

#[tokio::test]
async fn every_apply_is_made_as_the_engines_field_manager_and_not_forced() {
    let stack = Stack::new();
    stack.up(&echo_stack()).await;
    for request in stack
        .fake
        .requests()
        .iter()
        .filter(|r| r.verb == Verb::Patch)
    {
        assert_eq!(request.query["fieldManager"], FIELD_MANAGER);
        assert!(!request.query.contains_key("force"), "{request}");
        assert_eq!(
            request.content_type.as_deref(),
            Some("application/apply-patch+yaml")
        );
    }
}

#[tokio::test]
async fn events_come_in_wave_order_each_start_before_its_finish() {
    let stack = Stack::new();
    let desired = echo_stack();
    let plan = stack.plan(&desired).await;
    let (events, result) = stack.apply(&plan, &desired).await;
    result.unwrap();
    assert_eq!(
        events,
        [
            "started create Namespace app",
            "finished create Namespace app",
            "started create ConfigMap app/web",
            "finished create ConfigMap app/web",
            "started create Deployment app/web",
            "finished create Deployment app/web",
            "started create Service app/web",
            "finished create Service app/web",
        ]
    );
}

#[tokio::test]
async fn independent_objects_share_a_wave() {
    let stack = Stack::new();
    let a = config_map("ns", "a", json!({}));
    let b = config_map("ns", "b", json!({}));
    let deploy = deployment("ns", "web", 1);
    let desired = [
        desired(a.clone(), &[]),
        desired(b.clone(), &[]),
        desired(deploy, &[&a, &b]),
    ];
    stack.up(&desired).await;
    let saves = stack.store.saves();
    let pending = |i: usize| -> Vec<String> {
        let mut names: Vec<String> = saves[i]
            .state
            .pending
            .iter()
            .map(|p| p.id.to_string())
            .collect();
        names.sort();
        names
    };
    assert_eq!(pending(0), ["ConfigMap ns/a", "ConfigMap ns/b"]);
    assert_eq!(pending(1), ["Deployment ns/web"]);
    // The first wave's results went out with the second wave's start.
    assert_eq!(saves[1].state.resources.len(), 2);
}

#[tokio::test]
async fn the_state_is_written_once_per_wave_boundary_and_once_at_the_end() {
    let stack = Stack::new();
    stack.up(&echo_stack()).await;
    let saves = stack.store.saves();
    assert_eq!(saves.len(), 5, "four waves and the final flush");
    let last = saves.last().unwrap();
    assert!(last.state.pending.is_empty());
    assert_eq!(last.state.resources.len(), 4);
}

#[tokio::test]
async fn every_mutating_call_is_journaled_as_pending_before_it_is_sent() {
    let stack = Stack::new();
    let desired = echo_stack();
    stack.up(&desired).await;
    let saves = stack.store.saves();
    let requests = stack.fake.requests();
    let mut checked = 0;
    for (at, request) in requests.iter().enumerate() {
        if !request.is_mutation() {
            continue;
        }
        let name = request.name.clone().unwrap();
        // The last write before this request lists it as pending.
        let before = saves
            .iter()
            .rev()
            .find(|s| s.after_requests <= at)
            .expect("a write before every mutation");
        assert!(
            before
                .state
                .pending
                .iter()
                .any(|p| p.id.name == name && p.op == "create"),
            "{request} was sent without a pending entry: {:?}",
            before.state.pending
        );
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[tokio::test]
async fn same_steps_are_not_journaled_and_send_nothing() {
    let stack = Stack::new();
    let a = config_map("ns", "a", json!({"k": "1"}));
    let b = config_map("ns", "b", json!({"k": "1"}));
    stack
        .up(&[desired(a.clone(), &[]), desired(b.clone(), &[])])
        .await;
    let mut changed = b.clone();
    changed["data"]["k"] = json!("2");
    let desired = [desired(a, &[]), desired(changed, &[])];
    let plan = stack.plan(&desired).await;
    assert_eq!(ops(&plan), ["same ConfigMap ns/a", "update ConfigMap ns/b"]);
    let writes_before = stack.store.saves().len();
    stack.fake.clear_log();
    let (_, result) = stack.apply(&plan, &desired).await;
    result.unwrap();
    assert_eq!(applies(&stack.fake), ["configmaps/b"]);
    let saves = &stack.store.saves()[writes_before..];
    let pending: Vec<&str> = saves[0]
        .state
        .pending
        .iter()
        .map(|p| p.id.name.as_str())
        .collect();
    assert_eq!(pending, ["b"]);
    assert_eq!(saves[0].state.pending[0].op, "update");
}

#[tokio::test]
async fn a_failed_apply_stops_later_waves_and_leaves_its_step_pending() {
    let stack = Stack::new();
    stack.fake.inject(
        Fault::on(Verb::Patch)
            .resource("configmaps")
            .dry_run(false)
            .status(422),
    );
    let desired = echo_stack();
    let plan = stack.plan(&desired).await;
    let (events, result) = stack.apply(&plan, &desired).await;
    let err = result.unwrap_err();
    assert!(
        matches!(&err, EngineError::Cluster(e) if e.status().is_some_and(|s| s.code == 422)),
        "{err}"
    );
    assert_eq!(applies(&stack.fake), ["namespaces/app", "configmaps/web"]);
    assert_eq!(events.last().unwrap(), "started create ConfigMap app/web");
    let state = stack.state().await;
    assert_eq!(state.resources.len(), 1, "the namespace was recorded");
    let pending: Vec<String> = state.pending.iter().map(|p| p.id.to_string()).collect();
    assert_eq!(pending, ["ConfigMap app/web"]);
}

#[tokio::test(start_paused = true)]
async fn a_transient_failure_is_retried_and_the_run_goes_on() {
    let stack = Stack::new();
    stack.fake.inject(
        Fault::on(Verb::Patch)
            .resource("deployments")
            .dry_run(false)
            .status(503),
    );
    stack.up(&echo_stack()).await;
    assert_eq!(
        applies(&stack.fake),
        [
            "namespaces/app",
            "configmaps/web",
            "deployments/web",
            "deployments/web",
            "services/web"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn after_a_crash_mid_apply_the_next_plan_reports_it_and_converges() {
    let stack = Stack::new();
    // The Deployment's apply lands but its answer never comes back, and
    // the server stays away: the run ends with it unrecorded.
    stack.fake.inject(
        Fault::on(Verb::Patch)
            .resource("deployments")
            .dry_run(false)
            .answer(Answer::LoseAnswer),
    );
    stack.fake.inject(
        Fault::on(Verb::Patch)
            .resource("deployments")
            .dry_run(false)
            .answer(Answer::Drop)
            .always(),
    );
    let desired = echo_stack();
    let plan = stack.plan(&desired).await;
    let (_, result) = stack.apply(&plan, &desired).await;
    let err = result.unwrap_err();
    assert!(
        matches!(&err, EngineError::Cluster(ClusterError::Unreachable { .. })),
        "{err}"
    );
    let deploy = &desired[2].id;
    assert!(stack.fake.get(deploy).is_some(), "the apply landed");
    let state = stack.state().await;
    assert!(state.resource(deploy).is_none());
    assert_eq!(state.pending.len(), 1);

    // The server is back.
    stack.fake.clear_faults();
    let plan = stack.plan(&desired).await;
    assert_eq!(plan.interrupted.len(), 1);
    assert!(plan.interrupted[0].starts_with("create Deployment app/web"));
    assert!(plan.untracked.is_empty());
    assert_eq!(
        ops(&plan),
        [
            "same Namespace app",
            "same ConfigMap app/web",
            "same Deployment app/web",
            "create Service app/web"
        ]
    );
    let (_, result) = stack.apply(&plan, &desired).await;
    result.unwrap();
    let state = stack.state().await;
    assert!(state.pending.is_empty());
    let live = stack.fake.get(deploy).unwrap();
    assert_eq!(state.resource(deploy).unwrap().uid, live["metadata"]["uid"]);
    let again = stack.plan(&desired).await;
    assert!(!again.has_changes());
    assert!(again.interrupted.is_empty());
}

#[tokio::test]
async fn a_state_with_a_pending_create_converges_without_touching_the_object() {
    let stack = Stack::new();
    let config = config_map("ns", "web", json!({"k": "v"}));
    stack.fake.apply_as(FIELD_MANAGER, config.clone());
    let mut state = State::empty(STACK);
    state.pending.push(PendingOperation {
        op: "create".into(),
        id: id_of(&config),
        started: "2026-01-01T00:00:00Z".into(),
    });
    stack.set_state(state).await;
    let desired = [desired(config.clone(), &[])];
    let plan = stack.plan(&desired).await;
    assert_eq!(plan.interrupted.len(), 1);
    assert_eq!(ops(&plan), ["same ConfigMap ns/web"]);
    let (_, result) = stack.apply(&plan, &desired).await;
    result.unwrap();
    assert!(stack.fake.mutations().is_empty());
    let state = stack.state().await;
    assert!(state.pending.is_empty());
    assert_eq!(
        state.resource(&id_of(&config)).unwrap().uid,
        stack.fake.get(&id_of(&config)).unwrap()["metadata"]["uid"]
    );
}

#[tokio::test]
async fn a_replace_deletes_the_old_object_by_uid_then_creates_the_new_one() {
    let stack = Stack::new();
    stack.up(&[desired(deployment("ns", "web", 1), &[])]).await;
    let old_uid = stack.state().await.resources[0].uid.clone();
    let mut changed = deployment("ns", "web", 1);
    changed["spec"]["selector"]["matchLabels"]["app"] = json!("v2");
    changed["spec"]["template"]["metadata"]["labels"]["app"] = json!("v2");
    let desired = [desired(changed, &[])];
    let plan = stack.plan(&desired).await;
    assert_eq!(plan.steps[0].op, Op::Replace);
    stack.fake.clear_log();
    let (_, result) = stack.apply(&plan, &desired).await;
    result.unwrap();
    assert_eq!(
        stack.fake.mutations(),
        ["DELETE deployments ns/web", "PATCH deployments ns/web"]
    );
    let delete = stack
        .fake
        .requests()
        .into_iter()
        .find(|r| r.verb == Verb::Delete)
        .unwrap();
    let body = delete.body.unwrap();
    assert_eq!(body["preconditions"]["uid"], old_uid.as_str());
    assert_eq!(body["propagationPolicy"], "Foreground");
    let new_uid = stack.state().await.resources[0].uid.clone();
    assert_ne!(new_uid, old_uid);
    assert_eq!(
        stack.fake.get(&desired[0].id).unwrap()["metadata"]["uid"],
        new_uid.as_str()
    );
}

#[tokio::test(start_paused = true)]
async fn a_delete_waits_until_the_object_is_gone() {
    let stack = Stack::new();
    let config = config_map("ns", "web", json!({}));
    stack.up(&[desired(config.clone(), &[])]).await;
    let id = id_of(&config);
    stack.fake.update(&id, |o| {
        o["metadata"]["finalizers"] = json!(["example.com/hold"])
    });
    let plan = stack.plan(&[]).await;
    let finisher = {
        let fake = stack.fake.clone();
        let id = id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            fake.remove(&id);
        })
    };
    let started = tokio::time::Instant::now();
    let (_, result) = stack.apply(&plan, &[]).await;
    result.unwrap();
    finisher.await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(3));
    assert!(stack.state().await.resources.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_delete_held_by_a_finalizer_times_out_naming_it_and_stays_pending() {
    let stack = Stack::new();
    let config = config_map("ns", "web", json!({}));
    stack.up(&[desired(config.clone(), &[])]).await;
    let id = id_of(&config);
    stack.fake.update(&id, |o| {
        o["metadata"]["finalizers"] = json!(["example.com/hold"])
    });
    let plan = stack.plan(&[]).await;
    let (_, result) = stack.apply(&plan, &[]).await;
    let err = result.unwrap_err();
    let EngineError::NotGone { finalizers, .. } = &err else {
        panic!("{err}");
    };
    assert!(finalizers.contains("example.com/hold"));
    let state = stack.state().await;
    assert_eq!(state.pending[0].op, "delete");
    assert!(state.resource(&id).is_some());
}

#[tokio::test]
async fn a_namespace_holding_objects_of_others_is_kept() {
    let stack = Stack::new();
    let mut ns = namespace("app");
    ns["metadata"]["labels"] = stack_labels();
    stack.up(&[desired(ns.clone(), &[])]).await;
    let mut theirs = config_map("app", "theirs", json!({}));
    theirs["metadata"]["labels"] = json!({});
    stack.fake.insert(theirs);
    let plan = stack.plan(&[]).await;
    let (events, result) = stack.apply(&plan, &[]).await;
    result.unwrap();
    assert!(stack.fake.get(&id_of(&ns)).is_some());
    assert!(
        events.iter().any(|e| e.contains(
            "kept: namespace app holds objects this stack does not manage (ConfigMap theirs)"
        )),
        "{events:?}"
    );
    assert!(stack.state().await.resources.is_empty());
}

#[tokio::test]
async fn a_cancelled_run_starts_nothing() {
    let stack = Stack::new();
    let desired = echo_stack();
    let plan = stack.plan(&desired).await;
    let cancel = Cancel::new();
    cancel.cancel();
    let (events, result) = stack.apply_cancelled(&plan, &desired, &cancel).await;
    assert!(matches!(result, Err(EngineError::Interrupted)));
    assert!(events.is_empty());
    assert!(stack.fake.mutations().is_empty());
}

#[tokio::test]
async fn deletes_run_after_applies_dependents_first() {
    let stack = Stack::new();
    let a = config_map("ns", "a", json!({}));
    let old_cm = config_map("ns", "old", json!({}));
    let old_deploy = deployment("ns", "old", 1);
    stack
        .up(&[
            desired(old_cm.clone(), &[]),
            desired(old_deploy.clone(), &[&old_cm]),
        ])
        .await;
    stack.fake.clear_log();
    let desired = [desired(a, &[])];
    let plan = stack.plan(&desired).await;
    let (_, result) = stack.apply(&plan, &desired).await;
    result.unwrap();
    assert_eq!(
        stack.fake.mutations(),
        [
            "PATCH configmaps ns/a",
            "DELETE deployments ns/old",
            "DELETE configmaps ns/old"
        ]
    );
}
