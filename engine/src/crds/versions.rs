//! Updates of a CustomResourceDefinition that would strand what objects of
//! its kind hold: a version that stops being served while objects may
//! still be stored in it, or a schema that stops naming a field objects
//! set (the API server prunes fields the schema does not name).
//!
//! Both are checked against the live objects, listed once per definition:
//! a change nobody's data depends on goes ahead as an ordinary update.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::cluster::{Cluster, ClusterError};
use crate::error::EngineError;
use crate::field_path;
use crate::plan::Blocker;

/// The Kubernetes documentation on moving objects off a stored version.
const MIGRATION_DOCS: &str = "https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definition-versioning/#upgrade-existing-objects-to-a-new-stored-version";

/// How many objects a reason names; the rest are counted.
const NAMED: usize = 3;

/// Why an update of the definition `live` into `desired` cannot go ahead
/// as it stands, if it cannot: objects of its kind would lose a version
/// they may be stored in, or a field they use.
pub(crate) async fn update_blocker(
    cluster: &Cluster,
    live: &Value,
    desired: &Value,
) -> Result<Option<Blocker>, EngineError> {
    let stored = stored_versions(live);
    let stopped: Vec<(String, Stop)> = stopped_versions(live, desired)
        .into_iter()
        .filter(|(version, _)| stored.contains(version))
        .collect();
    let dropped = dropped_fields(live, desired);
    if stopped.is_empty() && dropped.is_empty() {
        return Ok(None);
    }
    let objects = list_objects(cluster, live).await?;
    let crd = live["metadata"]["name"].as_str().unwrap_or("?");
    let kind = live["spec"]["names"]["kind"].as_str().unwrap_or("?");
    let storage = storage_version(desired);
    let mut reasons = Vec::new();
    let mut fields = Vec::new();
    for (version, stop) in &stopped {
        let users = objects.as_deref().map(|all| all.iter().collect::<Vec<_>>());
        let Some(users) = Users::of(users) else {
            continue;
        };
        reasons.push(format!(
            "CustomResourceDefinition {crd} would stop serving version {version} ({}), but status.storedVersions lists {version} and {}, which may be stored as {version}: first migrate them to the storage version{} (with {version} still served, write each object back so the API server stores it anew), then drop {version} from the definition's status.storedVersions, as the Kubernetes docs on CRD versioning describe ({MIGRATION_DOCS})",
            stop.describe(),
            users.describe(kind),
            storage.map(|s| format!(" {s}")).unwrap_or_default(),
        ));
        push_once(&mut fields, "spec.versions".to_string());
    }
    for (version, path) in &dropped {
        let users = objects
            .as_deref()
            .map(|all| all.iter().filter(|o| has_value(o, path)).collect());
        let Some(users) = Users::of(users) else {
            continue;
        };
        let shown = render(path);
        reasons.push(format!(
            "CustomResourceDefinition {crd} would drop field {shown} from the schema of version {version}, but {} set it: the API server prunes fields the schema does not name, so their values would be lost; remove {shown} from them first, or keep it in the schema",
            users.describe(kind),
        ));
        push_once(&mut fields, shown);
    }
    Ok((!reasons.is_empty()).then(|| Blocker::Refused {
        message: reasons.join("; "),
        fields,
    }))
}

fn push_once(fields: &mut Vec<String>, field: String) {
    if !fields.contains(&field) {
        fields.push(field);
    }
}

/// The objects a lost version or field would strand.
enum Users<'a> {
    /// These objects, at least one.
    Listed(Vec<&'a Value>),
    /// Not allowed to list the kind's objects: some may.
    Unknown,
}

impl<'a> Users<'a> {
    /// `None` (nothing stranded) when the list is known and empty.
    fn of(listed: Option<Vec<&'a Value>>) -> Option<Users<'a>> {
        match listed {
            Some(objects) if objects.is_empty() => None,
            Some(objects) => Some(Users::Listed(objects)),
            None => Some(Users::Unknown),
        }
    }

    /// `2 Widget objects (ns/a, ns/b)`, naming the first few.
    fn describe(&self, kind: &str) -> String {
        let objects = match self {
            Users::Listed(objects) => objects,
            Users::Unknown => {
                return format!(
                    "{kind} objects may exist (not allowed to list them, so this cannot be checked)"
                );
            }
        };
        let mut names: Vec<String> = objects.iter().map(|o| object_name(o)).collect();
        names.sort();
        let more = names.len().saturating_sub(NAMED);
        names.truncate(NAMED);
        let mut listed = names.join(", ");
        if more > 0 {
            listed.push_str(&format!(" and {more} more"));
        }
        let count = objects.len();
        let noun = if count == 1 { "object" } else { "objects" };
        format!("{count} {kind} {noun} ({listed})")
    }
}

fn object_name(object: &Value) -> String {
    let name = object["metadata"]["name"].as_str().unwrap_or("?");
    match object["metadata"]["namespace"].as_str() {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// The objects of the definition's kind, with one list: every served
/// version lists the same objects. `None` when not allowed to list them.
/// The storage version is asked first, as the objects are held in it (a
/// conversion webhook could shape them otherwise in other versions).
async fn list_objects(cluster: &Cluster, live: &Value) -> Result<Option<Vec<Value>>, EngineError> {
    let spec = &live["spec"];
    let (Some(group), Some(kind)) = (spec["group"].as_str(), spec["names"]["kind"].as_str()) else {
        return Ok(Some(Vec::new()));
    };
    let served: Vec<&Value> = versions(live)
        .iter()
        .filter(|v| v["served"].as_bool() != Some(false))
        .collect();
    let Some(version) = served
        .iter()
        .find(|v| v["storage"] == true)
        .or(served.first())
        .and_then(|v| v["name"].as_str())
    else {
        // No version is served: no object can be read, or written.
        return Ok(Some(Vec::new()));
    };
    match cluster
        .list(&format!("{group}/{version}"), kind, None, None)
        .await
    {
        Ok(objects) => Ok(Some(objects)),
        // Not served (yet): nothing of it can be read.
        Err(ClusterError::UnknownKind { .. }) => Ok(Some(Vec::new())),
        Err(ClusterError::Forbidden { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

fn versions(crd: &Value) -> &[Value] {
    crd["spec"]["versions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn version<'a>(crd: &'a Value, name: &str) -> Option<&'a Value> {
    versions(crd).iter().find(|v| v["name"] == name)
}

fn stored_versions(live: &Value) -> BTreeSet<String> {
    live["status"]["storedVersions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn storage_version(crd: &Value) -> Option<&str> {
    versions(crd)
        .iter()
        .find(|v| v["storage"] == true)
        .and_then(|v| v["name"].as_str())
}

/// How a version stops being served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stop {
    /// Gone from `spec.versions`.
    Removed,
    /// Still listed, with `served: false`.
    Unserved,
}

impl Stop {
    fn describe(self) -> &'static str {
        match self {
            Stop::Removed => "removed from spec.versions",
            Stop::Unserved => "set to served: false",
        }
    }
}

/// The versions of `live` that `desired` removes, or stops serving.
fn stopped_versions(live: &Value, desired: &Value) -> Vec<(String, Stop)> {
    versions(live)
        .iter()
        .filter_map(|was| {
            let name = was["name"].as_str()?;
            let stop = match version(desired, name) {
                None => Stop::Removed,
                Some(will) if served(was) && !served(will) => Stop::Unserved,
                Some(_) => return None,
            };
            Some((name.to_string(), stop))
        })
        .collect()
}

fn served(version: &Value) -> bool {
    version["served"].as_bool() == Some(true)
}

/// One step of a path into an object, as a schema describes it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Segment {
    /// A property.
    Field(String),
    /// Any element of an array, or any value of a map.
    Each,
}

type SchemaPath = Vec<Segment>;

/// `spec.parts[*].colour`: the plan's path syntax, with `[*]` for any
/// element.
fn render(path: &[Segment]) -> String {
    let mut out = String::new();
    for segment in path {
        match segment {
            Segment::Field(key) => field_path::push_key(&mut out, key),
            Segment::Each => out.push_str("[*]"),
        }
    }
    out
}

/// The property paths an `openAPIV3Schema` describes, through nested
/// properties, array items and map values. The object's own
/// `apiVersion`, `kind` and `metadata` are the API server's, not the
/// schema's, and are left out.
fn schema_paths(schema: &Value) -> BTreeSet<SchemaPath> {
    fn walk(schema: &Value, path: &mut SchemaPath, out: &mut BTreeSet<SchemaPath>) {
        if let Some(properties) = schema["properties"].as_object() {
            for (key, sub) in properties {
                if path.is_empty() && ["apiVersion", "kind", "metadata"].contains(&key.as_str()) {
                    continue;
                }
                path.push(Segment::Field(key.clone()));
                out.insert(path.clone());
                walk(sub, path, out);
                path.pop();
            }
        }
        for each in [&schema["items"], &schema["additionalProperties"]] {
            if each.is_object() {
                path.push(Segment::Each);
                walk(each, path, out);
                path.pop();
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(schema, &mut Vec::new(), &mut out);
    out
}

/// Whether `schema` keeps unknown fields at `path`: some schema on the way
/// there says `x-kubernetes-preserve-unknown-fields`, so nothing under it
/// is pruned.
fn preserves(schema: &Value, path: &[Segment]) -> bool {
    let mut node = schema;
    for segment in path {
        if node["x-kubernetes-preserve-unknown-fields"] == true {
            return true;
        }
        node = match segment {
            Segment::Field(key) => &node["properties"][key],
            Segment::Each if node["items"].is_object() => &node["items"],
            Segment::Each => &node["additionalProperties"],
        };
    }
    false
}

/// The fields the schema `before` describes that `after` no longer does
/// and would prune, outermost only: a dropped object's own fields go with
/// it.
fn dropped_paths(before: &Value, after: &Value) -> Vec<SchemaPath> {
    let kept = schema_paths(after);
    let mut dropped: Vec<SchemaPath> = Vec::new();
    for path in schema_paths(before) {
        let inside_dropped = dropped.iter().any(|d| path.starts_with(d));
        if !inside_dropped && !kept.contains(&path) && !preserves(after, &path) {
            dropped.push(path);
        }
    }
    dropped
}

/// The fields each version both `live` and `desired` have drops from its
/// schema, as `(version, path)`. A version `desired` gives no schema is
/// left to the API server, which requires one.
fn dropped_fields(live: &Value, desired: &Value) -> Vec<(String, SchemaPath)> {
    let mut found = Vec::new();
    for was in versions(live) {
        let Some(name) = was["name"].as_str() else {
            continue;
        };
        let Some(will) = version(desired, name) else {
            continue;
        };
        let after = &will["schema"]["openAPIV3Schema"];
        if !after.is_object() {
            continue;
        }
        for path in dropped_paths(&was["schema"]["openAPIV3Schema"], after) {
            found.push((name.to_string(), path));
        }
    }
    found
}

/// Whether `object` holds a value (not null) at `path`; `[*]` matches any
/// element or map value.
fn has_value(object: &Value, path: &[Segment]) -> bool {
    match path.split_first() {
        None => !object.is_null(),
        Some((Segment::Field(key), rest)) => object.get(key).is_some_and(|v| has_value(v, rest)),
        Some((Segment::Each, rest)) => match object {
            Value::Array(items) => items.iter().any(|v| has_value(v, rest)),
            Value::Object(map) => map.values().any(|v| has_value(v, rest)),
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn path(text: &str) -> SchemaPath {
        text.split('.')
            .map(|s| match s {
                "*" => Segment::Each,
                key => Segment::Field(key.to_string()),
            })
            .collect()
    }

    fn schema(spec_properties: Value) -> Value {
        json!({"type": "object", "properties": {
            "apiVersion": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {"type": "object", "properties": spec_properties}}})
    }

    fn crd(versions: Value) -> Value {
        json!({"metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "names": {"kind": "Widget"}, "versions": versions}})
    }

    #[test]
    fn schema_paths_go_through_properties_items_and_map_values() {
        let paths = schema_paths(&schema(json!({
            "size": {"type": "integer"},
            "parts": {"type": "array", "items": {"type": "object",
                "properties": {"colour": {"type": "string"}}}},
            "labels": {"type": "object", "additionalProperties": {"type": "object",
                "properties": {"note": {"type": "string"}}}}
        })));
        let rendered: Vec<String> = paths.iter().map(Vec::as_slice).map(render).collect();
        assert_eq!(
            rendered,
            [
                "spec",
                "spec.labels",
                "spec.labels[*].note",
                "spec.parts",
                "spec.parts[*].colour",
                "spec.size",
            ]
        );
    }

    #[test]
    fn a_dropped_field_is_named_once_at_its_outermost_path() {
        let before = schema(json!({
            "size": {"type": "integer"},
            "colour": {"type": "string"},
            "shape": {"type": "object", "properties": {"sides": {"type": "integer"}}}
        }));
        let after = schema(json!({"size": {"type": "integer"}, "weight": {"type": "integer"}}));
        assert_eq!(
            dropped_paths(&before, &after),
            [path("spec.colour"), path("spec.shape")]
        );
        assert!(dropped_paths(&before, &before).is_empty());
        // Adding a field drops nothing.
        let added = schema(json!({
            "size": {"type": "integer"},
            "colour": {"type": "string"},
            "shape": {"type": "object", "properties": {"sides": {"type": "integer"}}},
            "new": {"type": "string"}
        }));
        assert!(dropped_paths(&before, &added).is_empty());
    }

    #[test]
    fn a_field_under_preserved_unknown_fields_is_not_dropped() {
        let before = schema(json!({"colour": {"type": "string"}}));
        let after = json!({"type": "object", "properties": {
            "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}});
        assert!(dropped_paths(&before, &after).is_empty());
    }

    #[test]
    fn values_are_found_through_arrays_and_maps() {
        let object = json!({"spec": {"size": 1, "gone": null,
            "parts": [{"size": 2}, {"colour": "red"}],
            "labels": {"a": {"note": "x"}}}});
        assert!(has_value(&object, &path("spec.size")));
        assert!(!has_value(&object, &path("spec.gone")));
        assert!(!has_value(&object, &path("spec.colour")));
        assert!(has_value(&object, &path("spec.parts.*.colour")));
        assert!(!has_value(&object, &path("spec.parts.*.shape")));
        assert!(has_value(&object, &path("spec.labels.*.note")));
        assert!(!has_value(&object, &path("spec.size.*.note")));
    }

    #[test]
    fn versions_removed_or_unserved_stop_being_served() {
        let live = crd(json!([
            {"name": "v1alpha1", "served": true, "storage": false},
            {"name": "v1beta1", "served": true, "storage": false},
            {"name": "v0", "served": false, "storage": false},
            {"name": "v1", "served": true, "storage": true}]));
        let desired = crd(json!([
            {"name": "v1beta1", "served": false, "storage": false},
            {"name": "v0", "served": false, "storage": false},
            {"name": "v1", "served": true, "storage": true},
            {"name": "v2", "served": true, "storage": false}]));
        assert_eq!(
            stopped_versions(&live, &desired),
            [
                ("v1alpha1".to_string(), Stop::Removed),
                ("v1beta1".to_string(), Stop::Unserved)
            ]
        );
        assert!(stopped_versions(&live, &live).is_empty());
    }

    #[test]
    fn fields_are_compared_version_by_version() {
        let with = |colour: bool| {
            let mut properties = json!({"size": {"type": "integer"}});
            if colour {
                properties["colour"] = json!({"type": "string"});
            }
            json!({"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": schema(properties)}})
        };
        let live = crd(json!([with(true)]));
        assert_eq!(
            dropped_fields(&live, &crd(json!([with(false)]))),
            [("v1".to_string(), path("spec.colour"))]
        );
        assert!(dropped_fields(&crd(json!([with(false)])), &live).is_empty());
        // A removed version's fields go with it: that is the version check's.
        assert!(dropped_fields(&live, &crd(json!([]))).is_empty());
    }

    #[test]
    fn users_are_counted_and_the_first_few_named() {
        let objects: Vec<Value> = ["d", "b", "a", "c"]
            .iter()
            .map(|n| json!({"metadata": {"name": n, "namespace": "ns"}}))
            .collect();
        let users = Users::of(Some(objects.iter().collect())).unwrap();
        assert_eq!(
            users.describe("Widget"),
            "4 Widget objects (ns/a, ns/b, ns/c and 1 more)"
        );
        let one = Users::of(Some(vec![&objects[0]])).unwrap();
        assert_eq!(one.describe("Widget"), "1 Widget object (ns/d)");
        assert!(Users::of(Some(Vec::new())).is_none());
        assert!(
            Users::of(None)
                .unwrap()
                .describe("Widget")
                .contains("not allowed to list")
        );
    }
}
