//! A throwaway echo-iac project per test: a temporary folder with a stack
//! file pointing at the local control plane, a namespace of its own and node
//! ports no other test uses, and a way to run the real `echo-iac` binary in it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::util::{self, TestNamespace};

/// Node ports are cluster-wide, so each test takes its own. The control
/// plane tests keep to 30100-30199; these start at 31000, spread by process
/// so that a rerun does not trip over a previous run's leftovers.
pub fn node_port() -> i32 {
    static NEXT: AtomicI32 = AtomicI32::new(0);
    let base = 31000 + (std::process::id() % 40) as i32 * 40;
    base + NEXT.fetch_add(1, Ordering::Relaxed)
}

pub struct TestProject {
    dir: tempfile::TempDir,
}

impl TestProject {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("create a temporary project folder");
        std::fs::create_dir(dir.path().join("stacks")).expect("create stacks/");
        TestProject { dir }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Writes `stacks/<name>.yaml` as given.
    pub fn write_stack(&self, name: &str, yaml: &str) {
        std::fs::write(self.stack_file(name), yaml).expect("write the stack file");
    }

    pub fn stack_file(&self, name: &str) -> PathBuf {
        self.root().join("stacks").join(format!("{name}.yaml"))
    }

    pub fn state_file(&self, name: &str) -> PathBuf {
        self.root().join("state").join(format!("{name}.json"))
    }

    /// The stack's state as JSON, or `None` if it was never written.
    pub fn state(&self, name: &str) -> Option<Value> {
        let text = std::fs::read_to_string(self.state_file(name)).ok()?;
        Some(serde_json::from_str(&text).expect("the state file is valid JSON"))
    }

    /// Runs `echo-iac -C <project> <args>` with no terminal.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    /// Like [`TestProject::run`], with extra environment variables (for
    /// example `ECHO_IAC_FAULT`).
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let output = self
            .command(args, env)
            .stdin(Stdio::null())
            .output()
            .expect("run echo-iac");
        Run::new(args, output)
    }

    /// Starts `echo-iac -C <project> <args>` without waiting for it.
    pub fn spawn(&self, args: &[&str], env: &[(&str, &str)]) -> Running {
        let mut child = self
            .command(args, env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start echo-iac");
        let mut stdout = child.stdout.take().expect("stdout is piped");
        let stdout = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stdout.read_to_string(&mut text);
            text
        });
        let stderr_text = Arc::new(Mutex::new(String::new()));
        let stderr = {
            let pipe = BufReader::new(child.stderr.take().expect("stderr is piped"));
            let text = Arc::clone(&stderr_text);
            std::thread::spawn(move || {
                for line in pipe.lines().map_while(Result::ok) {
                    let mut text = text.lock().unwrap();
                    text.push_str(&line);
                    text.push('\n');
                }
            })
        };
        Running {
            command: format!("echo-iac {}", args.join(" ")),
            child,
            stdout: Some(stdout),
            stderr: Some(stderr),
            stderr_text,
        }
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_echo-iac"));
        command
            .arg("-C")
            .arg(self.root())
            .args(args)
            .env_remove("ECHO_IAC_STACK")
            .env_remove("ECHO_IAC_FAULT")
            .env_remove("KUBECONFIG")
            .env_remove("ECHO_IAC_LOG")
            .env("NO_COLOR", "1")
            .envs(env.iter().copied());
        command
    }
}

/// One stack in its own project and namespace, on the local control plane.
pub struct TestStack {
    pub project: TestProject,
    pub name: String,
    pub namespace: String,
    /// Deletes the namespace when the test ends, however it ends.
    _namespace: Option<TestNamespace>,
}

impl TestStack {
    /// A stack named `dev` in a fresh namespace the test created.
    pub fn new(prefix: &str) -> Self {
        let namespace = TestNamespace::new(prefix);
        TestStack {
            project: TestProject::new(),
            name: "dev".into(),
            namespace: namespace.name().to_string(),
            _namespace: Some(namespace),
        }
    }

    /// A stack named `dev` for a namespace that does not exist yet, for
    /// stacks that create their namespace. The caller deletes it.
    pub fn for_new_namespace(prefix: &str) -> Self {
        static COUNTER: AtomicI32 = AtomicI32::new(0);
        TestStack {
            project: TestProject::new(),
            name: "dev".into(),
            namespace: format!(
                "{prefix}-{}-{}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::Relaxed)
            ),
            _namespace: None,
        }
    }

    /// Writes the stack file: the connection and namespace lines, then `body`
    /// (the `echo:` or `echoes:` section and anything else).
    pub fn write(&self, body: &str) {
        self.project.write_stack(&self.name, &self.file_text(body));
    }

    pub fn file_text(&self, body: &str) -> String {
        format!(
            "kubeconfig: {}\ncontext: echo-iac-local\nnamespace: {}\n{body}",
            util::kubeconfig().display(),
            self.namespace
        )
    }

    /// Runs `echo-iac --stack <name> <args>`.
    pub fn run(&self, args: &[&str]) -> Run {
        let mut all = vec!["--stack", self.name.as_str()];
        all.extend(args);
        self.project.run(&all)
    }

    /// Runs `echo-iac --stack <name> <args>` with extra environment variables.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut all = vec!["--stack", self.name.as_str()];
        all.extend(args);
        self.project.run_env(&all, env)
    }

    /// Starts `echo-iac --stack <name> <args>` without waiting for it.
    pub fn spawn(&self, args: &[&str], env: &[(&str, &str)]) -> Running {
        let mut all = vec!["--stack", self.name.as_str()];
        all.extend(args);
        self.project.spawn(&all, env)
    }

    /// Runs and asserts exit code 0.
    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        run.assert_code(0);
        run
    }

    /// The echo Deployment's pods in the stack's namespace, as kubectl
    /// lists them.
    pub fn echo_pods(&self) -> Vec<Value> {
        let pods = util::kubectl_json(&[
            "get",
            "pods",
            "-n",
            &self.namespace,
            "-l",
            "app=echo-nodeport",
        ]);
        pods["items"].as_array().cloned().unwrap_or_default()
    }

    pub fn state(&self) -> Option<Value> {
        self.project.state(&self.name)
    }

    /// `kubectl get <kind> <name> -n <namespace> -o json`.
    pub fn get(&self, kind: &str, name: &str) -> Value {
        util::kubectl_json(&["get", kind, name, "-n", &self.namespace])
    }

    pub fn exists(&self, kind: &str, name: &str) -> bool {
        util::kubectl(&["get", kind, name, "-n", &self.namespace])
            .status
            .success()
    }

    /// The plan `preview --json` prints.
    pub fn plan(&self) -> Value {
        let run = self.run(&["preview", "--json"]);
        serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("preview --json is not JSON ({e}):\n{run}"))
    }
}

/// A finished run of the binary.
pub struct Run {
    pub command: String,
    /// The exit code, or -1 when a signal ended the process.
    pub code: i32,
    /// The signal that ended the process, if one did.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn new(args: &[&str], output: Output) -> Self {
        Run::finished(
            format!("echo-iac {}", args.join(" ")),
            output.status,
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }

    fn finished(command: String, status: ExitStatus, stdout: String, stderr: String) -> Self {
        Run {
            command,
            code: status.code().unwrap_or(-1),
            signal: status.signal(),
            stdout,
            stderr,
        }
    }

    /// Asserts the process was killed by SIGKILL (a fault point fired).
    pub fn assert_killed(&self) -> &Self {
        assert_eq!(
            self.signal,
            Some(libc::SIGKILL),
            "expected {self} to be killed by SIGKILL"
        );
        self
    }

    /// The API requests a run with `ECHO_IAC_STATS=1` reports sending.
    pub fn requests(&self) -> u64 {
        self.stderr
            .lines()
            .find_map(|l| l.strip_prefix("echo-iac stats: "))
            .and_then(|l| l.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no request count:\n{self}"))
    }

    pub fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code from {self}");
        self
    }

    /// Everything printed, stdout then stderr.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    pub fn assert_contains(&self, needle: &str) -> &Self {
        assert!(
            self.all().contains(needle),
            "expected {needle:?} in the output of {self}"
        );
        self
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{}` (exit {})\n--- stdout\n{}\n--- stderr\n{}",
            self.command, self.code, self.stdout, self.stderr
        )
    }
}

/// The plan's steps as `(op, kind, name)`, in order, without `same` steps.
pub fn plan_changes(plan: &Value) -> Vec<(String, String, String)> {
    plan["steps"]
        .as_array()
        .expect("plan has steps")
        .iter()
        .filter(|s| s["op"] != "same")
        .map(|s| {
            (
                s["op"].as_str().unwrap().to_string(),
                s["kind"].as_str().unwrap().to_string(),
                s["name"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The `(op, kind, name)` triple for assertions.
pub fn step(op: &str, kind: &str, name: &str) -> (String, String, String) {
    (op.into(), kind.into(), name.into())
}

/// A run of the binary still in progress, started by `spawn`. Dropping it
/// kills the process, so a failing test leaves nothing running.
pub struct Running {
    command: String,
    child: Child,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<()>>,
    stderr_text: Arc<Mutex<String>>,
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process has printed to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr_text.lock().unwrap().clone()
    }

    /// Waits until stderr holds `needle`; panics after `timeout`, or at once
    /// if the process exits without printing it.
    pub fn wait_for_stderr(&mut self, needle: &str, timeout: Duration) {
        let start = Instant::now();
        loop {
            if self.stderr().contains(needle) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                // Let the reader drain what is left in the pipe.
                std::thread::sleep(Duration::from_millis(100));
                if self.stderr().contains(needle) {
                    return;
                }
                panic!(
                    "`{}` exited ({status}) without printing {needle:?}; stderr:\n{}",
                    self.command,
                    self.stderr()
                );
            }
            if start.elapsed() >= timeout {
                panic!(
                    "`{}` did not print {needle:?} within {timeout:?}; stderr:\n{}",
                    self.command,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the process pauses at a fault point (`ECHO_IAC_FAULT`
    /// entry `<point>:<n>:pause`).
    pub fn wait_for_pause(&mut self, point: &str) {
        self.wait_for_stderr(&format!("paused at {point}"), Duration::from_secs(60));
    }

    /// Whether the process has not exited yet.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn signal(&self, signal: i32) {
        let pid = libc::pid_t::try_from(self.pid()).expect("pids fit in pid_t");
        // SAFETY: kill(2) has no memory-safety preconditions; the pid is
        // our own child, not yet reaped, so it cannot have been reused.
        let result = unsafe { libc::kill(pid, signal) };
        assert_eq!(result, 0, "cannot signal `{}`", self.command);
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait(mut self, timeout: Duration) -> Run {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for echo-iac") {
                break status;
            }
            if start.elapsed() >= timeout {
                let _ = self.child.kill();
                panic!(
                    "`{}` did not exit within {timeout:?}; stderr:\n{}",
                    self.command,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let stdout = self
            .stdout
            .take()
            .map(|t| t.join().unwrap())
            .unwrap_or_default();
        if let Some(reader) = self.stderr.take() {
            let _ = reader.join();
        }
        Run::finished(self.command.clone(), status, stdout, self.stderr())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A field of the local control plane's kubeconfig, such as `server` or
/// `certificate-authority-data`, as written by `tests/cluster/up.sh`.
pub fn local_kubeconfig_field(field: &str) -> String {
    let path = util::kubeconfig();
    let text = std::fs::read_to_string(&path).expect("read the local kubeconfig");
    let prefix = format!("{field}:");
    text.lines()
        .find_map(|line| line.trim().strip_prefix(&prefix))
        .map(|value| value.trim().to_string())
        .unwrap_or_else(|| panic!("no `{field}` in {}", path.display()))
}

/// Writes a kubeconfig with one context `test` for `server`, trusting the
/// base64 PEM `ca_data` (none: skip verification), with `user` as the body
/// of its user entry (e.g. `token: abc`). Returns its path.
pub fn write_kubeconfig(
    dir: &Path,
    file: &str,
    server: &str,
    ca_data: Option<&str>,
    user: &str,
) -> PathBuf {
    let trust = match ca_data {
        Some(data) => format!("certificate-authority-data: {data}"),
        None => "insecure-skip-tls-verify: true".to_string(),
    };
    let path = dir.join(file);
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: test\n  cluster:\n    server: {server}\n    {trust}\ncontexts:\n- name: test\n  context:\n    cluster: test\n    user: test\ncurrent-context: test\nusers:\n- name: test\n  user:\n    {user}\n"
        ),
    )
    .expect("write the kubeconfig");
    path
}

/// Every file under the project's `state/` folder but the lock files (which
/// every locking run touches), with its contents: to prove a failed run
/// changed nothing.
pub fn state_files(project: &TestProject) -> std::collections::BTreeMap<PathBuf, Vec<u8>> {
    fn walk(dir: &Path, files: &mut std::collections::BTreeMap<PathBuf, Vec<u8>>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, files);
            } else if path.extension().is_none_or(|e| e != "echo-iac-lock") {
                files.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    let mut files = std::collections::BTreeMap::new();
    walk(&project.root().join("state"), &mut files);
    files
}
