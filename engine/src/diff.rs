//! Normalizing objects and comparing them field by field.
//!
//! A preview compares the live object with what a dry-run apply says the
//! cluster would hold. Both come from the API server, so both carry fields the
//! cluster writes for itself; [`normalize`] strips those first, otherwise every
//! object would look changed. [`changes`] then lists the differences as leaf
//! paths, and [`unified_yaml`] renders the same comparison for `--diff`.

use std::collections::BTreeSet;

use serde_json::{Map, Value};
use similar::TextDiff;

use super::plan::Change;
use super::sensitive;
use crate::field_path::{is_under, push_index, push_key};

/// Metadata fields the API server maintains on every object.
const SERVER_METADATA: [&str; 6] = [
    "managedFields",
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
    "selfLink",
];

/// Annotations controllers write on their own; never set by a stack.
const SERVER_ANNOTATIONS: [&str; 1] = ["deployment.kubernetes.io/revision"];

/// Drops what the cluster owns and what never counts as a difference:
/// server-maintained metadata, `status`, and annotations written by
/// controllers (an `annotations` map left empty goes too, since the server
/// omits empty maps and the other side would not have one). Sensitive
/// values (a Secret's data) are masked: a normalized object is what plans
/// keep and show, and it still compares equal exactly when they are.
pub fn normalize(object: &Value) -> Value {
    normalized(object.clone())
}

/// [`normalize`], of an object the caller no longer needs.
pub fn normalized(mut object: Value) -> Value {
    sensitive::mask(&mut object);
    let Some(root) = object.as_object_mut() else {
        return object;
    };
    root.remove("status");
    if let Some(meta) = root.get_mut("metadata").and_then(Value::as_object_mut) {
        for field in SERVER_METADATA {
            meta.remove(field);
        }
        if let Some(annotations) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            for key in SERVER_ANNOTATIONS {
                annotations.remove(key);
            }
            if annotations.is_empty() {
                meta.remove("annotations");
            }
        }
    }
    object
}

/// Field-level differences between two objects, as leaf paths in key order.
///
/// A subtree present on one side only is one change at its root, so adding a
/// container reads as one line rather than one per field. Arrays are compared
/// index by index: Kubernetes lists are mostly short and ordered, and a path
/// like `containers[0].image` is what a person looks for. Changes to
/// sensitive values carry no value (see `sensitive::conceal`).
pub fn changes(old: &Value, new: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    walk(&mut String::new(), old, new, &mut out);
    let kind_of = if new.get("kind").is_some() { new } else { old };
    sensitive::conceal(kind_of, out)
}

fn walk(path: &mut String, old: &Value, new: &Value, out: &mut Vec<Change>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let len = path.len();
                push_key(path, key);
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => walk(path, x, y, out),
                    (x, y) => out.push(change(path, x, y)),
                }
                path.truncate(len);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let len = path.len();
                push_index(path, i);
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => walk(path, x, y, out),
                    (x, y) => out.push(change(path, x, y)),
                }
                path.truncate(len);
            }
        }
        _ if old != new => out.push(change(path, Some(old), Some(new))),
        _ => {}
    }
}

fn change(path: &str, old: Option<&Value>, new: Option<&Value>) -> Change {
    Change {
        path: path.to_string(),
        old: old.cloned(),
        new: new.cloned(),
        sensitive: false,
    }
}

/// The changes at `prefix` or below it, e.g. everything under `spec.selector`.
/// A sibling that merely starts with the same text (`spec.selectorX`) is not
/// below it.
pub fn changes_under<'a>(changes: &'a [Change], prefix: &str) -> impl Iterator<Item = &'a Change> {
    changes.iter().filter(move |c| is_under(&c.path, prefix))
}

/// Both objects as YAML with sorted keys, and a unified diff between them with
/// three lines of context. An absent side is empty, so a create shows every
/// line added. Identical objects give an empty string. Sensitive values
/// show as their masks, so a changed one shows as a changed line.
pub fn unified_yaml(old: Option<&Value>, new: Option<&Value>, label: &str) -> String {
    let yaml = |object: &Value| {
        let mut object = object.clone();
        sensitive::mask(&mut object);
        to_yaml(&object)
    };
    let old = old.map(yaml).unwrap_or_default();
    let new = new.map(yaml).unwrap_or_default();
    TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header(&format!("live {label}"), &format!("planned {label}"))
        .to_string()
}

/// YAML with keys sorted at every level, as `kubectl get -o yaml` prints, so
/// the diff never shows a line moved only because maps were built in another
/// order.
pub fn to_yaml(value: &Value) -> String {
    let sorted = sort_keys(value);
    serde_saphyr::to_string(&sorted).unwrap_or_else(|_| {
        // A JSON value always has a YAML form; this keeps the function total.
        serde_json::to_string_pretty(&sorted).unwrap_or_default() + "\n"
    })
}

fn sort_keys(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            let sorted: Map<String, Value> = entries
                .into_iter()
                .map(|(k, v)| (k.clone(), sort_keys(v)))
                .collect();
            Value::Object(sorted)
        }
        Value::Array(items) => Value::Array(items.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn paths(changes: &[Change]) -> Vec<&str> {
        changes.iter().map(|c| c.path.as_str()).collect()
    }

    fn deployment(replicas: u64, image: &str) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "shop-dev",
                "labels": {"app.kubernetes.io/managed-by": "echo-iac"},
            },
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        "containers": [{
                            "name": "web",
                            "image": image,
                            "ports": [{"containerPort": 80}],
                        }],
                    },
                },
            },
        })
    }

    #[test]
    fn normalize_drops_exactly_the_fields_the_cluster_owns() {
        let live = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "web",
                "namespace": "shop-dev",
                "labels": {"app": "web"},
                "annotations": {
                    "deployment.kubernetes.io/revision": "3",
                    "team": "platform",
                },
                "managedFields": [{"manager": "echo-iac"}],
                "resourceVersion": "4711",
                "generation": 3,
                "uid": "0b6f-11",
                "creationTimestamp": "2025-01-01T00:00:00Z",
                "selfLink": "/apis/apps/v1/namespaces/shop-dev/deployments/web",
                "finalizers": ["keep-me"],
            },
            "spec": {"replicas": 2, "status": "a spec field named status stays"},
            "status": {"readyReplicas": 2},
        });
        assert_eq!(
            normalize(&live),
            json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": "web",
                    "namespace": "shop-dev",
                    "labels": {"app": "web"},
                    "annotations": {"team": "platform"},
                    "finalizers": ["keep-me"],
                },
                "spec": {"replicas": 2, "status": "a spec field named status stays"},
            })
        );
    }

    #[test]
    fn normalize_drops_annotations_left_empty() {
        let live = json!({
            "metadata": {
                "name": "web",
                "annotations": {"deployment.kubernetes.io/revision": "1"},
            },
        });
        assert_eq!(normalize(&live), json!({"metadata": {"name": "web"}}));
    }

    #[test]
    fn normalize_drops_an_annotations_map_that_was_already_empty() {
        let live = json!({"metadata": {"name": "web", "annotations": {}}});
        assert_eq!(normalize(&live), json!({"metadata": {"name": "web"}}));
    }

    #[test]
    fn normalize_leaves_non_objects_alone() {
        assert_eq!(normalize(&json!("text")), json!("text"));
        assert_eq!(
            normalize(&json!({"metadata": null})),
            json!({"metadata": null})
        );
    }

    #[test]
    fn identical_objects_have_no_changes() {
        let d = deployment(3, "registry.example/web:1.0");
        assert!(changes(&d, &d).is_empty());
    }

    #[test]
    fn nested_scalar_changes_are_leaf_paths_in_key_order() {
        let found = changes(
            &deployment(3, "registry.example/web:1.0"),
            &deployment(1, "registry.example/web:1.1"),
        );
        assert_eq!(
            found,
            vec![
                Change {
                    path: "spec.replicas".into(),
                    old: Some(json!(3)),
                    new: Some(json!(1)),
                    sensitive: false,
                },
                Change {
                    path: "spec.template.spec.containers[0].image".into(),
                    old: Some(json!("registry.example/web:1.0")),
                    new: Some(json!("registry.example/web:1.1")),
                    sensitive: false,
                },
            ]
        );
    }

    #[test]
    fn added_and_removed_subtrees_are_one_change_at_their_root() {
        let old = json!({"spec": {"a": 1, "gone": {"x": 1, "y": [1, 2]}}});
        let new = json!({"spec": {"a": 1, "added": {"z": {"deep": true}}}});
        assert_eq!(
            changes(&old, &new),
            vec![
                Change {
                    path: "spec.added".into(),
                    old: None,
                    new: Some(json!({"z": {"deep": true}})),
                    sensitive: false,
                },
                Change {
                    path: "spec.gone".into(),
                    old: Some(json!({"x": 1, "y": [1, 2]})),
                    new: None,
                    sensitive: false,
                },
            ]
        );
    }

    #[test]
    fn grown_array_reports_new_elements_at_their_index() {
        let old = json!({"ports": [{"port": 80}]});
        let new = json!({"ports": [{"port": 8080}, {"port": 443}, {"port": 9000}]});
        let found = changes(&old, &new);
        assert_eq!(paths(&found), ["ports[0].port", "ports[1]", "ports[2]"]);
        assert_eq!(found[1].old, None);
        assert_eq!(found[1].new, Some(json!({"port": 443})));
    }

    #[test]
    fn shrunk_array_reports_removed_elements_at_their_index() {
        let old = json!({"args": ["a", "b", "c"]});
        let new = json!({"args": ["a"]});
        assert_eq!(
            changes(&old, &new),
            vec![
                Change {
                    path: "args[1]".into(),
                    old: Some(json!("b")),
                    new: None,
                    sensitive: false,
                },
                Change {
                    path: "args[2]".into(),
                    old: Some(json!("c")),
                    new: None,
                    sensitive: false,
                },
            ]
        );
    }

    #[test]
    fn keys_that_are_not_identifiers_are_quoted_in_brackets() {
        let old = json!({
            "data": {"default.conf": "a", "plain_key-1": "x"},
            "metadata": {"labels": {"app.kubernetes.io/managed-by": "kubectl"}},
        });
        let new = json!({
            "data": {"default.conf": "b", "plain_key-1": "y", "2nd": "z", "say \"hi\"": "!"},
            "metadata": {"labels": {"app.kubernetes.io/managed-by": "echo-iac"}},
        });
        assert_eq!(
            paths(&changes(&old, &new)),
            [
                r#"data["2nd"]"#,
                r#"data["default.conf"]"#,
                "data.plain_key-1",
                r#"data["say \"hi\""]"#,
                r#"metadata.labels["app.kubernetes.io/managed-by"]"#,
            ]
        );
    }

    #[test]
    fn quoted_key_at_the_top_has_no_leading_dot() {
        let found = changes(&json!({"a.b": 1}), &json!({"a.b": 2}));
        assert_eq!(paths(&found), [r#"["a.b"]"#]);
    }

    #[test]
    fn values_of_different_type_are_a_change() {
        let old = json!({"port": 80, "tls": {"on": true}, "list": [1], "n": null});
        let new = json!({"port": "80", "tls": true, "list": {"0": 1}, "n": 0});
        let found = changes(&old, &new);
        assert_eq!(paths(&found), ["list", "n", "port", "tls"]);
        assert_eq!(found[2].old, Some(json!(80)));
        assert_eq!(found[2].new, Some(json!("80")));
        assert_eq!(found[3].old, Some(json!({"on": true})));
        assert_eq!(found[3].new, Some(json!(true)));
    }

    #[test]
    fn changes_under_matches_whole_segments_only() {
        let list = vec![
            change("spec.selector", Some(&json!(1)), None),
            change("spec.selector.matchLabels.app", Some(&json!(1)), None),
            change("spec.selectorX", Some(&json!(1)), None),
            change("spec.ports[0]", Some(&json!(1)), None),
        ];
        assert_eq!(
            paths(
                &changes_under(&list, "spec.selector")
                    .cloned()
                    .collect::<Vec<_>>()
            ),
            ["spec.selector", "spec.selector.matchLabels.app"]
        );
        assert!(is_under("spec.ports[0]", "spec.ports"));
        assert!(is_under("anything", ""));
    }

    #[test]
    fn yaml_keys_are_sorted() {
        let yaml = to_yaml(&json!({"b": 1, "a": {"d": 2, "c": 3}}));
        assert_eq!(yaml, "a:\n  c: 3\n  d: 2\nb: 1\n");
    }

    #[test]
    fn unified_diff_of_identical_objects_is_empty() {
        let d = deployment(3, "registry.example/web:1.0");
        assert_eq!(unified_yaml(Some(&d), Some(&d), "Deployment x"), "");
    }

    #[test]
    fn unified_diff_shows_changed_lines_with_context() {
        let mut old = deployment(3, "registry.example/web:1.0");
        old["metadata"]["annotations"] = json!({"note": "x"});
        let mut new = deployment(1, "registry.example/web:1.1");
        new["spec"]["template"]["spec"]["containers"][0]["ports"]
            .as_array_mut()
            .unwrap()
            .push(json!({"containerPort": 443}));
        insta::assert_snapshot!(unified_yaml(
            Some(&old),
            Some(&new),
            "Deployment shop-dev/web"
        ));
    }

    #[test]
    fn unified_diff_of_a_create_adds_every_line() {
        let config = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "web-config", "namespace": "shop-dev"},
            "data": {"default.conf": "server {\n    listen 80;\n}\n"},
        });
        insta::assert_snapshot!(unified_yaml(
            None,
            Some(&config),
            "ConfigMap shop-dev/web-config"
        ));
    }

    mod properties {
        use proptest::prelude::*;
        use serde_json::{Map, Value};

        use super::super::changes;
        use crate::field_path::{Segment, segments};
        use crate::plan::Change;

        /// Keys from a small set, so that two generated objects share
        /// some and differ in others; some need quoting in a path.
        fn key() -> impl Strategy<Value = String> {
            prop::sample::select(vec!["a", "b", "spec", "x.y", "0", "", "say \"hi\"", "é"])
                .prop_map(str::to_string)
        }

        fn json() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                (-2i64..3).prop_map(Value::from),
                prop::sample::select(vec!["", "a", "b"]).prop_map(Value::from),
            ];
            leaf.prop_recursive(4, 32, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map(key(), inner, 0..4)
                        .prop_map(|map| Value::Object(map.into_iter().collect::<Map<_, _>>())),
                ]
            })
        }

        /// Sets or removes the value at `path` in `root`: removing from a
        /// list only ever removes its last item, as a diff of a shorter
        /// list asks.
        fn apply_one(root: &mut Value, change: &Change) -> Result<(), String> {
            let steps = segments(&change.path).ok_or(format!("unreadable {}", change.path))?;
            let Some((last, parents)) = steps.split_last() else {
                *root = change.new.clone().ok_or("the root removed")?;
                return Ok(());
            };
            let mut at = root;
            for step in parents {
                at = match (step, at) {
                    (Segment::Key(k), Value::Object(map)) => map.get_mut(k),
                    (Segment::Index(i), Value::Array(list)) => list.get_mut(*i),
                    _ => None,
                }
                .ok_or(format!("no parent for {}", change.path))?;
            }
            match (last, at, &change.new) {
                (Segment::Key(k), Value::Object(map), Some(new)) => {
                    map.insert(k.clone(), new.clone());
                }
                (Segment::Key(k), Value::Object(map), None) => {
                    map.remove(k)
                        .ok_or(format!("nothing to remove at {}", change.path))?;
                }
                (Segment::Index(i), Value::Array(list), Some(new)) if *i < list.len() => {
                    list[*i] = new.clone();
                }
                (Segment::Index(i), Value::Array(list), Some(new)) if *i == list.len() => {
                    list.push(new.clone());
                }
                (Segment::Index(i), Value::Array(list), None) if *i + 1 == list.len() => {
                    list.pop();
                }
                _ => return Err(format!("cannot apply {}", change.path)),
            }
            Ok(())
        }

        /// The changes applied to `old`: the sets in order, then the
        /// removals from the last, so a list shrinks from its end.
        fn apply(old: &Value, changes: &[Change]) -> Result<Value, String> {
            let mut value = old.clone();
            for change in changes.iter().filter(|c| c.new.is_some()) {
                apply_one(&mut value, change)?;
            }
            for change in changes.iter().rev().filter(|c| c.new.is_none()) {
                apply_one(&mut value, change)?;
            }
            Ok(value)
        }

        proptest! {
            #![proptest_config(crate::testing::proptest_config())]

            #[test]
            fn the_changes_applied_to_the_old_object_give_the_new_one(
                old in json(),
                new in json(),
            ) {
                let found = changes(&old, &new);
                prop_assert_eq!(apply(&old, &found), Ok(new.clone()));
                prop_assert_eq!(found.is_empty(), old == new);
                prop_assert!(found.iter().all(|c| !c.sensitive && c.old != c.new));
            }

            #[test]
            fn changes_are_listed_once_each(old in json(), new in json()) {
                let found = changes(&old, &new);
                let mut paths: Vec<&str> = found.iter().map(|c| c.path.as_str()).collect();
                paths.sort_unstable();
                paths.dedup();
                prop_assert_eq!(paths.len(), found.len());
            }
        }
    }
}
