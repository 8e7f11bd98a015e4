//! Readiness for kinds the echo program does not declare, through the
//! engine itself: plan, apply and wait on the local control plane, with
//! the objects of a small program written here. kwok makes pods Running
//! and Ready and completes Jobs' pods; there is no volume provisioner and
//! no load-balancer controller, which is what the timeouts below show.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use echo_iac_engine::cluster::{self, Cluster};
use echo_iac_engine::operation::Event;
use echo_iac_engine::operation::{self, Observer, UpOptions};
use echo_iac_engine::planner::{self, PlanOptions};
use echo_iac_engine::ready::Readiness;
use echo_iac_engine::state::{LocalStore, Locked, StateStore};
use echo_iac_engine::{DesiredResource, EngineError, Identity, ResourceId};

use crate::util::{self, TestNamespace};

const STACK: &str = "readiness";
/// A program of its own, not the echo program.
const PROGRAM: &str = "ready-test";

/// What a wait ended with, and every progress line it reported on the way
/// (`Kind ns/name: progress; reason`).
struct Waited {
    result: Result<(), EngineError>,
    lines: Vec<String>,
    /// Every target as the wait last reported it.
    last: Vec<Readiness>,
    took: Duration,
}

impl Waited {
    fn saw(&self, needle: &str) -> bool {
        self.lines.iter().any(|l| l.contains(needle))
    }

    fn ready(&self) -> &[Readiness] {
        match &self.result {
            Ok(()) => &self.last,
            Err(e) => panic!("the wait failed: {e}\nprogress:\n{}", self.lines.join("\n")),
        }
    }

    fn progress_of(&self, kind: &str, name: &str) -> String {
        self.ready()
            .iter()
            .find(|r| r.id.kind == kind && r.id.name == name)
            .map(|r| r.progress.clone())
            .unwrap_or_else(|| panic!("{kind} {name} was not waited for: {:?}", self.ready()))
    }

    fn error(&self) -> String {
        match &self.result {
            Ok(()) => panic!("the wait succeeded: {:?}", self.last),
            Err(e) => e.to_string(),
        }
    }
}

/// Keeps the wait's progress lines, and its last picture.
#[derive(Default)]
struct Lines {
    lines: Mutex<Vec<String>>,
    last: Mutex<Vec<Readiness>>,
}

impl Observer for Lines {
    fn event(&self, _event: Event<'_>) {}

    fn waiting(&self, changed: &[&Readiness], all: &[Readiness]) {
        *self.last.lock().unwrap() = all.to_vec();
        let mut lines = self.lines.lock().unwrap();
        for r in changed {
            let reason = r.reason.as_deref().unwrap_or_default();
            lines.push(format!("{}: {}; {reason}", r.id, r.progress));
        }
    }
}

/// Plans and runs `up` for `objects` through the engine, with the stack's
/// ownership labels put on each. The grace period is long: most of these
/// tests are about the kinds' own verdicts, not about pods stuck on a
/// reason.
fn up(objects: Vec<Value>, timeout: Duration) -> Waited {
    up_with_grace(objects, timeout, Duration::from_secs(300))
}

/// [`up`], giving up on a workload whose new pods are all stuck for `grace`.
fn up_with_grace(objects: Vec<Value>, timeout: Duration, grace: Duration) -> Waited {
    let runtime = tokio::runtime::Runtime::new().expect("start a runtime");
    let state_dir = tempfile::tempdir().expect("a folder for the state");
    runtime.block_on(async {
        let target = cluster::Target {
            kubeconfig: vec![util::kubeconfig()],
            context: None,
            request_timeout: None,
            plugins: Default::default(),
            notices: Default::default(),
        };
        let identity = Identity::new(PROGRAM);
        let labels = identity.ownership_labels(STACK);
        let cluster = Cluster::connect(&target, identity.clone())
            .await
            .expect("connect to the control plane");
        let desired: Vec<DesiredResource> = objects
            .into_iter()
            .map(|mut object| {
                for (key, value) in &labels {
                    object["metadata"]["labels"][key] = json!(value);
                }
                DesiredResource {
                    id: ResourceId::of(&object).expect("test objects have an identity"),
                    object,
                    depends_on: Vec::new(),
                    options: Default::default(),
                }
            })
            .collect();
        let store = LocalStore::new(state_dir.path().to_path_buf(), STACK, &identity);
        let state = store.load().await.expect("an empty state");
        let plan_options = PlanOptions {
            concurrency: 4,
            ..PlanOptions::default()
        };
        let plan = planner::plan_up(&cluster, STACK, &desired, &state, &plan_options)
            .await
            .expect("plan");
        let options = UpOptions {
            concurrency: 4,
            timeout,
            wait_grace: grace,

            ..UpOptions::default()
        };
        let lines = Lines::default();
        let started = Instant::now();
        let locked = Locked::acquire(&store, "readiness test", None)
            .await
            .expect("the stack is not locked");
        let result = operation::up(&cluster, &locked, state, &plan, &desired, &options, &lines)
            .await
            .map(|_applied| ());
        locked.release().await;
        let took = started.elapsed();
        let last = lines.last.into_inner().unwrap();
        let lines = lines.lines.into_inner().unwrap();
        // Shown when a test fails.
        eprintln!("progress:\n{}", lines.join("\n"));
        Waited {
            result,
            lines,
            last,
            took,
        }
    })
}

fn meta(name: &str, ns: &TestNamespace) -> Value {
    json!({"name": name, "namespace": ns.name()})
}

fn pod_template(app: &str) -> Value {
    json!({"metadata": {"labels": {"app": app}},
        "spec": {"containers": [{"name": "main", "image": "nginx:alpine"}]}})
}

fn stateful_set(ns: &TestNamespace, name: &str, replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta(name, ns),
        "spec": {"replicas": replicas, "serviceName": name,
            "selector": {"matchLabels": {"app": name}}, "template": pod_template(name)}})
}

fn service(ns: &TestNamespace, name: &str, app: &str, kind: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": meta(name, ns),
        "spec": {"type": kind, "selector": {"app": app},
            "ports": [{"port": 80, "targetPort": 80}]}})
}

/// A CRD of a group of its own, deleted when dropped.
struct TestCrd {
    name: String,
}

impl TestCrd {
    fn new(ns: &TestNamespace) -> (Self, Value) {
        let group = format!("{}.example.org", ns.name());
        let name = format!("widgets.{group}");
        let object = json!({"apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition", "metadata": {"name": name},
            "spec": {"group": group, "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "schema": {"openAPIV3Schema": {"type": "object"}}}]}});
        (TestCrd { name }, object)
    }
}

impl Drop for TestCrd {
    fn drop(&mut self) {
        let _ = util::kubectl(&["delete", "crd", &self.name, "--wait=false"]);
    }
}

#[test]
fn a_stateful_set_a_daemon_set_a_job_a_pod_and_a_crd_are_each_waited_for_by_their_kind() {
    let ns = TestNamespace::new("ready-kinds");
    let (held, crd) = TestCrd::new(&ns);
    let objects = vec![
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("settings", &ns),
            "data": {"a": "b"}}),
        crd,
        stateful_set(&ns, "db", 2),
        // No dependency on the StatefulSet: its selector is the link.
        service(&ns, "db", "db", "ClusterIP"),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta("agent", &ns),
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                "template": pod_template("agent")}}),
        service(&ns, "agent", "agent", "ClusterIP"),
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta("migrate", &ns),
            "spec": {"completions": 1, "template": {"spec": {"restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox"}]}}}}),
        // A Pod is no workload: the Service that selects it expects one
        // ready endpoint.
        json!({"apiVersion": "v1", "kind": "Pod", "metadata":
            {"name": "solo", "namespace": ns.name(), "labels": {"app": "solo"}},
            "spec": {"containers": [{"name": "main", "image": "nginx:alpine"}]}}),
        service(&ns, "solo", "solo", "ClusterIP"),
        // Endpoints someone else manages, and a name elsewhere: nothing to
        // count.
        json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("manual", &ns),
            "spec": {"ports": [{"port": 80}]}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("elsewhere", &ns),
            "spec": {"type": "ExternalName", "externalName": "example.org"}}),
    ];
    let waited = up(objects, Duration::from_secs(90));
    let progress = |kind, name| waited.progress_of(kind, name);

    assert_eq!(progress("ConfigMap", "settings"), "exists");
    assert_eq!(
        progress("CustomResourceDefinition", &held.name),
        "established"
    );
    assert_eq!(progress("StatefulSet", "db"), "2/2 ready replicas");
    assert_eq!(progress("Service", "db"), "2/2 endpoints ready");
    // The DaemonSet runs a pod on each of the nodes that take its pods, and
    // its Service expects each of them.
    let agent = progress("DaemonSet", "agent");
    let nodes: i64 = agent
        .split('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no node count in {agent:?}"));
    assert!(nodes >= 1, "{agent}");
    assert_eq!(agent, format!("{nodes}/{nodes} nodes ready"));
    assert_eq!(
        progress("Service", "agent"),
        format!("{nodes}/{nodes} endpoints ready")
    );
    assert_eq!(progress("Job", "migrate"), "complete (1/1 succeeded)");
    assert_eq!(progress("Pod", "solo"), "ready");
    assert_eq!(progress("Service", "solo"), "1/1 endpoints ready");
    assert_eq!(progress("Service", "manual"), "no selector");
    assert_eq!(progress("Service", "elsewhere"), "external name");
    // The Service was never counted before its StatefulSet was ready (which
    // starts its pods one at a time): it waited for it, then expected both.
    let line = |prefix: &str| {
        let prefix = format!("{prefix} {}/db: ", ns.name());
        waited
            .lines
            .iter()
            .position(|l| l.starts_with(&prefix) && l.contains("2/2"))
            .unwrap_or_else(|| panic!("no line for {prefix}: {:#?}", waited.lines))
    };
    assert!(line("StatefulSet") < line("Service"), "{:#?}", waited.lines);
    let counted: Vec<&String> = waited
        .lines
        .iter()
        .filter(|l| {
            l.starts_with(&format!("Service {}/db: ", ns.name())) && l.contains("endpoints")
        })
        .collect();
    assert!(
        counted.iter().all(|l| l.contains("/2 endpoints ready")),
        "{counted:#?}"
    );
    assert!(waited.saw("ready replicas"), "{:#?}", waited.lines);

    // What the wait saw is what the cluster holds.
    let sts = util::kubectl_json(&["get", "statefulset", "db", "-n", ns.name()]);
    assert_eq!(sts["status"]["readyReplicas"], 2, "{sts:#}");
    let job = util::kubectl_json(&["get", "job", "migrate", "-n", ns.name()]);
    assert_eq!(job["status"]["succeeded"], 1, "{job:#}");
}

#[test]
fn a_load_balancer_without_an_address_and_an_unbound_claim_time_out_saying_why() {
    let ns = TestNamespace::new("ready-never");
    // No selector, so nothing but the address is waited for.
    let lb = json!({"apiVersion": "v1", "kind": "Service", "metadata": meta("front", &ns),
        "spec": {"type": "LoadBalancer", "ports": [{"port": 80}],
            // A class no controller implements: no address comes, on any
            // cluster.
            "loadBalancerClass": "example.org/none",
            // Node ports are the other tests' to choose.
            "allocateLoadBalancerNodePorts": false}});
    let objects = vec![
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta("settings", &ns)}),
        lb,
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": meta("data", &ns),
            "spec": {"storageClassName": "no-such-class", "accessModes": ["ReadWriteOnce"],
                "resources": {"requests": {"storage": "1Gi"}}}}),
    ];
    let waited = up(objects, Duration::from_secs(5));
    let error = waited.error();
    let ns = ns.name();
    assert!(error.contains("did not become ready within 5s"), "{error}");
    assert!(
        error.contains(&format!(
            "Service {ns}/front: no selector, waiting for a load-balancer address: no load-balancer controller has assigned an address yet"
        )),
        "{error}"
    );
    assert!(
        error.contains(&format!(
            "PersistentVolumeClaim {ns}/data: PVC Pending: no volume bound yet (storage class no-such-class)"
        )),
        "{error}"
    );
    // Only what is not ready is listed.
    assert!(!error.contains("ConfigMap"), "{error}");
    assert!(
        waited.saw(&format!("ConfigMap {ns}/settings: exists")),
        "{:#?}",
        waited.lines
    );
}

#[test]
fn a_job_that_fails_ends_the_wait_at_once_with_its_reason() {
    let ns = TestNamespace::new("ready-job-fails");
    // Its pod can go nowhere, and the Job gives up after two seconds.
    let job = json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta("late", &ns),
        "spec": {"activeDeadlineSeconds": 2, "backoffLimit": 0,
            "template": {"spec": {"restartPolicy": "Never",
                "nodeSelector": {"echo-iac.io/no-such-node": "x"},
                "containers": [{"name": "main", "image": "busybox"}]}}}});
    let waited = up(vec![job], Duration::from_secs(120));
    let error = waited.error();
    assert!(
        error.starts_with(&format!("Job {}/late failed: DeadlineExceeded", ns.name())),
        "{error}"
    );
    // Failed is final: the wait did not run into its timeout.
    assert!(
        waited.took < Duration::from_secs(60),
        "took {:?}",
        waited.took
    );
    assert!(
        waited.saw(&format!("Job {}/late: 0/1 succeeded", ns.name())),
        "{:#?}",
        waited.lines
    );
}

#[test]
fn a_stateful_set_whose_pods_fit_no_node_stops_after_the_grace_period_with_the_schedulers_reason() {
    let ns = TestNamespace::new("ready-sts-stuck");
    let mut sts = stateful_set(&ns, "db", 2);
    sts["spec"]["template"]["spec"]["nodeSelector"] = json!({"echo-iac.io/no-such-node": "x"});
    let waited = up_with_grace(vec![sts], Duration::from_secs(120), Duration::from_secs(3));
    let error = waited.error();
    assert!(
        error.starts_with(&format!(
            "StatefulSet {}/db cannot become ready: every new pod has been stuck for 3s",
            ns.name()
        )),
        "{error}"
    );
    assert!(error.contains("pod db-0: Unschedulable: 0/"), "{error}");
    assert!(
        waited.took < Duration::from_secs(60),
        "took {:?}",
        waited.took
    );
    // While it waited, the StatefulSet's line said why.
    assert!(
        waited.saw(&format!(
            "StatefulSet {}/db: 0/2 ready replicas; Unschedulable (1/1 new pods)",
            ns.name()
        )),
        "{:#?}",
        waited.lines
    );
}
