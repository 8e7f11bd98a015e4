//! Waiting for deleted objects to go, many at once, against the fake API
//! server: one list per kind and namespace each poll, reads by name where
//! listing is not allowed, and the timeout and cancel of a single wait.

use futures::future::join_all;

use super::*;
use crate::gone::GoneWatcher;
use crate::testing::{Fault, Verb};

/// A ConfigMap in `ns` held by a finalizer, deleted: it stays until the
/// test removes it. Returns its id and uid.
fn held(stack: &Stack, name: &str) -> (ResourceId, String) {
    let mut object = config_map("ns", name, json!({}));
    object["metadata"]["finalizers"] = json!(["example.com/hold"]);
    let stored = stack.fake.insert(object);
    let uid = stored["metadata"]["uid"].as_str().unwrap().to_string();
    let id = id_of(&stored);
    (id, uid)
}

/// Removes `ids` from the fake `after` from now, as a controller finishing
/// their deletion.
fn remove_after(stack: &Stack, ids: &[ResourceId], after: Duration) {
    let fake = stack.fake.clone();
    let ids = ids.to_vec();
    tokio::spawn(async move {
        tokio::time::sleep(after).await;
        for id in &ids {
            fake.remove(id);
        }
    });
}

/// Waits for every object in `objects` with one watcher.
async fn wait_all(
    stack: &Stack,
    objects: &[(ResourceId, String)],
    timeout: Duration,
    cancel: &Cancel,
) -> Vec<Result<(), EngineError>> {
    let watcher = GoneWatcher::new(&stack.cluster, timeout, cancel);
    let waits = join_all(objects.iter().map(|(id, uid)| watcher.wait_gone(id, uid)));
    tokio::select! {
        results = waits => results,
        never = watcher.run() => match never {},
    }
}

fn count(stack: &Stack, verb: Verb) -> usize {
    stack
        .fake
        .requests()
        .iter()
        .filter(|r| r.verb == verb)
        .count()
}

#[tokio::test(start_paused = true)]
async fn objects_of_one_kind_and_namespace_are_polled_with_one_list_for_all() {
    let stack = Stack::new();
    let objects: Vec<(ResourceId, String)> =
        (0..10).map(|i| held(&stack, &format!("cm-{i}"))).collect();
    let ids: Vec<ResourceId> = objects.iter().map(|(id, _)| id.clone()).collect();
    remove_after(&stack, &ids, Duration::from_secs(2));
    stack.fake.clear_log();
    let started = tokio::time::Instant::now();

    let results = wait_all(&stack, &objects, TIMEOUT, &Cancel::default()).await;

    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(count(&stack, Verb::Get), 0);
    // Polls at 50, 100, 200, 400 and 500 ms apart: a handful of lists for
    // all ten, where reads by name would have cost ten per poll.
    let lists = count(&stack, Verb::List);
    assert!((1..=10).contains(&lists), "{lists} lists");
}

#[tokio::test(start_paused = true)]
async fn an_object_recreated_with_another_uid_counts_as_gone() {
    let stack = Stack::new();
    let (id, old_uid) = held(&stack, "web");
    let (kept, kept_uid) = held(&stack, "other");
    stack.fake.remove(&id);
    stack.fake.insert(config_map("ns", "web", json!({})));
    assert_ne!(
        stack.fake.get(&id).unwrap()["metadata"]["uid"],
        old_uid.as_str()
    );
    remove_after(&stack, std::slice::from_ref(&kept), Duration::from_secs(1));

    let results = wait_all(
        &stack,
        &[(id.clone(), old_uid), (kept, kept_uid)],
        TIMEOUT,
        &Cancel::default(),
    )
    .await;

    assert!(results.iter().all(Result::is_ok), "{results:?}");
    // The new object is someone else's and stays.
    assert!(stack.fake.get(&id).is_some());
}

#[tokio::test(start_paused = true)]
async fn a_kind_that_may_not_be_listed_is_read_by_name_from_then_on() {
    let stack = Stack::new();
    let objects = vec![held(&stack, "a"), held(&stack, "b")];
    let ids: Vec<ResourceId> = objects.iter().map(|(id, _)| id.clone()).collect();
    remove_after(&stack, &ids, Duration::from_secs(1));
    stack.fake.inject(
        Fault::on(Verb::List)
            .resource("configmaps")
            .status(403)
            .always(),
    );
    stack.fake.clear_log();

    let results = wait_all(&stack, &objects, TIMEOUT, &Cancel::default()).await;

    assert!(results.iter().all(Result::is_ok), "{results:?}");
    assert_eq!(count(&stack, Verb::List), 1, "listed once, refused");
    let reads: Vec<String> = stack
        .fake
        .requests()
        .iter()
        .filter(|r| r.verb == Verb::Get)
        .filter_map(|r| r.name.clone())
        .collect();
    assert!(reads.iter().any(|n| n == "a") && reads.iter().any(|n| n == "b"));
    // Each read until its object went, not one.
    assert!(reads.len() > 2, "{reads:?}");
}

#[tokio::test(start_paused = true)]
async fn a_wait_that_runs_out_names_the_finalizers_and_the_others_still_end() {
    let stack = Stack::new();
    let (stuck, stuck_uid) = held(&stack, "stuck");
    let (goes, goes_uid) = held(&stack, "goes");
    remove_after(&stack, std::slice::from_ref(&goes), Duration::from_secs(1));
    let started = tokio::time::Instant::now();

    let results = wait_all(
        &stack,
        &[(stuck.clone(), stuck_uid), (goes, goes_uid)],
        Duration::from_secs(5),
        &Cancel::default(),
    )
    .await;

    assert!(started.elapsed() >= Duration::from_secs(5));
    let Err(EngineError::NotGone { id, finalizers, .. }) = &results[0] else {
        panic!("{results:?}");
    };
    assert_eq!(id, &stuck.to_string());
    assert!(finalizers.contains("example.com/hold"), "{finalizers}");
    assert!(results[1].is_ok(), "{results:?}");
}

#[tokio::test(start_paused = true)]
async fn a_cancel_ends_the_wait_for_an_object_still_there_at_once() {
    let stack = Stack::new();
    let (stuck, stuck_uid) = held(&stack, "stuck");
    let (goes, goes_uid) = held(&stack, "goes");
    remove_after(
        &stack,
        std::slice::from_ref(&goes),
        Duration::from_millis(500),
    );
    let cancel = Cancel::on(tokio::time::sleep(Duration::from_secs(3)));
    let started = tokio::time::Instant::now();

    let results = wait_all(
        &stack,
        &[(stuck, stuck_uid), (goes, goes_uid)],
        TIMEOUT,
        &cancel,
    )
    .await;

    assert!(
        matches!(results[0], Err(EngineError::Interrupted)),
        "{results:?}"
    );
    assert!(results[1].is_ok(), "{results:?}");
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

#[tokio::test(start_paused = true)]
async fn a_destroy_reads_no_deleted_object_by_name() {
    let stack = Stack::new();
    let objects: Vec<Value> = (0..8)
        .map(|i| config_map("ns", &format!("cm-{i}"), json!({})))
        .chain((0..4).map(|i| deployment("ns", &format!("web-{i}"), 1)))
        .collect();
    let declared: Vec<DesiredResource> = objects.iter().map(|o| desired(o.clone(), &[])).collect();
    stack.up(&declared).await;
    let plan = stack.plan_destroy(&declared).await;
    stack.fake.clear_log();

    let (_, result) = stack.apply(&plan, &declared).await;

    result.unwrap();
    assert!(stack.state().await.resources.is_empty());
    assert_eq!(count(&stack, Verb::Delete), 12);
    assert_eq!(count(&stack, Verb::Get), 0, "{:?}", stack.fake.requests());
    // The ConfigMaps are gone once the server answers (deleted in the
    // background, as they own nothing to wait for); the Deployments are
    // held until their pods are gone, and one list polls all four.
    let policies: Vec<(String, Value)> = stack
        .fake
        .requests()
        .iter()
        .filter(|r| r.verb == Verb::Delete)
        .map(|r| {
            let body = r.body.clone().unwrap_or_default();
            (r.plural.clone(), body["propagationPolicy"].clone())
        })
        .collect();
    assert!(policies.iter().all(|(plural, policy)| {
        *policy
            == if plural == "configmaps" {
                "Background"
            } else {
                "Foreground"
            }
    }));
    let lists: Vec<String> = stack
        .fake
        .requests()
        .iter()
        .filter(|r| r.verb == Verb::List)
        .map(|r| r.plural.clone())
        .collect();
    assert_eq!(lists, ["deployments"]);
}
