//! A CustomResourceDefinition and resources of its kind in one stack (its
//! `manifests:`): previewed before the kind exists, applied in stages,
//! destroyed in reverse.
//!
//! Definitions are cluster-wide and the control plane is shared, so each
//! test's has its own group, deleted when the test ends however it ends.

use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

use crate::harness::{TestStack, plan_changes, step};
use crate::util;

const ECHO: &str = "echo:\n  replicas: 1\n  serviceType: ClusterIP\n";

/// A group of this test's own; its definition is deleted on drop.
struct Crd {
    group: String,
}

impl Crd {
    fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let k = COUNTER.fetch_add(1, Ordering::Relaxed);
        Crd {
            group: format!("t{}n{k}.example.com", std::process::id()),
        }
    }

    fn name(&self) -> String {
        format!("widgets.{}", self.group)
    }

    /// The definition, with `extra` as more properties of `spec`.
    fn yaml(&self, extra: &str) -> String {
        format!(
            "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{kind: Widget, plural: widgets, singular: widget, listKind: WidgetList}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size: {{type: integer, minimum: 1}}
              colour: {{type: string, enum: [red, blue]}}{extra}
",
            group = self.group
        )
    }

    fn widget(&self, name: &str, spec: &str) -> String {
        format!(
            "apiVersion: {}/v1\nkind: Widget\nmetadata:\n  name: {name}\nspec: {spec}\n",
            self.group
        )
    }

    fn exists(&self) -> bool {
        util::kubectl(&["get", "crd", &self.name()])
            .status
            .success()
    }
}

impl Drop for Crd {
    fn drop(&mut self) {
        let _ = util::kubectl(&[
            "delete",
            "crd",
            &self.name(),
            "--ignore-not-found",
            "--wait=false",
        ]);
    }
}

fn write_manifests(stack: &TestStack, docs: &[String]) {
    let dir = stack.project.root().join("manifests");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("widgets.yaml"), docs.join("---\n")).unwrap();
}

fn widget_steps(plan: &Value) -> Vec<&Value> {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["kind"] == "Widget")
        .collect()
}

#[test]
fn a_definition_and_its_resources_are_previewed_applied_and_destroyed_in_stages() {
    let crd = Crd::new();
    let stack = TestStack::new("crd-stages");
    stack.write(&format!("{ECHO}manifests: [manifests/*.yaml]\n"));
    write_manifests(
        &stack,
        &[
            crd.yaml(""),
            crd.widget("small", "{size: 1, colour: red}"),
            crd.widget("large", "{size: 9}"),
        ],
    );

    let preview = stack.run(&["preview"]);
    preview.assert_code(0);
    preview.assert_contains("validated locally");
    let plan = stack.plan();
    let changes = plan_changes(&plan);
    for expected in [
        step("create", "CustomResourceDefinition", &crd.name()),
        step("create", "Widget", "small"),
        step("create", "Widget", "large"),
    ] {
        assert!(changes.contains(&expected), "{expected:?} in {changes:?}");
    }
    let widgets = widget_steps(&plan);
    assert_eq!(widgets.len(), 2, "{plan:#}");
    for widget in widgets {
        let reason = widget["reason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("validated locally") && reason.contains(&crd.name()),
            "{widget:#}"
        );
        assert!(widget["blocker"].is_null(), "{widget:#}");
    }
    assert!(!crd.exists(), "a preview created the definition");

    stack.ok(&["up", "--yes"]);
    let live = util::kubectl_json(&["get", "crd", &crd.name()]);
    let established = live["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["type"] == "Established" && c["status"] == "True");
    assert!(established, "{live:#}");
    let small = stack.get(&format!("widgets.{}", crd.group), "small");
    assert_eq!(small["spec"]["size"], 1);
    assert_eq!(
        small["metadata"]["labels"]["echo-iac.io/stack"], "dev",
        "{small:#}"
    );
    assert!(stack.exists(&format!("widgets.{}", crd.group), "large"));
    stack.ok(&["preview", "--expect-no-changes"]);

    // A new optional field is a change in place.
    write_manifests(
        &stack,
        &[
            crd.yaml("\n              shape: {type: string}"),
            crd.widget("small", "{size: 1, colour: red}"),
            crd.widget("large", "{size: 9}"),
        ],
    );
    let changes = plan_changes(&stack.plan());
    assert_eq!(
        changes,
        [step("update", "CustomResourceDefinition", &crd.name())]
    );
    let uid_before = live["metadata"]["uid"].clone();
    stack.ok(&["up", "--yes"]);
    let updated = util::kubectl_json(&["get", "crd", &crd.name()]);
    assert_eq!(updated["metadata"]["uid"], uid_before);
    assert!(
        updated.to_string().contains("\"shape\""),
        "{:#}",
        updated["spec"]
    );

    let destroy = stack.ok(&["destroy", "--yes"]);
    assert!(!crd.exists(), "{destroy}");
    assert!(!stack.exists(&format!("widgets.{}", crd.group), "small"));
}

#[test]
fn a_definition_kept_by_objects_the_stack_does_not_manage_is_named_on_destroy() {
    let crd = Crd::new();
    let stack = TestStack::new("crd-foreign");
    stack.write(&format!("{ECHO}manifests: [manifests/*.yaml]\n"));
    write_manifests(&stack, &[crd.yaml(""), crd.widget("ours", "{size: 2}")]);
    stack.ok(&["up", "--yes"]);
    let theirs = format!(
        "apiVersion: {}/v1\nkind: Widget\nmetadata:\n  name: theirs\n  namespace: {}\nspec: {{size: 3}}\n",
        crd.group, stack.namespace
    );
    let applied = util::kubectl_with_stdin(&["apply", "-f", "-"], Some(&theirs));
    assert!(applied.status.success(), "{applied:?}");

    let destroy = stack.ok(&["destroy", "--yes"]);
    destroy.assert_contains(&format!("Widget {}/theirs", stack.namespace));
    assert!(crd.exists(), "deleted with an object it does not manage");
    assert!(!stack.exists(&format!("widgets.{}", crd.group), "ours"));
    assert!(stack.exists(&format!("widgets.{}", crd.group), "theirs"));
}
