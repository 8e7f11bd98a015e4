//! Refresh against the fake API server: what it finds, what it records,
//! and what it leaves alone.

use serde_json::json;

use super::*;
use crate::refresh::{Drift, plan_refresh};

fn cm(name: &str) -> Value {
    config_map("ns", name, json!({"key": "v"}))
}

#[tokio::test]
async fn refresh_finds_each_kind_of_drift_and_changes_no_object() {
    let stack = Stack::new();
    let kept = cm("kept");
    let gone = cm("gone");
    let recreated = cm("recreated");
    let foreign = cm("foreign");
    let all = [&kept, &gone, &recreated, &foreign];
    let desired: Vec<DesiredResource> = all.iter().map(|o| desired((*o).clone(), &[])).collect();
    stack.up(&desired).await;
    let state = stack.state().await;

    stack.fake.remove(&id_of(&gone));
    stack.fake.remove(&id_of(&recreated));
    let new = stack.fake.apply_as(FIELD_MANAGER, recreated.clone());
    stack.fake.remove(&id_of(&foreign));
    let mut unlabelled = foreign.clone();
    unlabelled["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("labels");
    stack.fake.insert(unlabelled);
    // Labelled as the stack's but missing from its state: one declared,
    // one not.
    let lost = cm("lost");
    let lost_live = stack.fake.apply_as(FIELD_MANAGER, lost.clone());
    stack.fake.apply_as(FIELD_MANAGER, cm("stray"));
    let mut declared = desired.clone();
    declared.push(super::desired(lost.clone(), &[]));
    stack.fake.clear_log();

    let refresh = plan_refresh(&stack.cluster, STACK, &declared, &state)
        .await
        .unwrap();
    assert!(
        stack.fake.mutations().is_empty(),
        "{:?}",
        stack.fake.mutations()
    );
    let ids: Vec<(String, &str)> = refresh
        .drift
        .iter()
        .map(|d| {
            let what = match d {
                Drift::Gone(_) => "gone",
                Drift::Recreated { .. } => "recreated",
                Drift::Foreign(_) => "foreign",
                Drift::Untracked(_) => "untracked",
            };
            (d.id().name.clone(), what)
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("gone".to_string(), "gone"),
            ("recreated".to_string(), "recreated"),
            ("foreign".to_string(), "foreign"),
            ("lost".to_string(), "untracked"),
        ]
    );
    assert_eq!(
        refresh
            .left_alone
            .iter()
            .map(|id| id.name.as_str())
            .collect::<Vec<_>>(),
        ["stray"]
    );

    let mut state = state;
    refresh.apply_to(&mut state);
    let recorded: Vec<(&str, &str)> = state
        .resources
        .iter()
        .map(|r| (r.id.name.as_str(), r.uid.as_str()))
        .collect();
    let uid = |o: &Value| o["metadata"]["uid"].as_str().unwrap().to_string();
    assert_eq!(recorded.len(), 3, "{recorded:?}");
    assert!(recorded.contains(&("recreated", uid(&new).as_str())));
    assert!(recorded.contains(&("lost", uid(&lost_live).as_str())));
    assert!(recorded.iter().any(|(name, _)| *name == "kept"));
}

#[tokio::test]
async fn a_state_that_matches_the_cluster_has_nothing_to_refresh() {
    let stack = Stack::new();
    let desired = vec![desired(cm("a"), &[]), desired(cm("b"), &[])];
    stack.up(&desired).await;
    let refresh = plan_refresh(&stack.cluster, STACK, &desired, &stack.state().await)
        .await
        .unwrap();
    assert!(refresh.is_empty(), "{refresh:?}");
    assert!(refresh.left_alone.is_empty());
}
