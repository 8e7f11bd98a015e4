//! The seed corpora of the fuzz targets (`fuzz/corpus/`) that stand for
//! documents the engine writes: a state document, a Kubernetes backend
//! head and a saved plan, each made here by a real run on the fake API
//! server. With `ECHO_IAC_FUZZ_SEEDS=<folder>` the test writes them under
//! `<folder>/<target>/`, which is how `fuzz/corpus` was filled; either way
//! it checks that each still reads, so a change of format shows here
//! first.

use super::*;
use crate::saved_plan::{Context, SavedOptions, SavedPlan};
use crate::state::{KubeStore, decode_head, encode_document, parse_document};
use std::collections::BTreeMap;

const NS: &str = "ops";

fn secret(password: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"namespace": "app", "name": "auth", "labels": stack_labels()},
        "stringData": {"password": password}})
}

/// What separates the documents of one input of the `kube_state_head`
/// target (`fuzz/src/lib.rs`).
const SEPARATOR: &[u8] = &[0xFF, 0x00, 0xFF, 0x00];

/// The data of the head Secret, joined as the `kube_state_head` target
/// splits it: `index.json`, then the values the index names.
fn head_input(data: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let index: Value = serde_json::from_slice(&data["index.json"]).unwrap();
    let mut input = data["index.json"].clone();
    for revision in index["revisions"].as_array().unwrap() {
        input.extend_from_slice(SEPARATOR);
        input.extend_from_slice(&data[&format!("state.{}.gz", revision["serial"])]);
    }
    input
}

/// The same head with its current revision moved to two part Secrets.
fn in_parts(data: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut index: Value = serde_json::from_slice(&data["index.json"]).unwrap();
    let serial = index["revisions"][0]["serial"].clone();
    index["revisions"] = json!([index["revisions"][0].clone()]);
    index["revisions"][0]["parts"] = json!(["echo-iac-state-dev-2-0", "echo-iac-state-dev-2-1"]);
    let compressed = &data[&format!("state.{serial}.gz")];
    let (first, second) = compressed.split_at(compressed.len() / 2);
    let mut input = serde_json::to_vec(&index).unwrap();
    for part in [first, second] {
        input.extend_from_slice(SEPARATOR);
        input.extend_from_slice(part);
    }
    input
}

#[tokio::test]
async fn the_fuzz_seeds_of_documents_the_engine_writes_read_back() {
    let stack = Stack::new();
    let first = [
        desired(namespace("app"), &[]),
        desired(config_map("app", "settings", json!({"a": "1"})), &[]),
        desired(deployment("app", "web", 2), &[]),
        desired(service("app", "web", Some(30007)), &[]),
        desired(secret("first-pw"), &[]),
    ];
    stack.up(&first).await;
    let state = stack.state().await;
    let document = encode_document(&state).unwrap();
    parse_document("seed", &document, STACK).unwrap();

    let changed = [
        desired(namespace("app"), &[]),
        desired(config_map("app", "settings", json!({"a": "2"})), &[]),
        desired(deployment("app", "web", 3), &[]),
        desired(secret("second-pw"), &[]),
    ];
    let plan = stack.plan(&changed).await;
    let identity = identity();
    let context = Context {
        identity: &identity,
        program_version: "1.0.0",
        server: "https://127.0.0.1:6443/",
        context: "local",
        options: SavedOptions::default(),
    };
    let saved = SavedPlan::of(&plan, &changed, &state, &context).to_text();
    SavedPlan::parse(&saved).unwrap();

    let fake = FakeApi::new();
    fake.insert(namespace(NS));
    let store = KubeStore::new(fake.cluster(identity.clone()), NS, STACK);
    let mut kept = store.load().await.unwrap();
    for resource in &state.resources {
        kept.upsert_resource(resource.clone());
        store.save(&mut kept, WritePermit::HELD).await.unwrap();
    }
    let head = fake
        .get(&ResourceId::new(
            "v1",
            "Secret",
            Some(NS),
            "shop-iac-state-dev",
        ))
        .expect("the head exists");
    let data: BTreeMap<String, Vec<u8>> = head["data"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(key, value)| {
            let bytes: k8s_openapi::ByteString = serde_json::from_value(value.clone()).unwrap();
            (key.clone(), bytes.0)
        })
        .collect();
    let decoded = decode_head(&identity, NS, STACK, &data, &BTreeMap::new()).unwrap();
    assert!(decoded.revisions.iter().all(|(_, state)| state.is_ok()));

    let seeds: [(&str, &str, Vec<u8>); 5] = [
        ("state_document", "fake-stack.json", document),
        ("saved_plan", "fake-stack.json", saved.into_bytes()),
        ("kube_state_head", "inline", head_input(&data)),
        ("kube_state_head", "parts", in_parts(&data)),
        (
            "state_document",
            "version-1.json",
            br#"{"version": 1, "stack": "dev", "serial": 3}"#.to_vec(),
        ),
    ];
    let Some(folder) = std::env::var_os("ECHO_IAC_FUZZ_SEEDS") else {
        return;
    };
    for (target, name, bytes) in seeds {
        let dir = std::path::Path::new(&folder).join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}
