//! A Secret's values, once it was applied with client-side `kubectl apply`
//! (which copies the whole Secret into its last-applied annotation), never
//! shown or written by echo-iac: not by preview, `--diff`, `--json`, destroy,
//! the state or its history.

use serde_json::{Value, json};

use crate::harness::{TestStack, node_port, state_files};
use crate::util::{kubectl_json, kubectl_with_stdin};

const PLAIN: &str = "kubectl-pw-9q4m2x";
/// `PLAIN`, base64-encoded.
const ENCODED: &str = "a3ViZWN0bC1wdy05cTRtMng=";
const TOKEN: &str = "string-data-t0ken-77ab";

fn assert_no_value(text: &str, what: &str) {
    for value in [PLAIN, ENCODED, TOKEN] {
        assert!(!text.contains(value), "{what} holds {value}:\n{text}");
    }
}

#[test]
fn a_secret_applied_with_kubectl_shows_no_value_in_preview_diff_json_state_or_history() {
    let stack = TestStack::new("kubectl-secret");
    stack.write(&format!(
        "createNamespace: false\necho:\n  replicas: 1\n  nodePort: {}\n",
        node_port()
    ));
    // Client-side apply, as `kubectl apply -f` without --server-side does.
    let manifest = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "db", "labels": {
            "app.kubernetes.io/managed-by": "echo-iac", "echo-iac.io/stack": "dev"}},
        "type": "Opaque",
        "data": {"password": ENCODED},
        "stringData": {"token": TOKEN}});
    let args = ["apply", "-n", &stack.namespace, "-f", "-"];
    let applied = kubectl_with_stdin(&args, Some(&manifest.to_string()));
    assert!(applied.status.success(), "{applied:?}");
    let live = kubectl_json(&["get", "secret", "db", "-n", &stack.namespace]);
    let annotation =
        live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .expect("client-side apply left its annotation");
    assert!(annotation.contains(ENCODED), "{annotation}");

    // The stack's state records the Secret (as a state that once declared
    // it would), so every preview plans to delete it.
    let document = json!({"version": 2, "stack": "dev", "serial": 1,
        "resources": [{
            "id": {"apiVersion": "v1", "kind": "Secret", "namespace": stack.namespace, "name": "db"},
            "uid": live["metadata"]["uid"],
            "dependsOn": [],
            "applied": {"apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "db", "namespace": stack.namespace},
                "type": "Opaque", "data": {"password": ENCODED}, "stringData": {"token": TOKEN}},
        }],
        "pending": [], "outputs": {}});
    let file = stack.project.root().join("with-secret.json");
    std::fs::write(&file, document.to_string()).unwrap();
    let import = stack.ok(&["stack", "import", file.to_str().unwrap()]);
    std::fs::remove_file(&file).unwrap();
    assert_no_value(&import.all(), "stack import");

    let preview = stack.ok(&["preview"]);
    let ns_db = format!("{}/db", stack.namespace);
    assert!(
        preview
            .stdout
            .lines()
            .any(|l| l.contains(&ns_db) && l.trim_end().ends_with("delete")),
        "{preview}"
    );
    assert_no_value(&preview.all(), "preview");

    let diff = stack.ok(&["preview", "--diff"]);
    assert!(
        diff.stdout
            .lines()
            .any(|l| l.contains("kubectl.kubernetes.io/last-applied-configuration: (sensitive) ")),
        "the deleted Secret's annotation is shown masked:\n{diff}"
    );
    assert!(diff.stdout.contains("password: (sensitive) "), "{diff}");
    assert_no_value(&diff.all(), "preview --diff");

    let plan = stack.run(&["preview", "--json"]);
    assert_no_value(&plan.all(), "preview --json");
    let plan: Value = serde_json::from_str(&plan.stdout).unwrap();
    assert!(
        plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["op"] == "delete" && s["kind"] == "Secret"),
        "{plan}"
    );

    let destroy = stack.ok(&["destroy", "--yes"]);
    assert_no_value(&destroy.all(), "destroy");
    assert!(
        !stack.exists("secret", "db"),
        "destroy deleted the recorded Secret"
    );
    let files = state_files(&stack.project);
    assert!(
        files.len() >= 2,
        "the state and its history: {:?}",
        files.keys()
    );
    for (path, bytes) in files {
        assert_no_value(
            &String::from_utf8_lossy(&bytes),
            &path.display().to_string(),
        );
    }
}
