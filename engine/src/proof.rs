//! Proof that an object is unchanged, so that its dry run can be skipped.
//!
//! A server-side dry run of an unchanged desired object can only answer
//! "same" when nothing that shapes the answer has moved since the object
//! was applied. When it was applied, the state records a [`Proof`]: digests
//! of the desired object, of the fields this stack's field manager owns and
//! of their values as the server stored them, and what else shapes the
//! server's answer (its version, its mutating admission configuration).
//! A plan skips the dry run only when every one of those still holds:
//!
//! - the desired object is the one applied (else the answer may differ);
//! - the live object has the recorded uid (else it is another object);
//! - this stack's `Apply` entry in `managedFields` has the recorded field
//!   set (else another manager took fields, or the object was re-created);
//! - the live values at those fields are the recorded ones (else someone
//!   changed them without taking them, e.g. an update by another client);
//! - the API server's version is the recorded one (defaults and
//!   validation change between versions);
//! - the mutating admission configuration (webhook configurations and
//!   mutating admission policies), where the credentials may list it, is
//!   the recorded one (a new webhook could change what is stored).
//!
//! Secrets never get a proof: a digest of their values would be a
//! plain hash of a secret in the state.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::cluster::{Cluster, ClusterError};
use crate::resource::ResourceId;

/// What was true of an object when this stack last applied it, as digests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Proof {
    /// The desired object as applied.
    pub desired: String,
    /// The fields this stack's field manager owned after the apply.
    pub fields: String,
    /// The values the server stored at those fields.
    pub values: String,
    /// What else shapes the server's answer (see [`Environment`]).
    pub environment: String,
}

/// What shapes a server's answer besides the object: its version and its
/// mutating admission configuration, as one digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Environment(pub String);

impl Environment {
    /// Reads the server's version and its mutating admission configuration
    /// (webhook configurations, mutating admission policies and their
    /// bindings, by name and resource version). What the credentials may
    /// not list, or the server does not serve, counts as empty.
    pub async fn read(cluster: &Cluster) -> Result<Environment, ClusterError> {
        let lists = ADMISSION_KINDS.map(|(api_version, kind)| async move {
            (kind, cluster.list(api_version, kind, None, None).await)
        });
        let (version, lists) =
            futures::join!(cluster.server_version(), futures::future::join_all(lists));
        let mut parts: Vec<String> = vec![format!("server {}", version?)];
        for (kind, listed) in lists {
            let objects = match listed {
                Ok(objects) => objects,
                Err(ClusterError::UnknownKind { .. } | ClusterError::Forbidden { .. }) => {
                    parts.push(format!("{kind} unknown"));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut names: Vec<String> = objects
                .iter()
                .map(|o| {
                    format!(
                        "{kind} {} {}",
                        o["metadata"]["name"].as_str().unwrap_or_default(),
                        o["metadata"]["resourceVersion"]
                            .as_str()
                            .unwrap_or_default()
                    )
                })
                .collect();
            names.sort();
            parts.extend(names);
        }
        Ok(Environment(digest_text(&parts.join("\n"))))
    }
}

/// The requests [`Environment::read`] sends: the server's version, one
/// list per admission kind, and the discovery of the kinds not built in.
pub const ENVIRONMENT_READS: usize = ADMISSION_KINDS.len() + 2;

/// The kinds whose objects change what the server stores for an apply.
const ADMISSION_KINDS: [(&str, &str); 3] = [
    (
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
    ),
    ("admissionregistration.k8s.io/v1", "MutatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io/v1",
        "MutatingAdmissionPolicyBinding",
    ),
];

/// Whether an object of this kind may carry a proof.
pub fn allowed(id: &ResourceId) -> bool {
    !(id.kind == "Secret" && id.api_version == "v1")
}

/// The proof for `desired` as the server answered its apply with `stored`,
/// or `None` when the answer does not say what this stack owns.
pub fn of_apply(
    desired: &Value,
    stored: &Value,
    field_manager: &str,
    environment: &Environment,
) -> Option<Proof> {
    let id = ResourceId::of(desired)?;
    if !allowed(&id) {
        return None;
    }
    let fields = owned_fields(stored, field_manager)?;
    Some(Proof {
        desired: digest(desired),
        fields: digest(fields),
        values: digest_projection(fields, stored),
        environment: environment.0.clone(),
    })
}

/// Whether `proof` still holds for `desired` against `live`, as read.
pub fn holds(
    proof: &Proof,
    desired: &Value,
    recorded_uid: &str,
    live: &Value,
    field_manager: &str,
    environment: &Environment,
) -> bool {
    Owned::of(live, field_manager)
        .is_some_and(|owned| holds_for(proof, desired, recorded_uid, live, &owned, environment))
}

/// [`holds`], with what the live object's field manager owns taken
/// beforehand ([`Owned::take`]).
pub fn holds_for(
    proof: &Proof,
    desired: &Value,
    recorded_uid: &str,
    live: &Value,
    owned: &Owned,
    environment: &Environment,
) -> bool {
    live["metadata"]["uid"].as_str() == Some(recorded_uid)
        && proof.environment == environment.0
        && !live["metadata"]["deletionTimestamp"].is_string()
        && proof.fields == owned.fields
        && proof.values == owned.values
        && proof.desired == digest(desired)
}

/// What a field manager owns of a live object, as the digests a [`Proof`]
/// compares: the field set of its `Apply` entry and the values at those
/// fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owned {
    fields: String,
    values: String,
}

impl Owned {
    /// The digests of what `field_manager` owns of `object`, or `None` when
    /// it has no `Apply` entry with a field set.
    pub fn of(object: &Value, field_manager: &str) -> Option<Owned> {
        let fields = owned_fields(object, field_manager)?;
        Some(Owned {
            fields: digest(fields),
            values: digest_projection(fields, object),
        })
    }

    /// [`Owned::of`], then drops the field set from `object`: a field set
    /// is a tree of small maps, the largest part of a listed object in
    /// memory, and once digested nothing else reads it.
    /// Nothing is taken of a Secret: a digest of its values would be a
    /// plain hash of a secret.
    pub fn take(object: &mut Value, field_manager: &str) -> Option<Owned> {
        if !ResourceId::of(object).is_some_and(|id| allowed(&id)) {
            return None;
        }
        let owned = Owned::of(object, field_manager)?;
        if let Some(entry) = object["metadata"]["managedFields"]
            .as_array_mut()
            .and_then(|entries| entries.iter_mut().find(|m| is_own_apply(m, field_manager)))
            .and_then(Value::as_object_mut)
        {
            entry.remove("fieldsV1");
        }
        Some(owned)
    }
}

/// The field set of this field manager's `Apply` entry.
fn owned_fields<'a>(object: &'a Value, field_manager: &str) -> Option<&'a Value> {
    object["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|m| is_own_apply(m, field_manager))
        .map(|m| &m["fieldsV1"])
        .filter(|f| f.is_object())
}

fn is_own_apply(entry: &Value, field_manager: &str) -> bool {
    entry["manager"] == field_manager
        && entry["operation"] == "Apply"
        && entry["subresource"].as_str().unwrap_or_default().is_empty()
}

/// The values of `object` at the fields of a `fieldsV1` set: `f:` names a
/// field, `k:` a list element by its keys, `v:` a set element by value,
/// `i:` a list element by index; a leaf takes the whole value. A field the
/// set names and the object lacks is `null`. The reference for
/// [`digest_projection`], which writes the same without building it.
#[cfg(test)]
fn project(set: &Value, object: &Value) -> Value {
    let Some(members) = set.as_object() else {
        return Value::Null;
    };
    let mut out = serde_json::Map::new();
    for (key, sub) in members {
        if key == "." {
            continue;
        }
        let child = member(key, object);
        let value = match child {
            None => Value::Null,
            Some(v) if is_leaf(sub) => v.clone(),
            Some(v) => project(sub, v),
        };
        out.insert(key.clone(), value);
    }
    Value::Object(out)
}

/// Whether a `fieldsV1` entry takes the whole value at its place.
fn is_leaf(sub: &Value) -> bool {
    sub.as_object().is_none_or(|m| m.keys().all(|k| k == "."))
}

fn member<'a>(key: &str, object: &'a Value) -> Option<&'a Value> {
    let (kind, rest) = key.split_at_checked(2)?;
    match kind {
        "f:" => object.get(rest),
        "k:" => {
            let keys: BTreeMap<String, Value> = serde_json::from_str(rest).ok()?;
            object
                .as_array()?
                .iter()
                .find(|item| keys.iter().all(|(k, v)| &item[k] == v))
        }
        "v:" => {
            let value: Value = serde_json::from_str(rest).ok()?;
            object.as_array()?.iter().find(|item| **item == value)
        }
        "i:" => object.as_array()?.get(rest.parse::<usize>().ok()?),
        _ => None,
    }
}

/// A digest of a JSON value, the same whatever order its maps were built
/// in: the SHA-256 of its canonical text, maps with their keys sorted.
fn digest(value: &Value) -> String {
    let mut text = Vec::new();
    canonical(value, &mut text);
    digest_bytes(&text)
}

/// The digest of the values of `object` at the fields of `set` (as
/// [`digest`] of their projection would give), written straight from the
/// object: a plan checks one per object it proves unchanged.
fn digest_projection(set: &Value, object: &Value) -> String {
    let mut text = Vec::new();
    canonical_projection(set, object, &mut text);
    digest_bytes(&text)
}

fn digest_text(text: &str) -> String {
    digest_bytes(text.as_bytes())
}

fn digest_bytes(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Writes `value` as JSON with every map's keys in order: the text a
/// digest is taken of, so it must never change for a value that did not.
fn canonical(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            out.push(b'{');
            for (i, (key, item)) in sorted(map).into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                scalar(key, out);
                out.push(b':');
                canonical(item, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical(item, out);
            }
            out.push(b']');
        }
        other => scalar(other, out),
    }
}

/// Writes what [`canonical`] writes for the projection of `object` on
/// `set` (see [`project`]).
fn canonical_projection(set: &Value, object: &Value, out: &mut Vec<u8>) {
    let Some(members) = set.as_object() else {
        out.extend_from_slice(b"null");
        return;
    };
    out.push(b'{');
    let mut first = true;
    for (key, sub) in sorted(members) {
        if key == "." {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        scalar(key, out);
        out.push(b':');
        match member(key, object) {
            None => out.extend_from_slice(b"null"),
            Some(v) if is_leaf(sub) => canonical(v, out),
            Some(v) => canonical_projection(sub, v, out),
        }
    }
    out.push(b'}');
}

/// A map's entries by key. serde_json's maps keep their keys in order
/// unless its `preserve_order` feature is on; only then is there sorting
/// to do.
fn sorted(map: &serde_json::Map<String, Value>) -> Vec<(&String, &Value)> {
    let mut entries: Vec<(&String, &Value)> = map.iter().collect();
    if !entries.is_sorted_by(|a, b| a.0 <= b.0) {
        entries.sort_by(|a, b| a.0.cmp(b.0));
    }
    entries
}

/// Writes a string, number, boolean or null as compact JSON.
fn scalar<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    serde_json::to_writer(out, value).expect("writing JSON to memory cannot fail");
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn stored(replicas: i64, manager: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1",
                "managedFields": [{"manager": manager, "operation": "Apply",
                    "fieldsV1": {"f:spec": {"f:replicas": {},
                        "f:template": {"f:spec": {"f:containers": {
                            "k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}}}}}}}}]},
            "spec": {"replicas": replicas, "paused": false,
                "template": {"spec": {"containers": [
                    {"name": "sidecar", "image": "x"},
                    {"name": "nginx", "image": "nginx:alpine", "imagePullPolicy": "Always"}]}}}
        })
    }

    fn desired() -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"replicas": 3}})
    }

    fn env() -> Environment {
        Environment("e1".into())
    }

    #[test]
    fn a_proof_holds_until_an_owned_value_changes() {
        let proof = of_apply(&desired(), &stored(3, "echo-iac"), "echo-iac", &env()).unwrap();
        assert!(holds(
            &proof,
            &desired(),
            "u1",
            &stored(3, "echo-iac"),
            "echo-iac",
            &env()
        ));
        // A field it does not own may change.
        let mut other = stored(3, "echo-iac");
        other["spec"]["paused"] = json!(true);
        other["spec"]["template"]["spec"]["containers"][0]["image"] = json!("y");
        assert!(holds(&proof, &desired(), "u1", &other, "echo-iac", &env()));
        // One it owns may not.
        assert!(!holds(
            &proof,
            &desired(),
            "u1",
            &stored(5, "echo-iac"),
            "echo-iac",
            &env()
        ));
        let mut image = stored(3, "echo-iac");
        image["spec"]["template"]["spec"]["containers"][1]["image"] = json!("nginx:1");
        assert!(!holds(&proof, &desired(), "u1", &image, "echo-iac", &env()));
    }

    #[test]
    fn a_proof_fails_on_any_other_condition() {
        let proof = of_apply(&desired(), &stored(3, "echo-iac"), "echo-iac", &env()).unwrap();
        let live = stored(3, "echo-iac");
        let mut changed = desired();
        changed["spec"]["replicas"] = json!(4);
        assert!(!holds(&proof, &changed, "u1", &live, "echo-iac", &env()));
        assert!(!holds(&proof, &desired(), "u2", &live, "echo-iac", &env()));
        assert!(!holds(
            &proof,
            &desired(),
            "u1",
            &live,
            "echo-iac",
            &Environment("e2".into())
        ));
        let taken = stored(3, "kubectl");
        assert!(!holds(&proof, &desired(), "u1", &taken, "echo-iac", &env()));
        let mut fewer = stored(3, "echo-iac");
        fewer["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]
            .as_object_mut()
            .unwrap()
            .remove("f:template");
        assert!(!holds(&proof, &desired(), "u1", &fewer, "echo-iac", &env()));
    }

    #[test]
    fn secrets_get_no_proof_and_digests_ignore_key_order() {
        let secret = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "ns"}});
        assert_eq!(
            of_apply(&secret, &stored(3, "echo-iac"), "echo-iac", &env()),
            None
        );
        let a: Value = serde_json::from_str(r#"{"b": 1, "a": {"d": 2, "c": 3}}"#).unwrap();
        let b: Value = serde_json::from_str(r#"{"a": {"c": 3, "d": 2}, "b": 1}"#).unwrap();
        assert_eq!(digest(&a), digest(&b));
    }

    #[test]
    fn nothing_is_taken_of_a_secret() {
        let mut secret = stored(3, "echo-iac");
        secret["apiVersion"] = json!("v1");
        secret["kind"] = json!("Secret");
        assert_eq!(Owned::take(&mut secret, "echo-iac"), None);
        assert!(secret["metadata"]["managedFields"][0]["fieldsV1"].is_object());
        let mut deployment = stored(3, "echo-iac");
        assert!(Owned::take(&mut deployment, "echo-iac").is_some());
        assert!(deployment["metadata"]["managedFields"][0]["fieldsV1"].is_null());
    }

    #[test]
    fn digests_of_recorded_proofs_stay_what_they_were() {
        // States hold these digests: a change to the canonical text would
        // make every recorded proof fail once, and every object be dry-run.
        let value: Value =
            serde_json::from_str(r#"{"b": [1.5, "x\"y", null, true], "a": {"d": 2, "c": 3}}"#)
                .unwrap();
        assert_eq!(
            digest(&value),
            "2a589e827793b140a66b27de0aa905e62c4b68766a76dadae24041603ea1de4a"
        );
    }

    #[test]
    fn a_projection_digests_as_the_projected_value_does() {
        for live in [
            stored(3, "echo-iac"),
            stored(5, "echo-iac"),
            json!({}),
            json!([1]),
        ] {
            let set = &stored(3, "echo-iac")["metadata"]["managedFields"][0]["fieldsV1"];
            assert_eq!(digest_projection(set, &live), digest(&project(set, &live)));
            assert_eq!(digest_projection(&json!(1), &live), digest(&Value::Null));
        }
    }
}
