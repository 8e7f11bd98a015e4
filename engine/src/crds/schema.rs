//! A custom resource checked against its definition's schema, as the API
//! server would check it, for objects whose kind does not exist yet.
//!
//! The server takes a custom resource in three passes, and so does this
//! module: fields the schema does not declare are refused (server-side
//! apply types the object against the schema), defaults are added, and
//! what is left is validated, first by the structural OpenAPI v3 schema (here by the
//! `jsonschema` crate, since OpenAPI v3.0 schemas follow JSON Schema draft
//! 4 once Kubernetes' extensions are spelled out), then by the
//! `x-kubernetes-validations` CEL rules (here by the `cel` crate). A rule
//! that crate cannot evaluate (a Kubernetes-only function, a transition
//! rule) is listed as checked only when the object is applied.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

/// What checking an object against its schema found.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    /// The object as the server would store it: pruned and defaulted.
    pub object: Value,
    /// What the schema or a rule rejects: `(field, message)`, with the
    /// field in the plan's path syntax (`spec.items[0].size`).
    pub violations: Vec<(String, String)>,
    /// CEL rules that could not be evaluated here: `(field, rule)`.
    pub unchecked: Vec<(String, String)>,
}

/// Prunes, defaults and validates `object` against `schema` (a version's
/// `openAPIV3Schema`).
pub(crate) fn check(object: &Value, schema: &Value) -> Checked {
    let mut checked = Checked {
        object: object.clone(),
        ..Checked::default()
    };
    let mut undeclared = Vec::new();
    prune(&mut checked.object, schema, "", true, &mut undeclared);
    // Server-side apply types the object against the schema, and refuses a
    // field the schema does not declare rather than dropping it.
    checked.violations.extend(
        undeclared
            .into_iter()
            .map(|field| (field, "field not declared in schema".to_string())),
    );
    default(&mut checked.object, schema);
    validate_schema(&checked.object, schema, &mut checked.violations);
    let mut rules = Rules::new();
    let object = checked.object.clone();
    rules.check(&object, schema, "", &mut checked);
    checked.violations.sort();
    checked
}

/// The fields every object has whatever its schema says; the API server
/// validates them itself.
const OBJECT_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Drops what the schema does not know, as decoding does, and names it in
/// `pruned`: properties not declared where neither `additionalProperties`
/// nor `x-kubernetes-preserve-unknown-fields` allows others. Nulls where
/// the schema is not nullable are dropped silently.
fn prune(value: &mut Value, schema: &Value, path: &str, root: bool, pruned: &mut Vec<String>) {
    let keeps_object_fields = root || schema["x-kubernetes-embedded-resource"] == true;
    match value {
        Value::Object(map) => {
            let properties = schema["properties"].as_object();
            let additional = &schema["additionalProperties"];
            let preserve = schema["x-kubernetes-preserve-unknown-fields"] == true;
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                if keeps_object_fields && OBJECT_FIELDS.contains(&key.as_str()) {
                    continue;
                }
                let child_path = join(path, &key);
                let child_schema = match properties.and_then(|p| p.get(&key)) {
                    Some(s) => Some(s),
                    None if additional.is_object() => Some(additional),
                    None => None,
                };
                match child_schema {
                    Some(s) => {
                        let child = map.get_mut(&key).expect("a key of this map");
                        if child.is_null() && s["nullable"] != true {
                            map.remove(&key);
                            continue;
                        }
                        prune(child, s, &child_path, false, pruned);
                    }
                    None if preserve || additional == &Value::Bool(true) => {}
                    None => {
                        map.remove(&key);
                        pruned.push(child_path);
                    }
                }
            }
        }
        Value::Array(items) if schema["items"].is_object() => {
            for (i, item) in items.iter_mut().enumerate() {
                prune(
                    item,
                    &schema["items"],
                    &format!("{path}[{i}]"),
                    false,
                    pruned,
                );
            }
        }
        _ => {}
    }
}

/// Adds the schema's defaults where their fields are missing, then
/// defaults inside what is there (defaults included), as the server does.
fn default(value: &mut Value, schema: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(properties) = schema["properties"].as_object() {
                for (key, s) in properties {
                    if !map.contains_key(key)
                        && let Some(d) = s.get("default")
                    {
                        map.insert(key.clone(), d.clone());
                    }
                }
                for (key, child) in map.iter_mut() {
                    if let Some(s) = properties.get(key) {
                        default(child, s);
                    }
                }
            } else if schema["additionalProperties"].is_object() {
                for child in map.values_mut() {
                    default(child, &schema["additionalProperties"]);
                }
            }
        }
        Value::Array(items) if schema["items"].is_object() => {
            for item in items {
                default(item, &schema["items"]);
            }
        }
        _ => {}
    }
}

/// The structural schema spelled as JSON Schema draft 4: Kubernetes'
/// `nullable` and `x-kubernetes-int-or-string` become types, and the
/// fields the API server validates itself are left to it.
fn as_json_schema(schema: &Value, root: bool) -> Value {
    let Some(map) = schema.as_object() else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        let converted = match key.as_str() {
            "properties" | "patternProperties" | "definitions" => Value::Object(
                value
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter(|(k, _)| {
                        !(root || schema["x-kubernetes-embedded-resource"] == true)
                            || k.as_str() != "metadata"
                    })
                    .map(|(k, v)| (k.clone(), as_json_schema(v, false)))
                    .collect(),
            ),
            "items" | "additionalProperties" | "not" if value.is_object() => {
                as_json_schema(value, false)
            }
            "allOf" | "anyOf" | "oneOf" => Value::Array(
                value
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|v| as_json_schema(v, false))
                    .collect(),
            ),
            // Kubernetes' formats are its own list, checked by the server
            // when the object is applied.
            "format" | "default" | "description" | "example" | "nullable" => continue,
            k if k.starts_with("x-kubernetes-") => continue,
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    if schema["x-kubernetes-int-or-string"] == true
        && !out.contains_key("type")
        && !out.contains_key("anyOf")
    {
        out.insert(
            "anyOf".into(),
            serde_json::json!([{"type": "integer"}, {"type": "string"}]),
        );
    }
    if schema["nullable"] == true {
        if let Some(Value::String(t)) = out.get("type").cloned() {
            out.insert("type".into(), serde_json::json!([t, "null"]));
        }
        if let Some(Value::Array(values)) = out.get_mut("enum") {
            values.push(Value::Null);
        }
    }
    Value::Object(out)
}

fn validate_schema(object: &Value, schema: &Value, violations: &mut Vec<(String, String)>) {
    let json_schema = as_json_schema(schema, true);
    let validator = match jsonschema::options()
        .with_draft(jsonschema::Draft::Draft4)
        .should_validate_formats(false)
        .build(&json_schema)
    {
        Ok(validator) => validator,
        Err(e) => {
            violations.push((
                String::new(),
                format!("the definition's schema cannot be read: {e}"),
            ));
            return;
        }
    };
    for error in validator.iter_errors(object) {
        let field = field_of(object, error.instance_path().as_str());
        let keyword = error
            .schema_path()
            .as_str()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let field = match error.kind() {
            jsonschema::error::ValidationErrorKind::Required { property } => {
                join(&field, property.as_str().unwrap_or_default())
            }
            _ => field,
        };
        let message = format!("{error} (schema rule: {keyword})");
        violations.push((field, message));
    }
}

/// A JSON pointer into `object` in the plan's path syntax.
fn field_of(object: &Value, pointer: &str) -> String {
    let mut path = String::new();
    let mut at = object;
    for raw in pointer.split('/').skip(1) {
        let segment = raw.replace("~1", "/").replace("~0", "~");
        match at {
            Value::Array(items) => {
                let i: usize = segment.parse().unwrap_or_default();
                path.push_str(&format!("[{i}]"));
                at = items.get(i).unwrap_or(&Value::Null);
            }
            _ => {
                path = join(&path, &segment);
                at = &at[segment.as_str()];
            }
        }
    }
    path
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// The CEL rules of a schema, compiled once each.
struct Rules {
    env: Arc<cel::Env>,
    compiled: HashMap<String, Result<cel::Program, String>>,
}

impl Rules {
    fn new() -> Self {
        let mut env = cel::Env::stdlib();
        // Kubernetes' CEL environment has the strings extension; its other
        // libraries (quantities, URLs, IPs, sets) are not here, so rules
        // calling them are left to the server.
        let _ = env.add_extension(cel::extensions::strings);
        Rules {
            env: Arc::new(env),
            compiled: HashMap::new(),
        }
    }

    /// Walks the object and its schema together and evaluates each node's
    /// rules with `self` bound to the node's value.
    fn check(&mut self, value: &Value, schema: &Value, path: &str, checked: &mut Checked) {
        for rule in schema["x-kubernetes-validations"]
            .as_array()
            .into_iter()
            .flatten()
        {
            self.evaluate(value, rule, path, checked);
        }
        match value {
            Value::Object(map) => {
                let properties = schema["properties"].as_object();
                for (key, child) in map {
                    let child_schema = match properties.and_then(|p| p.get(key)) {
                        Some(s) => s,
                        None if schema["additionalProperties"].is_object() => {
                            &schema["additionalProperties"]
                        }
                        None => continue,
                    };
                    self.check(child, child_schema, &join(path, key), checked);
                }
            }
            Value::Array(items) if schema["items"].is_object() => {
                for (i, item) in items.iter().enumerate() {
                    self.check(item, &schema["items"], &format!("{path}[{i}]"), checked);
                }
            }
            _ => {}
        }
    }

    fn evaluate(&mut self, value: &Value, rule: &Value, path: &str, checked: &mut Checked) {
        let Some(source) = rule["rule"].as_str() else {
            return;
        };
        let field = match rule["fieldPath"].as_str() {
            Some(relative) => format!("{path}{relative}")
                .trim_start_matches('.')
                .to_string(),
            None => path.to_string(),
        };
        let env = self.env.clone();
        let program = self
            .compiled
            .entry(source.to_string())
            .or_insert_with(|| env.compile(source).map_err(|e| e.to_string()));
        let program = match program {
            Ok(p) => p,
            Err(_) => {
                checked.unchecked.push((field, source.to_string()));
                return;
            }
        };
        // A transition rule compares with the stored object; a create has
        // none, and the server skips it too.
        if program.references().has_variable("oldSelf") {
            return;
        }
        let mut context = cel::Context::with_env(self.env.clone());
        context.add_variable_from_value("self", to_cel(value));
        match program.execute(&context) {
            Ok(cel::Value::Bool(true)) => {}
            Ok(cel::Value::Bool(false)) => {
                let message = match rule["message"].as_str() {
                    Some(m) => m.to_string(),
                    None => format!("failed rule: {source}"),
                };
                checked
                    .violations
                    .push((field, format!("{message} (rule: {source})")));
            }
            // A field the rule reads is missing: the server's evaluation
            // fails the same way, and rejects the object.
            Err(cel::ExecutionError::NoSuchKey(key)) => checked.violations.push((
                field,
                format!("no such key: {key} evaluating rule: {source}"),
            )),
            Ok(_) | Err(_) => checked.unchecked.push((field, source.to_string())),
        }
    }
}

/// A JSON value as CEL sees a custom resource's field: integers are `int`,
/// as Kubernetes' CEL types them.
fn to_cel(value: &Value) -> cel::Value {
    match value {
        Value::Null => cel::Value::Null,
        Value::Bool(b) => cel::Value::Bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => cel::Value::Int(i),
            None => cel::Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => cel::Value::String(Arc::new(s.clone())),
        Value::Array(items) => cel::Value::List(Arc::new(items.iter().map(to_cel).collect())),
        Value::Object(map) => {
            let map: HashMap<String, cel::Value> =
                map.iter().map(|(k, v)| (k.clone(), to_cel(v))).collect();
            cel::Value::from(map)
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Value {
        json!({
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "required": ["size"],
                    "x-kubernetes-validations": [
                        {"rule": "self.minSize <= self.size",
                         "message": "minSize must not exceed size"},
                        {"rule": "self.size == oldSelf.size"},
                        {"rule": "quantity(self.memory).isGreaterThan(quantity('1Mi'))"}
                    ],
                    "properties": {
                        "size": {"type": "integer", "minimum": 1, "maximum": 9},
                        "minSize": {"type": "integer", "default": 1},
                        "colour": {"type": "string", "enum": ["red", "blue"]},
                        "port": {"x-kubernetes-int-or-string": true},
                        "note": {"type": "string", "nullable": true},
                        "memory": {"type": "string"},
                        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "parts": {"type": "array", "items": {
                            "type": "object",
                            "properties": {
                                "name": {"type": "string", "pattern": "^[a-z]+$"},
                                "count": {"type": "integer", "default": 1}
                            }
                        }}
                    }
                }
            }
        })
    }

    fn widget(spec: Value) -> Value {
        json!({"apiVersion": "example.com/v1", "kind": "Widget",
               "metadata": {"name": "w", "namespace": "a"}, "spec": spec})
    }

    fn fields(checked: &Checked) -> Vec<&str> {
        checked.violations.iter().map(|(f, _)| f.as_str()).collect()
    }

    #[test]
    fn a_valid_object_is_defaulted_as_the_server_would() {
        let checked = check(
            &widget(json!({"size": 3, "port": "http", "note": null,
                "labels": {"a": "b"}, "free": {"anything": [1]},
                "parts": [{"name": "bolt"}]})),
            &schema(),
        );
        assert_eq!(checked.violations, [] as [(String, String); 0]);
        assert_eq!(checked.object["spec"]["minSize"], 1);
        assert_eq!(checked.object["spec"]["parts"][0]["count"], 1);
        assert_eq!(checked.object["spec"]["note"], Value::Null);
        assert_eq!(checked.object["spec"]["free"]["anything"], json!([1]));
        assert_eq!(checked.object["metadata"]["name"], "w");
        assert_eq!(
            checked.unchecked,
            [(
                "spec".to_string(),
                "quantity(self.memory).isGreaterThan(quantity('1Mi'))".to_string()
            )]
        );
    }

    #[test]
    fn undeclared_fields_are_refused_and_named() {
        let checked = check(
            &widget(
                json!({"size": 3, "shape": "round", "parts": [{"name": "a", "x": 1}],
                "free": {"kept": true}}),
            ),
            &schema(),
        );
        assert_eq!(fields(&checked), ["spec.parts[0].x", "spec.shape"]);
        assert!(checked.violations[0].1.contains("not declared in schema"));
    }

    #[test]
    fn schema_violations_name_the_field_and_the_rule() {
        let checked = check(
            &widget(json!({"size": "big", "colour": "green", "port": 1.5,
                "parts": [{"name": "Bolt"}]})),
            &schema(),
        );
        assert_eq!(
            fields(&checked),
            [
                "spec.colour",
                "spec.parts[0].name",
                "spec.port",
                "spec.size"
            ],
            "{:?}",
            checked.violations
        );
        let messages: Vec<&str> = checked.violations.iter().map(|(_, m)| m.as_str()).collect();
        assert!(messages[0].contains("schema rule: enum"), "{messages:?}");
        assert!(messages[1].contains("schema rule: pattern"), "{messages:?}");
        assert!(messages[3].contains("schema rule: type"), "{messages:?}");
    }

    #[test]
    fn a_missing_required_field_names_the_field() {
        let checked = check(&widget(json!({"colour": "red"})), &schema());
        assert!(
            fields(&checked).contains(&"spec.size"),
            "{:?}",
            checked.violations
        );
        let bound = check(&widget(json!({"size": 10})), &schema());
        assert_eq!(fields(&bound), ["spec.size"]);
        assert!(bound.violations[0].1.contains("maximum"));
    }

    #[test]
    fn a_broken_cel_rule_is_a_violation_with_its_message() {
        let checked = check(&widget(json!({"size": 2, "minSize": 5})), &schema());
        assert_eq!(fields(&checked), ["spec"]);
        assert!(
            checked.violations[0]
                .1
                .starts_with("minSize must not exceed size (rule: self.minSize <= self.size)"),
            "{:?}",
            checked.violations
        );
    }

    #[test]
    fn a_rule_reading_a_missing_field_fails_as_on_the_server() {
        let schema = json!({"type": "object", "properties": {"spec": {
            "type": "object",
            "x-kubernetes-validations": [{"rule": "self.a > 0", "fieldPath": ".a"}],
            "properties": {"a": {"type": "integer"}}}}});
        let checked = check(&widget(json!({})), &schema);
        assert_eq!(fields(&checked), ["spec.a"]);
        assert!(checked.violations[0].1.contains("no such key: a"));
    }
}
