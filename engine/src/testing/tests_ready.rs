//! Waiting for readiness against the fake API server, with the status a
//! controller would write staged by each test.

use serde_json::json;

use super::*;
use crate::ready::{self, Target};

fn available(replicas: i64, generation: i64) -> Value {
    json!({"observedGeneration": generation, "replicas": replicas,
        "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas})
}

fn pod(ns: &str, name: &str, app: &str, waiting: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
    "metadata": {"namespace": ns, "name": name, "labels": {"app": app}},
    "spec": {"containers": [{"name": "web", "image": "registry.example/web:nope"}]},
    "status": {"phase": "Pending", "containerStatuses": [{
        "name": "web", "ready": false, "restartCount": 0, "image": "registry.example/web:nope", "imageID": "",
        "state": {"waiting": {"reason": waiting, "message": "Back-off pulling image \"registry.example/web:nope\""}}
    }]}})
}

fn endpoint_slice(ns: &str, service: &str, ready: &[bool]) -> Value {
    let endpoints: Vec<Value> = ready
        .iter()
        .enumerate()
        .map(|(i, r)| json!({"addresses": [format!("10.0.0.{i}")], "conditions": {"ready": r}}))
        .collect();
    json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"namespace": ns, "name": format!("{service}-abc"),
            "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4", "endpoints": endpoints})
}

async fn wait(
    stack: &Stack,
    targets: &[Target],
    timeout: Duration,
) -> (Vec<String>, Result<Vec<ready::Readiness>, EngineError>) {
    let cancel = Cancel::default();
    let mut seen = Vec::new();
    let result = ready::wait_ready(
        &stack.cluster,
        targets,
        timeout,
        Duration::from_secs(20),
        &cancel,
        |changed, _| {
            for r in changed {
                seen.push(format!("{}: {}", r.id, r.progress));
            }
        },
    )
    .await;
    (seen, result)
}

#[tokio::test(start_paused = true)]
async fn a_deployment_is_ready_once_its_controller_reports_every_replica_available() {
    let stack = Stack::new();
    let desired = [desired(deployment("ns", "web", 2), &[])];
    let plan = stack.up(&desired).await;
    let id = desired[0].id.clone();
    let controller = {
        let fake = stack.fake.clone();
        let id = id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            fake.set_status(
                &id,
                json!({"observedGeneration": 1, "replicas": 2,
                "updatedReplicas": 2, "availableReplicas": 1}),
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
            fake.set_status(&id, available(2, 1));
        })
    };
    let (seen, result) = wait(&stack, &ready::targets(&plan, &desired, &[]), TIMEOUT).await;
    controller.await.unwrap();
    let done = result.unwrap();
    assert!(done[0].ready);
    assert_eq!(
        seen,
        [
            "Deployment ns/web: waiting for the controller to see the new spec",
            "Deployment ns/web: 1/2 available",
            "Deployment ns/web: 2/2 available"
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_status_of_the_previous_generation_does_not_count() {
    let stack = Stack::new();
    stack.up(&[desired(deployment("ns", "web", 2), &[])]).await;
    let desired = [desired(deployment("ns", "web", 3), &[])];
    stack.fake.set_status(&desired[0].id, available(2, 1));
    let plan = stack.up(&desired).await;
    assert_eq!(
        stack.fake.get(&desired[0].id).unwrap()["metadata"]["generation"],
        2
    );
    let (_, result) = wait(
        &stack,
        &ready::targets(&plan, &desired, &[]),
        Duration::from_secs(5),
    )
    .await;
    let err = result.unwrap_err();
    let EngineError::Timeout { details, .. } = &err else {
        panic!("{err}");
    };
    assert!(
        details.contains("Deployment ns/web: waiting for the controller to see the new spec"),
        "{details}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_service_is_ready_when_its_deployments_replicas_are_ready_endpoints() {
    let stack = Stack::new();
    let deploy = deployment("ns", "web", 2);
    let desired = [
        desired(deploy.clone(), &[]),
        desired(service("ns", "web", None), &[&deploy]),
    ];
    let plan = stack.up(&desired).await;
    stack.fake.set_status(&desired[0].id, available(2, 1));
    stack
        .fake
        .insert(endpoint_slice("ns", "web", &[true, false]));
    let (seen, result) = wait(
        &stack,
        &ready::targets(&plan, &desired, &[]),
        Duration::from_secs(3),
    )
    .await;
    assert!(matches!(result, Err(EngineError::Timeout { .. })));
    assert!(
        seen.contains(&"Service ns/web: 1/2 endpoints ready".to_string()),
        "{seen:?}"
    );

    stack.fake.remove(&id_of(&endpoint_slice("ns", "web", &[])));
    stack
        .fake
        .insert(endpoint_slice("ns", "web", &[true, true]));
    let (_, result) = wait(
        &stack,
        &ready::targets(&plan, &desired, &[]),
        Duration::from_secs(3),
    )
    .await;
    assert!(result.unwrap().iter().all(|r| r.ready));
}

#[tokio::test(start_paused = true)]
async fn a_rollout_past_its_progress_deadline_fails_naming_its_pods() {
    let stack = Stack::new();
    let desired = [desired(deployment("ns", "web", 1), &[])];
    let plan = stack.up(&desired).await;
    stack.fake.set_status(
        &desired[0].id,
        json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1,
            "conditions": [{"type": "Progressing", "status": "False",
                "reason": "ProgressDeadlineExceeded",
                "message": "ReplicaSet \"web-1\" has timed out progressing."}]}),
    );
    stack
        .fake
        .insert(pod("ns", "web-1-a", "web", "ImagePullBackOff"));
    let (_, result) = wait(&stack, &ready::targets(&plan, &desired, &[]), TIMEOUT).await;
    let err = result.unwrap_err();
    let EngineError::RolloutFailed { details, .. } = &err else {
        panic!("{err}");
    };
    assert!(details.starts_with("ReplicaSet \"web-1\" has timed out progressing."));
    assert!(
        details.contains("pod web-1-a: ImagePullBackOff"),
        "{details}"
    );
    let pods = stack
        .fake
        .requests()
        .into_iter()
        .find(|r| r.plural == "pods")
        .unwrap();
    assert_eq!(pods.query["labelSelector"], "app=web");
}

#[tokio::test(start_paused = true)]
async fn new_pods_all_stuck_on_a_reason_waiting_cannot_fix_stop_the_wait_after_the_grace() {
    let stack = Stack::new();
    let desired = [desired(deployment("ns", "web", 2), &[])];
    let plan = stack.up(&desired).await;
    stack.fake.set_status(
        &desired[0].id,
        json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2}),
    );
    stack
        .fake
        .insert(pod("ns", "web-1-a", "web", "ImagePullBackOff"));
    stack
        .fake
        .insert(pod("ns", "web-1-b", "web", "ImagePullBackOff"));
    let started = tokio::time::Instant::now();
    let (seen, result) = wait(&stack, &ready::targets(&plan, &desired, &[]), TIMEOUT).await;
    let err = result.unwrap_err();
    let EngineError::Stuck { details, fix, .. } = &err else {
        panic!("{err}");
    };
    assert!(started.elapsed() >= Duration::from_secs(20));
    assert!(started.elapsed() < TIMEOUT);
    assert!(
        details.contains("pod web-1-a container web: ImagePullBackOff"),
        "{details}"
    );
    assert!(fix.starts_with("the image cannot be pulled"), "{fix}");
    assert!(!seen.is_empty());
}

fn stateful_set(ns: &str, name: &str, replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
    "metadata": {"namespace": ns, "name": name, "labels": stack_labels()},
    "spec": {
        "replicas": replicas,
        "serviceName": name,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "db", "image": "postgres"}]},
        },
    }})
}

#[tokio::test(start_paused = true)]
async fn a_service_counts_on_the_stateful_set_its_selector_matches_without_a_dependency() {
    let stack = Stack::new();
    let desired = [
        desired(stateful_set("ns", "db", 2), &[]),
        desired(service("ns", "db", None), &[]),
    ];
    let plan = stack.up(&desired).await;
    let controller = {
        let fake = stack.fake.clone();
        let id = desired[0].id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            fake.set_status(
                &id,
                json!({"observedGeneration": 1, "replicas": 2, "readyReplicas": 1,
                    "currentReplicas": 2, "updatedReplicas": 2,
                    "currentRevision": "db-1", "updateRevision": "db-1"}),
            );
            // One ready endpoint already: not enough once both are ready.
            fake.insert(endpoint_slice("ns", "db", &[true]));
            tokio::time::sleep(Duration::from_millis(300)).await;
            fake.set_status(
                &id,
                json!({"observedGeneration": 1, "replicas": 2, "readyReplicas": 2,
                    "currentReplicas": 2, "updatedReplicas": 2,
                    "currentRevision": "db-1", "updateRevision": "db-1"}),
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
            fake.remove(&id_of(&endpoint_slice("ns", "db", &[])));
            fake.insert(endpoint_slice("ns", "db", &[true, true]));
        })
    };
    let targets = ready::targets(&plan, &desired, &[]);
    assert_eq!(targets[1].selects, [desired[0].id.clone()]);
    let (seen, result) = wait(&stack, &targets, TIMEOUT).await;
    controller.await.unwrap();
    assert!(result.unwrap().iter().all(|r| r.ready));
    assert_eq!(
        seen,
        [
            "StatefulSet ns/db: waiting for the controller to see the new spec",
            "Service ns/db: waiting for StatefulSet ns/db",
            "StatefulSet ns/db: 1/2 ready replicas",
            "StatefulSet ns/db: 2/2 ready replicas",
            "Service ns/db: 1/2 endpoints ready",
            "Service ns/db: 2/2 endpoints ready",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn a_config_map_and_a_cluster_ip_service_are_judged_without_reading_them_back() {
    let stack = Stack::new();
    let deploy = deployment("ns", "web", 1);
    let desired = [
        desired(config_map("ns", "web", json!({"k": "v"})), &[]),
        desired(deploy.clone(), &[]),
        desired(service("ns", "web", None), &[&deploy]),
    ];
    let plan = stack.up(&desired).await;
    stack.fake.set_status(&desired[1].id, available(1, 1));
    stack.fake.insert(endpoint_slice("ns", "web", &[true]));
    let before = stack.fake.requests().len();
    let (seen, result) = wait(&stack, &ready::targets(&plan, &desired, &[]), TIMEOUT).await;
    assert!(result.unwrap().iter().all(|r| r.ready), "{seen:?}");
    let read: Vec<String> = stack.fake.requests()[before..]
        .iter()
        .map(|r| format!("{:?} {}", r.verb, r.plural))
        .collect();
    assert_eq!(read, ["Get deployments", "List endpointslices"]);
    assert!(
        seen.contains(&"ConfigMap ns/web: exists".to_string()),
        "{seen:?}"
    );
}
