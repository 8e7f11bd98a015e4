//! Tests that take the shared control plane down for a while, so they live
//! in a test binary of their own that runs after the main suite, one test at
//! a time (`cargo test --test disruptive -- --test-threads=1`): run beside
//! other tests, they would make those fail.
//!
//! The API server is killed through its pid in `.cluster/pids/` and
//! started again with the command line it had, its output appended to its
//! log, as `tests/cluster/up.sh` started it. The controller-manager is
//! restarted with it: after its API server was killed, its informers were
//! seen to keep a stale ReplicaSet status for minutes, which made the
//! rollout, not echo-iac, the thing under test.

#[path = "harness.rs"]
mod harness;
#[path = "util.rs"]
mod util;

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{TestStack, node_port};

/// How long the API server stays down.
const OUTAGE: Duration = Duration::from_secs(10);

/// A control-plane process as `up.sh` started it, killed by
/// [`Process::stop`]. Dropping it starts the process again if the test has
/// not, so a failing test does not leave the control plane without it.
struct Process {
    name: &'static str,
    pid_file: PathBuf,
    log_file: PathBuf,
    exe: String,
    args: Vec<String>,
    cwd: PathBuf,
    running: bool,
}

impl Process {
    /// Kills the running process `name` (e.g. `kube-apiserver`) and returns
    /// once it is gone. SIGKILL rather than SIGTERM: a graceful shutdown
    /// takes the API server 20 s or more, and a crash is the harder outage
    /// anyway.
    fn stop(name: &'static str) -> Process {
        let cluster_dir = util::kubeconfig()
            .parent()
            .expect("the kubeconfig sits in the cluster folder")
            .to_path_buf();
        let pid_file = cluster_dir.join(format!("pids/{name}.pid"));
        let recorded = std::fs::read_to_string(&pid_file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", pid_file.display()));
        let (pid, exe) = recorded
            .trim()
            .split_once(' ')
            .unwrap_or_else(|| panic!("{} holds {recorded:?}", pid_file.display()));
        let pid: i32 = pid.parse().expect("the pid file starts with a pid");
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap_or_else(|e| panic!("{name} (pid {pid}) is not running: {e}"));
        let mut args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        assert_eq!(
            args.first().map(String::as_str),
            Some(exe),
            "pid {pid} is not {name}"
        );
        args.remove(0);
        let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or(cluster_dir.clone());

        signal(pid, libc::SIGKILL);
        util::wait_for(Duration::from_secs(20), &format!("{name} to exit"), || {
            if alive(pid) {
                Err(format!("pid {pid} is still there"))
            } else {
                Ok(())
            }
        });
        Process {
            name,
            pid_file,
            log_file: cluster_dir.join(format!("logs/{name}.log")),
            exe: exe.to_string(),
            args,
            cwd,
            running: false,
        }
    }

    /// Starts the process again; the API server is waited for until it is
    /// ready. It is never waited for as a child: it outlives the test, as
    /// the rest of the control plane does, and `tests/cluster/down.sh`
    /// stops it through its pid.
    #[allow(clippy::zombie_processes)]
    fn start(&mut self) {
        let log = || {
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log_file)
                .expect("open the process's log")
        };
        let child = Command::new(&self.exe)
            .args(&self.args)
            .current_dir(&self.cwd)
            .stdin(Stdio::null())
            .stdout(log())
            .stderr(log())
            // Its own process group, as `setsid` in up.sh: a Ctrl-C meant
            // for the tests must not stop the control plane.
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.name));
        std::fs::write(&self.pid_file, format!("{} {}\n", child.id(), self.exe))
            .expect("record the process's pid");
        self.running = true;
        if self.name != "kube-apiserver" {
            return;
        }
        util::wait_for(
            Duration::from_secs(90),
            "the API server to be ready",
            || {
                let output = Command::new(util::kubectl_path())
                    .arg("--kubeconfig")
                    .arg(util::kubeconfig())
                    .args(["--request-timeout=2s", "get", "--raw", "/readyz"])
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| e.to_string())?;
                if output.status.success() {
                    Ok(())
                } else {
                    Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
                }
            },
        );
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if !self.running {
            self.start();
        }
    }
}

fn signal(pid: i32, signal: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// The process exists and is not a zombie.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit(')')
                .next()
                .map(str::trim_start)
                .and_then(|s| s.chars().next()),
            Some('Z' | 'X')
        ),
        Err(_) => false,
    }
}

/// `up` paused at `point`; the API server goes down; `up` goes on, meets
/// the outage and retries; the server comes back after [`OUTAGE`]; `up`
/// completes and the stack is as if nothing had happened.
fn up_survives_an_api_server_outage_at(point: &str, prefix: &str) {
    let stack = TestStack::new(prefix);
    stack.write(&format!(
        "echo:\n  replicas: 2\n  nodePort: {}\n",
        node_port()
    ));
    let mut up = stack.spawn(
        &["up", "--yes"],
        &[("ECHO_IAC_FAULT", &format!("{point}:pause"))],
    );
    up.wait_for_pause(point);

    let mut server = Process::stop("kube-apiserver");
    let stopped = Instant::now();
    up.signal(libc::SIGUSR1);
    up.wait_for_stderr("retrying for up to", OUTAGE);
    std::thread::sleep(OUTAGE.saturating_sub(stopped.elapsed()));
    server.start();
    Process::stop("kube-controller-manager").start();

    let run = up.wait(Duration::from_secs(300));
    run.assert_code(0)
        .assert_contains("connection refused")
        .assert_contains("the stack is ready");

    let state = stack.state().expect("the state parses");
    assert_eq!(state["pending"], serde_json::json!([]), "{state:#}");
    assert_eq!(state["resources"].as_array().unwrap().len(), 3, "{state:#}");
    assert_eq!(state["outputs"]["readyReplicas"], 2, "{state:#}");
    stack.ok(&["preview", "--expect-no-changes"]);
    stack.ok(&["destroy", "--yes"]);
}

#[test]
fn up_completes_when_the_api_server_restarts_between_applies() {
    up_survives_an_api_server_outage_at("after-apply:1", "outage-apply");
}

#[test]
fn up_completes_when_the_api_server_restarts_while_waiting_for_readiness() {
    up_survives_an_api_server_outage_at("wait:1", "outage-wait");
}

/// The cluster backend's state write meets an API server restart: the
/// stored state is then the revision before the write or the one after,
/// never a mix (each revision is checked against its hash when read), and
/// the next command works. The run itself either completes or, if the
/// outage outlasted its lease, stops saying it lost the lock.
#[test]
fn a_state_write_cut_by_an_api_server_restart_leaves_a_whole_revision() {
    let stack = TestStack::new("outage-state");
    let port = node_port();
    let write = |message: &str| {
        stack.write(&format!(
            "backend: kubernetes://{}\necho:\n  replicas: 1\n  nodePort: {port}\n  message: {message}\n",
            stack.namespace
        ));
    };
    let serial = || -> u64 {
        let run = stack.ok(&["stack", "export"]);
        let state: serde_json::Value = serde_json::from_str(&run.stdout).expect("export is JSON");
        state["serial"].as_u64().expect("a serial")
    };
    write("before");
    stack.ok(&["up", "--yes"]);
    let before = serial();

    write("after");
    let mut up = stack.spawn(
        &["up", "--yes"],
        &[("ECHO_IAC_FAULT", "state-write:1:pause")],
    );
    up.wait_for_pause("state-write:1");
    let mut server = Process::stop("kube-apiserver");
    up.signal(libc::SIGUSR1);
    std::thread::sleep(Duration::from_secs(2));
    server.start();
    let run = up.wait(Duration::from_secs(300));
    assert!(
        run.code == 0 || (run.code == 1 && run.all().contains("lost the lock")),
        "{run}"
    );

    let after = serial();
    assert!(after >= before, "serial went from {before} to {after}");
    stack
        .ok(&["up", "--yes"])
        .assert_contains("the stack is ready");
    stack.ok(&["preview", "--expect-no-changes"]);
    stack.ok(&["destroy", "--yes"]);
}
