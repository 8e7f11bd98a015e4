//! Wait rules a stack declares in an object's annotations
//! (`echo-iac.io/wait-for`, `echo-iac.io/wait-for-failure`): `up` waits for
//! the condition or field they name on a custom resource whose kind has no
//! rules of its own, fails at once when the failure check holds, and a
//! malformed rule stops preview before anything is applied.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::TestStack;
use crate::util;

const ECHO: &str = "echo:\n  replicas: 1\n  serviceType: ClusterIP\n";

/// A namespaced CRD `Widget` with a status subresource, in a group of its
/// own (CRDs are cluster-wide, and other tests run beside these), deleted
/// when dropped, however the test ends.
struct TestCrd {
    group: String,
    name: String,
}

impl TestCrd {
    fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let group = format!(
            "wait{}-{}.example.org",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let name = format!("widgets.{group}");
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition", "metadata": {"name": name},
            "spec": {"group": group, "scope": "Namespaced",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "subresources": {"status": {}},
                    "schema": {"openAPIV3Schema": {"type": "object",
                        "x-kubernetes-preserve-unknown-fields": true}}}]}});
        let held = TestCrd { group, name };
        let output = util::kubectl_with_stdin(&["apply", "-f", "-"], Some(&crd.to_string()));
        assert!(
            output.status.success(),
            "cannot create the CRD: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        util::kubectl_ok(&[
            "wait",
            "--for=condition=Established",
            &format!("crd/{}", held.name),
            "--timeout=60s",
        ]);
        held
    }

    /// A Widget manifest carrying `annotations`.
    fn widget(&self, name: &str, annotations: &[(&str, &str)]) -> String {
        let mut text = format!(
            "apiVersion: {}/v1\nkind: Widget\nmetadata:\n  name: {name}\n  annotations:\n",
            self.group
        );
        for (key, value) in annotations {
            text.push_str(&format!("    {key}: '{value}'\n"));
        }
        text.push_str("spec:\n  size: 1\n");
        text
    }

    /// Sets the status of the Widget `name`, as its controller would.
    fn set_status(&self, stack: &TestStack, name: &str, status: serde_json::Value) {
        util::kubectl_ok(&[
            "patch",
            &format!("widgets.{}", self.group),
            name,
            "-n",
            &stack.namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            &json!({ "status": status }).to_string(),
        ]);
    }
}

impl Drop for TestCrd {
    fn drop(&mut self) {
        let _ = util::kubectl(&["delete", "crd", &self.name, "--wait=false"]);
    }
}

fn write_manifests(stack: &TestStack, documents: &[String]) {
    let dir = stack.project.root().join("manifests");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("widgets.yaml"), documents.join("---\n")).unwrap();
    stack.write(&format!("{ECHO}manifests: manifests/widgets.yaml\n"));
}

fn condition(kind: &str, status: &str, reason: &str, message: &str) -> serde_json::Value {
    json!({"conditions": [{"type": kind, "status": status, "reason": reason,
        "message": message, "lastTransitionTime": "2026-01-01T00:00:00Z"}]})
}

#[test]
fn up_waits_for_the_condition_and_the_field_a_manifest_names() {
    let crd = TestCrd::new();
    let stack = TestStack::new("wait-rules");
    write_manifests(
        &stack,
        &[
            crd.widget(
                "synced",
                &[("echo-iac.io/wait-for", "condition=Synced=True")],
            ),
            crd.widget(
                "phased",
                &[("echo-iac.io/wait-for", "jsonpath={.status.phase}=Running")],
            ),
        ],
    );
    let mut up = stack.spawn(&["up", "--yes", "--timeout", "120s"], &[]);
    let long = Duration::from_secs(60);
    up.wait_for_stderr(
        "waiting for condition Synced=True: no Synced condition yet",
        long,
    );
    up.wait_for_stderr(
        "waiting for {.status.phase}=Running: {.status.phase} not set yet",
        long,
    );

    crd.set_status(
        &stack,
        "synced",
        condition("Synced", "False", "Connecting", "the provider is slow"),
    );
    up.wait_for_stderr(
        "waiting for condition Synced=True: currently False; Connecting: the provider is slow",
        long,
    );
    crd.set_status(&stack, "phased", json!({"phase": "Pending"}));
    up.wait_for_stderr(
        "waiting for {.status.phase}=Running: currently Pending",
        long,
    );
    // Neither rule holds yet, whatever the rules of the kind would say.
    std::thread::sleep(Duration::from_secs(1));
    assert!(up.is_running(), "up finished early:\n{}", up.stderr());

    crd.set_status(&stack, "phased", json!({"phase": "Running"}));
    up.wait_for_stderr("phased: {.status.phase}=Running", long);
    assert!(
        up.is_running(),
        "up finished before Synced:\n{}",
        up.stderr()
    );
    crd.set_status(
        &stack,
        "synced",
        condition("Synced", "True", "Connected", "in sync"),
    );
    let run = up.wait(long);
    run.assert_code(0);
    run.assert_contains("synced: condition Synced=True");
}

#[test]
fn a_failure_condition_set_while_waiting_fails_up_at_once_with_its_message() {
    let crd = TestCrd::new();
    let stack = TestStack::new("wait-fails");
    write_manifests(
        &stack,
        &[crd.widget(
            "doomed",
            &[
                ("echo-iac.io/wait-for", "condition=Ready"),
                ("echo-iac.io/wait-for-failure", "condition=Ready=False"),
            ],
        )],
    );
    let mut up = stack.spawn(&["up", "--yes", "--timeout", "300s"], &[]);
    up.wait_for_stderr(
        "waiting for condition Ready=True: no Ready condition yet",
        Duration::from_secs(60),
    );
    let failed_at = Instant::now();
    crd.set_status(
        &stack,
        "doomed",
        condition(
            "Ready",
            "False",
            "BadConfig",
            "size 1 is below the minimum of 3",
        ),
    );
    let run = up.wait(Duration::from_secs(60));
    assert!(
        failed_at.elapsed() < Duration::from_secs(30),
        "the failure was not fast: {:?}",
        failed_at.elapsed()
    );
    run.assert_code(1);
    run.assert_contains(&format!(
        "Widget {}/doomed failed: condition Ready=False: BadConfig: size 1 is below the minimum of 3",
        stack.namespace
    ));
}

#[test]
fn a_malformed_wait_rule_fails_preview_naming_the_object_and_the_rule() {
    let stack = TestStack::new("wait-malformed");
    write_manifests(
        &stack,
        &[
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: odd\n  annotations:\n    \
           echo-iac.io/wait-for: 'jsonpath={.status.phase=Running'\ndata: {a: b}\n"
                .to_string(),
        ],
    );
    for command in [&["preview"][..], &["up", "--yes"]] {
        let run = stack.run(command);
        run.assert_code(1);
        run.assert_contains(&format!(
            "ConfigMap {}/odd: annotation echo-iac.io/wait-for: \
             wait rule `jsonpath={{.status.phase=Running` is malformed",
            stack.namespace
        ));
    }
    assert!(!stack.exists("configmap", "odd"), "applied after an error");
    assert!(!stack.exists("deployment", "nginx-echo-nodeport"));
}
