//! Waiting until what was applied really works, for any kind: each object
//! is judged by the rules of its kind ([`rules`]), read from its status;
//! a Service by the ready endpoints its workloads should give it. While a
//! workload is not ready, its pods say why (the `reasons` module), and a
//! wait stops early once every new pod is stuck on a reason that waiting
//! does not fix.
//!
//! kube-runtime's `is_deployment_completed` ignores `observedGeneration`, so
//! right after an apply it can pass on the previous rollout's status; the
//! rules here compare against the generation the apply produced.
//!
//! A program can declare what one object waits for instead ([`WaitRule`]:
//! a condition, or a field's value, and what means it failed), for kinds
//! whose rules cannot tell, such as a custom resource without kstatus
//! conditions.

pub mod rules;
mod wait_rule;

pub use wait_rule::{Check, WaitRule, WaitRuleError};

use crate::Cancel;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use self::rules::{Endpoints, Status, Verdict};
use super::error::EngineError;
use super::plan::{Op, Plan};
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

    /// Sleeps until the next poll, or until `cancel` is asked, which the
    /// caller then sees at the top of its loop.
    pub(crate) async fn wait(&mut self, cancel: &Cancel) {
        cancel.sleep(self.next_interval()).await;
    }

    /// The time until the next poll, for a caller that sleeps by itself.
    pub(crate) fn next_interval(&mut self) -> Duration {
        let next = self.next;
        self.next = (self.next * 2).min(SLOWEST_POLL);
        next
    }
}

/// Something to wait for.
#[derive(Clone, Debug, PartialEq)]
pub struct Target {
    /// The object waited for.
    pub id: ResourceId,
    /// For a Service: the workloads among the desired objects whose pod
    /// template its selector matches. It expects their ready pods as ready
    /// endpoints, counted once those of them being waited for are ready
    /// (before that, endpoints of old pods can make up the count).
    pub selects: Vec<ResourceId>,
    /// What to judge it by instead of a read, for an object whose own
    /// fields cannot change its verdict once it is applied: a Service that
    /// is no load balancer (its endpoints say the rest). Kinds without a
    /// status ([`rules::has_no_status`]) are not read either.
    pub judge_by: Option<Value>,
    /// What the program declared it waits for, instead of the rules of
    /// its kind.
    pub wait: Option<WaitRule>,
}

impl Target {
    /// The object waited for.
    pub fn id(&self) -> &ResourceId {
        &self.id
    }

    fn is_service(&self) -> bool {
        self.id.api_version == "v1" && self.id.kind == "Service"
    }
}

/// Where one target stands.
#[derive(Clone, Debug, PartialEq)]
pub struct Readiness {
    /// The object.
    pub id: ResourceId,
    /// Whether it is ready by the rules of its kind.
    pub ready: bool,
    /// Short and human, in the words of its kind: `2/3 available`,
    /// `3/3 endpoints ready`, `PVC Pending`, `complete (1/1 succeeded)`.
    pub progress: String,
    /// Why it is not ready, on one line, when that is known: the newest
    /// pod-level reason (`ImagePullBackOff (2/2 new pods): ...`), or what
    /// the object itself says (a condition, no load-balancer address).
    pub reason: Option<String>,
}

/// What to wait for after an apply: every desired object the plan creates,
/// updates or replaces, every one an interrupted run left `unfinished`
/// (applied, maybe, but never seen ready), and every Service that selects
/// the pods of one of those; in the order apply uses, each after the
/// objects it depends on.
pub(crate) fn targets(
    plan: &Plan,
    desired: &[DesiredResource],
    unfinished: &[ResourceId],
) -> Vec<Target> {
    let waited: HashSet<&ResourceId> = plan
        .steps
        .iter()
        .filter(|s| matches!(s.op, Op::Create | Op::Update | Op::Replace))
        .map(|s| &s.id)
        .chain(unfinished)
        .collect();
    let selects = |d: &DesiredResource| {
        if d.id.kind == "Service" && d.id.api_version == "v1" {
            selected_workloads(d, desired)
        } else {
            Vec::new()
        }
    };
    // A Service in front of a workload that rolls is waited for too, even
    // if it did not change itself: its endpoints change with the pods.
    let chosen: Vec<(&DesiredResource, Vec<ResourceId>)> = desired
        .iter()
        .map(|d| (d, selects(d)))
        .filter(|(d, selected)| {
            waited.contains(&d.id) || selected.iter().any(|w| waited.contains(w))
        })
        .collect();
    let by_id: HashMap<&ResourceId, &Vec<ResourceId>> =
        chosen.iter().map(|(d, s)| (&d.id, s)).collect();
    let objects: Vec<&DesiredResource> = chosen.iter().map(|(d, _)| *d).collect();
    apply_order(&objects)
        .into_iter()
        .map(|d| Target {
            id: d.id.clone(),
            selects: by_id[&d.id].clone(),
            judge_by: judged_as_declared(d),
            wait: d.options.wait.clone(),
        })
        .collect()
}

/// A Service's type and selector as declared, unless it is a load balancer,
/// whose address only a read can tell, or it has a wait rule, which reads it.
fn judged_as_declared(d: &DesiredResource) -> Option<Value> {
    let spec = &d.object["spec"];
    let service = d.id.api_version == "v1" && d.id.kind == "Service";
    (service && spec["type"] != "LoadBalancer" && d.options.wait.is_none()).then(|| {
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": d.id.name, "namespace": d.id.namespace},
            "spec": {"type": spec["type"], "selector": spec["selector"]},
        })
    })
}

/// Dependency order among `chosen`, as apply's waves run them: an object
/// once everything it depends on among them is placed, desired order
/// within a wave.
fn apply_order<'a>(chosen: &[&'a DesiredResource]) -> Vec<&'a DesiredResource> {
    let ids: HashSet<&ResourceId> = chosen.iter().map(|d| &d.id).collect();
    let mut placed: HashSet<&ResourceId> = HashSet::new();
    let mut order: Vec<&DesiredResource> = Vec::with_capacity(chosen.len());
    while order.len() < chosen.len() {
        let wave: Vec<&DesiredResource> = chosen
            .iter()
            .filter(|d| !placed.contains(&d.id))
            .filter(|d| {
                d.depends_on
                    .iter()
                    .all(|dep| !ids.contains(dep) || placed.contains(dep))
            })
            .copied()
            .collect();
        if wave.is_empty() {
            // A cycle cannot come from a program that applied; keep the rest
            // in desired order rather than loop.
            order.extend(chosen.iter().filter(|d| !placed.contains(&d.id)));
            break;
        }
        placed.extend(wave.iter().map(|d| &d.id));
        order.extend(wave);
    }
    order
}

/// The workloads in the Service's namespace whose pod template carries
/// every label of its selector: their pods become its endpoints, whether
/// or not the program declared a dependency between them.
fn selected_workloads(service: &DesiredResource, desired: &[DesiredResource]) -> Vec<ResourceId> {
    let spec = &service.object["spec"];
    if spec["type"] == "ExternalName" {
        return Vec::new();
    }
    let Some(selector) = spec["selector"].as_object().filter(|s| !s.is_empty()) else {
        return Vec::new();
    };
    desired
        .iter()
        .filter(|d| d.id.namespace == service.id.namespace)
        .filter(|d| rules::is_workload(&d.id.api_version, &d.id.kind))
        .filter(|d| {
            let labels = &d.object["spec"]["template"]["metadata"]["labels"];
            selector.iter().all(|(k, v)| &labels[k] == v)
        })
        .map(|d| d.id.clone())
        .collect()
}

/// Polls until every target is ready (workloads are judged before the
/// Services that count on them), calling `progress` with the targets whose
/// progress or reason changed since the last call, and the whole picture.
///
/// Fails fast on an object whose kind says it failed (a Deployment past its
/// progress deadline, a failed Job, ...), and on a workload whose every new
/// pod has been stuck for `grace` on a reason that waiting does not fix
/// ([`PodReason::fatal`]); on timeout, lists each unready target with its
/// reason. Stops with [`EngineError::Interrupted`] once `cancel` is set.
pub(crate) async fn wait_ready(
    cluster: &Cluster,
    targets: &[Target],
    timeout: Duration,
    grace: Duration,
    cancel: &Cancel,
    mut progress: impl FnMut(&[&Readiness], &[Readiness]),
) -> Result<Vec<Readiness>, EngineError> {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut last: Vec<Readiness> = Vec::new();
    let mut poll = Poll::new();
    // Since when each workload's new pods have all been stuck.
    let mut stuck_since: HashMap<ResourceId, Instant> = HashMap::new();
    let mut logs = LogCache::default();
    // Targets that need not be read again: ready objects other than
    // workloads, whose ready pods can come and go and are what Services
    // count on.
    let mut settled: HashMap<usize, Readiness> = HashMap::new();
    // Services after the workloads they count on.
    let order: Vec<usize> = (0..targets.len())
        .filter(|&i| !targets[i].is_service())
        .chain((0..targets.len()).filter(|&i| targets[i].is_service()))
        .collect();
    loop {
        fault::reached(Point::Wait, cancel).await;
        // Everything was applied and recorded before the wait began, so
        // stopping here leaves nothing half done.
        if cancel.is_cancelled() {
            return Err(EngineError::Interrupted);
        }
        let read_pods = started.elapsed() >= PODS_AFTER;
        let open: Vec<&Target> = targets
            .iter()
            .enumerate()
            .filter(|(i, _)| !settled.contains_key(i))
            .map(|(_, t)| t)
            .collect();
        let snapshot = Snapshot::read(cluster, &open, read_pods).await?;
        let mut now: Vec<Option<Readiness>> = vec![None; targets.len()];
        let mut reasons: HashMap<&ResourceId, Vec<PodReason>> = HashMap::new();
        let mut unready: HashSet<&ResourceId> = HashSet::new();
        for &i in &order {
            let target = &targets[i];
            if let Some(done) = settled.get(&i) {
                now[i] = Some(done.clone());
                continue;
            }
            let waiting_on = target.selects.iter().find(|dep| unready.contains(dep));
            let mut readiness = match waiting_on {
                Some(dep) => not_ready(target.id(), format!("waiting for {dep}")),
                None => check(cluster, &snapshot, target).await?,
            };
            match snapshot.pods_of(target.id()).filter(|_| !readiness.ready) {
                Some(pods) => {
                    let mut found: Vec<PodReason> =
                        pods.iter().filter_map(|p| pod_reason(p)).collect();
                    logs.fill(cluster, target.id(), &mut found).await;
                    let all_stuck = !pods.is_empty()
                        && found.len() == pods.len()
                        && found.iter().all(|r| r.fatal);
                    if all_stuck {
                        stuck_since
                            .entry(target.id().clone())
                            .or_insert_with(Instant::now);
                    } else {
                        stuck_since.remove(target.id());
                    }
                    if let Some(line) = summary(&found, pods.len()) {
                        readiness.reason = Some(line);
                    }
                    reasons.insert(target.id(), found);
                }
                // Ready, or its pods were not read: not stuck.
                None => {
                    stuck_since.remove(target.id());
                }
            }
            if !readiness.ready {
                unready.insert(target.id());
            } else if !rules::is_workload(&target.id.api_version, &target.id.kind) {
                settled.insert(i, readiness.clone());
            }
            now[i] = Some(readiness);
        }
        let now: Vec<Readiness> = now
            .into_iter()
            .map(|r| r.expect("every target was judged"))
            .collect();
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
        poll.wait(cancel).await;
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

/// What one poll reads: the open targets and the workloads their Services
/// count on (one request per object, or one list per kind and namespace
/// where there are several), the EndpointSlices of their Services'
/// namespaces; and, for namespaces with a workload that is not ready,
/// their pods and ReplicaSets.
#[derive(Default)]
struct Snapshot {
    objects: HashMap<ResourceId, Value>,
    /// Ready endpoints by (namespace, Service name).
    endpoints: HashMap<(String, String), i64>,
    /// Pods by namespace, for the namespaces whose pods were read.
    pods: HashMap<String, Vec<Value>>,
    /// ReplicaSets by namespace; absent when they may not be listed.
    replica_sets: HashMap<String, Vec<Value>>,
}

/// The pods or ReplicaSets of a namespace, each kept as [`lean`] leaves it:
/// a wait for a thousand Deployments lists a thousand of each every poll.
/// With `metadata_only` (ReplicaSets, of which only metadata is read) the
/// server sends nothing else.
async fn list_lean(
    cluster: &Cluster,
    api_version: &str,
    kind: &str,
    namespace: &str,
    metadata_only: bool,
) -> Result<Vec<Value>, ClusterError> {
    let mut objects = Vec::new();
    let each = |mut object: Value| {
        lean(&mut object);
        objects.push(object);
    };
    if metadata_only {
        cluster
            .list_metadata_each(api_version, kind, Some(namespace), None, each)
            .await?;
    } else {
        cluster
            .list_each(api_version, kind, Some(namespace), None, each)
            .await?;
    }
    Ok(objects)
}

/// Keeps of a listed pod what a wait reads of it: its name, labels, owners
/// and deletion, its status, and of its containers the name, image and
/// whether a readiness probe is set (a reason names them); of a ReplicaSet,
/// its metadata (labels, revision, owner). Managed fields never.
fn lean(object: &mut Value) {
    crate::cluster::drop_managed_fields(object);
    let Some(root) = object.as_object_mut() else {
        return;
    };
    match root.get("kind").and_then(Value::as_str) {
        Some("Pod") => {
            if let Some(metadata) = root.get_mut("metadata").and_then(Value::as_object_mut) {
                metadata.retain(|key, _| {
                    matches!(
                        key.as_str(),
                        "name"
                            | "namespace"
                            | "uid"
                            | "labels"
                            | "ownerReferences"
                            | "deletionTimestamp"
                    )
                });
            }
            if let Some(spec) = root.get_mut("spec").and_then(Value::as_object_mut) {
                spec.retain(|key, _| key == "containers" || key == "initContainers");
                for container in spec.values_mut().filter_map(Value::as_array_mut).flatten() {
                    if let Some(container) = container.as_object_mut() {
                        container.retain(|key, _| {
                            matches!(key.as_str(), "name" | "image" | "readinessProbe")
                        });
                        if let Some(probe) = container.get_mut("readinessProbe") {
                            *probe = Value::Object(Default::default());
                        }
                    }
                }
            }
        }
        Some("ReplicaSet") => {
            root.remove("spec");
            root.remove("status");
        }
        _ => {}
    }
}

/// Keeps of an object read for the rules of its kind what they read: all
/// but its managed fields, annotations and labels, and a workload's pod
/// and volume templates, the bulk of it (a wait for a thousand Deployments
/// reads a thousand every poll). An object with a program's wait rule is
/// kept whole, as the rule may read any field.
fn lean_target(object: &mut Value) {
    crate::cluster::drop_managed_fields(object);
    if let Some(metadata) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.remove("annotations");
        metadata.remove("labels");
    }
    if let Some(spec) = object.get_mut("spec").and_then(Value::as_object_mut) {
        spec.remove("template");
        spec.remove("volumeClaimTemplates");
    }
}

/// Kinds whose pods can say why they are not ready.
fn runs_pods(id: &ResourceId) -> bool {
    rules::is_workload(&id.api_version, &id.kind)
        || (id.api_version == "batch/v1" && id.kind == "Job")
}

impl Snapshot {
    async fn read(
        cluster: &Cluster,
        open: &[&Target],
        read_pods: bool,
    ) -> Result<Snapshot, EngineError> {
        let mut snapshot = Snapshot::default();
        // Kind and namespace first, so each group can be one list.
        let mut wanted: BTreeMap<(&str, &str, Option<&str>), Vec<&ResourceId>> = BTreeMap::new();
        for target in open {
            if let Some(object) = &target.judge_by {
                snapshot.objects.insert(target.id.clone(), object.clone());
            } else if target.wait.is_none()
                && rules::has_no_status(&target.id.api_version, &target.id.kind)
            {
                // Applied moments ago: it exists, and that is all it can be.
                let object = serde_json::json!({"apiVersion": target.id.api_version,
                    "kind": target.id.kind, "metadata": {"name": target.id.name}});
                snapshot.objects.insert(target.id.clone(), object);
            }
        }
        // A program's wait rule may read any field.
        let whole: HashSet<&ResourceId> = open
            .iter()
            .filter(|t| t.wait.is_some())
            .map(|t| &t.id)
            .collect();
        let unread: Vec<&ResourceId> = open
            .iter()
            .flat_map(|t| std::iter::once(&t.id).chain(&t.selects))
            .filter(|id| !snapshot.objects.contains_key(*id))
            .collect();
        for id in unread {
            wanted
                .entry((&id.api_version, &id.kind, id.namespace.as_deref()))
                .or_default()
                .push(id);
        }
        for ((api_version, kind, namespace), mut ids) in wanted {
            let mut seen = HashSet::new();
            ids.retain(|id| seen.insert(*id));
            snapshot
                .read_objects(cluster, api_version, kind, namespace, &ids, &whole)
                .await?;
        }
        if read_pods {
            snapshot.read_pods(cluster, open).await?;
        }
        // A Service without a selector, or an ExternalName, has no
        // endpoints to count.
        let counts_endpoints = |t: &&&Target| {
            t.judge_by.as_ref().is_none_or(|declared| {
                declared["spec"]["selector"]
                    .as_object()
                    .is_some_and(|s| !s.is_empty())
                    && declared["spec"]["type"] != "ExternalName"
            })
        };
        let service_namespaces: BTreeSet<Option<&str>> = open
            .iter()
            .filter(|t| t.is_service())
            .filter(counts_endpoints)
            .map(|t| t.id.namespace.as_deref())
            .collect();
        for namespace in service_namespaces {
            // Counted as listed: a slice is not kept.
            let endpoints = &mut snapshot.endpoints;
            cluster
                .list_each(
                    "discovery.k8s.io/v1",
                    "EndpointSlice",
                    namespace,
                    None,
                    |slice| {
                        let Some(service) =
                            slice["metadata"]["labels"]["kubernetes.io/service-name"].as_str()
                        else {
                            return;
                        };
                        let key = (
                            namespace.unwrap_or_default().to_string(),
                            service.to_string(),
                        );
                        *endpoints.entry(key).or_default() +=
                            ready_endpoints(std::slice::from_ref(&slice));
                    },
                )
                .await?;
        }
        Ok(snapshot)
    }

    /// One object is read by name; several of a kind in a namespace with
    /// one list, unless these credentials may only read them by name. Each
    /// is kept as [`lean_target`] leaves it, or whole when it is in `whole`.
    async fn read_objects(
        &mut self,
        cluster: &Cluster,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        ids: &[&ResourceId],
        whole: &HashSet<&ResourceId>,
    ) -> Result<(), EngineError> {
        let keep = |id: &ResourceId, object: &mut Value| {
            if whole.contains(id) {
                crate::cluster::drop_managed_fields(object);
            } else {
                lean_target(object);
            }
        };
        if ids.len() > 1 {
            let ids: HashSet<&ResourceId> = ids.iter().copied().collect();
            let mut found = Vec::new();
            let listed = cluster
                .list_each(api_version, kind, namespace, None, |mut object| {
                    if let Some(id) = ResourceId::of(&object)
                        && ids.contains(&id)
                    {
                        keep(&id, &mut object);
                        found.push((id, object));
                    }
                })
                .await;
            match listed {
                Ok(()) => {
                    self.objects.extend(found);
                    return Ok(());
                }
                Err(ClusterError::Forbidden { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        for id in ids {
            if let Some(mut object) = cluster.get(id).await? {
                // The rules go by kind; a read by name may come without it.
                object["apiVersion"] = Value::String(id.api_version.clone());
                object["kind"] = Value::String(id.kind.clone());
                keep(id, &mut object);
                self.objects.insert((*id).clone(), object);
            }
        }
        Ok(())
    }

    async fn read_pods(&mut self, cluster: &Cluster, open: &[&Target]) -> Result<(), EngineError> {
        let unready: Vec<&ResourceId> = open
            .iter()
            .map(|t| &t.id)
            .filter(|id| runs_pods(id))
            .filter(|id| {
                self.objects.get(*id).is_some_and(|live| {
                    rules::assess(live, Endpoints::default()).status != Status::Ready
                })
            })
            .collect();
        let namespaces: BTreeSet<&str> = unready
            .iter()
            .filter_map(|id| id.namespace.as_deref())
            .collect();
        for namespace in namespaces {
            // Reasons are the detail, not the news: credentials that may
            // not list pods still get the counts.
            match list_lean(cluster, "v1", "Pod", namespace, false).await {
                Ok(pods) => {
                    self.pods.insert(namespace.to_string(), pods);
                }
                Err(ClusterError::Forbidden { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
            let deployments = unready
                .iter()
                .any(|id| id.kind == "Deployment" && id.namespace.as_deref() == Some(namespace));
            if !deployments {
                continue;
            }
            match list_lean(cluster, "apps/v1", "ReplicaSet", namespace, true).await {
                Ok(sets) => {
                    self.replica_sets.insert(namespace.to_string(), sets);
                }
                Err(ClusterError::Forbidden { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// The pods whose reasons say why the object is not ready, not being
    /// deleted: a Pod itself; a Deployment's pods of its newest ReplicaSet
    /// (all its pods when ReplicaSets could not be read); a StatefulSet's
    /// pods of its update revision; the pods any other workload owns.
    /// `None` when its pods were not read.
    fn pods_of(&self, id: &ResourceId) -> Option<Vec<&Value>> {
        let live = self.objects.get(id)?;
        if id.api_version == "v1" && id.kind == "Pod" {
            return Some(vec![live]);
        }
        if !runs_pods(id) {
            return None;
        }
        let namespace = id.namespace.as_deref()?;
        let pods = self.pods.get(namespace)?;
        let alive = pods
            .iter()
            .filter(|pod| pod["metadata"]["deletionTimestamp"].is_null());
        if id.kind == "Deployment" {
            let selector = live["spec"]["selector"]["matchLabels"].as_object()?;
            let hash = self
                .replica_sets
                .get(namespace)
                .and_then(|sets| newest_template_hash(live, sets));
            return Some(
                alive
                    .filter(|pod| {
                        let labels = &pod["metadata"]["labels"];
                        selector.iter().all(|(k, v)| &labels[k] == v)
                            && hash
                                .as_ref()
                                .is_none_or(|h| labels["pod-template-hash"] == h.as_str())
                    })
                    .collect(),
            );
        }
        let uid = live["metadata"]["uid"].as_str()?;
        let revision = (id.kind == "StatefulSet")
            .then(|| live["status"]["updateRevision"].as_str())
            .flatten();
        Some(
            alive
                .filter(|pod| owned_by(pod, uid))
                .filter(|pod| {
                    revision
                        .is_none_or(|r| pod["metadata"]["labels"]["controller-revision-hash"] == r)
                })
                .collect(),
        )
    }
}

fn owned_by(object: &Value, uid: &str) -> bool {
    object["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|owners| owners.iter().any(|o| o["uid"] == uid))
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
        .filter(|rs| owned_by(rs, uid))
        .max_by_key(|rs| revision(rs))
        .and_then(|rs| rs["metadata"]["labels"]["pod-template-hash"].as_str())
        .map(str::to_string)
}

/// The ready endpoints a Service should have: the ready pods of the
/// workloads it selects, or one when none of them is among the desired
/// objects (its pods come from elsewhere, but some must be there).
fn expected_endpoints(snapshot: &Snapshot, target: &Target) -> i64 {
    if target.selects.is_empty() {
        return 1;
    }
    target
        .selects
        .iter()
        .filter_map(|id| snapshot.objects.get(id))
        .map(rules::ready_pods)
        .sum()
}

async fn check(
    cluster: &Cluster,
    snapshot: &Snapshot,
    target: &Target,
) -> Result<Readiness, EngineError> {
    let id = target.id();
    let Some(live) = snapshot.objects.get(id) else {
        return Ok(not_ready(id, "not found".into()));
    };
    let endpoints = if target.is_service() {
        Endpoints {
            ready: snapshot
                .endpoints
                .get(&(id.namespace.clone().unwrap_or_default(), id.name.clone()))
                .copied()
                .unwrap_or(0),
            expected: expected_endpoints(snapshot, target),
        }
    } else {
        Endpoints::default()
    };
    let Verdict {
        status,
        progress,
        reason,
    } = match &target.wait {
        Some(rule) => rule.assess(live, endpoints),
        None => rules::assess(live, endpoints),
    };
    match status {
        Status::Failed => {
            let reason = reason.unwrap_or_else(|| progress.clone());
            if id.kind == "Deployment" && target.wait.is_none() {
                let pods = pod_problems(cluster, id, live).await?;
                Err(EngineError::RolloutFailed {
                    id: id.to_string(),
                    details: format!("{reason}{pods}"),
                })
            } else {
                Err(EngineError::Failed {
                    id: id.to_string(),
                    details: reason,
                })
            }
        }
        status => Ok(Readiness {
            id: id.clone(),
            ready: status == Status::Ready,
            progress,
            reason,
        }),
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
        .list_without_managed_fields("v1", "Pod", id.namespace.as_deref(), Some(&selector))
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
pub(crate) fn ready_endpoints(slices: &[Value]) -> i64 {
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

    #[test]
    fn a_lean_pod_keeps_what_its_reasons_read_and_a_replica_set_its_metadata() {
        let meta = json!({"name": "x", "labels": {"a": "b"}, "managedFields": [{"manager": "m"}]});
        let mut pod = json!({
            "kind": "Pod",
            "metadata": {"name": "x", "labels": {"a": "b"}, "managedFields": [{"manager": "m"}],
                         "annotations": {"big": "note"}, "ownerReferences": [{"uid": "u"}],
                         "resourceVersion": "7"},
            "spec": {"containers": [{"name": "c", "image": "i", "env": [{"name": "E"}],
                                     "readinessProbe": {"httpGet": {"port": 80}}}],
                     "initContainers": [],
                     "volumes": [{"name": "v"}], "tolerations": []},
            "status": {"phase": "Pending"},
        });
        lean(&mut pod);
        assert_eq!(
            pod,
            json!({
                "kind": "Pod",
                "metadata": {"name": "x", "labels": {"a": "b"}, "ownerReferences": [{"uid": "u"}]},
                "spec": {"containers": [{"name": "c", "image": "i", "readinessProbe": {}}],
                         "initContainers": []},
                "status": {"phase": "Pending"},
            })
        );
        let mut set = json!({"kind": "ReplicaSet", "metadata": meta,
                             "spec": {"replicas": 1}, "status": {"replicas": 1}});
        lean(&mut set);
        assert_eq!(
            set,
            json!({"kind": "ReplicaSet", "metadata": {"name": "x", "labels": {"a": "b"}}})
        );
    }
    #[test]
    fn a_lean_target_keeps_what_the_rules_read_without_its_templates() {
        let mut deployment = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "uid": "u", "generation": 2,
                         "labels": {"a": "b"}, "annotations": {"note": "long"},
                         "managedFields": [{"manager": "m"}]},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"spec": {"containers": [{"name": "c"}]}}},
            "status": {"observedGeneration": 2, "readyReplicas": 3},
        });
        lean_target(&mut deployment);
        assert_eq!(
            deployment,
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "uid": "u", "generation": 2},
                "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}}},
                "status": {"observedGeneration": 2, "readyReplicas": 3},
            })
        );
        let mut set = json!({"kind": "StatefulSet", "metadata": {"name": "db"},
            "spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}}],
                     "template": {}, "replicas": 1}});
        lean_target(&mut set);
        assert_eq!(set["spec"], json!({"replicas": 1}));
    }

    use crate::plan::Step;

    fn plan(steps: Vec<Step>) -> Plan {
        Plan {
            stack: "s".into(),
            steps,
            interrupted: Vec::new(),
            untracked: Vec::new(),
            left_out: Vec::new(),
        }
    }

    fn desired(api_version: &str, kind: &str, name: &str, spec: Value) -> DesiredResource {
        DesiredResource {
            id: ResourceId::new(api_version, kind, Some("ns"), name),
            object: json!({"apiVersion": api_version, "kind": kind,
                "metadata": {"name": name, "namespace": "ns"}, "spec": spec}),
            depends_on: Vec::new(),
            options: Default::default(),
        }
    }

    fn workload(kind: &str, name: &str, labels: Value) -> DesiredResource {
        desired(
            "apps/v1",
            kind,
            name,
            json!({"template": {"metadata": {"labels": labels}}}),
        )
    }

    fn service(name: &str, selector: Value) -> DesiredResource {
        desired("v1", "Service", name, json!({"selector": selector}))
    }

    fn names(targets: &[Target]) -> Vec<&str> {
        targets.iter().map(|t| t.id.name.as_str()).collect()
    }

    #[test]
    fn a_service_counts_on_the_workloads_whose_pod_labels_its_selector_matches() {
        let objects = vec![
            workload("StatefulSet", "db", json!({"app": "db", "tier": "data"})),
            workload("Deployment", "web", json!({"app": "web"})),
            workload("DaemonSet", "agent", json!({"app": "db"})),
            service("db", json!({"app": "db"})),
        ];
        let steps = objects
            .iter()
            .map(|d| Step::bare(Op::Create, &d.id))
            .collect();
        let targets = targets(&plan(steps), &objects, &[]);
        let db = targets.iter().find(|t| t.id.kind == "Service").unwrap();
        let selected: Vec<&str> = db.selects.iter().map(|id| id.name.as_str()).collect();
        assert_eq!(selected, ["db", "agent"]);
    }

    #[test]
    fn a_service_without_a_selector_or_in_another_namespace_selects_nothing() {
        let mut elsewhere = workload("Deployment", "web", json!({"app": "web"}));
        elsewhere.id.namespace = Some("other".into());
        let objects = vec![
            elsewhere,
            service("web", json!({"app": "web"})),
            desired("v1", "Service", "manual", json!({"ports": []})),
        ];
        let steps = objects
            .iter()
            .map(|d| Step::bare(Op::Create, &d.id))
            .collect();
        let targets = targets(&plan(steps), &objects, &[]);
        assert!(targets.iter().all(|t| t.selects.is_empty()), "{targets:?}");
    }

    #[test]
    fn only_what_the_plan_changes_or_an_interrupted_run_left_is_waited_for() {
        let objects = vec![
            desired("v1", "ConfigMap", "same", json!({})),
            desired("v1", "ConfigMap", "created", json!({})),
            desired("v1", "ConfigMap", "updated", json!({})),
            desired("v1", "ConfigMap", "replaced", json!({})),
            desired("v1", "ConfigMap", "left", json!({})),
        ];
        let ops = [Op::Same, Op::Create, Op::Update, Op::Replace, Op::Same];
        let steps = objects
            .iter()
            .zip(ops)
            .map(|(d, op)| Step::bare(op, &d.id))
            .chain([Step::bare(
                Op::Delete,
                &ResourceId::new("v1", "ConfigMap", Some("ns"), "gone"),
            )])
            .collect();
        let left = [objects[4].id.clone()];
        let targets = targets(&plan(steps), &objects, &left);
        assert_eq!(names(&targets), ["created", "updated", "replaced", "left"]);
    }

    #[test]
    fn an_unchanged_service_in_front_of_a_changed_workload_is_waited_for() {
        let objects = vec![
            workload("Deployment", "web", json!({"app": "web"})),
            service("web", json!({"app": "web"})),
            service("other", json!({"app": "other"})),
        ];
        let steps = vec![
            Step::bare(Op::Update, &objects[0].id),
            Step::bare(Op::Same, &objects[1].id),
            Step::bare(Op::Same, &objects[2].id),
        ];
        let targets = targets(&plan(steps), &objects, &[]);
        assert_eq!(names(&targets), ["web", "web"]);
        assert_eq!(targets[1].selects, [objects[0].id.clone()]);
    }

    #[test]
    fn targets_come_in_the_order_apply_uses() {
        let mut web = workload("Deployment", "web", json!({"app": "web"}));
        let config = desired("v1", "ConfigMap", "config", json!({}));
        web.depends_on = vec![config.id.clone()];
        let mut front = service("front", json!({"app": "web"}));
        front.depends_on = vec![web.id.clone()];
        // Declared dependents first: apply still goes config, web, front.
        let objects = vec![front, web, config];
        let steps = objects
            .iter()
            .map(|d| Step::bare(Op::Create, &d.id))
            .collect();
        assert_eq!(
            names(&targets(&plan(steps), &objects, &[])),
            ["config", "web", "front"]
        );
    }

    #[test]
    fn a_service_expects_the_ready_pods_of_its_workloads_or_one() {
        let web = ResourceId::new("apps/v1", "Deployment", Some("ns"), "web");
        let agent = ResourceId::new("apps/v1", "DaemonSet", Some("ns"), "agent");
        let mut snapshot = Snapshot::default();
        snapshot.objects.insert(
            web.clone(),
            json!({"kind": "Deployment", "status": {"readyReplicas": 3}}),
        );
        snapshot.objects.insert(
            agent.clone(),
            json!({"kind": "DaemonSet", "status": {"numberReady": 2}}),
        );
        let target = |selects: Vec<ResourceId>| Target {
            id: ResourceId::new("v1", "Service", Some("ns"), "s"),
            selects,
            judge_by: None,
            wait: None,
        };
        assert_eq!(expected_endpoints(&snapshot, &target(vec![web, agent])), 5);
        assert_eq!(expected_endpoints(&snapshot, &target(Vec::new())), 1);
    }

    #[test]
    fn a_stateful_sets_pods_are_those_it_owns_of_its_update_revision() {
        let id = ResourceId::new("apps/v1", "StatefulSet", Some("ns"), "db");
        let pod = |name: &str, owner: &str, revision: &str| {
            json!({"metadata": {"name": name, "ownerReferences": [{"uid": owner}],
                "labels": {"controller-revision-hash": revision}}})
        };
        let mut snapshot = Snapshot::default();
        snapshot.objects.insert(
            id.clone(),
            json!({"metadata": {"uid": "s1"}, "status": {"updateRevision": "db-2"}}),
        );
        snapshot.pods.insert(
            "ns".into(),
            vec![
                pod("db-0", "s1", "db-1"),
                pod("db-1", "s1", "db-2"),
                pod("other-0", "s2", "db-2"),
            ],
        );
        let pods = snapshot.pods_of(&id).unwrap();
        let names: Vec<&str> = pods
            .iter()
            .map(|p| p["metadata"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["db-1"]);
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
    fn endpoints_count_ready_and_unknown_but_not_unready() {
        let slices = vec![json!({"endpoints": [
            {"conditions": {"ready": true}},
            {"conditions": {}},
            {"conditions": {"ready": false}}
        ]})];
        assert_eq!(ready_endpoints(&slices), 2);
    }
}
