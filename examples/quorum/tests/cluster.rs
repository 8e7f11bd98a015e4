//! The quorum program on the local control plane (`make cluster`), run as a
//! user runs it: preview, up (which returns only once every member is
//! ready, started in order), a change, destroy; and the members' password,
//! held by a Secret, never found in the state or in anything printed.

#[path = "../../../tests/util.rs"]
mod util;

use std::path::Path;
use std::process::{Command, Output};

use k8s_openapi::ByteString;
use serde_json::Value;

use util::{TestNamespace, kubeconfig, kubectl_json, kubectl_with_stdin};

fn quorum(project: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_quorum-iac"))
        .args(args)
        .current_dir(project)
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
fn ok_without_password(project: &Path, args: &[&str]) -> String {
    let output = quorum(project, args);
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
    write_stack_with(project, namespace, replicas, greeting, PASSWORD);
}

fn write_stack_with(
    project: &Path,
    namespace: &str,
    replicas: i32,
    greeting: &str,
    password: &str,
) {
    std::fs::create_dir_all(project.join("stacks")).unwrap();
    std::fs::write(
        project.join("stacks/dev.yaml"),
        format!(
            "kubeconfig: {}\ncontext: echo-iac-local\nnamespace: {namespace}\ncreateNamespace: false\n\
             replicas: {replicas}\nimage: docker.io/library/busybox:stable\ngreeting: {greeting}\n\
             password: {password}\nnodeSelector:\n  type: kwok\n",
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
    for object in [
        "create StatefulSet",
        "create Service",
        "create PodDisruptionBudget",
        "create ConfigMap",
        "create Secret",
    ] {
        assert!(preview.contains(object), "{preview}");
    }
    assert!(members(ns.name()).is_empty(), "preview created pods");

    let up = ok(dir, &["up"]);
    assert!(
        up.contains(&format!("ready: quorum.{ns}.svc.cluster.local")),
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

    assert!(
        ok(dir, &["preview"])
            .lines()
            .all(|l| l.starts_with("same ")),
        "a second preview found changes"
    );

    write_stack(dir, ns.name(), 5, "bonjour");
    let preview = ok(dir, &["preview"]);
    assert!(
        preview.contains(&format!("update StatefulSet {ns}/quorum (spec.replicas)")),
        "{preview}"
    );
    assert!(
        preview.contains(&format!(
            "update PodDisruptionBudget {ns}/quorum (spec.minAvailable)"
        )),
        "{preview}"
    );
    assert!(
        preview.contains(&format!(
            "update ConfigMap {ns}/quorum-config (data[\"index.html\"])"
        )),
        "{preview}"
    );
    ok(dir, &["up"]);
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

    let destroy = ok(dir, &["destroy"]);
    assert!(destroy.contains("destroyed"), "{destroy}");
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
    write_stack_with(dir, ns.name(), 1, "hello", PASSWORD);

    let preview = ok_without_password(dir, &["preview"]);
    assert!(
        preview.contains(&format!("create Secret {ns}/quorum-auth")),
        "{preview}"
    );
    let diff = ok_without_password(dir, &["diff"]);
    assert!(diff.contains("+ data.password: (sensitive)"), "{diff}");
    // The unified diff shows the line, masked.
    assert!(diff.contains("password: (sensitive) "), "{diff}");

    ok_without_password(dir, &["up"]);
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
    let preview = ok_without_password(dir, &["preview"]);
    assert!(
        preview.contains(&format!("same Secret {ns}/quorum-auth")),
        "{preview}"
    );

    write_stack_with(dir, ns.name(), 1, "hello", ROTATED);
    let preview = ok_without_password(dir, &["preview"]);
    assert!(
        preview.contains(&format!("update Secret {ns}/quorum-auth (data.password)")),
        "{preview}"
    );
    let diff = ok_without_password(dir, &["diff"]);
    assert!(
        diff.contains("~ data.password: (sensitive, changed)"),
        "{diff}"
    );
    ok_without_password(dir, &["up"]);
    assert_eq!(cluster_password(ns.name()), ROTATED);
    assert_no_password(&state_files(dir), "the state");
    let preview = ok_without_password(dir, &["preview"]);
    assert!(
        preview.contains(&format!("same Secret {ns}/quorum-auth")),
        "{preview}"
    );

    ok_without_password(dir, &["destroy"]);
    assert_no_password(&state_files(dir), "the state");
}

/// The value a Secret held when client-side `kubectl apply` created it,
/// before the stack took it over: it stays in the Secret's last-applied
/// annotation, which server-side apply by another manager leaves alone.
const KUBECTL_PASSWORD: &str = "quorum-kubectl-pw-4d2x";

/// Fails when `text` holds any of the test's passwords, plain or encoded.
fn assert_no_value_at_all(text: &str, what: &str) {
    assert_no_password(text, what);
    for form in [KUBECTL_PASSWORD.to_string(), base64(KUBECTL_PASSWORD)] {
        assert!(!text.contains(&form), "{what} holds {form}:\n{text}");
    }
}

fn ok_without_any_value(project: &Path, args: &[&str]) -> String {
    let output = quorum(project, args);
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
    write_stack_with(dir, ns.name(), 1, "hello", PASSWORD);

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

    let preview = ok_without_any_value(dir, &["preview"]);
    assert!(
        preview.contains(&format!("update Secret {ns}/quorum-auth (data.password)")),
        "{preview}"
    );
    let diff = ok_without_any_value(dir, &["diff"]);
    assert!(
        diff.contains("~ data.password: (sensitive, changed)"),
        "{diff}"
    );

    ok_without_any_value(dir, &["up"]);
    assert_eq!(cluster_password(ns.name()), PASSWORD);
    // The old value is still in the cluster's copy, and nowhere of ours.
    assert!(annotation(ns.name()).contains(&base64(KUBECTL_PASSWORD)));
    assert_no_value_at_all(&state_files(dir), "the state");

    write_stack_with(dir, ns.name(), 1, "hello", ROTATED);
    let diff = ok_without_any_value(dir, &["diff"]);
    assert!(
        diff.contains(&format!("update Secret {ns}/quorum-auth")),
        "{diff}"
    );
    ok_without_any_value(dir, &["up"]);
    assert_eq!(cluster_password(ns.name()), ROTATED);
    ok_without_any_value(dir, &["destroy"]);
    assert_no_value_at_all(&state_files(dir), "the state");
}
