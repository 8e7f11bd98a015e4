//! Field paths: the leaf fields an object sets, which a field manager
//! owns, and the merge and removal of fields as server-side apply does them.

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// A step in a field path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

/// The leaf fields an applied object sets, which its manager then owns;
/// the identity fields are nobody's.
pub(super) fn owned_fields(object: &Value) -> BTreeSet<Vec<Seg>> {
    let mut out = BTreeSet::new();
    let mut path = Vec::new();
    leaves(object, &mut path, &mut out);
    out.retain(|p| {
        let top = |k: &str| matches!(p.first(), Some(Seg::Key(f)) if f == k);
        let meta = |k: &str| top("metadata") && matches!(p.get(1), Some(Seg::Key(f)) if f == k);
        !(top("apiVersion")
            || top("kind")
            || top("status")
            || meta("name")
            || meta("namespace")
            || meta("uid")
            || meta("resourceVersion")
            || meta("managedFields")
            || meta("creationTimestamp")
            || meta("generation"))
    });
    out
}

fn leaves(value: &Value, path: &mut Vec<Seg>, out: &mut BTreeSet<Vec<Seg>>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                path.push(Seg::Key(k.clone()));
                leaves(v, path, out);
                path.pop();
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                path.push(Seg::Index(i));
                leaves(v, path, out);
                path.pop();
            }
        }
        _ => {
            out.insert(path.clone());
        }
    }
}

pub(super) fn at<'v>(value: &'v Value, path: &[Seg]) -> Option<&'v Value> {
    path.iter().try_fold(value, |v, seg| match seg {
        Seg::Key(k) => v.get(k),
        Seg::Index(i) => v.get(i),
    })
}

/// `.spec.ports[0].nodePort`, as the server names fields in conflicts.
pub(super) fn render_path(path: &[Seg]) -> String {
    let mut text = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                text.push('.');
                text.push_str(k);
            }
            Seg::Index(i) => text.push_str(&format!("[{i}]")),
        }
    }
    text
}

/// The `fieldsV1` tree of a set of leaf paths (`f:` keys, `i:` indexes).
pub(super) fn fields_v1(fields: &BTreeSet<Vec<Seg>>) -> Value {
    let mut root = Map::new();
    for path in fields {
        let mut node = &mut root;
        for seg in path {
            let key = match seg {
                Seg::Key(k) => format!("f:{k}"),
                Seg::Index(i) => format!("i:{i}"),
            };
            node = node
                .entry(key)
                .or_insert_with(|| Value::Object(Map::new()))
                .as_object_mut()
                .expect("only objects are inserted");
        }
    }
    Value::Object(root)
}

/// Removes the field at `path`, and the maps that leaves empty; whether
/// `value` itself is now an empty map. List items go with their list, which
/// an apply replaces whole.
pub(super) fn remove(value: &mut Value, path: &[Seg]) -> bool {
    let (Some(Seg::Key(first)), Value::Object(map)) = (path.first(), &mut *value) else {
        return false;
    };
    if path.len() == 1 {
        map.remove(first);
    } else if let Some(child) = map.get_mut(first)
        && remove(child, &path[1..])
    {
        map.remove(first);
    }
    map.is_empty()
}

/// Merges `applied` into `stored`: maps recursively, anything else
/// (lists included) replaced.
pub(super) fn merge(stored: &mut Value, applied: &Value) {
    match (stored, applied) {
        (Value::Object(s), Value::Object(a)) => {
            for (k, v) in a {
                match s.get_mut(k) {
                    Some(existing) if existing.is_object() && v.is_object() => merge(existing, v),
                    _ => {
                        s.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (s, a) => *s = a.clone(),
    }
}
