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

/// A definition with a schema that uses most of what structural schemas
/// have, and a CEL rule.
fn checked_crd(crd: &Crd) -> String {
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
            x-kubernetes-validations:
            - rule: self.minSize <= self.size
              message: minSize must not exceed size
            properties:
              size: {{type: integer, minimum: 1, maximum: 9}}
              minSize: {{type: integer, default: 1}}
              colour: {{type: string, enum: [red, blue]}}
              code: {{type: string, pattern: '^[a-z]+$', maxLength: 8}}
              port: {{x-kubernetes-int-or-string: true}}
              note: {{type: string, nullable: true}}
              ratio: {{type: number, exclusiveMinimum: true, minimum: 0}}
              labels:
                type: object
                additionalProperties: {{type: string}}
              free:
                type: object
                x-kubernetes-preserve-unknown-fields: true
              parts:
                type: array
                maxItems: 2
                items:
                  type: object
                  required: [name]
                  properties:
                    name: {{type: string}}
                    count: {{type: integer, default: 1}}
",
        group = crd.group
    )
}

/// Widgets the local check and the server must judge alike: `(name, spec)`.
const CASES: &[(&str, &str)] = &[
    ("plain", "{size: 3}"),
    (
        "full",
        "{size: 4, minSize: 2, colour: blue, code: abc, port: http, note: null, ratio: 0.5, labels: {a: b}, free: {x: [1, {y: z}]}, parts: [{name: a}, {name: b, count: 3}]}",
    ),
    ("port-number", "{size: 1, port: 8080}"),
    ("unknown-field", "{size: 2, shape: round}"),
    ("size-string", "{size: big}"),
    ("size-float", "{size: 1.5}"),
    ("size-zero", "{size: 0}"),
    ("size-ten", "{size: 10}"),
    ("no-size", "{colour: red}"),
    ("colour-green", "{size: 2, colour: green}"),
    ("code-upper", "{size: 2, code: ABC}"),
    ("code-long", "{size: 2, code: abcdefghij}"),
    ("port-bool", "{size: 2, port: true}"),
    ("ratio-zero", "{size: 2, ratio: 0}"),
    ("labels-number", "{size: 2, labels: {a: 1}}"),
    (
        "parts-three",
        "{size: 2, parts: [{name: a}, {name: b}, {name: c}]}",
    ),
    ("part-no-name", "{size: 2, parts: [{count: 2}]}"),
    ("cel-broken", "{size: 2, minSize: 5}"),
    ("cel-default", "{size: 1}"),
    ("spec-list", "[1, 2]"),
];

/// Whether each widget's step is blocked, and what each valid one creates.
fn verdicts(plan: &Value) -> Vec<(String, Option<String>, Value)> {
    let mut found: Vec<(String, Option<String>, Value)> = widget_steps(plan)
        .into_iter()
        .map(|s| {
            let blocker = s["blocker"]["message"].as_str().map(str::to_string);
            let changes = if blocker.is_none() {
                s["changes"].clone()
            } else {
                Value::Null
            };
            (s["name"].as_str().unwrap().to_string(), blocker, changes)
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

#[test]
fn local_validation_gives_the_servers_verdicts_and_defaults() {
    let crd = Crd::new();
    let stack = TestStack::new("crd-schema");
    stack.write(&format!("{ECHO}manifests: [manifests/*.yaml]\n"));
    let mut docs = vec![checked_crd(&crd)];
    docs.extend(CASES.iter().map(|(name, spec)| crd.widget(name, spec)));
    write_manifests(&stack, &docs);

    // Before the kind exists: every widget is judged locally, and the
    // broken ones block the preview, naming the field and the rule.
    let local_plan = stack.plan();
    let local = verdicts(&local_plan);
    assert_eq!(local.len(), CASES.len(), "{local_plan:#}");
    for step in widget_steps(&local_plan) {
        let reason = step["reason"].as_str().unwrap_or_default();
        assert!(reason.contains("validated locally"), "{step:#}");
    }
    let blocked = |name: &str| -> String {
        local
            .iter()
            .find(|(n, _, _)| n == name)
            .and_then(|(_, b, _)| b.clone())
            .unwrap_or_else(|| panic!("{name} is not blocked: {local:#?}"))
    };
    let string_for_integer = blocked("size-string");
    assert!(
        string_for_integer.contains("spec.size")
            && string_for_integer.contains("schema rule: type"),
        "{string_for_integer}"
    );
    let outside_enum = blocked("colour-green");
    assert!(
        outside_enum.contains("spec.colour") && outside_enum.contains("schema rule: enum"),
        "{outside_enum}"
    );
    let cel = blocked("cel-broken");
    assert!(
        cel.contains("minSize must not exceed size")
            && cel.contains("rule: self.minSize <= self.size"),
        "{cel}"
    );
    let up = stack.run(&["up", "--yes"]);
    assert_ne!(up.code, 0, "{up}");
    assert!(!crd.exists(), "a blocked up applied the definition");

    // The same widgets, judged by the server once the kind exists.
    let applied = util::kubectl_with_stdin(&["apply", "-f", "-"], Some(&checked_crd(&crd)));
    assert!(applied.status.success(), "{applied:?}");
    let waited = util::kubectl(&[
        "wait",
        "--for=condition=Established",
        "--timeout=60s",
        "crd",
        &crd.name(),
    ]);
    assert!(waited.status.success(), "{waited:?}");
    let server_plan = stack.plan();
    for step in widget_steps(&server_plan) {
        let reason = step["reason"].as_str().unwrap_or_default();
        assert!(!reason.contains("validated locally"), "{step:#}");
    }
    let server = verdicts(&server_plan);
    assert_eq!(server.len(), CASES.len(), "{server_plan:#}");
    let mut disagreements = Vec::new();
    for ((name, local_blocker, local_changes), (_, server_blocker, server_changes)) in
        local.iter().zip(&server)
    {
        if local_blocker.is_some() != server_blocker.is_some() || local_changes != server_changes {
            disagreements.push(format!(
                "{name}:\n  local:  {local_blocker:?} {local_changes}\n  server: {server_blocker:?} {server_changes}"
            ));
        }
    }
    assert!(
        disagreements.is_empty(),
        "the local check and the server disagree:\n{}",
        disagreements.join("\n")
    );
    let rejected = server.iter().filter(|(_, b, _)| b.is_some()).count();
    assert!(rejected >= 12, "{server:#?}");
}

#[test]
fn destroy_deletes_the_resources_before_their_definition_and_names_a_finalizer() {
    let crd = Crd::new();
    let stack = TestStack::new("crd-finalizer");
    stack.write(&format!("{ECHO}manifests: [manifests/*.yaml]\n"));
    write_manifests(&stack, &[crd.yaml(""), crd.widget("held", "{size: 2}")]);
    stack.ok(&["up", "--yes"]);
    let kind = format!("widgets.{}", crd.group);
    let patched = util::kubectl(&[
        "patch",
        &kind,
        "held",
        "-n",
        &stack.namespace,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ]);
    assert!(patched.status.success(), "{patched:?}");

    let destroy = stack.run(&["destroy", "--yes", "--timeout", "4s"]);
    assert_ne!(destroy.code, 0, "{destroy}");
    destroy.assert_contains("example.com/hold");
    assert!(
        crd.exists(),
        "the definition went before its resource: {destroy}"
    );

    let released = util::kubectl(&[
        "patch",
        &kind,
        "held",
        "-n",
        &stack.namespace,
        "--type=merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    assert!(released.status.success(), "{released:?}");
    let destroy = stack.ok(&["destroy", "--yes"]);
    assert!(!crd.exists(), "{destroy}");
}

#[test]
fn a_resource_using_a_field_its_definition_gains_in_the_same_plan_is_checked_against_the_new_schema()
 {
    let crd = Crd::new();
    let stack = TestStack::new("crd-reshaped");
    stack.write(&format!("{ECHO}manifests: [manifests/*.yaml]\n"));
    write_manifests(&stack, &[crd.yaml(""), crd.widget("w", "{size: 2}")]);
    stack.ok(&["up", "--yes"]);

    // A value the new field's enum refuses is refused before anything is
    // applied, though the schema the cluster serves now would not name it.
    let shape = "\n              shape: {type: string, enum: [round, square]}";
    write_manifests(
        &stack,
        &[crd.yaml(shape), crd.widget("w", "{size: 2, shape: oval}")],
    );
    let plan = stack.plan();
    let widget = widget_steps(&plan)[0].clone();
    assert_eq!(widget["blocker"]["kind"], "refused", "{widget:#}");
    let message = widget["blocker"]["message"].as_str().unwrap();
    assert!(
        message.contains("spec.shape") && message.contains("schema rule: enum"),
        "{message}"
    );
    let up = stack.run(&["up", "--yes"]);
    assert_ne!(up.code, 0, "{up}");
    let live = util::kubectl_json(&["get", "crd", &crd.name()]);
    assert!(!live.to_string().contains("\"shape\""), "applied: {live:#}");

    // A valid value: the resource's update is planned from the new schema
    // and applied after the definition.
    write_manifests(
        &stack,
        &[crd.yaml(shape), crd.widget("w", "{size: 2, shape: round}")],
    );
    let plan = stack.plan();
    let changes = plan_changes(&plan);
    assert!(
        changes.contains(&step("update", "CustomResourceDefinition", &crd.name()))
            && changes.contains(&step("update", "Widget", "w")),
        "{plan:#}"
    );
    let widget = widget_steps(&plan)[0].clone();
    assert!(widget["blocker"].is_null(), "{widget:#}");
    assert!(
        widget["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("schema this plan gives"),
        "{widget:#}"
    );
    stack.ok(&["up", "--yes"]);
    let w = stack.get(&format!("widgets.{}", crd.group), "w");
    assert_eq!(w["spec"]["shape"], "round", "{w:#}");
    stack.ok(&["preview", "--expect-no-changes"]);
    stack.ok(&["destroy", "--yes"]);
}
