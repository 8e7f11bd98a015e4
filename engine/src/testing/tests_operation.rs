//! `up` and `destroy` as whole operations, and kinds found by discovery,
//! against the fake API server.

use std::collections::BTreeMap;

use serde_json::json;

use super::*;
use crate::cluster::ClusterError;
use crate::declare::Resources;
use crate::operation::{self, DestroyOptions, Observer, UpOptions};
use crate::plan::Blocker;
use crate::ready::Readiness;
use crate::state::PendingOperation;

#[derive(Default)]
struct Told(Mutex<Vec<String>>);

impl Observer for Told {
    fn event(&self, event: Event<'_>) {
        if let Event::Started { op, id } = event {
            self.push(format!("started {} {id}", op.as_str()));
        }
    }

    fn waiting(&self, changed: &[&Readiness], _all: &[Readiness]) {
        for r in changed {
            self.push(format!("{}: {}", r.id, r.progress));
        }
    }

    fn note(&self, message: &str) {
        self.push(format!("note: {message}"));
    }
}

impl Told {
    fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }

    fn lines(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

fn options(cancel: &Cancel) -> UpOptions {
    UpOptions {
        concurrency: 4,
        timeout: TIMEOUT,
        wait_grace: Duration::from_secs(20),
        cancel: cancel.clone(),
        ..UpOptions::default()
    }
}

fn destroy_options(cancel: &Cancel) -> DestroyOptions {
    DestroyOptions {
        concurrency: 4,
        timeout: TIMEOUT,
        cancel: cancel.clone(),
    }
}

/// Sets the Deployment's status as its controller would once its pods run.
fn roll_out(fake: &FakeApi, id: &ResourceId, after: Duration) -> tokio::task::JoinHandle<()> {
    let fake = fake.clone();
    let id = id.clone();
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        let replicas = fake.get(&id).unwrap()["spec"]["replicas"].clone();
        let generation = fake.get(&id).unwrap()["metadata"]["generation"].clone();
        fake.set_status(
            &id,
            json!({"observedGeneration": generation, "replicas": replicas,
                "updatedReplicas": replicas, "readyReplicas": replicas,
                "availableReplicas": replicas}),
        );
    })
}

#[tokio::test(start_paused = true)]
async fn up_records_the_wait_as_pending_until_ready_then_writes_outputs_once() {
    let stack = Stack::new();
    let desired = [desired(deployment("ns", "web", 2), &[])];
    let plan = stack.plan(&desired).await;
    let controller = roll_out(&stack.fake, &desired[0].id, Duration::from_millis(500));
    let cancel = Cancel::default();
    let told = Told::default();
    let locked = stack.locked().await;
    let applied = operation::up(
        &stack.cluster,
        &locked,
        stack.state().await,
        &plan,
        &desired,
        &options(&cancel),
        &told,
    )
    .await
    .unwrap();
    controller.await.unwrap();
    let saves = stack.store.saves();
    let waiting = &saves.last().unwrap().state;
    assert_eq!(waiting.pending.len(), 1);
    assert_eq!(waiting.pending[0].op, operation::WAIT_OP);
    assert_eq!(waiting.pending[0].id, desired[0].id);

    let outputs = BTreeMap::from([("replicas".to_string(), json!(2))]);
    let state = applied.finish(outputs.clone()).await.unwrap();
    assert!(state.pending.is_empty());
    assert_eq!(state.outputs, outputs);
    assert_eq!(stack.state().await, state);
    assert_eq!(
        told.lines(),
        [
            "started create Deployment ns/web",
            "note: Waiting until ready...",
            "Deployment ns/web: waiting for the controller to see the new spec",
            "Deployment ns/web: 2/2 available"
        ]
    );

    // Nothing changed and the same outputs: nothing is written.
    let writes = stack.store.saves().len();
    let plan = stack.plan(&desired).await;
    drop(locked);
    let locked = stack.locked().await;
    let applied = operation::up(
        &stack.cluster,
        &locked,
        stack.state().await,
        &plan,
        &desired,
        &options(&cancel),
        &Told::default(),
    )
    .await
    .unwrap();
    applied.finish(outputs).await.unwrap();
    assert_eq!(stack.store.saves().len(), writes);
}

#[tokio::test(start_paused = true)]
async fn an_up_interrupted_while_waiting_leaves_the_wait_for_the_next_plan_to_report() {
    let stack = Stack::new();
    let desired = [desired(deployment("ns", "web", 1), &[])];
    let plan = stack.plan(&desired).await;
    let cancel = Cancel::new();
    let interrupt = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            cancel.cancel();
        })
    };
    let locked = stack.locked().await;
    let result = operation::up(
        &stack.cluster,
        &locked,
        stack.state().await,
        &plan,
        &desired,
        &options(&cancel),
        &Told::default(),
    )
    .await;
    interrupt.await.unwrap();
    assert!(matches!(result, Err(EngineError::Interrupted)));
    let plan = stack.plan(&desired).await;
    assert_eq!(plan.interrupted.len(), 1);
    assert!(
        plan.interrupted[0].starts_with("wait Deployment ns/web (started"),
        "{:?}",
        plan.interrupted
    );
    assert!(!plan.has_changes(), "everything was applied");
}

#[tokio::test(start_paused = true)]
async fn up_clears_what_an_interrupted_run_left_once_converged_and_says_so() {
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
    let desired = [desired(config, &[])];
    let plan = stack.plan(&desired).await;
    let cancel = Cancel::default();
    let told = Told::default();
    let locked = stack.locked().await;
    let applied = operation::up(
        &stack.cluster,
        &locked,
        stack.state().await,
        &plan,
        &desired,
        &options(&cancel),
        &told,
    )
    .await
    .unwrap();
    let state = applied.finish(BTreeMap::new()).await.unwrap();
    assert!(state.pending.is_empty());
    assert_eq!(state.resources.len(), 1);
    assert_eq!(
        told.lines(),
        [
            "note: Recovered 1 operation(s) an earlier run left unfinished",
            // What it left is seen ready before the run ends.
            "note: Waiting until ready...",
            "ConfigMap ns/web: exists"
        ]
    );
    assert!(stack.fake.mutations().is_empty());
}

#[tokio::test(start_paused = true)]
async fn destroy_deletes_everything_and_leaves_an_empty_state() {
    let stack = Stack::new();
    let config = config_map("ns", "web", json!({}));
    let deploy = deployment("ns", "web", 1);
    let desired = [
        desired(config.clone(), &[]),
        desired(deploy.clone(), &[&config]),
    ];
    stack.up(&desired).await;
    let mut state = stack.state().await;
    state.outputs.insert("url".into(), json!("http://x"));
    stack.set_state(state).await;

    let plan = stack.plan_destroy(&desired).await;
    let cancel = Cancel::default();
    let locked = stack.locked().await;
    let state = operation::destroy(
        &stack.cluster,
        &locked,
        stack.state().await,
        &plan,
        &desired,
        &destroy_options(&cancel),
        &Told::default(),
    )
    .await
    .unwrap();
    assert!(state.resources.is_empty());
    assert!(state.pending.is_empty());
    assert!(state.outputs.is_empty());
    assert_eq!(stack.state().await, state);
    assert!(stack.fake.get(&id_of(&config)).is_none());
    assert!(stack.fake.get(&id_of(&deploy)).is_none());
}

fn widget(name: &str, size: i64) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"namespace": "ns", "name": name, "labels": stack_labels()},
        "spec": {"size": size}})
}

#[tokio::test]
async fn a_custom_kind_is_discovered_once_and_planned_and_applied_like_any_other() {
    let stack = Stack::new();
    stack
        .fake
        .add_kind("example.com/v1", "Widget", "widgets", true);
    let first = [desired(widget("a", 1), &[]), desired(widget("b", 2), &[])];
    stack.up(&first).await;
    assert_eq!(stack.fake.objects("example.com/v1", "Widget").len(), 2);
    let discoveries = |fake: &FakeApi| {
        fake.requests()
            .iter()
            .filter(|r| r.path == "/apis/example.com/v1")
            .count()
    };
    assert_eq!(discoveries(&stack.fake), 1);

    let changed = [desired(widget("a", 1), &[]), desired(widget("b", 3), &[])];
    let plan = stack.plan(&changed).await;
    assert_eq!(ops(&plan), ["same Widget ns/a", "update Widget ns/b"]);
    assert_eq!(plan.steps[1].changes[0].path, "spec.size");
    assert_eq!(discoveries(&stack.fake), 1, "found once per run");
}

#[tokio::test]
async fn a_kind_the_server_does_not_serve_is_named() {
    let stack = Stack::new();
    stack
        .fake
        .add_kind("example.com/v1", "Widget", "widgets", true);
    for (api_version, kind) in [("example.com/v1", "Gadget"), ("nowhere.io/v1", "Thing")] {
        let mut object = widget("a", 1);
        object["apiVersion"] = json!(api_version);
        object["kind"] = json!(kind);
        let err = stack
            .plan_with(&[desired(object, &[])], PlanOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(&err, EngineError::Cluster(ClusterError::UnknownKind { kind: k, .. }) if k == kind),
            "{err}"
        );
    }
}

#[tokio::test]
async fn objects_declared_through_the_program_api_carry_the_identitys_labels() {
    let stack = Stack::new();
    let mut resources = Resources::new(&identity(), STACK);
    let config = resources.add(k8s_openapi::api::core::v1::ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some("web".into()),
            namespace: Some("ns".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([("k".to_string(), "v".to_string())])),
        ..Default::default()
    });
    let desired = resources.finish().unwrap();
    stack.up(&desired).await;
    let live = stack.fake.get(&config).unwrap();
    assert_eq!(live["metadata"]["labels"][MANAGED_BY_LABEL], PROGRAM);
    assert_eq!(live["metadata"]["labels"][STACK_LABEL], STACK);
    assert_eq!(
        live["metadata"]["managedFields"][0]["manager"],
        FIELD_MANAGER
    );
    // And the next plan recognises them as the stack's own.
    let plan = stack.plan(&desired).await;
    assert_eq!(ops(&plan), ["same ConfigMap ns/web"]);
    assert!(plan.untracked.is_empty());
}

#[tokio::test(start_paused = true)]
async fn up_refuses_a_plan_with_a_blocked_step_and_applies_nothing() {
    let stack = Stack::new();
    let mut theirs = config_map("ns", "theirs", json!({"k": "theirs"}));
    theirs["metadata"]["labels"] = json!({});
    stack.fake.apply_as("kubectl", theirs);
    let desired = [
        desired(config_map("ns", "ours", json!({"k": "v"})), &[]),
        desired(config_map("ns", "theirs", json!({"k": "ours"})), &[]),
    ];
    let plan = stack.plan(&desired).await;
    assert_eq!(plan.blocked().count(), 1, "{:?}", plan.steps);
    stack.fake.clear_log();
    let writes = stack.store.saves().len();

    let cancel = Cancel::default();
    let locked = stack.locked().await;
    let result = operation::up(
        &stack.cluster,
        &locked,
        stack.state().await,
        &plan,
        &desired,
        &options(&cancel),
        &Told::default(),
    )
    .await;
    let Err(EngineError::Blocked { steps }) = result else {
        panic!("not refused as blocked");
    };
    assert_eq!(steps.len(), 1);
    assert_eq!(steps[0].id, desired[1].id);
    assert!(matches!(steps[0].blocker, Blocker::Unmanaged { .. }));
    assert_eq!(stack.fake.request_count(), 0, "{:?}", stack.fake.requests());
    assert!(stack.fake.mutations().is_empty());
    assert_eq!(
        stack.store.saves().len(),
        writes,
        "the state is not written"
    );
    assert!(stack.fake.get(&desired[0].id).is_none());
}

#[tokio::test(start_paused = true)]
async fn destroy_refuses_a_plan_with_a_blocked_step_and_deletes_nothing() {
    let stack = Stack::new();
    let config = config_map("ns", "web", json!({}));
    let desired = [desired(config.clone(), &[])];
    stack.up(&desired).await;
    let mut plan = stack.plan_destroy(&desired).await;
    plan.steps[0].blocker = Some(Blocker::Unmanaged { owner: None });
    stack.fake.clear_log();
    let writes = stack.store.saves().len();

    let cancel = Cancel::default();
    let locked = stack.locked().await;
    let result = operation::destroy(
        &stack.cluster,
        &locked,
        stack.state().await,
        &plan,
        &desired,
        &destroy_options(&cancel),
        &Told::default(),
    )
    .await;
    assert!(
        matches!(&result, Err(EngineError::Blocked { steps }) if steps.len() == 1),
        "{result:?}"
    );
    assert_eq!(stack.fake.request_count(), 0);
    assert_eq!(stack.store.saves().len(), writes);
    assert!(stack.fake.get(&id_of(&config)).is_some());
}
