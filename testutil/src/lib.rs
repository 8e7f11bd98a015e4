//! Helpers shared by the integration tests of every crate in the
//! workspace: the local control plane's kubeconfig, the kubectl built with
//! it, throwaway namespaces and polling.
//!
//! Tests never skip. Without a running control plane every test that needs
//! one fails with a message saying to run `make cluster` (or `make test`,
//! which starts and stops it around the suite).

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The repository root (where `Cargo.toml` is).
pub fn repo_root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The local control plane's kubeconfig: `ECHO_IAC_TEST_KUBECONFIG`, else
/// `<repo>/.cluster/kubeconfig`. Panics with how to start the control plane
/// when the file is missing or the API server does not answer; that check
/// runs once per test process.
pub fn kubeconfig() -> PathBuf {
    static CHECKED: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match CHECKED.get_or_init(check_cluster) {
        Ok(path) => path.clone(),
        Err(message) => panic!("{message}"),
    }
}

fn kubeconfig_path() -> PathBuf {
    match std::env::var_os("ECHO_IAC_TEST_KUBECONFIG") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => repo_root().join(".cluster/kubeconfig"),
    }
}

fn check_cluster() -> Result<PathBuf, String> {
    const HOW: &str = "run `make cluster` to start it \
        (or `make test`, which starts and stops it around the suite)";
    let path = kubeconfig_path();
    if !path.is_file() {
        return Err(format!(
            "no kubeconfig at {}: the local control plane is not running; {HOW}",
            path.display()
        ));
    }
    let kubectl = kubectl_path();
    if !kubectl.is_file() {
        return Err(format!(
            "kubectl not found at {} (set ECHO_IAC_KUBECTL); run `make cluster`, \
             which builds it and starts the local control plane",
            kubectl.display()
        ));
    }
    let output = Command::new(&kubectl)
        .arg("--kubeconfig")
        .arg(&path)
        .args(["--request-timeout=5s", "get", "--raw", "/readyz"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", kubectl.display()))?;
    if !output.status.success() {
        return Err(format!(
            "the local control plane's API server in {} does not answer ({}); {HOW}",
            path.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(path)
}

/// The kubectl that `tests/cluster/build.sh` built: `ECHO_IAC_KUBECTL` (the
/// Makefile sets it), else the build cache path for the pinned version.
pub fn kubectl_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(path) = std::env::var_os("ECHO_IAC_KUBECTL").filter(|p| !p.is_empty()) {
            return PathBuf::from(path);
        }
        let non_empty = |name| {
            std::env::var_os(name)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let cache = non_empty("ECHO_IAC_CLUSTER_CACHE").unwrap_or_else(|| {
            non_empty("XDG_CACHE_HOME")
                .or_else(|| non_empty("HOME").map(|home| home.join(".cache")))
                .unwrap_or_else(|| PathBuf::from(".cache"))
                .join("echo-iac/cluster")
        });
        cache.join(format!(
            "kubernetes-{}/kubectl",
            pinned_version("K8S_VERSION")
        ))
    })
    .clone()
}

/// A version pinned in `tests/cluster/versions.env`, e.g. `K8S_VERSION`.
pub fn pinned_version(key: &str) -> String {
    let path = repo_root().join("tests/cluster/versions.env");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines()
        .find_map(|line| line.trim().strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim().trim_matches('"').to_string())
        .unwrap_or_else(|| panic!("{key} is not set in {}", path.display()))
}

/// Runs kubectl against the local control plane and returns its output,
/// whatever the exit status.
pub fn kubectl(args: &[&str]) -> Output {
    kubectl_with_stdin(args, None)
}

/// Runs kubectl with `stdin` fed to it (for `-f -`).
pub fn kubectl_with_stdin(args: &[&str], stdin: Option<&str>) -> Output {
    let kubeconfig = kubeconfig();
    let mut child = Command::new(kubectl_path())
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", kubectl_path().display()));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(input.as_bytes())
            .expect("write kubectl's stdin");
    }
    child.wait_with_output().expect("wait for kubectl")
}

/// Runs kubectl, asserts it succeeded, and returns its stdout.
pub fn kubectl_ok(args: &[&str]) -> String {
    expect_success(args, kubectl(args))
}

/// Runs kubectl with `-o json` appended and parses its stdout.
pub fn kubectl_json(args: &[&str]) -> serde_json::Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let stdout = kubectl_ok(&all);
    serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "kubectl {} printed invalid JSON ({e}):\n{stdout}",
            all.join(" ")
        )
    })
}

fn expect_success(args: &[&str], output: Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "kubectl {} failed ({}):\nstderr: {}\nstdout: {stdout}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    stdout
}

/// Applies `yaml` (one or more documents) in namespace `ns` with server-side
/// apply (field manager `echo-iac-tests`) and returns kubectl's stdout;
/// panics when kubectl fails.
pub fn apply_yaml(ns: impl AsRef<str>, yaml: &str) -> String {
    let args = apply_args(ns.as_ref());
    expect_success(&args, kubectl_with_stdin(&args, Some(yaml)))
}

/// Like [`apply_yaml`], but returns kubectl's output instead of asserting
/// success, for tests that expect the API server to refuse.
pub fn try_apply_yaml(ns: impl AsRef<str>, yaml: &str) -> Output {
    kubectl_with_stdin(&apply_args(ns.as_ref()), Some(yaml))
}

fn apply_args(ns: &str) -> Vec<&str> {
    vec![
        "apply",
        "--server-side",
        "--field-manager=echo-iac-tests",
        "-n",
        ns,
        "-f",
        "-",
    ]
}

/// Polls `check` every 200 ms until it returns `Ok`, and returns that value;
/// panics after `timeout` with `what` and the last reason `check` gave.
pub fn wait_for<T>(
    timeout: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let start = Instant::now();
    loop {
        match check() {
            Ok(value) => return value,
            Err(reason) if start.elapsed() >= timeout => {
                panic!("timed out after {timeout:?} waiting for {what}: {reason}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Label on every namespace a test creates, so leftovers from a killed run
/// can be removed with `kubectl delete namespace -l echo-iac.io/test`.
pub const TEST_LABEL: &str = "echo-iac.io/test";

/// A namespace of its own for one test, with a unique name. `new` returns once
/// the namespace's `default` ServiceAccount exists (pods are refused before
/// that). Dropping it starts the namespace's deletion without waiting.
pub struct TestNamespace {
    name: String,
}

impl TestNamespace {
    /// Creates `<prefix>-<unique suffix>`; `prefix` is reduced to a DNS label.
    pub fn new(prefix: &str) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let mut prefix: String = prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        let random = RandomState::new().build_hasher().finish() & 0xffff;
        let suffix = format!(
            "{}-{}-{random:04x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        prefix.truncate(62 - suffix.len());
        let prefix = prefix.trim_matches('-');
        let name = if prefix.is_empty() {
            format!("t-{suffix}")
        } else {
            format!("{prefix}-{suffix}")
        };

        let manifest = format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n    {TEST_LABEL}: \"true\"\n"
        );
        let args = ["create", "-f", "-"];
        expect_success(&args, kubectl_with_stdin(&args, Some(&manifest)));
        let namespace = TestNamespace { name };
        wait_for(
            Duration::from_secs(30),
            "the namespace's default ServiceAccount",
            || {
                let output = kubectl(&["get", "serviceaccount", "default", "-n", namespace.name()]);
                if output.status.success() {
                    Ok(())
                } else {
                    Err(String::from_utf8_lossy(&output.stderr).trim().to_string())
                }
            },
        );
        namespace
    }

    pub fn name(&self) -> &str {
        &self.name
    }
}

impl AsRef<str> for TestNamespace {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

impl std::fmt::Display for TestNamespace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // Never panic here: a panic while a failing test unwinds would abort.
        let _ = Command::new(kubectl_path())
            .arg("--kubeconfig")
            .arg(kubeconfig_path())
            .args([
                "delete",
                "namespace",
                &self.name,
                "--wait=false",
                "--ignore-not-found",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The finalizer tests put on objects to keep them from going away.
pub const TEST_FINALIZER: &str = "echo-iac.io/test-hold";

/// Holds an object with [`TEST_FINALIZER`], so that deleting it leaves it
/// Terminating; dropping the hold removes the finalizer, however the test
/// ends, so that the object and its namespace can go.
pub struct FinalizerHold {
    target: Vec<String>,
}

impl FinalizerHold {
    /// `namespace` is `None` for cluster-scoped objects (a Namespace).
    pub fn new(kind: &str, name: &str, namespace: Option<&str>) -> Self {
        let mut target = vec![kind.to_string(), name.to_string()];
        if let Some(ns) = namespace {
            target.extend(["-n".to_string(), ns.to_string()]);
        }
        let hold = FinalizerHold { target };
        let patch = format!(r#"{{"metadata":{{"finalizers":["{TEST_FINALIZER}"]}}}}"#);
        kubectl_ok(&hold.patch_args(&patch));
        hold
    }

    fn patch_args<'a>(&'a self, patch: &'a str) -> Vec<&'a str> {
        let mut args = vec!["patch"];
        args.extend(self.target.iter().map(String::as_str));
        args.extend(["--type=merge", "-p", patch]);
        args
    }
}

impl Drop for FinalizerHold {
    fn drop(&mut self) {
        // Never panic here: a panic while a failing test unwinds would abort.
        let _ = kubectl(&self.patch_args(r#"{"metadata":{"finalizers":null}}"#));
    }
}

/// One `GET /` over a new connection: the status code and body, or why
/// there was none.
pub fn http_get(addr: SocketAddr) -> Result<(u16, String), String> {
    let timeout = Duration::from_secs(3);
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(stream, "GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .map_err(|e| e.to_string())?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("not an HTTP response: {response:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status in {head:?}"))?;
    Ok((status, body.to_string()))
}
