//! Whether one live object is ready, by the rules of its kind, read from
//! its status alone: the kstatus rules that Flux and Helm wait by.
//!
//! First what holds for every kind: an object being deleted is not ready;
//! a status whose `observedGeneration` is behind `metadata.generation` is
//! the controller's view of an older spec, so nothing else in it counts
//! yet; `Stalled=True` is a failure and `Reconciling=True` work in
//! progress. Then the kind's own rule; a kind without one is ready once it
//! exists, or by its `Ready` condition when it has one.
//!
//! Pure functions of JSON, so each rule is tested from fixtures.

use serde_json::Value;

/// Where an object stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Not ready yet, and may become so by waiting.
    InProgress,
    /// Ready.
    Ready,
    /// It will not become ready without a change (a rollout past its
    /// deadline, a failed Job, a CRD whose names clash).
    Failed,
}

/// A status, with words for the progress display.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Where it stands.
    pub status: Status,
    /// Short: `2/3 available`, `PVC Pending`, `complete (1/1 succeeded)`.
    pub progress: String,
    /// Why it is not ready, when the object says (a condition's reason and
    /// message); for a failure, what failed.
    pub reason: Option<String>,
}

impl Verdict {
    fn ready(progress: impl Into<String>) -> Self {
        Verdict {
            status: Status::Ready,
            progress: progress.into(),
            reason: None,
        }
    }

    fn in_progress(progress: impl Into<String>) -> Self {
        Verdict {
            status: Status::InProgress,
            progress: progress.into(),
            reason: None,
        }
    }

    fn failed(progress: impl Into<String>, reason: String) -> Self {
        Verdict {
            status: Status::Failed,
            progress: progress.into(),
            reason: Some(reason),
        }
    }

    fn because(mut self, reason: Option<String>) -> Self {
        self.reason = reason;
        self
    }
}

/// What a Service's readiness depends on besides the Service itself: how
/// many ready endpoints its EndpointSlices list, and how many it should.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Endpoints {
    /// Ready endpoints the EndpointSlices list.
    pub ready: i64,
    /// Ready endpoints there should be: the selected workloads' ready pods.
    pub expected: i64,
}

/// The kinds that run pods from a template, whose ready pods a Service
/// counts on.
pub fn is_workload(api_version: &str, kind: &str) -> bool {
    group(api_version) == "apps"
        && matches!(
            kind,
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet"
        )
}

/// Kinds with no status at all: once applied they are all they will be, so
/// a wait need not read them.
pub fn has_no_status(api_version: &str, kind: &str) -> bool {
    match group(api_version) {
        "" => matches!(
            kind,
            "ConfigMap" | "Secret" | "ServiceAccount" | "LimitRange"
        ),
        "rbac.authorization.k8s.io" => {
            matches!(
                kind,
                "Role" | "RoleBinding" | "ClusterRole" | "ClusterRoleBinding"
            )
        }
        "scheduling.k8s.io" => kind == "PriorityClass",
        "storage.k8s.io" => kind == "StorageClass",
        "networking.k8s.io" => kind == "IngressClass",
        "admissionregistration.k8s.io" => matches!(
            kind,
            "ValidatingWebhookConfiguration" | "MutatingWebhookConfiguration"
        ),
        _ => false,
    }
}

/// How many of a workload's pods are ready now.
pub fn ready_pods(live: &Value) -> i64 {
    let status = &live["status"];
    match live["kind"].as_str() {
        Some("DaemonSet") => count(status, "numberReady"),
        _ => count(status, "readyReplicas"),
    }
}

/// The verdict on `live`; `endpoints` matters only for a Service.
pub fn assess(live: &Value, endpoints: Endpoints) -> Verdict {
    let api_version = live["apiVersion"].as_str().unwrap_or_default();
    let kind = live["kind"].as_str().unwrap_or_default();
    if !live["metadata"]["deletionTimestamp"].is_null() {
        return Verdict::in_progress("being deleted");
    }
    // A workload's controller always reports the generation it saw, so
    // a status without one is no verdict yet; other kinds may never have one.
    let observed = live["status"]["observedGeneration"].as_i64();
    let unseen = match observed {
        Some(observed) => observed < live["metadata"]["generation"].as_i64().unwrap_or(0),
        None => is_workload(api_version, kind),
    };
    if unseen {
        return Verdict::in_progress("waiting for the controller to see the new spec");
    }
    if let Some(stalled) = condition(live, "Stalled", "True") {
        return Verdict::failed("stalled", describe(stalled, "Stalled"));
    }
    if let Some(reconciling) = condition(live, "Reconciling", "True") {
        return Verdict::in_progress("reconciling")
            .because(Some(describe(reconciling, "Reconciling")));
    }
    match (group(api_version), kind) {
        ("apps", "Deployment") => deployment(live),
        ("apps", "StatefulSet") => stateful_set(live),
        ("apps", "DaemonSet") => daemon_set(live),
        ("apps", "ReplicaSet") => replica_set(live),
        ("batch", "Job") => job(live),
        ("", "Pod") => pod(live),
        ("", "Service") => service(live, endpoints),
        ("", "PersistentVolumeClaim") => persistent_volume_claim(live),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => custom_resource_definition(live),
        _ => generic(live),
    }
}

/// Ready when the controller has seen the latest spec and every replica is
/// updated, ready and available, and no old one is left; failed once the
/// progress deadline passed.
fn deployment(live: &Value) -> Verdict {
    if let Some(c) = live["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded")
    {
        let message = c["message"]
            .as_str()
            .unwrap_or("progress deadline exceeded");
        return Verdict::failed("progress deadline exceeded", message.to_string());
    }
    let status = &live["status"];
    let replicas = spec_replicas(live);
    let (updated, ready, available, total) = (
        count(status, "updatedReplicas"),
        count(status, "readyReplicas"),
        count(status, "availableReplicas"),
        count(status, "replicas"),
    );
    let mut progress = format!("{available}/{replicas} available");
    if updated != replicas {
        progress.push_str(&format!(", {updated}/{replicas} updated"));
    }
    // `replicas` counts the pods that are not terminating, of every
    // ReplicaSet: above `spec.replicas` mid-rollout, by the new pods
    // surged ahead of the old ones being scaled down.
    let old = total - updated;
    if total > replicas && old > 0 {
        progress.push_str(&format!(", {old} old pod(s) still running"));
    } else if total > replicas {
        progress.push_str(&format!(", {} pod(s) above {replicas}", total - replicas));
    }
    let terminating = count(status, "terminatingReplicas");
    if terminating > 0 {
        progress.push_str(&format!(", {terminating} terminating"));
    }
    if updated == replicas && ready >= replicas && available == replicas && total == replicas {
        Verdict::ready(progress)
    } else {
        // Pods that could not even be created (a quota, an admission
        // webhook) leave no pod to read a reason from.
        Verdict::in_progress(progress).because(replica_failure(live))
    }
}

/// Ready when every replica is ready, and the rollout reached every pod
/// it should: all of them, or those above the partition.
fn stateful_set(live: &Value) -> Verdict {
    let spec = &live["spec"];
    let status = &live["status"];
    let replicas = spec_replicas(live);
    let (total, ready, current, updated) = (
        count(status, "replicas"),
        count(status, "readyReplicas"),
        count(status, "currentReplicas"),
        count(status, "updatedReplicas"),
    );
    let progress = format!("{ready}/{replicas} ready replicas");
    if spec["updateStrategy"]["type"] == "OnDelete" {
        // Pods are replaced only when someone deletes them: nothing to
        // wait for but the replicas themselves.
        return if ready >= replicas {
            Verdict::ready(progress)
        } else {
            Verdict::in_progress(progress)
        };
    }
    if total < replicas || ready < replicas {
        return Verdict::in_progress(progress);
    }
    if total > replicas {
        return Verdict::in_progress(format!(
            "{progress}, {} old replica(s) terminating",
            total - replicas
        ));
    }
    if let Some(partition) = spec["updateStrategy"]["rollingUpdate"]["partition"].as_i64() {
        // Pods below the partition keep the old revision on purpose.
        let expected = (replicas - partition).max(0);
        return if updated >= expected {
            Verdict::ready(progress)
        } else {
            Verdict::in_progress(format!("{progress}, {updated}/{expected} updated"))
        };
    }
    if updated < replicas || current < replicas {
        return Verdict::in_progress(format!("{progress}, {updated}/{replicas} updated"));
    }
    if status["updateRevision"] != status["currentRevision"] {
        return Verdict::in_progress(format!("{progress}, rolling out the new revision"));
    }
    Verdict::ready(progress)
}

/// Ready when the pods of every node it should run on are updated, ready
/// and available.
fn daemon_set(live: &Value) -> Verdict {
    let status = &live["status"];
    // Without it the controller has not counted the nodes yet.
    if status["desiredNumberScheduled"].is_null() {
        return Verdict::in_progress("waiting for the controller to see the new spec");
    }
    let desired = count(status, "desiredNumberScheduled");
    let (scheduled, updated, available, ready) = (
        count(status, "currentNumberScheduled"),
        count(status, "updatedNumberScheduled"),
        count(status, "numberAvailable"),
        count(status, "numberReady"),
    );
    let mut progress = format!("{ready}/{desired} nodes ready");
    if updated < desired {
        progress.push_str(&format!(", {updated}/{desired} updated"));
    }
    if available < desired {
        progress.push_str(&format!(", {available}/{desired} available"));
    }
    if scheduled >= desired && updated >= desired && available >= desired && ready >= desired {
        Verdict::ready(progress)
    } else {
        Verdict::in_progress(progress)
    }
}

fn replica_set(live: &Value) -> Verdict {
    let status = &live["status"];
    let replicas = spec_replicas(live);
    let (total, ready, available) = (
        count(status, "replicas"),
        count(status, "readyReplicas"),
        count(status, "availableReplicas"),
    );
    let mut progress = format!("{ready}/{replicas} ready replicas");
    if total > replicas {
        progress.push_str(&format!(
            ", {} old replica(s) terminating",
            total - replicas
        ));
    }
    if ready >= replicas && available >= replicas && total <= replicas {
        Verdict::ready(progress)
    } else {
        Verdict::in_progress(progress).because(replica_failure(live))
    }
}

/// Ready once complete; a Job that is still running is waited for.
fn job(live: &Value) -> Verdict {
    let status = &live["status"];
    let parallelism = live["spec"]["parallelism"].as_i64().unwrap_or(1);
    let completions = live["spec"]["completions"].as_i64().unwrap_or(parallelism);
    let succeeded = count(status, "succeeded");
    if condition(live, "Complete", "True").is_some() {
        return Verdict::ready(format!("complete ({succeeded}/{completions} succeeded)"));
    }
    if let Some(failed) = condition(live, "Failed", "True") {
        return Verdict::failed(
            format!("failed ({} failed pod(s))", count(status, "failed")),
            describe(failed, "Failed"),
        );
    }
    let progress = format!(
        "{succeeded}/{completions} succeeded, {} running",
        count(status, "active")
    );
    let reason = condition(live, "Suspended", "True")
        .map(|_| "suspended: it runs no pods until it is resumed".to_string());
    Verdict::in_progress(progress).because(reason)
}

/// Ready when its `Ready` condition is true; a pod that ran to completion
/// is done, one that failed will not run again.
fn pod(live: &Value) -> Verdict {
    match live["status"]["phase"].as_str() {
        Some("Succeeded") => return Verdict::ready("succeeded"),
        Some("Failed") => {
            let reason = live["status"]["reason"].as_str().unwrap_or("Failed");
            let message = live["status"]["message"].as_str().unwrap_or_default();
            return Verdict::failed(
                "failed",
                format!("{reason}: {message}").trim_end_matches(": ").into(),
            );
        }
        _ => {}
    }
    if condition(live, "Ready", "True").is_some() {
        return Verdict::ready("ready");
    }
    let phase = live["status"]["phase"].as_str().unwrap_or("Pending");
    Verdict::in_progress(format!("{phase}, not ready"))
}

/// A Service with a selector is ready when its EndpointSlices list the
/// ready endpoints expected of it; a LoadBalancer also once it has an
/// address. Without a selector (or as an ExternalName) its endpoints are
/// someone else's business, so it is ready once it exists.
fn service(live: &Value, endpoints: Endpoints) -> Verdict {
    let spec = &live["spec"];
    let kind = spec["type"].as_str().unwrap_or("ClusterIP");
    if kind == "ExternalName" {
        return Verdict::ready("external name");
    }
    let selects = spec["selector"].as_object().is_some_and(|s| !s.is_empty());
    let mut progress = if selects {
        format!("{}/{} endpoints ready", endpoints.ready, endpoints.expected)
    } else {
        "no selector".to_string()
    };
    let ready = !selects || endpoints.ready >= endpoints.expected;
    if kind == "LoadBalancer" {
        let addresses = live["status"]["loadBalancer"]["ingress"]
            .as_array()
            .map_or(0, Vec::len);
        if addresses == 0 {
            progress.push_str(", waiting for a load-balancer address");
            return Verdict::in_progress(progress).because(Some(
                "no load-balancer controller has assigned an address yet (the cluster may have none)"
                    .into(),
            ));
        }
        let first = &live["status"]["loadBalancer"]["ingress"][0];
        let address = first["ip"].as_str().or(first["hostname"].as_str());
        if let Some(address) = address {
            progress.push_str(&format!(", address {address}"));
        }
    }
    if ready {
        Verdict::ready(progress)
    } else {
        Verdict::in_progress(progress)
    }
}

fn persistent_volume_claim(live: &Value) -> Verdict {
    match live["status"]["phase"].as_str() {
        Some("Bound") => Verdict::ready("PVC Bound"),
        Some("Lost") => Verdict::failed(
            "PVC Lost",
            "its volume is gone: the claim will not be bound again".into(),
        ),
        phase => Verdict::in_progress(format!("PVC {}", phase.unwrap_or("Pending"))).because(Some(
            match live["spec"]["storageClassName"].as_str() {
                Some(class) => format!("no volume bound yet (storage class {class})"),
                None => "no volume bound yet".to_string(),
            },
        )),
    }
}

/// Ready once established, its names accepted; a name clash fails it.
fn custom_resource_definition(live: &Value) -> Verdict {
    if let Some(clash) = condition(live, "NamesAccepted", "False") {
        return Verdict::failed("names not accepted", describe(clash, "NamesAccepted"));
    }
    if condition(live, "Established", "True").is_some() {
        return Verdict::ready("established");
    }
    if let Some(not) = condition(live, "Established", "False")
        && not["reason"] != "Installing"
    {
        return Verdict::failed("not established", describe(not, "Established"));
    }
    Verdict::in_progress("not yet established")
}

/// Any other kind: ready once it exists, unless a `Ready` condition says
/// otherwise.
fn generic(live: &Value) -> Verdict {
    match conditions(live).find(|c| c["type"] == "Ready") {
        Some(c) if c["status"] == "True" => Verdict::ready("ready"),
        Some(c) => Verdict::in_progress("not ready").because(Some(describe(c, "Ready"))),
        None => Verdict::ready("exists"),
    }
}

fn replica_failure(live: &Value) -> Option<String> {
    condition(live, "ReplicaFailure", "True").map(|c| describe(c, "ReplicaFailure"))
}

/// `group` of `group/version`; the core group is empty.
fn group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(g, _)| g)
}

fn spec_replicas(live: &Value) -> i64 {
    // The API server defaults an absent count to 1.
    live["spec"]["replicas"].as_i64().unwrap_or(1)
}

fn count(status: &Value, field: &str) -> i64 {
    status[field].as_i64().unwrap_or(0)
}

/// The object's status conditions.
pub(crate) fn conditions(live: &Value) -> impl Iterator<Item = &Value> {
    live["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
}

fn condition<'a>(live: &'a Value, kind: &str, status: &str) -> Option<&'a Value> {
    conditions(live).find(|c| c["type"] == kind && c["status"] == status)
}

/// `Reason: message`, or what there is of them.
fn describe(condition: &Value, fallback: &str) -> String {
    let reason = condition["reason"].as_str().unwrap_or(fallback);
    match condition["message"].as_str().filter(|m| !m.is_empty()) {
        Some(message) => format!("{reason}: {message}"),
        None => reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn object(api_version: &str, kind: &str, body: Value) -> Value {
        let mut object = json!({"apiVersion": api_version, "kind": kind,
            "metadata": {"name": "x", "namespace": "ns", "generation": 2}});
        for (key, value) in body.as_object().unwrap() {
            object[key] = value.clone();
        }
        object
    }

    fn verdict(object: &Value) -> Verdict {
        assess(object, Endpoints::default())
    }

    fn deployment(spec: Value, status: Value) -> Value {
        object(
            "apps/v1",
            "Deployment",
            json!({"spec": spec, "status": status}),
        )
    }

    #[test]
    fn a_rolled_out_deployment_is_ready() {
        let d = deployment(
            json!({"replicas": 3}),
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3,
                "readyReplicas": 3, "availableReplicas": 3}),
        );
        let v = verdict(&d);
        assert_eq!(v.status, Status::Ready);
        assert_eq!(v.progress, "3/3 available");
    }

    #[test]
    fn a_deployment_status_behind_its_generation_is_in_progress_even_if_counts_match() {
        let d = deployment(
            json!({"replicas": 3}),
            json!({"observedGeneration": 1, "replicas": 3, "updatedReplicas": 3,
                "readyReplicas": 3, "availableReplicas": 3}),
        );
        let v = verdict(&d);
        assert_eq!(v.status, Status::InProgress);
        assert_eq!(v.progress, "waiting for the controller to see the new spec");
    }

    #[test]
    fn a_deployment_with_old_replicas_left_is_in_progress() {
        let d = deployment(
            json!({"replicas": 3}),
            json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3,
                "readyReplicas": 3, "availableReplicas": 3}),
        );
        let v = verdict(&d);
        assert_eq!(v.status, Status::InProgress);
        assert_eq!(v.progress, "3/3 available, 1 old pod(s) still running");
    }

    #[test]
    fn a_surge_pod_is_not_called_terminating() {
        // Mid-rollout with maxSurge 1: one new pod beside the two old ones,
        // none of them terminating.
        let d = deployment(
            json!({"replicas": 2}),
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1,
                "readyReplicas": 2, "availableReplicas": 2, "terminatingReplicas": 0}),
        );
        let v = verdict(&d);
        assert_eq!(v.status, Status::InProgress);
        assert_eq!(
            v.progress,
            "2/2 available, 1/2 updated, 2 old pod(s) still running"
        );
        assert!(!v.progress.contains("terminating"), "{}", v.progress);
        // Pods that are terminating are said so, from the count the
        // controller keeps of them.
        let d = deployment(
            json!({"replicas": 2}),
            json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2,
                "readyReplicas": 2, "availableReplicas": 2, "terminatingReplicas": 1}),
        );
        assert_eq!(verdict(&d).progress, "2/2 available, 1 terminating");
    }

    #[test]
    fn a_deployment_half_updated_says_how_far() {
        let d = deployment(
            json!({"replicas": 2}),
            json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1,
                "readyReplicas": 2, "availableReplicas": 1}),
        );
        assert_eq!(verdict(&d).progress, "1/2 available, 1/2 updated");
    }

    #[test]
    fn a_deployment_past_its_progress_deadline_failed() {
        let d = deployment(
            json!({"replicas": 1}),
            json!({"observedGeneration": 2, "conditions": [{"type": "Progressing",
                "status": "False", "reason": "ProgressDeadlineExceeded",
                "message": "ReplicaSet \"x-1\" has timed out progressing."}]}),
        );
        let v = verdict(&d);
        assert_eq!(v.status, Status::Failed);
        assert_eq!(
            v.reason.as_deref(),
            Some("ReplicaSet \"x-1\" has timed out progressing.")
        );
    }

    #[test]
    fn a_deployment_scaled_to_zero_is_ready_without_counts() {
        let d = deployment(json!({"replicas": 0}), json!({"observedGeneration": 2}));
        assert_eq!(verdict(&d).status, Status::Ready);
    }

    #[test]
    fn a_workload_whose_controller_reported_nothing_yet_is_in_progress() {
        let fresh = deployment(json!({"replicas": 0}), json!({}));
        assert_eq!(
            verdict(&fresh).progress,
            "waiting for the controller to see the new spec"
        );
        let set = stateful_set(json!({"replicas": 0}), json!({}));
        assert_eq!(verdict(&set).status, Status::InProgress);
    }

    #[test]
    fn a_deployment_without_replicas_counts_one() {
        let d = deployment(json!({}), json!({"observedGeneration": 2}));
        let v = verdict(&d);
        assert_eq!(v.status, Status::InProgress);
        assert_eq!(v.progress, "0/1 available, 0/1 updated");
    }

    #[test]
    fn a_replica_failure_is_the_reason_when_no_pod_could_be_created() {
        let d = deployment(
            json!({"replicas": 1}),
            json!({"observedGeneration": 2, "conditions": [{"type": "ReplicaFailure",
                "status": "True", "reason": "FailedCreate",
                "message": "pods \"x\" is forbidden: exceeded quota"}]}),
        );
        assert_eq!(
            verdict(&d).reason.as_deref(),
            Some("FailedCreate: pods \"x\" is forbidden: exceeded quota")
        );
    }

    fn stateful_set(spec: Value, status: Value) -> Value {
        object(
            "apps/v1",
            "StatefulSet",
            json!({"spec": spec, "status": status}),
        )
    }

    #[test]
    fn a_stateful_set_with_every_replica_current_is_ready() {
        let s = stateful_set(
            json!({"replicas": 2}),
            json!({"observedGeneration": 2, "replicas": 2, "readyReplicas": 2,
                "currentReplicas": 2, "updatedReplicas": 2,
                "currentRevision": "x-1", "updateRevision": "x-1"}),
        );
        let v = verdict(&s);
        assert_eq!(v.status, Status::Ready);
        assert_eq!(v.progress, "2/2 ready replicas");
    }

    #[test]
    fn a_stateful_set_short_of_ready_replicas_is_in_progress() {
        let s = stateful_set(
            json!({"replicas": 3}),
            json!({"observedGeneration": 2, "replicas": 3, "readyReplicas": 2,
                "currentReplicas": 3, "updatedReplicas": 3}),
        );
        let v = verdict(&s);
        assert_eq!(v.status, Status::InProgress);
        assert_eq!(v.progress, "2/3 ready replicas");
    }

    #[test]
    fn a_stateful_set_mid_rollout_waits_for_the_revisions_to_meet() {
        let s = stateful_set(
            json!({"replicas": 2}),
            json!({"observedGeneration": 2, "replicas": 2, "readyReplicas": 2,
                "currentReplicas": 2, "updatedReplicas": 2,
                "currentRevision": "x-1", "updateRevision": "x-2"}),
        );
        let v = verdict(&s);
        assert_eq!(v.status, Status::InProgress);
        assert!(v.progress.contains("rolling out"), "{}", v.progress);
        let half = stateful_set(
            json!({"replicas": 2}),
            json!({"observedGeneration": 2, "replicas": 2, "readyReplicas": 2,
                "currentReplicas": 1, "updatedReplicas": 1,
                "currentRevision": "x-1", "updateRevision": "x-2"}),
        );
        assert_eq!(verdict(&half).progress, "2/2 ready replicas, 1/2 updated");
    }

    #[test]
    fn a_stateful_set_partition_keeps_pods_below_it_on_the_old_revision() {
        let spec = json!({"replicas": 4, "updateStrategy": {"type": "RollingUpdate",
            "rollingUpdate": {"partition": 2}}});
        let status = |updated: i64| {
            json!({"observedGeneration": 2, "replicas": 4, "readyReplicas": 4,
                "currentReplicas": 4 - updated, "updatedReplicas": updated,
                "currentRevision": "x-1", "updateRevision": "x-2"})
        };
        assert_eq!(
            verdict(&stateful_set(spec.clone(), status(2))).status,
            Status::Ready
        );
        let v = verdict(&stateful_set(spec, status(1)));
        assert_eq!(v.status, Status::InProgress);
        assert_eq!(v.progress, "4/4 ready replicas, 1/2 updated");
    }

    #[test]
    fn a_stateful_set_status_behind_its_generation_is_in_progress() {
        let s = stateful_set(
            json!({"replicas": 1}),
            json!({"observedGeneration": 1, "replicas": 1, "readyReplicas": 1,
                "currentReplicas": 1, "updatedReplicas": 1}),
        );
        assert_eq!(verdict(&s).status, Status::InProgress);
    }

    fn daemon_set(status: Value) -> Value {
        object(
            "apps/v1",
            "DaemonSet",
            json!({"spec": {}, "status": status}),
        )
    }

    #[test]
    fn a_daemon_set_ready_on_every_node_is_ready() {
        let d = daemon_set(json!({"observedGeneration": 2, "desiredNumberScheduled": 3,
            "currentNumberScheduled": 3, "updatedNumberScheduled": 3,
            "numberAvailable": 3, "numberReady": 3}));
        let v = verdict(&d);
        assert_eq!(v.status, Status::Ready);
        assert_eq!(v.progress, "3/3 nodes ready");
    }

    #[test]
    fn a_daemon_set_still_updating_is_in_progress() {
        let d = daemon_set(json!({"observedGeneration": 2, "desiredNumberScheduled": 3,
            "currentNumberScheduled": 3, "updatedNumberScheduled": 1,
            "numberAvailable": 2, "numberReady": 3}));
        let v = verdict(&d);
        assert_eq!(v.status, Status::InProgress);
        assert_eq!(v.progress, "3/3 nodes ready, 1/3 updated, 2/3 available");
    }

    #[test]
    fn a_daemon_set_the_controller_has_not_seen_is_in_progress() {
        let d = daemon_set(json!({}));
        assert_eq!(
            verdict(&d).progress,
            "waiting for the controller to see the new spec"
        );
    }

    #[test]
    fn a_replica_set_counts_ready_and_available_replicas() {
        let rs = |ready: i64| {
            object(
                "apps/v1",
                "ReplicaSet",
                json!({"spec": {"replicas": 2}, "status": {"observedGeneration": 2,
                "replicas": 2, "readyReplicas": ready, "availableReplicas": ready}}),
            )
        };
        assert_eq!(verdict(&rs(2)).status, Status::Ready);
        let v = verdict(&rs(1));
        assert_eq!(v.status, Status::InProgress);
        assert_eq!(v.progress, "1/2 ready replicas");
    }

    #[test]
    fn a_replica_set_behind_its_generation_is_in_progress() {
        let rs = object(
            "apps/v1",
            "ReplicaSet",
            json!({"spec": {"replicas": 1}, "status": {"observedGeneration": 1,
                "replicas": 1, "readyReplicas": 1, "availableReplicas": 1}}),
        );
        assert_eq!(verdict(&rs).status, Status::InProgress);
    }

    fn job(status: Value) -> Value {
        object(
            "batch/v1",
            "Job",
            json!({"spec": {"completions": 1}, "status": status}),
        )
    }

    #[test]
    fn a_complete_job_is_ready() {
        let j = job(json!({"succeeded": 1, "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True"},
            {"type": "Complete", "status": "True"}]}));
        let v = verdict(&j);
        assert_eq!(v.status, Status::Ready);
        assert_eq!(v.progress, "complete (1/1 succeeded)");
    }

    #[test]
    fn a_running_job_is_in_progress() {
        let v = verdict(&job(json!({"active": 1, "startTime": "now"})));
        assert_eq!(v.status, Status::InProgress);
        assert_eq!(v.progress, "0/1 succeeded, 1 running");
    }

    #[test]
    fn a_failed_job_failed_with_its_reason() {
        let j = job(
            json!({"failed": 7, "conditions": [{"type": "Failed", "status": "True",
            "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}),
        );
        let v = verdict(&j);
        assert_eq!(v.status, Status::Failed);
        assert_eq!(
            v.reason.as_deref(),
            Some("BackoffLimitExceeded: Job has reached the specified backoff limit")
        );
    }

    fn pod(status: Value) -> Value {
        object("v1", "Pod", json!({"spec": {}, "status": status}))
    }

    #[test]
    fn a_pod_is_ready_by_its_ready_condition() {
        let ready = pod(json!({"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}]}));
        assert_eq!(verdict(&ready).status, Status::Ready);
        let not = pod(json!({"phase": "Running",
            "conditions": [{"type": "Ready", "status": "False"}]}));
        let v = verdict(&not);
        assert_eq!(v.status, Status::InProgress);
        assert_eq!(v.progress, "Running, not ready");
    }

    #[test]
    fn a_pod_that_succeeded_is_done_and_one_that_failed_failed() {
        assert_eq!(
            verdict(&pod(json!({"phase": "Succeeded"}))).status,
            Status::Ready
        );
        let failed = verdict(&pod(
            json!({"phase": "Failed", "reason": "Evicted", "message": "low on memory"}),
        ));
        assert_eq!(failed.status, Status::Failed);
        assert_eq!(failed.reason.as_deref(), Some("Evicted: low on memory"));
    }

    fn service(spec: Value, status: Value) -> Value {
        object("v1", "Service", json!({"spec": spec, "status": status}))
    }

    #[test]
    fn a_service_is_ready_with_the_expected_ready_endpoints() {
        let s = service(
            json!({"type": "NodePort", "selector": {"app": "web"}}),
            json!({}),
        );
        let short = assess(
            &s,
            Endpoints {
                ready: 2,
                expected: 3,
            },
        );
        assert_eq!(short.status, Status::InProgress);
        assert_eq!(short.progress, "2/3 endpoints ready");
        let enough = assess(
            &s,
            Endpoints {
                ready: 3,
                expected: 3,
            },
        );
        assert_eq!(enough.status, Status::Ready);
    }

    #[test]
    fn a_service_without_a_selector_or_an_external_name_is_ready_once_it_exists() {
        let manual = service(json!({"type": "ClusterIP"}), json!({}));
        assert_eq!(verdict(&manual).status, Status::Ready);
        assert_eq!(verdict(&manual).progress, "no selector");
        let external = service(
            json!({"type": "ExternalName", "externalName": "example.org"}),
            json!({}),
        );
        assert_eq!(verdict(&external).status, Status::Ready);
    }

    #[test]
    fn a_load_balancer_without_an_address_waits_and_says_for_what() {
        let s = service(
            json!({"type": "LoadBalancer", "selector": {"app": "web"}}),
            json!({"loadBalancer": {}}),
        );
        let v = assess(
            &s,
            Endpoints {
                ready: 1,
                expected: 1,
            },
        );
        assert_eq!(v.status, Status::InProgress);
        assert_eq!(
            v.progress,
            "1/1 endpoints ready, waiting for a load-balancer address"
        );
        assert!(
            v.reason
                .unwrap()
                .contains("no load-balancer controller has assigned an address")
        );
    }

    #[test]
    fn a_load_balancer_with_an_address_and_endpoints_is_ready() {
        let s = service(
            json!({"type": "LoadBalancer", "selector": {"app": "web"}}),
            json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.7"}]}}),
        );
        let ready = Endpoints {
            ready: 1,
            expected: 1,
        };
        let v = assess(&s, ready);
        assert_eq!(v.status, Status::Ready);
        assert_eq!(v.progress, "1/1 endpoints ready, address 10.0.0.7");
        let none = Endpoints {
            ready: 0,
            expected: 1,
        };
        assert_eq!(assess(&s, none).status, Status::InProgress);
    }

    fn pvc(status: Value) -> Value {
        object(
            "v1",
            "PersistentVolumeClaim",
            json!({"spec": {"storageClassName": "fast"}, "status": status}),
        )
    }

    #[test]
    fn a_bound_pvc_is_ready_and_a_pending_one_says_so() {
        assert_eq!(
            verdict(&pvc(json!({"phase": "Bound"}))).status,
            Status::Ready
        );
        let v = verdict(&pvc(json!({"phase": "Pending"})));
        assert_eq!(v.status, Status::InProgress);
        assert_eq!(v.progress, "PVC Pending");
        assert_eq!(
            v.reason.as_deref(),
            Some("no volume bound yet (storage class fast)")
        );
    }

    fn crd(conditions: Value) -> Value {
        object(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            json!({"spec": {}, "status": {"conditions": conditions}}),
        )
    }

    #[test]
    fn a_crd_is_ready_once_established() {
        let v = verdict(&crd(json!([
            {"type": "NamesAccepted", "status": "True"},
            {"type": "Established", "status": "True"}])));
        assert_eq!(v.status, Status::Ready);
        let installing = verdict(&crd(json!([{"type": "Established", "status": "False",
            "reason": "Installing"}])));
        assert_eq!(installing.status, Status::InProgress);
    }

    #[test]
    fn a_crd_whose_names_clash_failed() {
        let v = verdict(&crd(json!([{"type": "NamesAccepted", "status": "False",
            "reason": "KindConflict", "message": "\"Widget\" is already in use"}])));
        assert_eq!(v.status, Status::Failed);
        assert_eq!(
            v.reason.as_deref(),
            Some("KindConflict: \"Widget\" is already in use")
        );
    }

    #[test]
    fn a_kind_without_status_is_ready_once_it_exists() {
        let config = object("v1", "ConfigMap", json!({"data": {"a": "b"}}));
        let v = verdict(&config);
        assert_eq!(v.status, Status::Ready);
        assert_eq!(v.progress, "exists");
    }

    #[test]
    fn any_kind_follows_its_ready_condition_and_generation() {
        let custom = |observed: i64, ready: &str| {
            object(
                "example.org/v1",
                "Widget",
                json!({"status": {"observedGeneration": observed,
                "conditions": [{"type": "Ready", "status": ready, "reason": "Waiting",
                    "message": "for the database"}]}}),
            )
        };
        assert_eq!(verdict(&custom(2, "True")).status, Status::Ready);
        let not = verdict(&custom(2, "False"));
        assert_eq!(not.status, Status::InProgress);
        assert_eq!(not.reason.as_deref(), Some("Waiting: for the database"));
        // An old Ready=True says nothing about the new spec.
        assert_eq!(verdict(&custom(1, "True")).status, Status::InProgress);
    }

    #[test]
    fn stalled_fails_and_reconciling_waits_for_any_kind() {
        let with = |kind: &str| {
            object(
                "example.org/v1",
                "Widget",
                json!({"status": {"conditions": [{"type": kind, "status": "True",
                "reason": "Why", "message": "because"}]}}),
            )
        };
        assert_eq!(verdict(&with("Stalled")).status, Status::Failed);
        let reconciling = verdict(&with("Reconciling"));
        assert_eq!(reconciling.status, Status::InProgress);
        assert_eq!(reconciling.reason.as_deref(), Some("Why: because"));
    }

    #[test]
    fn an_object_being_deleted_is_not_ready() {
        let mut config = object("v1", "ConfigMap", json!({}));
        config["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert_eq!(verdict(&config).status, Status::InProgress);
    }

    #[test]
    fn ready_pods_reads_the_count_of_each_workload_kind() {
        let d = deployment(json!({}), json!({"readyReplicas": 2}));
        assert_eq!(ready_pods(&d), 2);
        assert_eq!(ready_pods(&daemon_set(json!({"numberReady": 4}))), 4);
        assert!(is_workload("apps/v1", "StatefulSet"));
        assert!(has_no_status("v1", "ConfigMap"));
        assert!(has_no_status("rbac.authorization.k8s.io/v1", "Role"));
        assert!(!has_no_status("v1", "Namespace"));
        assert!(!has_no_status("example.org/v1", "ConfigMap"));
        assert!(!is_workload("batch/v1", "Job"));
    }
}
