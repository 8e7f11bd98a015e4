//! What sealing Secret values adds to writing a large state: a state of
//! 3,000 objects, written through the file backend as `up` records it
//! (every object upserted, then saved), without Secrets and with
//! `SECRETS` of them (two values each).
//!
//! `cargo run -p echo-iac-engine --example seal_cost [SECRETS]`
//!
//! It prints the time of each write: the objects alone; the same count with
//! the Secrets new (each value sealed); the same values again in this
//! process (answers kept); and in a fresh process, which checks each
//! recorded seal once.

use echo_iac_engine::Identity;
use std::path::Path;
use std::time::{Duration, Instant};

use echo_iac_engine::ResourceId;
use echo_iac_engine::state::{LocalStore, Locked, ResourceState, State, StateStore};
use serde_json::{Value, json};

const OBJECTS: usize = 3000;

fn object(i: usize, secrets: usize) -> Value {
    let name = format!("object-{i}");
    if i < secrets {
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"namespace": "bench", "name": name, "labels": {"app": "bench"}},
            "type": "Opaque",
            "data": {"password": format!("cGFzc3dvcmQt{i:08}"), "user": format!("dXNlci0{i:08}")}})
    } else {
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"namespace": "bench", "name": name, "labels": {"app": "bench"}},
            "data": {"default.conf": format!("server {{ listen 80; return 200 \"{i}\"; }}\n")}})
    }
}

/// Upserts every object into `state` and saves it; the time taken.
async fn write(store: &Locked<'_>, state: &mut State, secrets: usize) -> Duration {
    let start = Instant::now();
    for i in 0..OBJECTS {
        let applied = object(i, secrets);
        let id = ResourceId::new(
            "v1",
            applied["kind"].as_str().unwrap(),
            Some("bench"),
            &format!("object-{i}"),
        );
        state.upsert_resource(ResourceState {
            id,
            uid: format!("uid-{i}"),
            depends_on: Vec::new(),
            applied: applied.into(),
            protect: false,
            retain: false,
            proof: None,
        });
    }
    store.save(state).await.unwrap();
    start.elapsed()
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let secrets: usize = args
        .first()
        .map_or(300, |a| a.parse().expect("SECRETS is a number"));
    if let Some(dir) = args.get(1) {
        // The fresh process: the state holds the seals; check them all.
        let store = LocalStore::new(
            Path::new(dir).to_path_buf(),
            "bench",
            &Identity::new("seal-cost"),
        );
        let lock = Locked::acquire(&store, "seal_cost", None).await.unwrap();
        let mut state = store.load().await.unwrap();
        let took = write(&lock, &mut state, secrets).await;
        println!(
            "{:>44}: {}",
            "same values, fresh process (checks seals)",
            ms(took)
        );
        lock.release().await;
        return;
    }

    let dir = tempfile::tempdir().unwrap();
    let plain = LocalStore::new(
        dir.path().join("plain"),
        "bench",
        &Identity::new("seal-cost"),
    );
    let lock = Locked::acquire(&plain, "seal_cost", None).await.unwrap();
    let mut state = State::empty("bench");
    let baseline = write(&lock, &mut state, 0).await;
    let again = write(&lock, &mut state, 0).await;
    lock.release().await;

    let sealed = LocalStore::new(
        dir.path().join("sealed"),
        "bench",
        &Identity::new("seal-cost"),
    );
    let lock = Locked::acquire(&sealed, "seal_cost", None).await.unwrap();
    let mut state = State::empty("bench");
    let first = write(&lock, &mut state, secrets).await;
    let kept = write(&lock, &mut state, secrets).await;
    lock.release().await;

    // One value per seal, each new: what one guess costs.
    let start = Instant::now();
    for i in 0..200 {
        let applied = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"namespace": "bench", "name": "one"}, "data": {"k": format!("{i}")}});
        State::empty("bench").upsert_resource(ResourceState {
            id: ResourceId::new("v1", "Secret", Some("bench"), "one"),
            uid: "uid".into(),
            depends_on: Vec::new(),
            applied: applied.into(),
            protect: false,
            retain: false,
            proof: None,
        });
    }
    let each = start.elapsed() / 200;
    println!(
        "one seal: {:.2} ms ({:.0} a second on one core)",
        each.as_secs_f64() * 1000.0,
        1.0 / each.as_secs_f64()
    );
    println!("{OBJECTS} objects, {secrets} of them Secrets with two values each:");
    println!(
        "{:>44}: {} / {} (first / again)",
        "no Secrets",
        ms(baseline),
        ms(again)
    );
    println!("{:>44}: {}", "Secrets new (each value sealed)", ms(first));
    println!("{:>44}: {}", "same values, same process", ms(kept));
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .arg(secrets.to_string())
        .arg(dir.path().join("sealed"))
        .status()
        .unwrap();
    assert!(status.success());
}
