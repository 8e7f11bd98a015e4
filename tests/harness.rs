//! A throwaway echo-iac project per test: a temporary folder with a stack
//! file pointing at the local control plane, a namespace of its own and node
//! ports no other test uses, and a way to run the real `echo-iac` binary in it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};

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
        let output = Command::new(env!("CARGO_BIN_EXE_echo-iac"))
            .arg("-C")
            .arg(self.root())
            .args(args)
            .env_remove("ECHO_IAC_STACK")
            .env_remove("KUBECONFIG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .output()
            .expect("run echo-iac");
        Run::new(args, output)
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

    /// Runs and asserts exit code 0.
    pub fn ok(&self, args: &[&str]) -> Run {
        let run = self.run(args);
        run.assert_code(0);
        run
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
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn new(args: &[&str], output: Output) -> Self {
        Run {
            command: format!("echo-iac {}", args.join(" ")),
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
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
