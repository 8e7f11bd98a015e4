//! The cluster state backend (Secrets) and its lock (a Lease), against the
//! fake API server.

use std::time::SystemTime;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::*;
use crate::state::{KubeStore, ResourceState};

const NS: &str = "state";
/// Past the first renewal of a lease.
const RENEW_AND_A_BIT: Duration = Duration::from_secs(6);

fn fake_with_namespace() -> FakeApi {
    let fake = FakeApi::new();
    fake.insert(namespace(NS));
    fake
}

fn store(fake: &FakeApi) -> KubeStore {
    KubeStore::new(fake.cluster(identity()), NS, STACK)
}

fn head() -> ResourceId {
    ResourceId::new("v1", "Secret", Some(NS), "shop-iac-state-dev")
}

fn lease() -> ResourceId {
    ResourceId::new(
        "coordination.k8s.io/v1",
        "Lease",
        Some(NS),
        "shop-iac-lock-dev",
    )
}

fn with_resource(mut state: State, name: &str, applied: Value) -> State {
    state.upsert_resource(ResourceState {
        id: ResourceId::new("v1", "ConfigMap", Some("app"), name),
        uid: format!("uid-{name}"),
        depends_on: Vec::new(),
        applied: applied.into(),
        protect: false,
        retain: false,
        proof: None,
    });
    state
}

/// The requests to Secrets and Leases, as `METHOD plural ns/name`.
fn sent(fake: &FakeApi) -> Vec<String> {
    fake.requests().iter().map(ToString::to_string).collect()
}

#[tokio::test]
async fn the_first_write_creates_the_head_and_later_ones_are_conditional() {
    let fake = fake_with_namespace();
    let store = store(&fake);
    let mut state = store.load().await.unwrap();
    assert_eq!(state.serial, 0);
    state = with_resource(state, "a", json!({"k": 1}));
    store.save(&mut state, WritePermit::HELD).await.unwrap();
    assert_eq!(state.serial, 1);
    let created = fake.get(&head()).expect("the head exists");
    assert_eq!(created["type"], "shop-iac.io/state");
    assert_eq!(created["metadata"]["labels"][STACK_LABEL], STACK);

    fake.clear_log();
    state = with_resource(state, "b", json!({"k": 2}));
    store.save(&mut state, WritePermit::HELD).await.unwrap();
    let requests = fake.requests();
    assert_eq!(sent(&fake), ["PUT secrets state/shop-iac-state-dev"]);
    assert_eq!(
        requests[0].body.as_ref().unwrap()["metadata"]["resourceVersion"],
        created["metadata"]["resourceVersion"]
    );

    let fresh = KubeStore::new(fake.cluster(identity()), NS, STACK);
    assert_eq!(fresh.load().await.unwrap(), state);
}

#[tokio::test]
async fn a_writer_that_read_an_older_head_is_refused() {
    let fake = fake_with_namespace();
    let first = store(&fake);
    let second = store(&fake);
    let mut mine = first.load().await.unwrap();
    let mut theirs = second.load().await.unwrap();
    mine = with_resource(mine, "a", json!({}));
    first.save(&mut mine, WritePermit::HELD).await.unwrap();

    theirs = with_resource(theirs, "b", json!({}));
    let err = second
        .save(&mut theirs, WritePermit::HELD)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StateError::Conflict {
                on_disk: 1,
                loaded: 0,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(theirs.serial, 0, "a refused state is left as it was");

    // Both at serial 1 now; the one that writes second loses again.
    let mut again = second.load().await.unwrap();
    mine = with_resource(mine, "c", json!({}));
    first.save(&mut mine, WritePermit::HELD).await.unwrap();
    again = with_resource(again, "d", json!({}));
    let err = second
        .save(&mut again, WritePermit::HELD)
        .await
        .unwrap_err();
    assert!(
        matches!(err, StateError::Conflict { on_disk: 2, .. }),
        "{err}"
    );
    assert_eq!(first.load().await.unwrap(), mine);
}

#[tokio::test(start_paused = true)]
async fn a_conflict_after_a_lost_answer_is_confirmed_by_reading_the_index() {
    let fake = fake_with_namespace();
    let store = store(&fake);
    let mut state = with_resource(store.load().await.unwrap(), "a", json!({}));
    store.save(&mut state, WritePermit::HELD).await.unwrap();

    fake.inject(
        Fault::on(Verb::Update)
            .resource("secrets")
            .answer(Answer::LoseAnswer),
    );
    fake.clear_log();
    state = with_resource(state, "b", json!({}));
    store.save(&mut state, WritePermit::HELD).await.unwrap();
    assert_eq!(
        sent(&fake),
        [
            "PUT secrets state/shop-iac-state-dev",
            "PUT secrets state/shop-iac-state-dev",
            "GET secrets state/shop-iac-state-dev"
        ]
    );
    assert_eq!(state.serial, 2);
    // The store knows the head's new version: the next write goes through.
    state = with_resource(state, "c", json!({}));
    store.save(&mut state, WritePermit::HELD).await.unwrap();
    assert_eq!(store.load().await.unwrap().serial, 3);
}

/// Applied objects that do not compress well, about `kib` KiB of them.
fn incompressible(kib: usize) -> Value {
    let mut digest = Sha256::digest(b"seed").to_vec();
    let mut text = String::with_capacity(kib * 1024);
    while text.len() < kib * 1024 {
        digest = Sha256::digest(&digest).to_vec();
        for b in &digest {
            text.push_str(&format!("{b:02x}"));
        }
    }
    json!({"data": {"blob": text}})
}

#[tokio::test]
async fn a_large_state_is_written_to_immutable_part_secrets_before_the_head() {
    let fake = fake_with_namespace();
    let store = store(&fake);
    let mut state = with_resource(store.load().await.unwrap(), "big", incompressible(900));
    store.save(&mut state, WritePermit::HELD).await.unwrap();

    let writes: Vec<String> = fake.mutations();
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert!(writes[0].starts_with("POST secrets in state"), "{writes:?}");
    let parts: Vec<Value> = fake
        .objects("v1", "Secret")
        .into_iter()
        .filter(|s| s["type"] == "shop-iac.io/state-part")
        .collect();
    assert_eq!(parts.len(), 1);
    let part = &parts[0];
    assert_eq!(part["immutable"], true);
    assert_eq!(part["metadata"]["labels"]["shop-iac.io/state-of"], STACK);
    let name = part["metadata"]["name"].as_str().unwrap();
    assert!(name.starts_with("shop-iac-state-dev-1-"), "{name}");
    let written: Vec<Value> = fake
        .requests()
        .into_iter()
        .filter(Logged::is_mutation)
        .map(|r| r.body.unwrap()["metadata"]["name"].clone())
        .collect();
    assert_eq!(written, [json!(name), json!("shop-iac-state-dev")]);

    let fresh = KubeStore::new(fake.cluster(identity()), NS, STACK);
    assert_eq!(fresh.load().await.unwrap(), state);
}

#[tokio::test]
async fn a_state_in_a_missing_namespace_says_so() {
    let fake = FakeApi::new();
    let err = store(&fake).load().await.unwrap_err();
    assert!(
        matches!(&err, StateError::BackendNamespaceMissing { namespace } if namespace == NS),
        "{err}"
    );
}

#[tokio::test]
async fn history_lists_the_kept_revisions_newest_first() {
    let fake = fake_with_namespace();
    let store = store(&fake);
    let mut state = store.load().await.unwrap();
    for name in ["a", "b", "c"] {
        state = with_resource(state, name, json!({}));
        store.save(&mut state, WritePermit::HELD).await.unwrap();
    }
    let serials: Vec<u64> = store
        .history()
        .await
        .unwrap()
        .iter()
        .map(|r| r.serial)
        .collect();
    assert_eq!(serials, [3, 2, 1]);
    let first = store.revision(1).await.unwrap();
    assert_eq!(first.resources.len(), 1);
}

#[tokio::test]
async fn a_damaged_index_is_reported_and_left_unchanged() {
    let fake = fake_with_namespace();
    let store = store(&fake);
    let mut state = with_resource(store.load().await.unwrap(), "a", json!({}));
    store.save(&mut state, WritePermit::HELD).await.unwrap();
    // "not json", base64-encoded as Secret data is.
    fake.update(&head(), |s| s["data"]["index.json"] = json!("bm90IGpzb24="));
    fake.clear_log();
    let err = KubeStore::new(fake.cluster(identity()), NS, STACK)
        .load()
        .await
        .unwrap_err();
    assert!(matches!(&err, StateError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("index.json"), "{err}");
    assert!(fake.mutations().is_empty());
}

#[tokio::test]
async fn the_lock_is_a_lease_naming_its_holder_and_a_second_run_is_refused() {
    let fake = fake_with_namespace();
    let lock = store(&fake).lock("shop-iac up", None).await.unwrap();
    let held = fake.get(&lease()).expect("a lease");
    assert_eq!(held["spec"]["leaseDurationSeconds"], 15);
    assert!(
        held["spec"]["holderIdentity"]
            .as_str()
            .unwrap()
            .ends_with(&format!("pid {}", std::process::id()))
    );

    let err = store(&fake).lock("shop-iac up", None).await.unwrap_err();
    let StateError::Locked { holder, .. } = &err else {
        panic!("{err}");
    };
    let holder = holder.as_ref().expect("the holder is named");
    assert_eq!(holder.pid, std::process::id());
    assert_eq!(holder.command, "shop-iac up");
    lock.release().await;
}

/// A lease another run took and stopped renewing a minute ago.
fn expired_lease() -> Value {
    json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
    "metadata": {"namespace": NS, "name": "shop-iac-lock-dev"},
    "spec": {
        "holderIdentity": "someone@elsewhere pid 1",
        "leaseDurationSeconds": 15,
        "renewTime": humantime::format_rfc3339_micros(
            SystemTime::now() - Duration::from_secs(60)).to_string(),
        "leaseTransitions": 2,
    }})
}

#[tokio::test]
async fn a_lease_that_ran_out_is_taken_over_on_the_version_last_read() {
    let fake = fake_with_namespace();
    let seeded = fake.insert(expired_lease());
    let lock = store(&fake).lock("shop-iac up", None).await.unwrap();
    assert_eq!(
        sent(&fake),
        [
            "GET leases state/shop-iac-lock-dev",
            "PUT leases state/shop-iac-lock-dev"
        ]
    );
    let put = &fake.requests()[1];
    assert_eq!(
        put.body.as_ref().unwrap()["metadata"]["resourceVersion"],
        seeded["metadata"]["resourceVersion"]
    );
    let taken = fake.get(&lease()).unwrap();
    assert_eq!(taken["spec"]["leaseTransitions"], 3);
    assert_eq!(taken["metadata"]["uid"], seeded["metadata"]["uid"]);
    lock.check().unwrap();
    drop(lock);
}

#[tokio::test]
async fn a_takeover_that_loses_the_race_is_refused() {
    let fake = fake_with_namespace();
    fake.insert(expired_lease());
    fake.inject(Fault::on(Verb::Update).resource("leases").status(409));
    let err = store(&fake).lock("shop-iac up", None).await.unwrap_err();
    assert!(matches!(err, StateError::Locked { .. }), "{err}");
}

#[tokio::test(start_paused = true)]
async fn the_holder_renews_its_lease_and_keeps_the_lock() {
    let fake = fake_with_namespace();
    let store = store(&fake);
    let lock = store.lock("shop-iac up", None).await.unwrap();
    let taken = fake.get(&lease()).unwrap();
    tokio::time::sleep(Duration::from_secs(11)).await;
    let renewals = fake
        .requests()
        .iter()
        .filter(|r| r.verb == Verb::Update && r.plural == "leases")
        .count();
    assert_eq!(renewals, 2);
    let renewed = fake.get(&lease()).unwrap();
    assert_ne!(
        renewed["metadata"]["resourceVersion"],
        taken["metadata"]["resourceVersion"]
    );
    store.check_lock().unwrap();
    lock.release().await;
}

#[tokio::test(start_paused = true)]
async fn a_renewal_that_finds_the_lease_taken_over_fails_the_fence() {
    let fake = fake_with_namespace();
    let store = store(&fake);
    let mut state = store.load().await.unwrap();
    let lock = store.lock("shop-iac up", None).await.unwrap();
    // Another run took the lease over (its write bumps the version).
    fake.update(&lease(), |l| {
        l["spec"]["holderIdentity"] = json!("other@host pid 2");
    });
    tokio::time::sleep(RENEW_AND_A_BIT).await;

    let err = store.check_lock().unwrap_err();
    assert!(
        matches!(&err, StateError::LockLost { reason, .. } if reason == "another run took its lease over"),
        "{err}"
    );
    assert!(lock.check().is_err());
    fake.clear_log();
    state = with_resource(state, "a", json!({}));
    let err = store.save(&mut state, WritePermit::HELD).await.unwrap_err();
    assert!(matches!(err, StateError::LockLost { .. }), "{err}");
    assert!(fake.mutations().is_empty(), "a fenced store writes nothing");
}

#[tokio::test]
async fn release_deletes_the_lease_on_the_version_it_wrote() {
    let fake = fake_with_namespace();
    let lock = store(&fake).lock("shop-iac up", None).await.unwrap();
    let held = fake.get(&lease()).unwrap();
    lock.release().await;
    assert!(fake.get(&lease()).is_none());
    let delete = fake
        .requests()
        .into_iter()
        .find(|r| r.verb == Verb::Delete)
        .unwrap();
    let preconditions = &delete.body.unwrap()["preconditions"];
    assert_eq!(preconditions["uid"], held["metadata"]["uid"]);
    assert_eq!(
        preconditions["resourceVersion"],
        held["metadata"]["resourceVersion"]
    );
    let next = store(&fake).lock("shop-iac up", None).await.unwrap();
    next.release().await;
}

#[tokio::test(start_paused = true)]
async fn a_first_write_whose_answer_was_lost_is_confirmed_too() {
    let fake = fake_with_namespace();
    fake.inject(
        Fault::on(Verb::Create)
            .resource("secrets")
            .dry_run(false)
            .answer(Answer::LoseAnswer),
    );
    let store = store(&fake);
    let mut state = with_resource(store.load().await.unwrap(), "a", json!({}));
    store.save(&mut state, WritePermit::HELD).await.unwrap();
    let creates = fake
        .requests()
        .iter()
        .filter(|r| r.verb == Verb::Create && !r.dry_run())
        .count();
    assert_eq!(creates, 2, "the retry found the head already written");
    state = with_resource(state, "b", json!({}));
    store.save(&mut state, WritePermit::HELD).await.unwrap();
    assert_eq!(
        KubeStore::new(fake.cluster(identity()), NS, STACK)
            .load()
            .await
            .unwrap(),
        state
    );
}

#[tokio::test]
async fn part_secrets_go_once_no_kept_revision_names_them() {
    let fake = fake_with_namespace();
    let store = store(&fake);
    let mut state = with_resource(store.load().await.unwrap(), "big", incompressible(900));
    store.save(&mut state, WritePermit::HELD).await.unwrap();
    let parts = |fake: &FakeApi| {
        fake.objects("v1", "Secret")
            .iter()
            .filter(|s| s["type"] == "shop-iac.io/state-part")
            .count()
    };
    assert_eq!(parts(&fake), 1);
    state.resources.clear();
    // The large revision stays in the history for ten more writes.
    for i in 0..10 {
        state = with_resource(state, &format!("small-{i}"), json!({}));
        store.save(&mut state, WritePermit::HELD).await.unwrap();
        assert_eq!(parts(&fake), 1, "after write {i}");
    }
    state = with_resource(state, "last", json!({}));
    store.save(&mut state, WritePermit::HELD).await.unwrap();
    assert_eq!(parts(&fake), 0);
    assert!(store.history().await.unwrap().iter().all(|r| r.serial > 1));
}

/// A Secret in the backend's namespace that this backend did not write.
fn planted(name: &str, type_: &str, labels: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"namespace": NS, "name": name, "labels": labels},
        "type": type_,
        // "planted", base64-encoded.
        "data": {"index.json": "cGxhbnRlZA==", "part": "cGxhbnRlZA=="}})
}

#[tokio::test]
async fn a_head_of_another_type_or_without_the_stacks_labels_is_neither_read_nor_written() {
    for (type_, labels, says) in [
        ("Opaque", stack_labels(), "its type is `Opaque`"),
        (
            "shop-iac.io/state",
            json!({STACK_LABEL: STACK}),
            "it lacks the label app.kubernetes.io/managed-by=shop-iac",
        ),
        (
            "shop-iac.io/state",
            json!({MANAGED_BY_LABEL: FIELD_MANAGER, STACK_LABEL: "prod"}),
            "it lacks the label shop-iac.io/stack=dev",
        ),
    ] {
        let fake = fake_with_namespace();
        let before = fake.insert(planted("shop-iac-state-dev", type_, labels));
        let store = store(&fake);
        let err = store.load().await.unwrap_err();
        assert!(matches!(&err, StateError::Foreign { .. }), "{err}");
        assert!(err.to_string().contains(says), "{err}");
        assert!(
            err.to_string().contains("Secret state/shop-iac-state-dev"),
            "{err}"
        );
        let mut state = State::empty(STACK);
        assert!(store.save(&mut state, WritePermit::HELD).await.is_err());
        assert!(store.restore(&mut state, WritePermit::HELD).await.is_err());
        assert!(fake.mutations().is_empty(), "{:?}", fake.mutations());
        assert_eq!(fake.get(&head()).unwrap(), before);
    }
}

#[tokio::test]
async fn part_clean_up_deletes_only_secrets_of_its_own_type_name_and_labels() {
    let fake = fake_with_namespace();
    let store = store(&fake);
    let mut state = with_resource(store.load().await.unwrap(), "big", incompressible(900));
    store.save(&mut state, WritePermit::HELD).await.unwrap();
    let part_of = json!({MANAGED_BY_LABEL: FIELD_MANAGER, STACK_LABEL: STACK,
        "shop-iac.io/state-of": STACK});
    let without_owner = json!({STACK_LABEL: STACK, "shop-iac.io/state-of": STACK});
    let decoys = [
        // Labelled as a part, but of another type.
        planted(
            "shop-iac-state-dev-1-0123456789ab-1",
            "Opaque",
            part_of.clone(),
        ),
        // A part's type and labels, but not a part's name.
        planted("db-credentials", "shop-iac.io/state-part", part_of.clone()),
        // Named as stack dev-2's part would be.
        planted(
            "shop-iac-state-dev-2-1-0123456789ab-0",
            "shop-iac.io/state-part",
            part_of,
        ),
        // Without the managed-by label.
        planted(
            "shop-iac-state-dev-1-0123456789ab-2",
            "shop-iac.io/state-part",
            without_owner,
        ),
    ];
    for decoy in &decoys {
        fake.insert(decoy.clone());
    }
    let own_part = |fake: &FakeApi| {
        fake.objects("v1", "Secret")
            .iter()
            .filter(|s| s["type"] == "shop-iac.io/state-part")
            .filter(|s| {
                let name = s["metadata"]["name"].as_str().unwrap();
                name.starts_with("shop-iac-state-dev-1-")
                    && !name.starts_with("shop-iac-state-dev-1-0123")
            })
            .count()
    };
    assert_eq!(own_part(&fake), 1);
    state.resources.clear();
    for i in 0..11 {
        state = with_resource(state, &format!("small-{i}"), json!({}));
        store.save(&mut state, WritePermit::HELD).await.unwrap();
    }
    assert_eq!(own_part(&fake), 0, "the stack's own part is collected");
    for decoy in &decoys {
        let id = ResourceId::new(
            "v1",
            "Secret",
            Some(NS),
            decoy["metadata"]["name"].as_str().unwrap(),
        );
        assert!(fake.get(&id).is_some(), "{id} was deleted");
    }
}

#[tokio::test]
async fn a_part_name_is_the_heads_then_serial_hash_and_index() {
    let store = KubeStore::new(FakeApi::new().cluster(identity()), NS, STACK);
    assert!(store.is_part_name("shop-iac-state-dev-12-0123456789ab-0"));
    for name in [
        "shop-iac-state-dev",
        "shop-iac-state-dev-2-12-0123456789ab-0",
        "shop-iac-state-dev-12-0123456789ab",
        "shop-iac-state-dev-12-0123456789xy-0",
        "shop-iac-state-devx-12-0123456789ab-0",
        "other-12-0123456789ab-0",
    ] {
        assert!(!store.is_part_name(name), "{name}");
    }
}

/// The names of the Secrets in the backend's namespace, sorted.
fn secret_names(fake: &FakeApi) -> Vec<String> {
    let mut names: Vec<String> = fake
        .objects("v1", "Secret")
        .iter()
        .map(|s| s["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn remove_deletes_the_head_its_parts_and_the_lease_and_nothing_else() {
    let fake = fake_with_namespace();
    let store = store(&fake);
    let mut state = with_resource(store.load().await.unwrap(), "big", incompressible(900));
    store.save(&mut state, WritePermit::HELD).await.unwrap();
    state.resources.clear();
    store.save(&mut state, WritePermit::HELD).await.unwrap();
    let part_of = json!({MANAGED_BY_LABEL: FIELD_MANAGER, STACK_LABEL: STACK,
        "shop-iac.io/state-of": STACK});
    for decoy in [
        planted(
            "shop-iac-state-dev-1-0123456789ab-1",
            "Opaque",
            part_of.clone(),
        ),
        planted("db-credentials", "shop-iac.io/state-part", part_of.clone()),
        planted(
            "shop-iac-state-dev-2-1-0123456789ab-0",
            "shop-iac.io/state-part",
            part_of,
        ),
        planted(
            "shop-iac-state-dev-2",
            "shop-iac.io/state",
            json!({MANAGED_BY_LABEL: FIELD_MANAGER, STACK_LABEL: "dev-2"}),
        ),
    ] {
        fake.insert(decoy);
    }
    let decoys = [
        "db-credentials",
        "shop-iac-state-dev-1-0123456789ab-1",
        "shop-iac-state-dev-2",
        "shop-iac-state-dev-2-1-0123456789ab-0",
    ];
    assert_eq!(secret_names(&fake).len(), decoys.len() + 2);

    let lock = store.lock("shop-iac stack rm", None).await.unwrap();
    let removed = store.remove(lock).await.unwrap();

    assert_eq!(secret_names(&fake), decoys);
    assert!(fake.get(&lease()).is_none(), "the lease is gone");
    assert_eq!(
        removed[0],
        "Secret state/shop-iac-state-dev (the state, 2 revision(s) kept)"
    );
    assert!(
        removed[1].starts_with("Secret state/shop-iac-state-dev-1-"),
        "{removed:?}"
    );
    assert_eq!(removed[2], "Lease state/shop-iac-lock-dev");
    assert_eq!(removed.len(), 3, "{removed:?}");
    // Every delete was conditional on the object read.
    for delete in fake.requests().iter().filter(|r| r.verb == Verb::Delete) {
        let preconditions = &delete.body.as_ref().unwrap()["preconditions"];
        assert!(preconditions["resourceVersion"].is_string(), "{delete}");
    }
    let fresh = KubeStore::new(fake.cluster(identity()), NS, STACK);
    assert_eq!(fresh.load().await.unwrap(), State::empty(STACK));
    assert!(fresh.history().await.unwrap().is_empty());
}

#[tokio::test]
async fn remove_refuses_a_head_it_did_not_write_and_gives_the_lock_back() {
    let fake = fake_with_namespace();
    let before = fake.insert(planted("shop-iac-state-dev", "Opaque", stack_labels()));
    let store = store(&fake);
    let lock = store.lock("shop-iac stack rm", None).await.unwrap();

    let err = store.remove(lock).await.unwrap_err();

    assert!(matches!(&err, StateError::Foreign { .. }), "{err}");
    assert_eq!(fake.get(&head()).unwrap(), before);
    assert!(fake.get(&lease()).is_none(), "released");
    let secrets: Vec<String> = fake
        .mutations()
        .into_iter()
        .filter(|m| m.contains("secrets"))
        .collect();
    assert!(secrets.is_empty(), "{secrets:?}");
}

#[tokio::test]
async fn remove_of_a_stack_never_written_deletes_only_its_lease() {
    let fake = fake_with_namespace();
    let store = store(&fake);
    let lock = store.lock("shop-iac stack rm", None).await.unwrap();
    let removed = store.remove(lock).await.unwrap();
    assert_eq!(removed, ["Lease state/shop-iac-lock-dev"]);
    assert!(fake.get(&lease()).is_none());
}

#[tokio::test]
async fn remove_that_cannot_delete_the_head_says_so_and_leaves_the_state() {
    let fake = fake_with_namespace();
    let store = store(&fake);
    let mut state = with_resource(store.load().await.unwrap(), "a", json!({}));
    store.save(&mut state, WritePermit::HELD).await.unwrap();
    fake.inject(Fault::on(Verb::Delete).resource("secrets").status(403));
    let lock = store.lock("shop-iac stack rm", None).await.unwrap();

    let err = store.remove(lock).await.unwrap_err();

    assert!(
        err.to_string()
            .contains("cannot delete Secret state/shop-iac-state-dev"),
        "{err}"
    );
    fake.clear_faults();
    let fresh = KubeStore::new(fake.cluster(identity()), NS, STACK);
    assert_eq!(fresh.load().await.unwrap(), state);
    // The lock was given back: the next run takes it at once.
    let next = fresh.lock("shop-iac up", None).await.unwrap();
    next.release().await;
}

/// Two runs through a lock: the first writes three times and finishes,
/// the second writes twice and stops.
async fn two_runs(store: &dyn StateStore) {
    let locked = Locked::acquire(store, "shop-iac up", None).await.unwrap();
    let mut state = locked.load().await.unwrap();
    for name in ["a", "b"] {
        state = with_resource(state, name, json!({}));
        locked.save(&mut state).await.unwrap();
    }
    locked.save_finished(&mut state).await.unwrap();
    locked.release().await;
    let locked = Locked::acquire(store, "shop-iac up", None).await.unwrap();
    let mut state = locked.load().await.unwrap();
    state = with_resource(state, "c", json!({}));
    locked.save(&mut state).await.unwrap();
    state = with_resource(state, "d", json!({}));
    locked.save(&mut state).await.unwrap();
    locked.release().await;
}

#[tokio::test]
async fn the_kube_history_keeps_one_revision_per_run_told_against_the_run_before() {
    let fake = fake_with_namespace();
    let store = store(&fake);
    two_runs(&store).await;
    let history = store.history().await.unwrap();
    let rows: Vec<(u64, Option<bool>, &str)> = history
        .iter()
        .map(|r| (r.serial, r.finished(), r.summary.as_str()))
        .collect();
    assert_eq!(
        rows,
        [
            (5, Some(false), "2 added"),
            (3, Some(true), "first kept revision: 2 object(s)")
        ]
    );
    assert_eq!(history[0].operation.as_ref().unwrap().from, 3);
    assert!(matches!(
        store.revision(4).await.unwrap_err(),
        StateError::RevisionNotKept { ref kept, .. } if kept == &[3, 5]
    ));
}

#[tokio::test]
async fn the_kube_history_keeps_as_many_runs_as_asked() {
    let fake = fake_with_namespace();
    let store = store(&fake).keep_history(2);
    for _ in 0..4 {
        two_runs(&store).await;
    }
    let serials: Vec<u64> = store
        .history()
        .await
        .unwrap()
        .iter()
        .map(|r| r.serial)
        .collect();
    assert_eq!(serials, [20, 18, 15]);
}

#[tokio::test]
async fn a_rollback_run_is_marked_with_the_revision_it_went_back_to() {
    let fake = fake_with_namespace();
    let store = store(&fake);
    two_runs(&store).await;
    let locked = Locked::acquire(&store, "shop-iac rollback", None)
        .await
        .unwrap();
    let mut state = locked.load().await.unwrap();
    locked.begin_rollback(3);
    locked.save_finished(&mut state).await.unwrap();
    locked.release().await;
    let state = store.load().await.unwrap();
    assert_eq!(state.rolled_back_to(), Some(3));
    let history = store.history().await.unwrap();
    assert_eq!(history[0].operation.as_ref().unwrap().rollback_to, Some(3));
    assert_eq!(history[1].finished(), Some(false));
}
