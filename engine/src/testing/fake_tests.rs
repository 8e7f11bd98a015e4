//! The fake API server answers kube's client as a real one would.

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use serde_json::json;

use super::*;
use crate::cluster::ClusterError;

fn client(fake: &FakeApi) -> kube::Client {
    fake.client()
}

#[tokio::test]
async fn apply_creates_then_merges_and_bumps_versions_only_on_change() {
    let fake = FakeApi::new();
    let api: Api<ConfigMap> = Api::namespaced(client(&fake), "default");
    let params = PatchParams::apply("me");
    let first = api
        .patch(
            "c",
            &params,
            &Patch::Apply(config_map("default", "c", json!({"a": "1"}))),
        )
        .await
        .unwrap();
    let meta = &first.metadata;
    assert!(meta.uid.is_some());
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(
        meta.managed_fields.as_ref().unwrap()[0].manager.as_deref(),
        Some("me")
    );

    let same = api
        .patch(
            "c",
            &params,
            &Patch::Apply(config_map("default", "c", json!({"a": "1"}))),
        )
        .await
        .unwrap();
    assert_eq!(same.metadata.resource_version, meta.resource_version);

    let changed = api
        .patch(
            "c",
            &params,
            &Patch::Apply(config_map("default", "c", json!({"b": "2"}))),
        )
        .await
        .unwrap();
    assert_ne!(changed.metadata.resource_version, meta.resource_version);
    assert_eq!(changed.metadata.uid, meta.uid);
    // What the manager no longer applies goes; another manager's field
    // stays.
    let data = changed.data.unwrap();
    assert_eq!(data.keys().collect::<Vec<_>>(), ["b"]);
    let theirs = api
        .patch(
            "c",
            &PatchParams::apply("other"),
            &Patch::Apply(json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c"}, "data": {"c": "3"}})),
        )
        .await
        .unwrap();
    assert_eq!(theirs.data.unwrap().len(), 2);
    let managers: Vec<String> = theirs
        .metadata
        .managed_fields
        .unwrap()
        .into_iter()
        .filter_map(|m| m.manager)
        .collect();
    assert_eq!(managers, ["me", "other"]);
}

#[tokio::test]
async fn dry_runs_store_nothing() {
    let fake = FakeApi::new();
    let api: Api<ConfigMap> = Api::namespaced(client(&fake), "default");
    let mut params = PatchParams::apply("me");
    params.dry_run = true;
    let object = config_map("default", "c", json!({"a": "1"}));
    let planned = api
        .patch("c", &params, &Patch::Apply(&object))
        .await
        .unwrap();
    assert_eq!(planned.data.unwrap()["a"], "1");
    assert!(fake.get(&id_of(&object)).is_none());
    let logged = fake.requests();
    let last = logged.last().unwrap();
    assert!(last.dry_run());
    assert_eq!(last.query["fieldManager"], "me");
    assert_eq!(last.to_string(), "PATCH configmaps default/c (dry run)");
}

#[tokio::test]
async fn another_managers_field_is_a_conflict_unless_forced() {
    let fake = FakeApi::new();
    let mut theirs = deployment("default", "d", 3);
    fake.apply_as("kubectl", theirs.clone());
    theirs["spec"]["replicas"] = json!(1);
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client(&fake),
        "default",
        &kube::api::ApiResource::erase::<k8s_openapi::api::apps::v1::Deployment>(&()),
    );
    let err = api
        .patch(
            "d",
            &PatchParams::apply(FIELD_MANAGER),
            &Patch::Apply(&theirs),
        )
        .await
        .unwrap_err();
    let kube::Error::Api(status) = err else {
        panic!("{err}")
    };
    assert_eq!(status.code, 409);
    assert_eq!(
        status.message,
        "Apply failed with 1 conflict: conflict with \"kubectl\" using apps/v1: .spec.replicas"
    );
    let cause = &status.details.unwrap().causes[0];
    assert_eq!(cause.field, ".spec.replicas");
    assert_eq!(cause.reason, "FieldManagerConflict");

    let forced = api
        .patch(
            "d",
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&theirs),
        )
        .await
        .unwrap();
    assert_eq!(forced.data["spec"]["replicas"], 1);
    assert_eq!(forced.metadata.generation, Some(2));
}

#[tokio::test]
async fn lists_filter_by_namespace_and_every_label_of_the_selector() {
    let fake = FakeApi::new();
    fake.insert(namespace("other"));
    fake.insert(config_map("default", "a", json!({})));
    fake.insert(config_map("other", "b", json!({})));
    let mut foreign = config_map("other", "c", json!({}));
    foreign["metadata"]["labels"][STACK_LABEL] = json!("prod");
    fake.insert(foreign);
    let selector = format!("{MANAGED_BY_LABEL}={FIELD_MANAGER},{STACK_LABEL}={STACK}");

    let all: Api<ConfigMap> = Api::all(client(&fake));
    let names = |list: kube::core::ObjectList<ConfigMap>| -> Vec<String> {
        list.items
            .into_iter()
            .map(|c| c.metadata.name.unwrap())
            .collect()
    };
    let found = all
        .list(&ListParams::default().labels(&selector))
        .await
        .unwrap();
    assert_eq!(names(found), ["a", "b"]);
    let other: Api<ConfigMap> = Api::namespaced(client(&fake), "other");
    assert_eq!(
        names(other.list(&ListParams::default()).await.unwrap()),
        ["b", "c"]
    );
    let logged = fake.requests();
    assert_eq!(logged[0].query["labelSelector"], selector);
}

#[tokio::test]
async fn deletes_check_the_uid_and_finalizers_hold_an_object() {
    let fake = FakeApi::new();
    let object = fake.insert(config_map("default", "c", json!({})));
    let uid = object["metadata"]["uid"].as_str().unwrap().to_string();
    let api: Api<ConfigMap> = Api::namespaced(client(&fake), "default");
    let with_uid = |uid: &str| {
        DeleteParams::foreground().preconditions(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        })
    };
    let err = api.delete("c", &with_uid("other")).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 409),
        "{err}"
    );

    fake.update(&id_of(&object), |o| {
        o["metadata"]["finalizers"] = json!(["x/y"])
    });
    api.delete("c", &with_uid(&uid)).await.unwrap();
    let held = fake.get(&id_of(&object)).unwrap();
    assert!(held["metadata"]["deletionTimestamp"].is_string());

    fake.remove(&id_of(&object));
    let err = api.delete("c", &with_uid(&uid)).await.unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 404),
        "{err}"
    );
}

#[tokio::test]
async fn updates_are_conditional_on_the_resource_version() {
    let fake = FakeApi::new();
    let api: Api<Secret> = Api::namespaced(client(&fake), "default");
    let mut secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default"},
        "data": {"k": "dg=="}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &secret).await.unwrap();
    let err = api
        .create(&PostParams::default(), &secret)
        .await
        .unwrap_err();
    assert!(matches!(&err, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists"));

    secret.metadata.resource_version = created.metadata.resource_version.clone();
    let replaced = api
        .replace("s", &PostParams::default(), &secret)
        .await
        .unwrap();
    assert_ne!(
        replaced.metadata.resource_version,
        created.metadata.resource_version
    );
    assert_eq!(replaced.metadata.uid, created.metadata.uid);
    let err = api
        .replace("s", &PostParams::default(), &secret)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 409),
        "{err}"
    );
}

#[tokio::test]
async fn objects_in_a_missing_namespace_are_refused() {
    let fake = FakeApi::new();
    let cluster = fake.cluster(identity());
    let err = cluster
        .apply(&config_map("nowhere", "c", json!({})), true, false)
        .await
        .unwrap_err();
    let status = err.status().expect("an API error");
    assert_eq!(status.code, 404);
    assert_eq!(status.message, "namespaces \"nowhere\" not found");
}

#[tokio::test(start_paused = true)]
async fn injected_failures_strike_the_nth_matching_request_only() {
    let fake = FakeApi::new();
    fake.inject(
        Fault::on(Verb::Get)
            .resource("configmaps")
            .after(1)
            .status(403),
    );
    let cluster = fake.cluster(identity());
    let id = ResourceId::new("v1", "ConfigMap", Some("default"), "c");
    assert_eq!(cluster.get(&id).await.unwrap(), None);
    let err = cluster.get(&id).await.unwrap_err();
    assert!(matches!(err, ClusterError::Forbidden { .. }), "{err}");
    assert_eq!(cluster.get(&id).await.unwrap(), None);

    // Transient failures are retried by the cluster client.
    fake.inject(Fault::on(Verb::Get).answer(Answer::Drop).times(2));
    assert_eq!(cluster.get(&id).await.unwrap(), None);
    assert_eq!(fake.request_count(), 6);
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_still_carries_out_the_request() {
    let fake = FakeApi::new();
    fake.inject(Fault::on(Verb::Patch).answer(Answer::LoseAnswer));
    let cluster = fake.cluster(identity());
    let object = config_map("default", "c", json!({"a": "1"}));
    // The retry finds the object already applied, which is no change.
    let applied = cluster.apply(&object, false, false).await.unwrap();
    assert_eq!(applied["data"]["a"], "1");
    assert_eq!(fake.mutations().len(), 2);
    assert_eq!(
        fake.get(&id_of(&object)).unwrap()["metadata"]["resourceVersion"],
        applied["metadata"]["resourceVersion"]
    );
}

#[tokio::test(start_paused = true)]
async fn each_cluster_counts_its_own_requests_retries_included() {
    let fake = FakeApi::new();
    let one = fake.cluster(identity());
    let other = fake.cluster(identity());
    let counter = one.request_counter();
    let id = ResourceId::new("v1", "ConfigMap", Some("default"), "c");
    fake.inject(Fault::on(Verb::Get).answer(Answer::Drop));
    one.get(&id).await.unwrap();
    one.clone().get(&id).await.unwrap();
    other.get(&id).await.unwrap();
    assert_eq!(
        one.requests_sent(),
        3,
        "a retry is a request, and clones share the count"
    );
    assert_eq!(other.requests_sent(), 1);
    drop(one);
    assert_eq!(counter.get(), 3, "the count outlives the cluster");
}

#[tokio::test]
async fn kinds_of_one_group_version_looked_up_at_once_share_one_discovery() {
    let fake = FakeApi::new();
    fake.add_kind("example.com/v1", "Widget", "widgets", true);
    fake.add_kind("example.com/v1", "Gadget", "gadgets", false);
    let cluster = fake.cluster(identity());
    let discoveries = || {
        fake.requests()
            .iter()
            .filter(|r| r.path == "/apis/example.com/v1")
            .count()
    };
    let (widget, gadget, gizmo) = futures::join!(
        cluster.kind("example.com/v1", "Widget"),
        cluster.kind("example.com/v1", "Gadget"),
        cluster.kind("example.com/v1", "Gizmo"),
    );
    assert!(widget.unwrap().namespaced);
    assert_eq!(gadget.unwrap().resource.plural, "gadgets");
    assert!(matches!(gizmo, Err(ClusterError::UnknownKind { .. })));
    assert_eq!(discoveries(), 1);
    cluster.kind("example.com/v1", "Widget").await.unwrap();
    assert_eq!(discoveries(), 1, "a kind found is kept for the run");
    // A kind not served yet may be served later (a CRD just applied).
    assert!(cluster.kind("example.com/v1", "Gizmo").await.is_err());
    assert_eq!(discoveries(), 2);
    fake.add_kind("example.com/v1", "Gizmo", "gizmos", true);
    assert!(cluster.kind("example.com/v1", "Gizmo").await.is_ok());
    assert!(matches!(
        cluster.kind("other.example.com/v1", "Thing").await,
        Err(ClusterError::UnknownKind { .. })
    ));
}

#[tokio::test]
async fn the_version_is_served_as_a_real_server_gives_it_and_can_change() {
    let fake = FakeApi::new();
    let cluster = fake.cluster(identity());
    assert_eq!(cluster.server_version().await.unwrap(), "v1.36.0");
    fake.set_version("v1.36.1");
    assert_eq!(cluster.server_version().await.unwrap(), "v1.36.1");
    let info = fake.client().apiserver_version().await.unwrap();
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "36"));
}
