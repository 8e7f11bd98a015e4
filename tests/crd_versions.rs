//! Updating a CustomResourceDefinition the stack manages: a change that
//! would strand what objects of its kind hold (a version they may be
//! stored in, a field they set) is blocked in preview; any other change is
//! an ordinary update in place.
//!
//! Definitions are cluster-wide and the control plane is shared, so each
//! test's has its own group, deleted when the test ends however it ends.
//! The objects of its kind are made with kubectl, as an application would
//! make them, so that only the definition is the stack's.

use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

use crate::harness::{TestStack, plan_changes, step};
use crate::util;

const ECHO: &str = "echo:\n  replicas: 1\n  serviceType: ClusterIP\n";

/// The schema every version gets, with `extra` as more properties of
/// `spec` (each on its own line, indented as `colour` is).
fn schema(extra: &str) -> String {
    format!(
        "    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {{type: integer}}{extra}
"
    )
}

/// A group of this test's own; its definition is deleted on drop.
struct Crd {
    group: String,
}

impl Crd {
    fn new() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let k = COUNTER.fetch_add(1, Ordering::Relaxed);
        Crd {
            group: format!("t{}v{k}.example.com", std::process::id()),
        }
    }

    fn name(&self) -> String {
        format!("widgets.{}", self.group)
    }

    /// The definition with these versions, each as `(name, served,
    /// storage, schema)`.
    fn yaml(&self, versions: &[(&str, bool, bool, &str)]) -> String {
        let versions: String = versions
            .iter()
            .map(|(name, served, storage, schema)| {
                format!("  - name: {name}\n    served: {served}\n    storage: {storage}\n{schema}")
            })
            .collect();
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
{versions}",
            group = self.group
        )
    }

    /// Makes a Widget with kubectl, in `version`.
    fn create_widget(&self, stack: &TestStack, version: &str, name: &str, spec: &str) {
        let widget = format!(
            "apiVersion: {}/{version}\nkind: Widget\nmetadata:\n  name: {name}\n  namespace: {}\nspec: {spec}\n",
            self.group, stack.namespace
        );
        let applied = util::kubectl_with_stdin(&["create", "-f", "-"], Some(&widget));
        assert!(applied.status.success(), "{applied:?}");
    }

    fn live(&self) -> Value {
        util::kubectl_json(&["get", "crd", &self.name()])
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

/// A stack whose `manifests:` hold just the definition.
fn stack_with(prefix: &str, definition: &str) -> TestStack {
    let stack = TestStack::new(prefix);
    stack.write(&format!("{ECHO}manifests: [manifests/*.yaml]\n"));
    write_definition(&stack, definition);
    stack
}

fn write_definition(stack: &TestStack, definition: &str) {
    let dir = stack.project.root().join("manifests");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("widgets.yaml"), definition).unwrap();
}

/// The definition's step in the plan `preview --json` prints, and the
/// preview's exit code.
fn definition_step(stack: &TestStack, crd: &Crd) -> (Value, i32) {
    let run = stack.run(&["preview", "--json"]);
    let plan: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("preview --json is not JSON ({e}):\n{run}"));
    let found = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "CustomResourceDefinition" && s["name"] == crd.name().as_str())
        .cloned()
        .unwrap_or_else(|| panic!("no step for {} in {plan:#}", crd.name()));
    (found, run.code)
}

fn versions(live: &Value) -> Vec<(String, bool)> {
    live["spec"]["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap().to_string(),
                v["served"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_new_optional_field_in_a_definition_is_an_update_in_place() {
    let crd = Crd::new();
    let plain = schema("");
    let stack = stack_with("crdv-add", &crd.yaml(&[("v1", true, true, &plain)]));
    stack.ok(&["up", "--yes"]);
    crd.create_widget(&stack, "v1", "small", "{size: 1}");

    let more = schema("\n              shape: {type: string}");
    write_definition(&stack, &crd.yaml(&[("v1", true, true, &more)]));
    let (step_json, code) = definition_step(&stack, &crd);
    assert_eq!(code, 0, "{step_json:#}");
    assert_eq!(step_json["op"], "update", "{step_json:#}");
    assert!(step_json["blocker"].is_null(), "{step_json:#}");
    assert_eq!(
        plan_changes(&stack.plan()),
        [step("update", "CustomResourceDefinition", &crd.name())]
    );

    let uid_before = crd.live()["metadata"]["uid"].clone();
    stack.ok(&["up", "--yes"]);
    let live = crd.live();
    assert_eq!(live["metadata"]["uid"], uid_before);
    assert!(
        live["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"]["shape"]
            .is_object(),
        "{:#}",
        live["spec"]
    );
}

#[test]
fn a_definition_update_that_stops_serving_a_stored_version_in_use_is_blocked() {
    let crd = Crd::new();
    let plain = schema("");
    let stack = stack_with(
        "crdv-stop",
        &crd.yaml(&[
            ("v1alpha1", true, true, &plain),
            ("v1", true, false, &plain),
        ]),
    );
    stack.ok(&["up", "--yes"]);
    // Made while v1alpha1 is the storage version, so they are stored in it.
    crd.create_widget(&stack, "v1alpha1", "first", "{size: 1}");
    crd.create_widget(&stack, "v1alpha1", "second", "{size: 2}");
    let stored = crd.live()["status"]["storedVersions"].clone();
    assert_eq!(stored, serde_json::json!(["v1alpha1"]));

    // v1 becomes the storage version and v1alpha1 goes.
    write_definition(&stack, &crd.yaml(&[("v1", true, true, &plain)]));
    let (blocked, code) = definition_step(&stack, &crd);
    assert_eq!(code, 1, "{blocked:#}");
    assert_eq!(blocked["op"], "update", "{blocked:#}");
    assert_eq!(blocked["blocker"]["kind"], "refused", "{blocked:#}");
    assert_eq!(
        blocked["blocker"]["fields"],
        serde_json::json!(["spec.versions"])
    );
    let ns = &stack.namespace;
    let message = blocked["blocker"]["message"].as_str().unwrap();
    let expected = format!(
        "CustomResourceDefinition {} would stop serving version v1alpha1 (removed from spec.versions), but status.storedVersions lists v1alpha1 and 2 Widget objects ({ns}/first, {ns}/second), which may be stored as v1alpha1: first migrate them to the storage version v1",
        crd.name()
    );
    assert!(message.starts_with(&expected), "{message}");
    assert!(
        message.contains("then drop v1alpha1 from the definition's status.storedVersions"),
        "{message}"
    );

    let preview = stack.run(&["preview"]);
    preview.assert_code(1).assert_contains(&expected);
    let up = stack.run(&["up", "--yes"]);
    up.assert_code(1)
        .assert_contains("would stop serving version v1alpha1");
    let unchanged = crd.live();
    assert_eq!(
        versions(&unchanged),
        [("v1alpha1".to_string(), true), ("v1".to_string(), true)],
        "{up}"
    );
    assert_eq!(unchanged["spec"]["versions"][0]["storage"], true, "{up}");

    // Unserving it is blocked the same way.
    write_definition(
        &stack,
        &crd.yaml(&[
            ("v1alpha1", false, false, &plain),
            ("v1", true, true, &plain),
        ]),
    );
    let (blocked, code) = definition_step(&stack, &crd);
    assert_eq!(code, 1, "{blocked:#}");
    let message = blocked["blocker"]["message"].as_str().unwrap();
    assert!(
        message.contains("would stop serving version v1alpha1 (set to served: false)"),
        "{message}"
    );

    // With no object of the kind left, nothing is stranded.
    util::kubectl_ok(&["delete", &crd.name(), "--all", "-n", ns]);
    let (allowed, code) = definition_step(&stack, &crd);
    assert_eq!(code, 0, "{allowed:#}");
    assert_eq!(allowed["op"], "update", "{allowed:#}");
    assert!(allowed["blocker"].is_null(), "{allowed:#}");
    stack.ok(&["up", "--yes"]);
    assert_eq!(
        versions(&crd.live()),
        [("v1alpha1".to_string(), false), ("v1".to_string(), true)]
    );
}

#[test]
fn dropping_a_field_live_objects_use_is_blocked_and_an_unused_one_is_not() {
    let crd = Crd::new();
    let full =
        schema("\n              colour: {type: string}\n              shape: {type: string}");
    let stack = stack_with("crdv-field", &crd.yaml(&[("v1", true, true, &full)]));
    stack.ok(&["up", "--yes"]);
    crd.create_widget(&stack, "v1", "painted", "{size: 1, colour: red}");
    crd.create_widget(&stack, "v1", "plain", "{size: 2}");

    // Both fields go: colour, which "painted" sets, blocks the update.
    let bare = schema("");
    write_definition(&stack, &crd.yaml(&[("v1", true, true, &bare)]));
    let (blocked, code) = definition_step(&stack, &crd);
    assert_eq!(code, 1, "{blocked:#}");
    assert_eq!(blocked["blocker"]["kind"], "refused", "{blocked:#}");
    assert_eq!(
        blocked["blocker"]["fields"],
        serde_json::json!(["spec.colour"])
    );
    let message = blocked["blocker"]["message"].as_str().unwrap();
    let expected = format!(
        "CustomResourceDefinition {} would drop field spec.colour from the schema of version v1, but 1 Widget object ({}/painted) set it",
        crd.name(),
        stack.namespace
    );
    assert!(message.starts_with(&expected), "{message}");
    assert!(!message.contains("spec.shape"), "{message}");
    stack
        .run(&["up", "--yes"])
        .assert_code(1)
        .assert_contains(&expected);
    let painted = stack.get(&crd.name(), "painted");
    assert_eq!(painted["spec"]["colour"], "red");

    // Only shape goes, which no object sets: an ordinary update.
    let coloured = schema("\n              colour: {type: string}");
    write_definition(&stack, &crd.yaml(&[("v1", true, true, &coloured)]));
    let (allowed, code) = definition_step(&stack, &crd);
    assert_eq!(code, 0, "{allowed:#}");
    assert_eq!(allowed["op"], "update", "{allowed:#}");
    assert!(allowed["blocker"].is_null(), "{allowed:#}");
    stack.ok(&["up", "--yes"]);
    let properties = &crd.live()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
        ["spec"]["properties"];
    assert!(properties["shape"].is_null(), "{properties:#}");
    assert_eq!(stack.get(&crd.name(), "painted")["spec"]["colour"], "red");
}
