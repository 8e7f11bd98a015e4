//! `manifests:` in the echo program's stack: plain YAML objects beside the
//! program's own, applied, labelled and pruned as they are; a manifest with
//! an error stops preview at its file, document and line, with nothing
//! applied.

use crate::harness::{TestStack, plan_changes, step};

const ECHO: &str = "echo:\n  replicas: 1\n  serviceType: ClusterIP\n";

fn write_manifest(stack: &TestStack, text: &str) {
    let dir = stack.project.root().join("manifests");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("extra.yaml"), text).unwrap();
}

#[test]
fn a_manifest_with_an_error_fails_preview_at_its_file_document_and_line() {
    let stack = TestStack::new("manifest-errors");
    stack.write(&format!("{ECHO}manifests: manifests/extra.yaml\n"));
    let good = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata: {a: b}\n";
    let cases = [
        (
            format!("{good}---\n# the second\napiVersion: v1\nmetadata:\n  name: no-kind\n"),
            "extra.yaml:8:1: document 2 has no `kind`",
        ),
        (
            format!("{good}---\napiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n"),
            "extra.yaml:7:1: document 2: the cluster serves no kind Widget in example.com/v1",
        ),
        (
            format!(
                "{good}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: nginx-echo-config\n"
            ),
            &*format!(
                "extra.yaml:7:1: document 2: ConfigMap {}/nginx-echo-config is declared twice: \
                 the program declares it too",
                stack.namespace
            )
            .leak(),
        ),
    ];
    for (text, error) in cases {
        write_manifest(&stack, &text);
        for command in [&["preview"][..], &["up", "--yes"]] {
            let run = stack.run(command);
            run.assert_code(1);
            assert!(run.stderr.contains(error), "expected {error:?} in {run}");
        }
        assert!(
            !stack.exists("configmap", "extra"),
            "applied after an error"
        );
        assert!(!stack.exists("deployment", "nginx-echo-nodeport"));
    }
}

#[test]
fn a_manifest_object_beside_the_programs_is_applied_labelled_and_pruned() {
    let stack = TestStack::new("manifest-extra");
    stack.write(&format!("{ECHO}manifests: [manifests/*.yaml]\n"));
    write_manifest(
        &stack,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra-settings\ndata:\n  colour: blue\n",
    );
    let render = stack.ok(&["render"]);
    assert!(render.stdout.contains("name: extra-settings"), "{render}");

    let plan = stack.plan();
    let changes = plan_changes(&plan);
    assert!(
        changes.contains(&step("create", "ConfigMap", "extra-settings")),
        "{changes:?}"
    );
    assert!(
        changes.contains(&step("create", "Deployment", "nginx-echo-nodeport")),
        "{changes:?}"
    );
    stack.ok(&["up", "--yes"]);
    let extra = stack.get("configmap", "extra-settings");
    assert_eq!(extra["metadata"]["namespace"], stack.namespace.as_str());
    assert_eq!(extra["data"]["colour"], "blue");
    let labels = &extra["metadata"]["labels"];
    assert_eq!(
        labels["app.kubernetes.io/managed-by"], "echo-iac",
        "{extra:#}"
    );
    assert_eq!(labels["echo-iac.io/stack"], "dev", "{extra:#}");
    stack.ok(&["preview", "--expect-no-changes"]);

    // Gone from the file, gone from the cluster; the program's own stay.
    write_manifest(
        &stack,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other-settings\n",
    );
    let changes = plan_changes(&stack.plan());
    assert_eq!(
        changes,
        [
            step("create", "ConfigMap", "other-settings"),
            step("delete", "ConfigMap", "extra-settings"),
        ]
    );
    stack.ok(&["up", "--yes"]);
    assert!(!stack.exists("configmap", "extra-settings"));
    assert!(stack.exists("configmap", "other-settings"));
    assert!(stack.exists("deployment", "nginx-echo-nodeport"));
    stack.ok(&["destroy", "--yes"]);
    assert!(!stack.exists("configmap", "other-settings"));
}
