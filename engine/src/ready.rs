//! Waiting until what was applied really works: Deployments rolled out and
//! available, Services with ready endpoints behind them.
//!
//! kube-runtime's `is_deployment_completed` ignores `observedGeneration`, so
//! right after an apply it can pass on the previous rollout's status; the
//! checks here compare against the generation the apply produced.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::error::EngineError;
use super::reasons::{PodReason, pod_reason};
use super::resource::{DesiredResource, ResourceId};
use crate::cluster::{Cluster, ClusterError};
use crate::fault::{self, Point};

/// The first poll comes this soon after the last: on a healthy cluster most
/// changes settle within a few hundred milliseconds.
const FIRST_POLL: Duration = Duration::from_millis(50);
/// Polls slow down to this, so that a long wait does not load the server.
const SLOWEST_POLL: Duration = Duration::from_millis(500);

/// Pods are read only for waits that last longer than this: a healthy
/// rollout is usually done before, and never pays for the lists.
const PODS_AFTER: Duration = Duration::from_secs(1);
/// Log lines shown for a container that crashed.
const LOG_LINES: i64 = 5;
/// Pod reasons listed per object in an error.
const REASONS_SHOWN: usize = 3;

/// Poll intervals that start at [`FIRST_POLL`] and double up to
/// [`SLOWEST_POLL`].
pub(crate) struct Poll {
    next: Duration,
}

impl Poll {
    pub(crate) fn new() -> Self {
        Poll { next: FIRST_POLL }
    }

    pub(crate) async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(SLOWEST_POLL);
    }
}

/// Something to wait for.
#[derive(Clone, Debug, PartialEq)]
pub enum Target {
    Deployment {
        id: ResourceId,
        replicas: i64,
    },
    /// A Service whose EndpointSlices must list this many ready endpoints,
    /// once the Deployments behind it are ready (before that, endpoints of
    /// old pods can make up the count).
    Service {
        id: ResourceId,
        endpoints: i64,
        after: Vec<ResourceId>,
    },
}

impl Target {
    pub fn id(&self) -> &ResourceId {
        match self {
            Target::Deployment { id, .. } | Target::Service { id, .. } => id,
        }
    }
}

/// Where one target stands.
#[derive(Clone, Debug, PartialEq)]
pub struct Readiness {
    pub id: ResourceId,
    pub ready: bool,
    /// Short and human: `2/3 available`, `3/3 endpoints ready`.
    pub progress: String,
    /// The newest pod-level reason it is not ready, on one line
    /// (`pod web-1 container nginx: ImagePullBackOff: ...`), when one is known.
    pub reason: Option<String>,
}

/// The targets for the desired objects: every Deployment, and every Service
/// expecting as many endpoints as the Deployment it depends on has replicas.
pub fn targets(desired: &[DesiredResource]) -> Vec<Target> {
    let replicas = |d: &DesiredResource| d.object["spec"]["replicas"].as_i64().unwrap_or(1);
    let mut targets = Vec::new();
    for d in desired {
        match d.id.kind.as_str() {
            "Deployment" => targets.push(Target::Deployment {
                id: d.id.clone(),
                replicas: replicas(d),
            }),
            "Service" => {
                let deployments: Vec<&DesiredResource> = d
                    .depends_on
                    .iter()
                    .filter_map(|dep| desired.iter().find(|o| &o.id == dep))
                    .filter(|o| o.id.kind == "Deployment")
                    .collect();
                targets.push(Target::Service {
                    id: d.id.clone(),
                    endpoints: deployments.iter().map(|o| replicas(o)).sum(),
                    after: deployments.iter().map(|o| o.id.clone()).collect(),
                });
            }
            _ => {}
        }
    }
    targets
}

/// Polls until every target is ready (Deployments come before the Services
/// that wait for them), calling `progress` with the targets whose progress
/// or reason changed since the last call, and the whole picture.
///
/// Fails fast on a Deployment whose progress deadline passed, and on one
/// whose every new pod has been stuck for `grace` on a reason that waiting
/// does not fix ([`PodReason::fatal`]); on timeout, lists each unready
/// target with its reason. Stops with [`EngineError::Interrupted`] once
/// `cancel` is set.
pub async fn wait_ready(
    cluster: &Cluster,
    targets: &[Target],
    timeout: Duration,
    grace: Duration,
    cancel: &AtomicBool,
    mut progress: impl FnMut(&[&Readiness], &[Readiness]),
) -> Result<Vec<Readiness>, EngineError> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut last: Vec<Readiness> = Vec::new();
    let mut poll = Poll::new();
    // Since when each Deployment's new pods have all been stuck.
    let mut stuck_since: HashMap<ResourceId, Instant> = HashMap::new();
    let mut logs = LogCache::default();
    loop {
        fault::reached(Point::Wait, cancel).await;
        // Everything was applied and recorded before the wait began, so
        // stopping here leaves nothing half done.
        if cancel.load(Ordering::SeqCst) {
            return Err(EngineError::Interrupted);
        }
        let read_pods = started.elapsed() >= PODS_AFTER;
        let snapshot = Snapshot::read(cluster, targets, read_pods).await?;
        let mut now: Vec<Readiness> = Vec::with_capacity(targets.len());
        let mut reasons: HashMap<&ResourceId, Vec<PodReason>> = HashMap::new();
        let mut unready: HashSet<&ResourceId> = HashSet::new();
        for target in targets {
            let waiting_on = match target {
                Target::Service { after, .. } => after.iter().find(|dep| unready.contains(dep)),
                Target::Deployment { .. } => None,
            };
            let mut readiness = match waiting_on {
                Some(dep) => not_ready(target.id(), format!("waiting for {dep}")),
                None => check(cluster, &snapshot, target).await?,
            };
            if !readiness.ready
                && let Target::Deployment { id, .. } = target
                && let Some(pods) = snapshot.new_pods(id)
            {
                let mut found: Vec<PodReason> = pods.iter().filter_map(|p| pod_reason(p)).collect();
                logs.fill(cluster, id, &mut found).await;
                let all_stuck =
                    !pods.is_empty() && found.len() == pods.len() && found.iter().all(|r| r.fatal);
                if all_stuck {
                    stuck_since.entry(id.clone()).or_insert_with(Instant::now);
                } else {
                    stuck_since.remove(id);
                }
                if let Some(line) = summary(&found, pods.len()) {
                    readiness.reason = Some(line);
                }
                reasons.insert(target.id(), found);
            } else {
                // Ready, or its pods were not read: not stuck.
                stuck_since.remove(target.id());
            }
            if !readiness.ready {
                unready.insert(target.id());
            }
            now.push(readiness);
        }
        if now != last {
            // Targets keep their order, so position pairs old and new.
            let changed: Vec<&Readiness> = now
                .iter()
                .enumerate()
                .filter(|(i, r)| last.get(*i) != Some(*r))
                .map(|(_, r)| r)
                .collect();
            progress(&changed, &now);
            last = now.clone();
        }
        if now.iter().all(|r| r.ready) {
            return Ok(now);
        }
        if let Some((id, _)) = stuck_since
            .iter()
            .filter(|(_, since)| since.elapsed() >= grace)
            .min_by_key(|(_, since)| **since)
        {
            let found = reasons.get(id).map(Vec::as_slice).unwrap_or_default();
            return Err(EngineError::Stuck {
                id: id.to_string(),
                grace: humantime::format_duration(grace).to_string(),
                details: details(found),
                fix: found
                    .first()
                    .map_or("fix the cause above", PodReason::what_to_fix)
                    .to_string(),
            });
        }
        if Instant::now() >= deadline {
            let details = now
                .iter()
                .filter(|r| !r.ready)
                .map(|r| {
                    let mut line = format!("  {}: {}", r.id, r.progress);
                    match reasons.get(&r.id).filter(|found| !found.is_empty()) {
                        Some(found) => {
                            line.push('\n');
                            line.push_str(&details(found));
                        }
                        None => {
                            if let Some(reason) = &r.reason {
                                line.push_str(&format!(": {reason}"));
                            }
                        }
                    }
                    line
                })
                .collect::<Vec<_>>()
                .join("\n");
            return Err(EngineError::Timeout {
                what: "the stack".into(),
                timeout: humantime::format_duration(timeout).to_string(),
                details,
            });
        }
        poll.wait().await;
    }
}

/// One line for the progress display: the reason that says the most first
/// (a terminal cuts long lines), how many of the new pods share it, and
/// its detail. Which pod is in the error, should it come to that.
fn summary(found: &[PodReason], pods: usize) -> Option<String> {
    let first = found.iter().find(|r| r.fatal).or(found.first())?;
    let same = found.iter().filter(|r| r.reason == first.reason).count();
    let mut line = format!("{} ({same}/{pods} new pods)", first.reason);
    if !first.message.is_empty() {
        line.push_str(&format!(": {}", first.message));
    }
    if let Some(last) = first.log.as_deref().and_then(|l| l.lines().last()) {
        line.push_str(&format!("; last log line: {last}"));
    }
    Some(line)
}

/// The reasons as an error lists them: a few pods, each with its detail
/// and log lines.
fn details(found: &[PodReason]) -> String {
    let mut lines: Vec<String> = found
        .iter()
        .take(REASONS_SHOWN)
        .map(|r| format!("    {r}"))
        .collect();
    if found.len() > REASONS_SHOWN {
        lines.push(format!(
            "    ... and {} more pod(s)",
            found.len() - REASONS_SHOWN
        ));
    }
    lines.join("\n")
}

/// The last log lines of crashed containers, read once per crash.
#[derive(Default)]
struct LogCache {
    read: HashMap<(String, String, i64), Option<String>>,
}

impl LogCache {
    async fn fill(&mut self, cluster: &Cluster, id: &ResourceId, found: &mut [PodReason]) {
        let namespace = id.namespace.as_deref().unwrap_or_default();
        // One pod's log says why they all crash; reading every pod's would
        // cost a request per pod per crash.
        let Some(reason) = found.iter_mut().find(|r| r.reason == "CrashLoopBackOff") else {
            return;
        };
        let Some(container) = reason.container.clone() else {
            return;
        };
        let key = (reason.pod.clone(), container.clone(), reason.restarts);
        if !self.read.contains_key(&key) {
            // While backing off, the container's newest run is the one that
            // crashed, and the kubelet may have dropped the run before it.
            let log = match cluster
                .pod_log(namespace, &reason.pod, &container, false, LOG_LINES)
                .await
            {
                Some(log) => Some(log),
                None => {
                    cluster
                        .pod_log(namespace, &reason.pod, &container, true, LOG_LINES)
                        .await
                }
            };
            self.read.insert(key.clone(), log);
        }
        reason.log = self.read[&key].clone();
    }
}

/// What one poll reads: the Deployments and the EndpointSlices of the
/// targets' namespaces, with one list per kind and namespace; and, for
/// namespaces with a Deployment that is not ready, their pods and
/// ReplicaSets.
#[derive(Default)]
struct Snapshot {
    deployments: HashMap<ResourceId, Value>,
    /// Ready endpoints by (namespace, Service name).
    endpoints: HashMap<(String, String), i64>,
    /// Pods by namespace, for the namespaces whose pods were read.
    pods: HashMap<String, Vec<Value>>,
    /// ReplicaSets by namespace; absent when they may not be listed.
    replica_sets: HashMap<String, Vec<Value>>,
}

impl Snapshot {
    async fn read(
        cluster: &Cluster,
        targets: &[Target],
        read_pods: bool,
    ) -> Result<Snapshot, EngineError> {
        let mut snapshot = Snapshot::default();
        let namespaces = |kind: &str| -> BTreeSet<Option<&str>> {
            targets
                .iter()
                .filter(|t| t.id().kind == kind)
                .map(|t| t.id().namespace.as_deref())
                .collect()
        };
        for namespace in namespaces("Deployment") {
            for object in cluster
                .list("apps/v1", "Deployment", namespace, None)
                .await?
            {
                if let Some(id) = ResourceId::of(&object) {
                    snapshot.deployments.insert(id, object);
                }
            }
        }
        if read_pods {
            snapshot.read_pods(cluster, targets).await?;
        }
        for namespace in namespaces("Service") {
            let slices = cluster
                .list("discovery.k8s.io/v1", "EndpointSlice", namespace, None)
                .await?;
            for slice in &slices {
                let Some(service) =
                    slice["metadata"]["labels"]["kubernetes.io/service-name"].as_str()
                else {
                    continue;
                };
                let key = (
                    namespace.unwrap_or_default().to_string(),
                    service.to_string(),
                );
                *snapshot.endpoints.entry(key).or_default() +=
                    ready_endpoints(std::slice::from_ref(slice));
            }
        }
        Ok(snapshot)
    }
}

impl Snapshot {
    async fn read_pods(
        &mut self,
        cluster: &Cluster,
        targets: &[Target],
    ) -> Result<(), EngineError> {
        let unready: BTreeSet<&str> = targets
            .iter()
            .filter_map(|t| match t {
                Target::Deployment { id, replicas } => {
                    let live = self.deployments.get(id)?;
                    (!deployment_readiness(id, *replicas, live).ready)
                        .then_some(id.namespace.as_deref())
                        .flatten()
                }
                Target::Service { .. } => None,
            })
            .collect();
        for namespace in unready {
            // Reasons are the detail, not the news: credentials that may
            // not list pods still get the counts.
            match cluster.list("v1", "Pod", Some(namespace), None).await {
                Ok(pods) => {
                    self.pods.insert(namespace.to_string(), pods);
                }
                Err(ClusterError::Forbidden { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
            match cluster
                .list("apps/v1", "ReplicaSet", Some(namespace), None)
                .await
            {
                Ok(sets) => {
                    self.replica_sets.insert(namespace.to_string(), sets);
                }
                Err(ClusterError::Forbidden { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The pods of the Deployment's newest ReplicaSet (all its pods when
    /// ReplicaSets could not be read), not being deleted; `None` when its
    /// pods were not read.
    fn new_pods(&self, id: &ResourceId) -> Option<Vec<&Value>> {
        let namespace = id.namespace.as_deref()?;
        let pods = self.pods.get(namespace)?;
        let live = self.deployments.get(id)?;
        let selector = live["spec"]["selector"]["matchLabels"].as_object()?;
        let hash = self
            .replica_sets
            .get(namespace)
            .and_then(|sets| newest_template_hash(live, sets));
        Some(
            pods.iter()
                .filter(|pod| pod["metadata"]["deletionTimestamp"].is_null())
                .filter(|pod| {
                    let labels = &pod["metadata"]["labels"];
                    selector.iter().all(|(k, v)| &labels[k] == v)
                        && hash
                            .as_ref()
                            .is_none_or(|h| labels["pod-template-hash"] == h.as_str())
                })
                .collect(),
        )
    }
}

/// The `pod-template-hash` of the Deployment's newest ReplicaSet: the one
/// it owns with the highest revision.
fn newest_template_hash(deployment: &Value, sets: &[Value]) -> Option<String> {
    let uid = deployment["metadata"]["uid"].as_str()?;
    let revision = |rs: &Value| {
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
            .as_str()
            .and_then(|r| r.parse::<i64>().ok())
            .unwrap_or(0)
    };
    sets.iter()
        .filter(|rs| {
            rs["metadata"]["ownerReferences"]
                .as_array()
                .is_some_and(|owners| owners.iter().any(|o| o["uid"] == uid))
        })
        .max_by_key(|rs| revision(rs))
        .and_then(|rs| rs["metadata"]["labels"]["pod-template-hash"].as_str())
        .map(str::to_string)
}

async fn check(
    cluster: &Cluster,
    snapshot: &Snapshot,
    target: &Target,
) -> Result<Readiness, EngineError> {
    match target {
        Target::Deployment { id, replicas } => {
            let Some(live) = snapshot.deployments.get(id) else {
                return Ok(not_ready(id, "not found".into()));
            };
            if let Some(reason) = progress_deadline_exceeded(live) {
                let pods = pod_problems(cluster, id, live).await?;
                return Err(EngineError::RolloutFailed {
                    id: id.to_string(),
                    details: format!("{reason}{pods}"),
                });
            }
            let mut readiness = deployment_readiness(id, *replicas, live);
            if !readiness.ready {
                // Pods that could not even be created (a quota, an admission
                // webhook) leave no pod to read a reason from.
                readiness.reason = replica_failure(live);
            }
            Ok(readiness)
        }
        Target::Service { id, endpoints, .. } => {
            let key = (id.namespace.clone().unwrap_or_default(), id.name.clone());
            let ready = snapshot.endpoints.get(&key).copied().unwrap_or(0);
            Ok(Readiness {
                id: id.clone(),
                ready: ready >= *endpoints,
                progress: format!("{ready}/{endpoints} endpoints ready"),
                reason: None,
            })
        }
    }
}

fn not_ready(id: &ResourceId, progress: String) -> Readiness {
    Readiness {
        id: id.clone(),
        ready: false,
        progress,
        reason: None,
    }
}

/// Ready when the controller has seen the latest spec and every replica is
/// updated, available, and no old one is left.
pub fn deployment_readiness(id: &ResourceId, replicas: i64, live: &Value) -> Readiness {
    let status = &live["status"];
    let count = |field: &str| status[field].as_i64().unwrap_or(0);
    let generation = live["metadata"]["generation"].as_i64().unwrap_or(0);
    let observed = status["observedGeneration"].as_i64().unwrap_or(0);
    if observed < generation {
        return not_ready(id, "waiting for the controller to see the new spec".into());
    }
    let (updated, available, total) = (
        count("updatedReplicas"),
        count("availableReplicas"),
        count("replicas"),
    );
    let ready = updated == replicas && available == replicas && total == replicas;
    let mut progress = format!("{available}/{replicas} available");
    if updated != replicas {
        progress.push_str(&format!(", {updated}/{replicas} updated"));
    }
    if total > replicas {
        progress.push_str(&format!(
            ", {} old replica(s) terminating",
            total - replicas
        ));
    }
    Readiness {
        id: id.clone(),
        ready,
        progress,
        reason: None,
    }
}

fn replica_failure(live: &Value) -> Option<String> {
    let conditions = live["status"]["conditions"].as_array()?;
    conditions
        .iter()
        .find(|c| c["type"] == "ReplicaFailure" && c["status"] == "True")
        .map(|c| {
            format!(
                "{}: {}",
                c["reason"].as_str().unwrap_or("ReplicaFailure"),
                c["message"].as_str().unwrap_or_default()
            )
        })
}

fn progress_deadline_exceeded(live: &Value) -> Option<String> {
    let conditions = live["status"]["conditions"].as_array()?;
    conditions
        .iter()
        .find(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded")
        .map(|c| {
            c["message"]
                .as_str()
                .unwrap_or("progress deadline exceeded")
                .to_string()
        })
}

/// Why the Deployment's pods are not ready, from their container states.
async fn pod_problems(
    cluster: &Cluster,
    id: &ResourceId,
    live: &Value,
) -> Result<String, EngineError> {
    let Some(labels) = live["spec"]["selector"]["matchLabels"].as_object() else {
        return Ok(String::new());
    };
    let selector = labels
        .iter()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(",");
    let pods = match cluster
        .list("v1", "Pod", id.namespace.as_deref(), Some(&selector))
        .await
    {
        Ok(pods) => pods,
        // The failed rollout is the news; pods are only the detail.
        Err(ClusterError::Forbidden { .. }) => {
            return Ok(
                "\n  (the pods' reasons are not shown: these credentials may not list pods)".into(),
            );
        }
        Err(e) => return Err(e.into()),
    };
    let mut lines = String::new();
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().unwrap_or("?");
        let statuses = pod["status"]["containerStatuses"].as_array();
        for container in statuses.into_iter().flatten() {
            let state = &container["state"];
            let why = state["waiting"]["reason"]
                .as_str()
                .or_else(|| state["terminated"]["reason"].as_str());
            if let Some(why) = why {
                let message = state["waiting"]["message"].as_str().unwrap_or_default();
                lines.push_str(&format!("\n  pod {name}: {why} {message}"));
            }
        }
        if statuses.is_none()
            && let Some(condition) = pod["status"]["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["status"] == "False"))
        {
            lines.push_str(&format!(
                "\n  pod {name}: {} {}",
                condition["reason"].as_str().unwrap_or_default(),
                condition["message"].as_str().unwrap_or_default()
            ));
        }
    }
    Ok(lines)
}

/// Ready endpoints across a Service's EndpointSlices. An absent `ready`
/// condition means unknown, which the API says to read as ready.
pub fn ready_endpoints(slices: &[Value]) -> i64 {
    slices
        .iter()
        .flat_map(|s| s["endpoints"].as_array().into_iter().flatten())
        .filter(|e| e["conditions"]["ready"].as_bool().unwrap_or(true))
        .count() as i64
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn id() -> ResourceId {
        ResourceId::new("apps/v1", "Deployment", Some("ns"), "d")
    }

    #[test]
    fn stale_status_is_not_ready_even_if_counts_match() {
        let live = json!({"metadata": {"generation": 3},
            "status": {"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}});
        assert!(!deployment_readiness(&id(), 3, &live).ready);
    }

    #[test]
    fn rolled_out_deployment_is_ready() {
        let live = json!({"metadata": {"generation": 3},
            "status": {"observedGeneration": 3, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}});
        let r = deployment_readiness(&id(), 3, &live);
        assert!(r.ready);
        assert_eq!(r.progress, "3/3 available");
    }

    #[test]
    fn old_replicas_still_terminating_are_not_ready() {
        let live = json!({"metadata": {"generation": 2},
            "status": {"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3, "availableReplicas": 3}});
        let r = deployment_readiness(&id(), 3, &live);
        assert!(!r.ready);
        assert!(
            r.progress.contains("1 old replica(s) terminating"),
            "{}",
            r.progress
        );
    }

    #[test]
    fn scaled_to_zero_is_ready_with_no_status_counts() {
        let live = json!({"metadata": {"generation": 1}, "status": {"observedGeneration": 1}});
        assert!(deployment_readiness(&id(), 0, &live).ready);
    }

    #[test]
    fn the_newest_replica_set_is_the_owned_one_with_the_highest_revision() {
        let deployment = json!({"metadata": {"uid": "d1"}});
        let rs = |hash: &str, revision: &str, owner: &str| {
            json!({"metadata": {"labels": {"pod-template-hash": hash},
                "annotations": {"deployment.kubernetes.io/revision": revision},
                "ownerReferences": [{"uid": owner}]}})
        };
        let sets = [
            rs("old", "1", "d1"),
            rs("new", "10", "d1"),
            rs("other", "11", "d2"),
        ];
        assert_eq!(
            newest_template_hash(&deployment, &sets).as_deref(),
            Some("new")
        );
    }

    #[test]
    fn a_replica_failure_is_the_reason_when_no_pod_exists() {
        let live = json!({"status": {"conditions": [{"type": "ReplicaFailure", "status": "True",
            "reason": "FailedCreate", "message": "pods \"x\" is forbidden: exceeded quota"}]}});
        assert_eq!(
            replica_failure(&live).as_deref(),
            Some("FailedCreate: pods \"x\" is forbidden: exceeded quota")
        );
        assert_eq!(replica_failure(&json!({"status": {}})), None);
    }

    #[test]
    fn endpoints_count_ready_and_unknown_but_not_unready() {
        let slices = vec![json!({"endpoints": [
            {"conditions": {"ready": true}},
            {"conditions": {}},
            {"conditions": {"ready": false}}
        ]})];
        assert_eq!(ready_endpoints(&slices), 2);
    }
}
