//! A Secret's values against the fake API server: planned, applied,
//! recorded and compared, and never found in a plan or the state.

use serde_json::json;

use super::*;
use crate::diff;
use crate::sensitive::MARKER;
use crate::state::ResourceState;

/// `hunter2-s3cret`, base64-encoded as Secret data is.
const PASSWORD: &str = "aHVudGVyMi1zM2NyZXQ=";
const PASSWORD_PLAIN: &str = "hunter2-s3cret";
const TOKEN: &str = "plain-t0ken-value";
/// `rotated-s3cret`.
const ROTATED: &str = "cm90YXRlZC1zM2NyZXQ=";

fn secret(password: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"namespace": "ns", "name": "db", "labels": stack_labels()},
        "type": "Opaque",
        "data": {"password": password},
        "stringData": {"token": TOKEN}})
}

/// Everything a plan holds, as text: its JSON, its debug form (which
/// includes the live and planned objects) and each step's unified diff.
fn plan_text(plan: &Plan) -> String {
    let mut text = serde_json::to_string(plan).unwrap();
    text.push_str(&format!("{plan:?}"));
    for step in &plan.steps {
        text.push_str(&diff::unified_yaml(
            step.live.as_ref(),
            step.planned.as_ref(),
            "x",
        ));
    }
    text
}

fn assert_no_value(text: &str, values: &[&str]) {
    for value in values {
        assert!(!text.contains(value), "{value} found in:\n{text}");
    }
}

/// Every file the state store wrote, the history included.
fn state_files(stack: &Stack) -> String {
    let mut text = String::new();
    let mut folders = vec![stack._dir.path().to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                text.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
            }
        }
    }
    text
}

#[tokio::test]
async fn a_new_secret_plans_a_create_whose_values_show_only_as_sensitive() {
    let stack = Stack::new();
    let plan = stack.plan(&[desired(secret(PASSWORD), &[])]).await;
    assert_eq!(ops(&plan), ["create Secret ns/db"]);
    let step = &plan.steps[0];
    let password = step
        .changes
        .iter()
        .find(|c| c.path == "data.password")
        .expect("the password is listed as added");
    assert!(password.sensitive);
    assert_eq!(password.old, None);
    assert_eq!(password.new, Some(json!(MARKER)));
    assert!(
        step.changes
            .iter()
            .any(|c| c.path == "stringData.token" && c.sensitive),
        "{:?}",
        step.changes
    );
    // Other fields keep their values.
    assert!(
        step.changes
            .iter()
            .any(|c| c.path == "type" && c.new == Some(json!("Opaque")))
    );
    assert_no_value(&plan_text(&plan), &[PASSWORD, PASSWORD_PLAIN, TOKEN]);
}

#[tokio::test]
async fn an_applied_secret_is_recorded_as_hashes_and_the_cluster_holds_the_value() {
    let stack = Stack::new();
    let desired = [desired(secret(PASSWORD), &[])];
    stack.up(&desired).await;

    let live = stack.fake.get(&desired[0].id).unwrap();
    assert_eq!(live["data"]["password"], PASSWORD);
    let files = state_files(&stack);
    assert!(files.contains("Secret"), "{files}");
    assert_no_value(&files, &[PASSWORD, PASSWORD_PLAIN, TOKEN]);
    let state = stack.state().await;
    let applied = state.resource(&desired[0].id).unwrap().applied.value();
    for field in ["data", "stringData"] {
        for value in applied[field].as_object().unwrap().values() {
            let value = value.as_str().unwrap();
            assert!(value.starts_with("(sensitive) argon2id:"), "{value}");
        }
    }
    // Everything else is recorded as applied.
    assert_eq!(applied["type"], "Opaque");
}

#[tokio::test]
async fn an_unchanged_secret_is_same_and_a_changed_value_an_update_without_values() {
    let stack = Stack::new();
    stack.up(&[desired(secret(PASSWORD), &[])]).await;
    let recorded = stack.state().await.resources[0].applied.value();

    let plan = stack.plan(&[desired(secret(PASSWORD), &[])]).await;
    assert_eq!(ops(&plan), ["same Secret ns/db"]);

    let desired = [desired(secret(ROTATED), &[])];
    let plan = stack.plan(&desired).await;
    assert_eq!(ops(&plan), ["update Secret ns/db"]);
    let step = &plan.steps[0];
    let change = step
        .changes
        .iter()
        .find(|c| c.path == "data.password")
        .expect("the password is listed as changed");
    assert!(change.sensitive);
    assert_eq!(change.old, Some(json!(MARKER)));
    assert_eq!(change.new, Some(json!(MARKER)));
    let unified = diff::unified_yaml(step.live.as_ref(), step.planned.as_ref(), "x");
    assert!(
        unified
            .lines()
            .any(|l| l.starts_with('+') && l.contains("password: (sensitive) ")),
        "{unified}"
    );
    assert_no_value(&plan_text(&plan), &[PASSWORD, ROTATED, TOKEN]);

    let (_, result) = stack.apply(&plan, &desired).await;
    result.unwrap();
    assert_eq!(
        stack.fake.get(&desired[0].id).unwrap()["data"]["password"],
        ROTATED
    );
    let now = stack.state().await.resources[0].applied.value();
    assert_ne!(now["data"]["password"], recorded["data"]["password"]);
    // The unchanged token keeps its record, so the state reads the same.
    assert_eq!(now["stringData"]["token"], recorded["stringData"]["token"]);
    assert_no_value(&state_files(&stack), &[PASSWORD, ROTATED, TOKEN]);
    assert_eq!(ops(&stack.plan(&desired).await), ["same Secret ns/db"]);
}

#[tokio::test]
async fn a_value_the_state_records_otherwise_is_an_update_even_when_the_cluster_agrees() {
    let stack = Stack::new();
    stack.up(&[desired(secret(PASSWORD), &[])]).await;
    let desired = [desired(secret(ROTATED), &[])];
    // Someone set the new value already, outside the stack.
    stack
        .fake
        .update(&desired[0].id, |s| s["data"]["password"] = json!(ROTATED));

    let plan = stack.plan(&desired).await;
    assert_eq!(ops(&plan), ["update Secret ns/db"]);
    let step = &plan.steps[0];
    assert_eq!(step.changes.len(), 1, "{:?}", step.changes);
    assert_eq!(step.changes[0].path, "data.password");
    assert!(step.changes[0].sensitive);
    assert!(step.reason.as_deref().unwrap().contains("state records"));
    assert_no_value(&plan_text(&plan), &[PASSWORD, ROTATED]);

    let (_, result) = stack.apply(&plan, &desired).await;
    result.unwrap();
    assert_eq!(ops(&stack.plan(&desired).await), ["same Secret ns/db"]);
}

#[tokio::test]
async fn deleting_a_secret_shows_no_value() {
    let stack = Stack::new();
    stack.up(&[desired(secret(PASSWORD), &[])]).await;
    let plan = stack.plan(&[]).await;
    assert_eq!(ops(&plan), ["delete Secret ns/db"]);
    assert!(plan.steps[0].live.is_some());
    assert_no_value(&plan_text(&plan), &[PASSWORD, PASSWORD_PLAIN]);
}

#[tokio::test]
async fn a_value_set_in_the_clear_is_sealed_before_it_is_written() {
    let stack = Stack::new();
    let object = secret(PASSWORD);
    let mut state = State::empty(STACK);
    // Pushed past `upsert_resource`, as a state read from an older
    // release would hold it.
    state.resources.push(ResourceState {
        id: id_of(&object),
        uid: "u".into(),
        depends_on: Vec::new(),
        applied: object.into(),
        protect: false,
        retain: false,
        proof: None,
    });
    stack.set_state(state).await;
    assert_no_value(&state_files(&stack), &[PASSWORD, TOKEN]);
}

#[tokio::test]
async fn the_cluster_backend_stores_a_secret_sealed() {
    let fake = FakeApi::new();
    fake.insert(namespace("state"));
    let store = crate::state::KubeStore::new(fake.cluster(identity()), "state", STACK);
    let mut state = store.load().await.unwrap();
    let object = secret(PASSWORD);
    state.resources.push(ResourceState {
        id: id_of(&object),
        uid: "u".into(),
        depends_on: Vec::new(),
        applied: object.into(),
        protect: false,
        retain: false,
        proof: None,
    });
    store.save(&mut state, WritePermit::HELD).await.unwrap();

    let stored = crate::state::KubeStore::new(fake.cluster(identity()), "state", STACK)
        .load()
        .await
        .unwrap();
    let text = serde_json::to_string(&stored).unwrap();
    assert!(text.contains("argon2id"), "{text}");
    assert_no_value(&text, &[PASSWORD, TOKEN]);
}

/// `secret` as client-side `kubectl apply` leaves it: the whole manifest,
/// values included, in the last-applied annotation.
fn with_last_applied(mut object: Value, password: &str) -> Value {
    let manifest = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"namespace": "ns", "name": "db"},
        "data": {"password": password}, "stringData": {"token": TOKEN}});
    object["metadata"]["annotations"] = json!({
        crate::sensitive::LAST_APPLIED: manifest.to_string(),
        "team": "payments",
    });
    object
}

#[tokio::test]
async fn a_secret_once_applied_with_kubectl_shows_no_value_in_an_update_or_a_delete() {
    let stack = Stack::new();
    stack.up(&[desired(secret(PASSWORD), &[])]).await;
    let id = id_of(&secret(PASSWORD));
    stack
        .fake
        .update(&id, |s| *s = with_last_applied(s.clone(), PASSWORD));

    let desired = [desired(secret(ROTATED), &[])];
    let plan = stack.plan(&desired).await;
    assert_eq!(ops(&plan), ["update Secret ns/db"]);
    let step = &plan.steps[0];
    // Both sides keep the annotation (the dry run leaves kubectl's field
    // alone), masked.
    for side in [&step.live, &step.planned] {
        let annotations = &side.as_ref().unwrap()["metadata"]["annotations"];
        assert!(
            crate::sensitive::is_redacted(&annotations[crate::sensitive::LAST_APPLIED]),
            "{annotations}"
        );
        assert_eq!(annotations["team"], "payments");
    }
    assert_no_value(
        &plan_text(&plan),
        &[PASSWORD, PASSWORD_PLAIN, ROTATED, TOKEN],
    );

    let (_, result) = stack.apply(&plan, &desired).await;
    result.unwrap();
    assert_no_value(&state_files(&stack), &[PASSWORD, ROTATED, TOKEN]);

    let plan = stack.plan(&[]).await;
    assert_eq!(ops(&plan), ["delete Secret ns/db"]);
    let live = plan.steps[0].live.as_ref().unwrap();
    assert!(live["metadata"]["annotations"]["team"] == "payments");
    assert_no_value(
        &plan_text(&plan),
        &[PASSWORD, PASSWORD_PLAIN, ROTATED, TOKEN],
    );
}

#[tokio::test]
async fn a_declared_last_applied_annotation_is_recorded_sealed_and_its_change_concealed() {
    let stack = Stack::new();
    let first = [desired(with_last_applied(secret(PASSWORD), PASSWORD), &[])];
    let plan = stack.plan(&first).await;
    let annotation = format!(
        "metadata.annotations[\"{}\"]",
        crate::sensitive::LAST_APPLIED
    );
    assert!(
        plan.steps[0]
            .changes
            .iter()
            .any(|c| c.path == annotation && c.sensitive),
        "{:?}",
        plan.steps[0].changes
    );
    assert_no_value(&plan_text(&plan), &[PASSWORD, PASSWORD_PLAIN, TOKEN]);
    stack.up(&first).await;
    assert_no_value(&state_files(&stack), &[PASSWORD, TOKEN]);

    let second = [desired(with_last_applied(secret(PASSWORD), ROTATED), &[])];
    let plan = stack.plan(&second).await;
    assert_eq!(ops(&plan), ["update Secret ns/db"]);
    let changes: Vec<(&str, bool)> = plan.steps[0]
        .changes
        .iter()
        .map(|c| (c.path.as_str(), c.sensitive))
        .collect();
    assert_eq!(changes, [(annotation.as_str(), true)]);
    assert_eq!(plan.steps[0].changes[0].old, Some(json!(MARKER)));
    assert_eq!(plan.steps[0].changes[0].new, Some(json!(MARKER)));
    assert_no_value(&plan_text(&plan), &[PASSWORD, ROTATED, TOKEN]);
}
