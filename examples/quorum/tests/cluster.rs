//! The quorum program on the local control plane (`make cluster`), run as a
//! user runs it, through the runner's command line: preview, up (which
//! returns only once every member is ready, started in order), a change,
//! destroy; the members' password, held by a Secret, never found in the
//! state or in anything printed; a stack shared by two project folders
//! through the Kubernetes backend; Ctrl-C while waiting.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use echo_iac_testutil::{TestNamespace, kubeconfig, kubectl_json, kubectl_with_stdin};
use k8s_openapi::ByteString;
use serde_json::Value;

fn command(project: &Path, password: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quorum-iac"));
    command
        .args(args)
        .current_dir(project)
        .env("QUORUM_PASSWORD", password)
        .env_remove("ECHO_IAC_STACK")
        .env_remove("ECHO_IAC_BACKEND")
        .stdin(std::process::Stdio::null());
    command
}

fn quorum(project: &Path, args: &[&str]) -> Output {
    command(project, PASSWORD, args)
        .output()
        .expect("run quorum-iac")
}

fn ok(project: &Path, args: &[&str]) -> String {
    let output = quorum(project, args);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "quorum-iac {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The plan row of an object: `+   StatefulSet   ns/quorum   create`.
fn row<'a>(plan: &'a str, kind: &str, name: &str) -> &'a str {
    plan.lines()
        .find(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words.len() >= 3 && words[1] == kind && words[2].ends_with(&format!("/{name}"))
        })
        .unwrap_or_else(|| panic!("no row for {kind} {name} in:\n{plan}"))
}

fn assert_op(plan: &str, kind: &str, name: &str, op: &str) {
    let row = row(plan, kind, name);
    assert!(
        row.trim_end().ends_with(op),
        "{kind} {name} is not `{op}`:\n{plan}"
    );
}

/// The passwords the tests set: the first, and the one it changes to.
const PASSWORD: &str = "quorum-pw-7f3k9q";
const ROTATED: &str = "quorum-pw-rotated-2m8x";

fn base64(text: &str) -> String {
    serde_json::to_value(ByteString(text.as_bytes().to_vec()))
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
}

fn assert_no_password(text: &str, what: &str) {
    for password in [PASSWORD, ROTATED] {
        for form in [password.to_string(), base64(password)] {
            assert!(!text.contains(&form), "{what} holds {form}:\n{text}");
        }
    }
}

/// Runs quorum-iac, checks that it succeeded and that neither its stdout
/// nor its stderr holds a password, plain or base64-encoded, and returns
/// its stdout.
fn ok_without_password(project: &Path, password: &str, args: &[&str]) -> String {
    let output = command(project, password, args)
        .output()
        .expect("run quorum-iac");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(
        output.status.success(),
        "quorum-iac {args:?} failed:\n{stdout}\n{stderr}"
    );
    assert_no_password(
        &format!("{stdout}{stderr}"),
        &format!("quorum-iac {args:?}"),
    );
    stdout
}

/// The state file and every kept revision.
fn state_files(project: &Path) -> String {
    let mut text = String::new();
    for folder in [project.join("state"), project.join("state/.history")] {
        for entry in std::fs::read_dir(folder).into_iter().flatten() {
            let path = entry.unwrap().path();
            if path.is_file() {
                text.push_str(&String::from_utf8_lossy(&std::fs::read(&path).unwrap()));
            }
        }
    }
    text
}

/// The config hash on the StatefulSet's pod template.
fn config_hash(namespace: &str) -> String {
    let set = kubectl_json(&[
        "get",
        "statefulset",
        "quorum",
        "-n",
        namespace,
        "-o",
        "json",
    ]);
    set["spec"]["template"]["metadata"]["annotations"]["quorum-iac.io/config-hash"]
        .as_str()
        .expect("the members' template carries a config hash")
        .to_string()
}

/// The password the cluster's Secret holds.
fn cluster_password(namespace: &str) -> String {
    let secret = kubectl_json(&[
        "get",
        "secret",
        "quorum-auth",
        "-n",
        namespace,
        "-o",
        "json",
    ]);
    let bytes: ByteString = serde_json::from_value(secret["data"]["password"].clone()).unwrap();
    String::from_utf8(bytes.0).unwrap()
}

fn write_stack(project: &Path, namespace: &str, replicas: i32, greeting: &str) {
    write_stack_file(
        project,
        namespace,
        &format!("replicas: {replicas}\n  greeting: {greeting}\n  nodeSelector:\n    type: kwok\n"),
        None,
    );
}

/// Writes `stacks/dev.yaml` with `quorum:` settings `section` (indented by
/// two spaces after its first line) and, optionally, a backend.
fn write_stack_file(project: &Path, namespace: &str, section: &str, backend: Option<&str>) {
    std::fs::create_dir_all(project.join("stacks")).unwrap();
    let backend = backend
        .map(|b| format!("backend: {b}\n"))
        .unwrap_or_default();
    std::fs::write(
        project.join("stacks/dev.yaml"),
        format!(
            "kubeconfig: {}\ncontext: echo-iac-local\nnamespace: {namespace}\ncreateNamespace: false\n\
             {backend}quorum:\n  image: docker.io/library/busybox:stable\n  {section}",
            kubeconfig().display()
        ),
    )
    .unwrap();
}

fn members(namespace: &str) -> Vec<Value> {
    let pods = kubectl_json(&[
        "get",
        "pods",
        "-n",
        namespace,
        "-l",
        "app=quorum",
        "-o",
        "json",
    ]);
    let mut items = pods["items"].as_array().cloned().unwrap_or_default();
    items.sort_by_key(|p| {
        p["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    });
    items
}

fn ready(pod: &Value) -> bool {
    pod["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

#[test]
fn a_statefulset_stack_previews_comes_up_in_order_changes_and_goes() {
    let ns = TestNamespace::new("quorum");
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    write_stack(dir, ns.name(), 3, "hello");

    let preview = ok(dir, &["preview"]);
    for (kind, name) in [
        ("StatefulSet", "quorum"),
        ("Service", "quorum"),
        ("PodDisruptionBudget", "quorum"),
        ("ConfigMap", "quorum-config"),
        ("Secret", "quorum-auth"),
    ] {
        assert_op(&preview, kind, name, "create");
    }
    assert!(members(ns.name()).is_empty(), "preview created pods");

    let up = ok(dir, &["up", "--yes"]);
    assert!(
        up.contains(&format!("quorum.{ns}.svc.cluster.local")),
        "{up}"
    );
    // `up` returned: every member is ready, and they were started in order.
    let pods = members(ns.name());
    assert_eq!(pods.len(), 3, "{pods:?}");
    assert!(
        pods.iter().all(ready),
        "up returned before every member was ready"
    );
    let created: Vec<&str> = pods
        .iter()
        .map(|p| p["metadata"]["creationTimestamp"].as_str().unwrap())
        .collect();
    assert!(created.windows(2).all(|w| w[0] <= w[1]), "{created:?}");
    let budget = kubectl_json(&["get", "pdb", "quorum", "-n", ns.name(), "-o", "json"]);
    assert_eq!(budget["spec"]["minAvailable"], 2);
    let service = kubectl_json(&["get", "service", "quorum", "-n", ns.name(), "-o", "json"]);
    assert_eq!(service["spec"]["clusterIP"], "None");
    // The program's typed outputs, read from the live StatefulSet.
    assert_eq!(ok(dir, &["output", "readyMembers"]).trim(), "3");
    assert_eq!(
        ok(dir, &["output", "members"]).lines().next(),
        Some(format!("quorum-0.quorum.{ns}.svc.cluster.local").as_str())
    );

    ok(dir, &["preview", "--expect-no-changes"]);

    write_stack(dir, ns.name(), 5, "bonjour");
    let preview = ok(dir, &["preview"]);
    assert_op(&preview, "StatefulSet", "quorum", "update");
    assert!(preview.contains("~ spec.replicas: 3 → 5"), "{preview}");
    assert_op(&preview, "PodDisruptionBudget", "quorum", "update");
    assert!(preview.contains("~ spec.minAvailable: 2 → 3"), "{preview}");
    assert_op(&preview, "ConfigMap", "quorum-config", "update");
    ok(dir, &["up", "--yes"]);
    let pods = members(ns.name());
    assert_eq!(pods.len(), 5);
    assert!(pods.iter().all(ready));
    let config = kubectl_json(&[
        "get",
        "configmap",
        "quorum-config",
        "-n",
        ns.name(),
        "-o",
        "json",
    ]);
    assert_eq!(config["data"]["index.html"], "bonjour\n");

    let destroy = ok(dir, &["destroy", "--yes"]);
    assert!(destroy.contains("Destroyed stack dev"), "{destroy}");
    let left = kubectl_json(&[
        "get",
        "statefulsets,services,configmaps,pdb,secrets",
        "-n",
        ns.name(),
        "-l",
        "quorum-iac.io/stack=dev",
        "-o",
        "json",
    ]);
    assert_eq!(
        left["items"],
        serde_json::json!([]),
        "destroy left objects behind"
    );
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state/dev.json")).unwrap())
            .unwrap();
    assert_eq!(state["resources"], serde_json::json!([]));
}

#[test]
fn the_members_password_is_in_the_cluster_and_nowhere_else() {
    let ns = TestNamespace::new("quorum-secret");
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    write_stack(dir, ns.name(), 1, "hello");

    let preview = ok_without_password(dir, PASSWORD, &["preview", "--diff"]);
    assert_op(&preview, "Secret", "quorum-auth", "create");
    assert!(preview.contains("(sensitive)"), "{preview}");
    ok_without_password(dir, PASSWORD, &["preview", "--json"]);
    ok_without_password(dir, PASSWORD, &["up", "--yes"]);
    assert_eq!(cluster_password(ns.name()), PASSWORD);
    assert_no_password(&state_files(dir), "the state");
    // The StatefulSet reads the Secret, so it is applied after it.
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state/dev.json")).unwrap())
            .unwrap();
    let set = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"]["kind"] == "StatefulSet")
        .unwrap();
    assert!(
        set["dependsOn"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["kind"] == "Secret" && d["name"] == "quorum-auth"),
        "{set}"
    );
    ok_without_password(dir, PASSWORD, &["preview", "--expect-no-changes"]);

    // A new password, from a file the stack file names this time.
    std::fs::write(dir.join("password.txt"), format!("{ROTATED}\n")).unwrap();
    write_stack_file(
        dir,
        ns.name(),
        "replicas: 1\n  passwordFile: password.txt\n  nodeSelector:\n    type: kwok\n",
        None,
    );
    let preview = ok_without_password(dir, "", &["preview", "--diff"]);
    assert_op(&preview, "Secret", "quorum-auth", "update");
    assert!(
        preview.contains("~ data.password: (sensitive, changed)"),
        "{preview}"
    );
    // The members read the password at start: the new one rolls them, by
    // the hash in their template, which gives the password away no more
    // than the state does.
    assert_op(&preview, "StatefulSet", "quorum", "update");
    assert!(
        preview.contains("annotations[\"quorum-iac.io/config-hash\"]"),
        "{preview}"
    );
    let hash_before = config_hash(ns.name());
    ok_without_password(dir, "", &["preview", "--json"]);
    ok_without_password(dir, "", &["up", "--yes"]);
    assert_eq!(cluster_password(ns.name()), ROTATED);
    let hash_after = config_hash(ns.name());
    assert_ne!(hash_before, hash_after);
    assert_no_password(&hash_after, "the config hash");
    assert_no_password(&state_files(dir), "the state");
    ok_without_password(dir, "", &["stack", "history"]);
    ok_without_password(dir, "", &["preview", "--expect-no-changes"]);

    ok_without_password(dir, "", &["destroy", "--yes"]);
    assert_no_password(&state_files(dir), "the state");
}

#[test]
fn without_a_password_the_program_refuses_but_its_stack_can_still_be_destroyed() {
    let ns = TestNamespace::new("quorum-nopw");
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    write_stack(dir, ns.name(), 1, "hello");
    ok(dir, &["up", "--yes"]);

    let output = command(dir, "", &["preview"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("QUORUM_PASSWORD"), "{stderr}");
    assert!(stderr.contains("passwordFile"), "{stderr}");

    // Teardown needs only the state.
    let output = command(dir, "", &["destroy", "--yes"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("destroying what the state lists"),
        "{stderr}"
    );
    assert!(members(ns.name()).is_empty());
    let left = kubectl_json(&[
        "get",
        "statefulsets,services,configmaps,pdb,secrets",
        "-n",
        ns.name(),
        "-l",
        "quorum-iac.io/stack=dev",
        "-o",
        "json",
    ]);
    assert_eq!(left["items"], serde_json::json!([]));
}

#[test]
fn a_stack_whose_quorum_section_no_longer_reads_is_still_destroyed_from_its_state() {
    let ns = TestNamespace::new("quorum-broken");
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    write_stack(dir, ns.name(), 1, "hello");
    ok(dir, &["up", "--yes"]);

    // An edit leaves the section unreadable: a typo and a wrong type.
    write_stack_file(
        dir,
        ns.name(),
        "replica: 1
  greeting: [1, 2]
",
        None,
    );
    let output = quorum(dir, &["preview"]);
    assert_eq!(output.status.code(), Some(1));

    let output = quorum(dir, &["destroy", "--yes"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("stacks/dev.yaml:7:3"), "{stderr}");
    assert!(
        stderr.contains("destroying what the state lists"),
        "{stderr}"
    );
    let left = kubectl_json(&[
        "get",
        "statefulsets,services,configmaps,pdb,secrets",
        "-n",
        ns.name(),
        "-l",
        "quorum-iac.io/stack=dev",
        "-o",
        "json",
    ]);
    assert_eq!(left["items"], serde_json::json!([]));

    // A stack file whose generic keys are broken still says so.
    std::fs::write(dir.join("stacks/dev.yaml"), "namespace: [x]\nquorum: {}\n").unwrap();
    let output = quorum(dir, &["destroy", "--yes"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stacks/dev.yaml:1:"), "{stderr}");
}

#[test]
fn two_project_folders_share_one_stack_through_the_kubernetes_backend() {
    let ns = TestNamespace::new("quorum-team");
    let (laptop, ci) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let backend = format!("kubernetes://{ns}");
    for dir in [laptop.path(), ci.path()] {
        write_stack_file(
            dir,
            ns.name(),
            "replicas: 1\n  nodeSelector:\n    type: kwok\n",
            Some(&backend),
        );
    }
    ok(laptop.path(), &["up", "--yes"]);
    // Nothing is kept in either folder: the state is in the cluster.
    assert!(!laptop.path().join("state/dev.json").exists());
    ok(ci.path(), &["preview", "--expect-no-changes"]);
    let history = ok(ci.path(), &["stack", "history"]);
    assert!(history.contains("quorum-iac up"), "{history}");
    let destroy = ok(ci.path(), &["destroy", "--yes"]);
    assert!(destroy.contains("Destroyed stack dev"), "{destroy}");
    assert!(members(ns.name()).is_empty());
    let left = kubectl_json(&[
        "get",
        "statefulsets,services,configmaps,pdb",
        "-n",
        ns.name(),
        "-l",
        "quorum-iac.io/stack=dev",
        "-o",
        "json",
    ]);
    assert_eq!(left["items"], serde_json::json!([]));
    ok(laptop.path(), &["preview"]);
}

#[test]
fn graph_draws_the_members_and_test_says_there_is_nothing_to_test() {
    let ns = TestNamespace::new("quorum-graph");
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    write_stack(dir, ns.name(), 2, "hello");

    // quorum declares no smoke tests: nothing to run, and no cluster needed.
    let test = ok(dir, &["test"]);
    assert!(
        test.contains("quorum-iac declares no smoke tests"),
        "{test}"
    );

    ok(dir, &["up", "--yes"]);
    let mermaid = ok(dir, &["graph"]);
    for needle in [
        format!("namespace {ns}"),
        "subgraph Sts0[\"StatefulSet: quorum (2/2 ready)\"]".to_string(),
        "Svc0[\"Service: quorum<br/>ClusterIP (headless), port 80 → http\"]".to_string(),
        "CM0 -->|\"Mounts /config\"| Sts0".to_string(),
        "Secret0 -->|\"Env MEMBER_PASSWORD\"| Sts0".to_string(),
        "Sts0 -->|\"Selects app: quorum\"| Svc0".to_string(),
        "Sts0 -->|\"Selects app: quorum\"| PDB0".to_string(),
    ] {
        assert!(mermaid.contains(&needle), "no {needle:?} in:\n{mermaid}");
    }
    for pod in members(ns.name()) {
        let name = pod["metadata"]["name"].as_str().unwrap();
        let ip = pod["status"]["podIP"].as_str().unwrap_or("no IP yet");
        let line = format!("Pod: {name}<br/>{ip}, ready");
        assert!(mermaid.contains(&line), "no {line:?} in:\n{mermaid}");
    }
    assert!(!mermaid.contains("Test Pod"), "{mermaid}");
    assert_no_password(&mermaid, "graph");
    let dot = ok(dir, &["graph", "--format", "dot"]);
    assert!(dot.starts_with("digraph quorum {"), "{dot}");
    ok(dir, &["destroy", "--yes"]);
}

#[test]
fn an_unknown_key_in_the_quorum_section_is_located_with_a_suggestion() {
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    write_stack_file(dir, "quorum-typo", "replica: 1\n", None);
    let output = quorum(dir, &["preview"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stacks/dev.yaml:7:3"), "{stderr}");
    assert!(stderr.contains("replicas"), "{stderr}");
}

#[test]
fn ctrl_c_while_waiting_exits_130_with_the_state_consistent() {
    let ns = TestNamespace::new("quorum-sigint");
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    // No node has this label: the member stays Pending and `up` waits.
    write_stack_file(
        dir,
        ns.name(),
        "replicas: 1\n  nodeSelector:\n    quorum-test: nowhere\n",
        None,
    );
    let mut up = command(dir, PASSWORD, &["up", "--yes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The wait has begun once the state records it as pending.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = std::fs::read_to_string(dir.join("state/dev.json")).unwrap_or_default();
        if state.contains("\"wait\"") {
            break;
        }
        assert!(Instant::now() < deadline, "up never started waiting");
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: kill sends a signal to a child this test started.
    unsafe { libc::kill(up.id() as i32, libc::SIGINT) };
    let output = wait_with_timeout(&mut up, Duration::from_secs(20));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state/dev.json")).unwrap())
            .expect("the state parses");
    assert_eq!(
        state["resources"].as_array().map(Vec::len),
        Some(5),
        "{state:#}"
    );
    ok(dir, &["destroy", "--yes"]);
}

fn wait_with_timeout(child: &mut std::process::Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut output = Output {
        status: child.wait().unwrap(),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    use std::io::Read;
    if let Some(mut out) = child.stdout.take() {
        out.read_to_end(&mut output.stdout).unwrap();
    }
    if let Some(mut err) = child.stderr.take() {
        err.read_to_end(&mut output.stderr).unwrap();
    }
    output
}

#[test]
fn quorum_has_every_command_the_runner_gives() {
    let help = |binary: &str| {
        let output = Command::new(binary).arg("--help").output().unwrap();
        assert!(output.status.success());
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .skip_while(|l| !l.starts_with("Commands:"))
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .filter_map(|l| l.split_whitespace().next().map(str::to_string))
            .collect::<Vec<_>>()
    };
    let quorum = help(env!("CARGO_BIN_EXE_quorum-iac"));
    for command in [
        "preview",
        "up",
        "destroy",
        "refresh",
        "render",
        "output",
        "stack",
        "completions",
        "man",
    ] {
        assert!(quorum.contains(&command.to_string()), "{quorum:?}");
    }
}

/// A third password: the one a Secret had before the stack took it over.
const KUBECTL_PASSWORD: &str = "quorum-kubectl-pw-4d2x";

/// Fails when `text` holds any of the test's passwords, plain or encoded.
fn assert_no_value_at_all(text: &str, what: &str) {
    assert_no_password(text, what);
    for form in [KUBECTL_PASSWORD.to_string(), base64(KUBECTL_PASSWORD)] {
        assert!(!text.contains(&form), "{what} holds {form}:\n{text}");
    }
}

fn ok_without_any_value(project: &Path, password: &str, args: &[&str]) -> String {
    let output = command(project, password, args)
        .output()
        .expect("run quorum-iac");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(
        output.status.success(),
        "quorum-iac {args:?} failed:\n{stdout}\n{stderr}"
    );
    assert_no_value_at_all(
        &format!("{stdout}{stderr}"),
        &format!("quorum-iac {args:?}"),
    );
    stdout
}

#[test]
fn a_secret_first_applied_with_kubectl_shows_no_value_when_the_stack_changes_it() {
    let ns = TestNamespace::new("quorum-kubectl");
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    write_stack(dir, ns.name(), 1, "hello");

    // Created with client-side apply and the stack's labels, as a Secret
    // made by hand and then handed to the stack would be.
    let manifest = serde_json::json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "quorum-auth", "labels": {
            "app.kubernetes.io/managed-by": "quorum-iac", "quorum-iac.io/stack": "dev"}},
        "type": "Opaque",
        "data": {"password": base64(KUBECTL_PASSWORD)}});
    let applied = kubectl_with_stdin(
        &["apply", "-n", ns.name(), "-f", "-"],
        Some(&manifest.to_string()),
    );
    assert!(applied.status.success(), "{applied:?}");
    let annotation = |ns: &str| {
        kubectl_json(&["get", "secret", "quorum-auth", "-n", ns, "-o", "json"])["metadata"]
            ["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(annotation(ns.name()).contains(&base64(KUBECTL_PASSWORD)));

    let preview = ok_without_any_value(dir, PASSWORD, &["preview", "--diff"]);
    assert_op(&preview, "Secret", "quorum-auth", "update");
    assert!(
        preview.contains("~ data.password: (sensitive, changed)"),
        "{preview}"
    );
    ok_without_any_value(dir, PASSWORD, &["preview", "--json"]);
    ok_without_any_value(dir, PASSWORD, &["up", "--yes"]);
    assert_eq!(cluster_password(ns.name()), PASSWORD);
    // The old value is still in the cluster's copy, and nowhere of ours.
    assert!(annotation(ns.name()).contains(&base64(KUBECTL_PASSWORD)));
    assert_no_value_at_all(&state_files(dir), "the state");

    let preview = ok_without_any_value(dir, ROTATED, &["preview", "--diff"]);
    assert_op(&preview, "Secret", "quorum-auth", "update");
    ok_without_any_value(dir, ROTATED, &["up", "--yes"]);
    assert_eq!(cluster_password(ns.name()), ROTATED);
    ok_without_any_value(dir, ROTATED, &["destroy", "--yes"]);
    assert_no_value_at_all(&state_files(dir), "the state");
}

#[test]
fn a_rollback_keeps_a_secret_changed_since_and_says_so() {
    let ns = TestNamespace::new("quorum-rollback");
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    const NEWER: &str = "a-newer-password-5c2e";

    write_stack(dir, ns.name(), 1, "first greeting");
    ok_without_password(dir, PASSWORD, &["up", "--yes"]);
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state/dev.json")).unwrap())
            .unwrap();
    let first = state["serial"].as_u64().unwrap();
    write_stack(dir, ns.name(), 1, "second greeting");
    ok_without_password(dir, NEWER, &["up", "--yes"]);
    assert_eq!(cluster_password(ns.name()), NEWER);

    let output = command(dir, NEWER, &["rollback", "--yes"])
        .output()
        .expect("run quorum-iac");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(
        output.status.success(),
        "rollback failed:\n{stdout}\n{stderr}"
    );
    let all = format!("{stdout}{stderr}");
    assert_no_password(&all, "rollback");
    assert!(
        !all.contains(NEWER),
        "rollback printed the password:\n{all}"
    );
    assert!(
        all.lines().any(|l| l.contains("Secret")
            && l.contains("quorum-auth")
            && l.contains("kept as they are now")),
        "the preview does not list the Secret as kept:\n{all}"
    );
    // The greeting went back; the password, which the state holds only
    // sealed, stayed.
    let config = kubectl_json(&["get", "configmap", "quorum-config", "-n", ns.name()]);
    assert_eq!(config["data"]["index.html"], "first greeting\n");
    assert_eq!(cluster_password(ns.name()), NEWER);
    assert!(
        all.contains(&format!("Rolled back to revision {first}")),
        "{all}"
    );
    assert!(
        !state_files(dir).contains(NEWER),
        "the state holds the password"
    );
}
