//! Chaos runs (`make chaos`; docs/reliability.md): a stack of 300 objects on
//! the kwok nodes whose `up`s and `destroy`s are cut short at random
//! moments, by the API server's death or by the run's own, twenty times per
//! scenario:
//!
//! | scenario | backend | fault |
//! | --- | --- | --- |
//! | `file/api-server` | `file://state` | the API server is killed (SIGKILL) a random time into the command, or while the run pauses at a random state write, and started again after a random outage |
//! | `kubernetes/api-server` | `kubernetes://<namespace>` | the same |
//! | `file/process` | `file://state` | the run is killed (SIGKILL) a random time into the command, or kills itself at a random fault point (`ECHO_IAC_FAULT`: before or after an apply, at a delete, a readiness poll or a state write) |
//! | `kubernetes/process` | `kubernetes://<namespace>` | the same; the next run waits for the dead run's Lease to run out (`--wait-for-lock`) |
//!
//! After each fault the same command runs again until it exits 0, at most
//! [`ATTEMPTS`] times and within [`CONVERGE_WITHIN`] of the fault; then the
//! state must list exactly the objects the cluster holds with the stack's
//! label, no operation may be pending, and after an `up` a preview must find
//! nothing to change.
//!
//! Every run starts from a state it first brings the stack to without
//! faults, so that a run depends only on its own seed: a failure prints the
//! `CHAOS_SEED` that replays it as the first run of its scenario. Timing
//! still differs from one machine (and one moment) to the next, so a replay
//! cuts the command at the same fraction of its usual duration, not
//! necessarily at the same request.
//!
//! Environment: `CHAOS_SEED` (default: from the clock; printed),
//! `CHAOS_RUNS` (runs per scenario, default 20), `CHAOS_SCENARIOS` (names
//! above, comma-separated; default all four). Each run's commands and their
//! output go to `<target>/tmp/chaos/<scenario>-<run>.log`.

#[path = "harness.rs"]
mod harness;
#[path = "restart.rs"]
mod restart;
#[path = "util.rs"]
mod util;

use std::collections::BTreeSet;
use std::fmt;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{Run, Running, TestStack};
use crate::restart::Process;
use crate::util::TestNamespace;

/// Echo services in the full stack: a ConfigMap, a Deployment and a
/// Service each.
const ENTRIES: usize = 100;
const OBJECTS_PER_ENTRY: usize = 3;
/// The longest any one command may take before the run fails.
const COMMAND_LIMIT: Duration = Duration::from_secs(300);
/// How many times the command runs again after a fault before the run fails.
const ATTEMPTS: u32 = 3;
/// How long after the fault the stack must be converged.
const CONVERGE_WITHIN: Duration = Duration::from_secs(360);
/// What a run after a fault waits for a dead run's lock: a Lease lasts 15 s.
const WAIT_FOR_LOCK: &str = "60s";
/// The longest the API server stays down, before the time it takes to start.
const MAX_OUTAGE: Duration = Duration::from_secs(10);
const BASE_MESSAGE: &str = "Hello from the chaos stack";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    File,
    Kubernetes,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Killed {
    ApiServer,
    Process,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Scenario {
    backend: Backend,
    killed: Killed,
}

const SCENARIOS: [Scenario; 4] = [
    Scenario {
        backend: Backend::File,
        killed: Killed::ApiServer,
    },
    Scenario {
        backend: Backend::Kubernetes,
        killed: Killed::ApiServer,
    },
    Scenario {
        backend: Backend::File,
        killed: Killed::Process,
    },
    Scenario {
        backend: Backend::Kubernetes,
        killed: Killed::Process,
    },
];

impl Scenario {
    fn name(self) -> String {
        let backend = match self.backend {
            Backend::File => "file",
            Backend::Kubernetes => "kubernetes",
        };
        let killed = match self.killed {
            Killed::ApiServer => "api-server",
            Killed::Process => "process",
        };
        format!("{backend}/{killed}")
    }

    /// Mixed into a run's seed, so that the scenarios' runs differ.
    fn salt(self) -> u64 {
        match (self.backend, self.killed) {
            (Backend::File, Killed::ApiServer) => 0x1f11_e0a1,
            (Backend::Kubernetes, Killed::ApiServer) => 0x2c1a_57e2,
            (Backend::File, Killed::Process) => 0x3f11_e0b3,
            (Backend::Kubernetes, Killed::Process) => 0x4c1a_57e4,
        }
    }
}

/// SplitMix64: small, and the same numbers on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number from `low` to `high`, both included.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }

    /// A number from 0 (included) to 1 (excluded).
    fn fraction(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.next() as usize % items.len()]
    }
}

/// The seed of the run after the one seeded `seed`.
fn next_seed(seed: u64) -> u64 {
    Rng(seed).next()
}

/// What the faulted command does to the stack.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    /// `up` of the whole stack from nothing.
    Create,
    /// `up` with a new message: every ConfigMap and Deployment changes, and
    /// the Deployments roll.
    Update,
    /// `up` with the last entries gone from the stack file: their objects
    /// are deleted.
    Prune { keep: usize },
    /// `destroy` of the whole stack.
    Destroy,
}

impl Op {
    fn args(self) -> &'static [&'static str] {
        match self {
            Op::Destroy => &["destroy", "--yes"],
            _ => &["up", "--yes"],
        }
    }

    /// Objects the stack holds once the command is done.
    fn objects_after(self) -> usize {
        match self {
            Op::Create | Op::Update => ENTRIES * OBJECTS_PER_ENTRY,
            Op::Prune { keep } => keep * OBJECTS_PER_ENTRY,
            Op::Destroy => 0,
        }
    }

    /// The index of its figures in a [`Calibration`].
    fn slot(self) -> usize {
        match self {
            Op::Create => 0,
            Op::Update => 1,
            Op::Prune { .. } => 2,
            Op::Destroy => 3,
        }
    }

    /// The fault points the command passes, with how many times it passes
    /// each at least (`writes`: its state writes, as calibrated).
    fn points(self, writes: u64) -> Vec<(&'static str, u64)> {
        let objects = (ENTRIES * OBJECTS_PER_ENTRY) as u64;
        let mut points = match self {
            Op::Create => vec![
                ("before-apply", objects),
                ("after-apply", objects),
                ("wait", 1),
            ],
            // A ConfigMap and a Deployment per entry; the Services stay.
            Op::Update => vec![
                ("before-apply", objects * 2 / 3),
                ("after-apply", objects * 2 / 3),
                ("wait", 1),
            ],
            Op::Prune { keep } => vec![("delete", ((ENTRIES - keep) * OBJECTS_PER_ENTRY) as u64)],
            Op::Destroy => vec![("delete", objects)],
        };
        if writes > 0 {
            points.push(("state-write", writes));
        }
        points
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Create => write!(f, "up (create {})", ENTRIES * OBJECTS_PER_ENTRY),
            Op::Update => write!(f, "up (update)"),
            Op::Prune { keep } => {
                write!(f, "up (prune {})", (ENTRIES - keep) * OBJECTS_PER_ENTRY)
            }
            Op::Destroy => write!(f, "destroy"),
        }
    }
}

/// How a run is cut short.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// The API server is killed `at` into the command and started again
    /// `outage` later.
    ApiServerAfter { at: Duration, outage: Duration },
    /// The API server is killed while the run pauses before its `nth` state
    /// write, which it then attempts; started again `outage` later.
    ApiServerAtStateWrite { nth: u64, outage: Duration },
    /// The run is killed `at` into the command.
    ProcessAfter { at: Duration },
    /// The run kills itself the `nth` time it reaches `point`.
    ProcessAt { point: &'static str, nth: u64 },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::ApiServerAfter { at, outage } => write!(
                f,
                "API server killed after {:.2} s, down {:.1} s",
                at.as_secs_f64(),
                outage.as_secs_f64()
            ),
            Fault::ApiServerAtStateWrite { nth, outage } => write!(
                f,
                "API server killed at state-write:{nth}, down {:.1} s",
                outage.as_secs_f64()
            ),
            Fault::ProcessAfter { at } => write!(f, "run killed after {:.2} s", at.as_secs_f64()),
            Fault::ProcessAt { point, nth } => write!(f, "run killed at {point}:{nth}"),
        }
    }
}

/// A fault-free run of each operation: how long it takes and how many
/// state writes it makes, by [`Op::slot`].
struct Calibration {
    time: [Duration; 4],
    writes: [u64; 4],
}

/// What one run did.
struct Report {
    op: Op,
    fault: Fault,
    /// Whether the fault struck while the command ran.
    landed: bool,
    /// How the faulted command ended, and when.
    outcome: String,
    /// Runs of the command after the faulted one, up to the first that
    /// exited 0.
    attempts: u32,
    /// From the fault to the end of the first run after it that exited 0
    /// (the faulted run itself, when it rode the fault out).
    converged_after: Duration,
}

/// The stack under test, with its namespace and, for the cluster backend,
/// the namespace its state lives in.
struct ChaosStack {
    stack: TestStack,
    state_namespace: Option<TestNamespace>,
}

impl ChaosStack {
    fn new(backend: Backend) -> Self {
        let prefix = match backend {
            Backend::File => "chaos-file",
            Backend::Kubernetes => "chaos-kube",
        };
        ChaosStack {
            stack: TestStack::new(prefix),
            state_namespace: match backend {
                Backend::File => None,
                Backend::Kubernetes => Some(TestNamespace::new(&format!("{prefix}-state"))),
            },
        }
    }

    /// Writes the stack file: `entries` echo services answering `message`.
    fn write(&self, entries: usize, message: &str) {
        let mut body = String::new();
        if let Some(ns) = &self.state_namespace {
            body.push_str(&format!("backend: kubernetes://{ns}\n"));
        }
        body.push_str("echoes:\n");
        for i in 0..entries {
            body.push_str(&format!(
                "  - name: e{i}\n    replicas: 1\n    serviceType: ClusterIP\n    message: {message}\n"
            ));
        }
        self.stack.write(&body);
    }

    /// Runs `args` to its end, failing the run if it takes longer than
    /// [`COMMAND_LIMIT`].
    fn run(&self, args: &[&str]) -> Run {
        self.stack.spawn(args, &[]).wait(COMMAND_LIMIT)
    }

    /// Runs `args` without faults and insists that it succeeds.
    fn clean(&self, args: &[&str]) -> Result<Run, String> {
        let mut all = args.to_vec();
        all.extend(["--wait-for-lock", WAIT_FOR_LOCK]);
        let run = self.run(&all);
        if run.code == 0 {
            Ok(run)
        } else {
            Err(format!("a run without faults failed: {run}"))
        }
    }

    /// The stored state, as `stack export` prints it.
    fn state(&self) -> Result<Value, String> {
        let run = self.run(&["stack", "export"]);
        if run.code != 0 {
            return Err(format!("cannot export the state: {run}"));
        }
        serde_json::from_str(&run.stdout).map_err(|e| format!("export is not JSON ({e}): {run}"))
    }

    fn serial(&self) -> Result<u64, String> {
        Ok(self.state()?["serial"].as_u64().unwrap_or(0))
    }

    /// Brings the stack, without faults, to where `op` starts from: nothing
    /// for a create, the whole stack with the base message otherwise.
    fn prepare(&self, op: Op) -> Result<(), String> {
        self.write(ENTRIES, BASE_MESSAGE);
        match op {
            Op::Create => self.clean(&["destroy", "--yes"]),
            _ => self.clean(&["up", "--yes"]),
        }
        .map(drop)
    }

    /// Writes the stack file `op` runs with.
    fn write_for(&self, op: Op, seed: u64) {
        match op {
            Op::Create | Op::Destroy => self.write(ENTRIES, BASE_MESSAGE),
            Op::Update => self.write(ENTRIES, &format!("Changed by run {seed:x}")),
            Op::Prune { keep } => self.write(keep, BASE_MESSAGE),
        }
    }

    /// Each operation twice without faults, from the state it starts from:
    /// the shorter time of the two (one run can be slowed by whatever else
    /// the machine does) and the state writes. The runs go to `log`.
    fn calibrate(&self, log: &mut String) -> Result<Calibration, String> {
        let mut calibration = Calibration {
            time: [Duration::MAX; 4],
            writes: [u64::MAX; 4],
        };
        for _ in 0..2 {
            for op in [
                Op::Create,
                Op::Update,
                Op::Prune {
                    keep: ENTRIES * 4 / 5,
                },
                Op::Destroy,
            ] {
                self.prepare(op)?;
                self.write_for(op, 0);
                let before = self.serial()?;
                let started = Instant::now();
                let run = self.clean(op.args())?;
                let time = started.elapsed();
                log.push_str(&format!(
                    "=== {op} without faults: {:.1} s\n{run}\n",
                    time.as_secs_f64()
                ));
                let slot = op.slot();
                calibration.time[slot] = calibration.time[slot].min(time);
                let writes = self.serial()?.saturating_sub(before);
                calibration.writes[slot] = calibration.writes[slot].min(writes);
                self.check(op)?;
            }
        }
        Ok(calibration)
    }

    /// The state lists exactly the objects in the stack's namespace that
    /// carry its label, with the same uids, but for the copies the control
    /// plane makes of a Service's labels (its Endpoints, and its
    /// EndpointSlices, which the Service owns); nothing is pending; after an
    /// `up`, a preview finds nothing to change.
    fn check(&self, op: Op) -> Result<(), String> {
        let state = self.state()?;
        let pending = &state["pending"];
        if pending.as_array().is_some_and(|p| !p.is_empty()) {
            return Err(format!("operations still pending: {pending}"));
        }
        let mut recorded = BTreeSet::new();
        for resource in state["resources"].as_array().into_iter().flatten() {
            let id = &resource["id"];
            if id["namespace"].as_str() != Some(&self.stack.namespace) {
                return Err(format!("the state lists an object elsewhere: {id}"));
            }
            recorded.insert(object_key(
                &id["kind"],
                &id["name"],
                resource["uid"].as_str().unwrap_or("?"),
            ));
        }
        let live = util::kubectl_json(&[
            "get",
            &namespaced_kinds(),
            "-n",
            &self.stack.namespace,
            "-l",
            &format!("echo-iac.io/stack={}", self.stack.name),
        ]);
        let live: BTreeSet<String> = live["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|o| {
                o["kind"] != "Endpoints"
                    && o["metadata"]["ownerReferences"]
                        .as_array()
                        .is_none_or(|refs| refs.is_empty())
            })
            .map(|o| {
                object_key(
                    &o["kind"],
                    &o["metadata"]["name"],
                    o["metadata"]["uid"].as_str().unwrap_or("?"),
                )
            })
            .collect();
        if recorded != live {
            let only_state: Vec<_> = recorded.difference(&live).collect();
            let only_live: Vec<_> = live.difference(&recorded).collect();
            return Err(format!(
                "the state and the cluster differ: only in the state {only_state:?}; only in the cluster {only_live:?}"
            ));
        }
        if recorded.len() != op.objects_after() {
            return Err(format!(
                "the stack holds {} objects, not {}",
                recorded.len(),
                op.objects_after()
            ));
        }
        if op != Op::Destroy {
            let preview = self.run(&["preview", "--expect-no-changes"]);
            if preview.code != 0 {
                return Err(format!(
                    "the preview after the run finds changes: {preview}"
                ));
            }
        }
        Ok(())
    }

    /// One run: the stack brought to where `op` starts, `op` cut short by a
    /// fault, run again until it exits 0, and checked.
    /// Every command's output goes to `log`.
    fn run_once(
        &self,
        scenario: Scenario,
        seed: u64,
        calibration: &Calibration,
        log: &mut String,
    ) -> Result<Report, String> {
        let mut rng = Rng(seed ^ scenario.salt());
        let op = match rng.between(0, 9) {
            0..=2 => Op::Create,
            3..=4 => Op::Update,
            5..=6 => Op::Prune {
                keep: rng.between(60, 90) as usize,
            },
            _ => Op::Destroy,
        };
        let usual = calibration.time[op.slot()];
        let writes = calibration.writes[op.slot()];
        let at = usual.mul_f64(0.05 + 0.8 * rng.fraction());
        let outage = MAX_OUTAGE.mul_f64(rng.fraction());
        let fault = match (scenario.killed, rng.between(0, 1)) {
            (Killed::ApiServer, 1) if writes > 0 => Fault::ApiServerAtStateWrite {
                nth: rng.between(1, writes),
                outage,
            },
            (Killed::ApiServer, _) => Fault::ApiServerAfter { at, outage },
            (Killed::Process, 0) => Fault::ProcessAfter { at },
            (Killed::Process, _) => {
                let (point, times) = rng.pick(&op.points(writes));
                Fault::ProcessAt {
                    point,
                    nth: rng.between(1, times),
                }
            }
        };

        self.prepare(op)?;
        self.write_for(op, seed);
        let (run, fault_at, landed) = self.faulted(op, fault);
        let ended_after = fault_at.elapsed();
        let outcome = match run.signal {
            Some(libc::SIGKILL) => "killed".to_string(),
            Some(signal) => format!("signal {signal}"),
            None => format!(
                "exit {} {:.1} s after it",
                run.code,
                ended_after.as_secs_f64()
            ),
        };
        log.push_str(&format!(
            "=== {op}, {fault}: ended {:.1} s after the fault\n{run}\n",
            ended_after.as_secs_f64()
        ));

        let mut converged_at = (run.code == 0).then(Instant::now);
        let mut attempts = 0;
        let mut args = op.args().to_vec();
        args.extend(["--wait-for-lock", WAIT_FOR_LOCK]);
        loop {
            attempts += 1;
            let again = self.run(&args);
            log.push_str(&format!(
                "=== run {attempts} after the fault, ended {:.1} s after it\n{again}\n",
                fault_at.elapsed().as_secs_f64()
            ));
            if again.code == 0 {
                converged_at.get_or_insert_with(Instant::now);
                break;
            }
            eprintln!(
                "chaos:   run {attempts} after the fault exited {}:\n{}",
                again.code,
                tail(&again.all(), 15)
            );
            if attempts >= ATTEMPTS || fault_at.elapsed() > CONVERGE_WITHIN {
                return Err(format!(
                    "{op}, {fault} ({outcome}): no run after it exited 0; the last: {again}"
                ));
            }
        }
        let converged_after = converged_at.expect("set once a run exited 0") - fault_at;
        if converged_after > CONVERGE_WITHIN {
            return Err(format!(
                "{op}, {fault}: converged only {:.1} s after the fault",
                converged_after.as_secs_f64()
            ));
        }
        self.check(op)
            .map_err(|e| format!("{op}, {fault} ({outcome}): {e}"))?;
        Ok(Report {
            op,
            fault,
            landed,
            outcome,
            attempts,
            converged_after,
        })
    }

    /// Runs `op` and strikes with `fault`; returns the run, when the fault
    /// struck, and whether the command was still running then.
    fn faulted(&self, op: Op, fault: Fault) -> (Run, Instant, bool) {
        let env = match fault {
            Fault::ApiServerAtStateWrite { nth, .. } => format!("state-write:{nth}:pause"),
            Fault::ProcessAt { point, nth } => format!("{point}:{nth}"),
            _ => String::new(),
        };
        let started = Instant::now();
        let mut running = self.stack.spawn(op.args(), &[("ECHO_IAC_FAULT", &env)]);
        let (fault_at, landed) = match fault {
            Fault::ApiServerAfter { at, outage } => {
                std::thread::sleep(at.saturating_sub(started.elapsed()));
                let landed = running.is_running();
                (api_server_outage(outage, || {}), landed)
            }
            Fault::ApiServerAtStateWrite { nth, outage } => {
                if wait_for_pause(&mut running, &format!("state-write:{nth}")) {
                    let fault_at = api_server_outage(outage, || running.signal(libc::SIGUSR1));
                    (fault_at, true)
                } else {
                    (Instant::now(), false)
                }
            }
            Fault::ProcessAfter { at } => {
                std::thread::sleep(at.saturating_sub(started.elapsed()));
                let landed = running.is_running();
                if landed {
                    running.signal(libc::SIGKILL);
                }
                (Instant::now(), landed)
            }
            Fault::ProcessAt { .. } => {
                let run = running.wait(COMMAND_LIMIT);
                let landed = run.signal == Some(libc::SIGKILL);
                return (run, Instant::now(), landed);
            }
        };
        (running.wait(COMMAND_LIMIT), fault_at, landed)
    }
}

/// `Kind/name uid`, as both sides of the check list an object.
fn object_key(kind: &Value, name: &Value, uid: &str) -> String {
    format!(
        "{}/{} {uid}",
        kind.as_str().unwrap_or("?"),
        name.as_str().unwrap_or("?")
    )
}

/// Every kind of namespaced object the API server lists, for kubectl.
fn namespaced_kinds() -> String {
    static KINDS: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    KINDS
        .get_or_init(|| {
            util::kubectl_ok(&[
                "api-resources",
                "--namespaced=true",
                "--verbs=list",
                "-o",
                "name",
            ])
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(",")
        })
        .clone()
}

/// Kills the API server, calls `then` (the server is down), starts the
/// server again `outage` later and waits until it is ready; restarts the
/// controller-manager, as `disruptive.rs` does, so that no stale informer
/// holds a rollout back. Returns when the server was killed.
fn api_server_outage(outage: Duration, then: impl FnOnce()) -> Instant {
    let killed = Instant::now();
    let mut server = Process::stop("kube-apiserver");
    then();
    std::thread::sleep(outage.saturating_sub(killed.elapsed()));
    server.start();
    Process::stop("kube-controller-manager").start();
    killed
}

/// Waits until the run pauses at `point` (true) or exits without reaching
/// it (false).
fn wait_for_pause(running: &mut Running, point: &str) -> bool {
    let needle = format!("paused at {point} ");
    let started = Instant::now();
    while started.elapsed() < COMMAND_LIMIT {
        if running.stderr().contains(&needle) {
            return true;
        }
        if !running.is_running() {
            std::thread::sleep(Duration::from_millis(100));
            return running.stderr().contains(&needle);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("the run neither paused at {point} nor ended within {COMMAND_LIMIT:?}");
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic".to_string())
}

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok().filter(|v| !v.is_empty())?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a whole number")),
    )
}

/// A scenario's runs, summed up.
struct Summary {
    scenario: Scenario,
    runs: u32,
    converged: u32,
    landed: u32,
    retried: u32,
    longest: Duration,
    longest_run: String,
    time: Duration,
}

#[test]
#[ignore = "takes about an hour and restarts the API server many times: `make chaos`"]
fn faults_at_random_moments_converge_on_the_next_run() {
    let seed = env_number("CHAOS_SEED").unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        next_seed(now.as_nanos() as u64 ^ u64::from(std::process::id()))
    });
    let runs = env_number("CHAOS_RUNS").unwrap_or(20);
    let chosen = std::env::var("CHAOS_SCENARIOS").unwrap_or_default();
    let scenarios: Vec<Scenario> = if chosen.trim().is_empty() {
        SCENARIOS.to_vec()
    } else {
        let names: Vec<&str> = chosen.split(',').map(str::trim).collect();
        for name in &names {
            assert!(
                SCENARIOS.iter().any(|s| s.name() == *name),
                "CHAOS_SCENARIOS: no scenario {name}; there are {}",
                SCENARIOS.map(|s| s.name()).join(", ")
            );
        }
        SCENARIOS
            .into_iter()
            .filter(|s| names.contains(&s.name().as_str()))
            .collect()
    };
    eprintln!(
        "chaos: seed {seed}, {runs} runs of {} (CHAOS_SEED={seed} make chaos replays them)",
        scenarios
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let logs = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("chaos");
    std::fs::create_dir_all(&logs).expect("create the log folder");
    eprintln!(
        "chaos: each run's commands and their output go to {}/<scenario>-<run>.log",
        logs.display()
    );
    let started = Instant::now();
    let mut summaries = Vec::new();
    let mut failures = Vec::new();
    for scenario in scenarios {
        let name = scenario.name();
        let scenario_started = Instant::now();
        let mut stack = ChaosStack::new(scenario.backend);
        let mut log = String::new();
        let calibration = stack.calibrate(&mut log);
        let log_file = logs.join(format!("{}-calibration.log", name.replace('/', "-")));
        std::fs::write(&log_file, log).expect("write the calibration's log");
        let calibration = calibration.unwrap_or_else(|e| {
            panic!(
                "chaos: {name}: a run without faults failed: {e}\n(every run: {})",
                log_file.display()
            )
        });
        eprintln!(
            "chaos: {name}: without faults, create {:.1} s ({} state writes), update {:.1} s ({}), prune {:.1} s ({}), destroy {:.1} s ({})",
            calibration.time[0].as_secs_f64(),
            calibration.writes[0],
            calibration.time[1].as_secs_f64(),
            calibration.writes[1],
            calibration.time[2].as_secs_f64(),
            calibration.writes[2],
            calibration.time[3].as_secs_f64(),
            calibration.writes[3],
        );
        let mut summary = Summary {
            scenario,
            runs: 0,
            converged: 0,
            landed: 0,
            retried: 0,
            longest: Duration::ZERO,
            longest_run: String::new(),
            time: Duration::ZERO,
        };
        let mut run_seed = seed;
        for i in 1..=runs {
            summary.runs += 1;
            let mut log = String::new();
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
                stack.run_once(scenario, run_seed, &calibration, &mut log)
            }))
            .unwrap_or_else(|panic| Err(panic_message(panic)));
            let log_file = logs.join(format!("{}-{i}.log", name.replace('/', "-")));
            std::fs::write(&log_file, log).expect("write the run's log");
            match result {
                Ok(report) => {
                    eprintln!(
                        "chaos: {name} {i}/{runs} seed {run_seed}: {}, {} ({}{}); converged after {:.1} s, {} run(s) later",
                        report.op,
                        report.fault,
                        report.outcome,
                        if report.landed {
                            ""
                        } else {
                            ", but the command had ended"
                        },
                        report.converged_after.as_secs_f64(),
                        report.attempts
                    );
                    summary.converged += 1;
                    summary.landed += u32::from(report.landed);
                    summary.retried += u32::from(report.attempts > 1);
                    if report.converged_after >= summary.longest {
                        summary.longest = report.converged_after;
                        summary.longest_run = format!("{}, {}", report.op, report.fault);
                    }
                }
                Err(reason) => {
                    let replay = format!(
                        "CHAOS_SEED={run_seed} CHAOS_SCENARIOS={name} CHAOS_RUNS=1 make chaos"
                    );
                    eprintln!(
                        "chaos: {name} {i}/{runs} seed {run_seed}: FAILED: {reason}\nchaos:   replay: {replay}\nchaos:   every command's output: {}\nchaos:   left for a look: project {}, namespace {}",
                        log_file.display(),
                        stack.stack.project.root().display(),
                        stack.stack.namespace
                    );
                    failures.push(format!("{name} seed {run_seed}: {replay}"));
                    // A fresh stack for the next run; this one stays as it
                    // is, for a look.
                    std::mem::forget(std::mem::replace(
                        &mut stack,
                        ChaosStack::new(scenario.backend),
                    ));
                }
            }
            run_seed = next_seed(run_seed);
        }
        if let Err(e) = stack.prepare(Op::Create) {
            eprintln!("chaos: {name}: the final destroy failed: {e}");
        }
        summary.time = scenario_started.elapsed();
        summaries.push(summary);
    }

    eprintln!(
        "\nchaos: seed {seed}, {:.1} min in all\n\n| scenario | runs converged | fault struck mid-command | needed more than one run | longest to converge | in | scenario time |\n| --- | ---: | ---: | ---: | ---: | --- | ---: |",
        started.elapsed().as_secs_f64() / 60.0
    );
    for s in &summaries {
        eprintln!(
            "| {} | {}/{} | {} | {} | {:.1} s | {} | {:.1} min |",
            s.scenario.name(),
            s.converged,
            s.runs,
            s.landed,
            s.retried,
            s.longest.as_secs_f64(),
            s.longest_run,
            s.time.as_secs_f64() / 60.0
        );
    }
    assert!(
        failures.is_empty(),
        "{} run(s) did not converge; replay each with:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
