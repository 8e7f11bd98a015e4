//! Values that are never written down or shown: a Secret's `data` and
//! `stringData`, as Pulumi treats secret outputs.
//!
//! Three forms stand in for a sensitive value, one per place it could leak:
//! - objects compared in a plan ([`crate::diff::normalize`]) hold
//!   `(sensitive) <digest>`, a keyed hash under a key that lives only in
//!   this process, so the planner and `--diff` still see which values
//!   differ, but no printed digest can be checked against a guess;
//! - a plan's [`Change`]s at those paths hold only [`MARKER`] and say
//!   `sensitive`, so they tell that a value changed, never what it was;
//! - the state ([`seal`]) holds `(sensitive) hmac-sha256:<salt>:<mac>`, with
//!   a random salt per value kept beside the MAC, so a later run can tell
//!   whether the declared value is still the one recorded.
//!
//! Why a salt stored in the state rather than a key derived per stack: a key
//! derived from anything a stack file or state holds is as public as a
//! stored salt, and a key kept anywhere else would need managing (and, once
//! lost, would make every value look changed). The salt does not make a
//! short password safe from someone who can read the state: they can test
//! guesses offline, one HMAC per guess. It stops precomputed tables and
//! shows nothing across values: the same password in two keys or two stacks
//! gives unrelated records. So the state is to be guarded as the cluster's
//! Secrets are.
//!
//! Which fields are sensitive is one table, [`SENSITIVE_MAPS`], keyed by
//! apiVersion, kind and a top-level map field. Only core/v1 Secret `data` and
//! `stringData` are in it; a program could add its own paths there later.

use std::sync::OnceLock;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::cluster::ClusterError;
use crate::diff;
use crate::plan::Change;

/// What a plan shows in place of a sensitive value.
pub const MARKER: &str = "(sensitive)";

const SEAL_SCHEME: &str = "hmac-sha256";

/// A top-level map field whose every value is sensitive, in one kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SensitiveMap {
    pub api_version: &'static str,
    pub kind: &'static str,
    pub field: &'static str,
}

/// Every sensitive field this engine knows of.
pub const SENSITIVE_MAPS: [SensitiveMap; 2] = [
    SensitiveMap {
        api_version: "v1",
        kind: "Secret",
        field: "data",
    },
    SensitiveMap {
        api_version: "v1",
        kind: "Secret",
        field: "stringData",
    },
];

/// The sensitive map fields of `object`'s kind.
pub fn fields_of(object: &Value) -> impl Iterator<Item = &'static str> + '_ {
    let api_version = object.get("apiVersion").and_then(Value::as_str);
    let kind = object.get("kind").and_then(Value::as_str);
    SENSITIVE_MAPS
        .iter()
        .filter(move |m| Some(m.api_version) == api_version && Some(m.kind) == kind)
        .map(|m| m.field)
}

/// Whether a value already stands in for a sensitive one: a mask or a
/// seal as made here, not merely text that starts like one (a
/// `stringData` value may hold anything).
pub fn is_redacted(value: &Value) -> bool {
    let Some(rest) = value
        .as_str()
        .and_then(|s| s.strip_prefix(MARKER))
        .and_then(|s| s.strip_prefix(' '))
    else {
        return false;
    };
    let is_hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    if is_hex(rest, 16) {
        return true;
    }
    let mut parts = rest.split(':');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(SEAL_SCHEME), Some(salt), Some(mac), None) if is_hex(salt, 32) && is_hex(mac, 64)
    )
}

/// Replaces every sensitive value of `object` with `(sensitive) <digest>`,
/// keyed by this process only: equal values stay equal, different ones
/// differ, and nothing outside this process can tell which value it was.
pub fn mask(object: &mut Value) {
    for_each_value(object, |value| {
        if !is_redacted(value) {
            let text = value_text(value);
            let mac = hmac(process_key(), text.as_bytes());
            *value = Value::String(format!("{MARKER} {}", hex(&mac[..8])));
        }
    });
}

/// Replaces every sensitive value of `object` (as about to be recorded in
/// the state) with a salted HMAC of it. A value `previous` already records
/// keeps its record, so an unchanged object writes the same bytes.
pub fn seal(object: &mut Value, previous: Option<&Value>) {
    let fields: Vec<&str> = fields_of(object).collect();
    for field in fields {
        let Some(map) = object.get_mut(field).and_then(Value::as_object_mut) else {
            continue;
        };
        for (key, value) in map.iter_mut() {
            if is_redacted(value) {
                continue;
            }
            let text = value_text(value);
            let kept = previous
                .and_then(|p| p.get(field))
                .and_then(|m| m.get(key))
                .filter(|record| verifies(record, &text));
            *value = match kept {
                Some(record) => record.clone(),
                None => Value::String(new_seal(&text)),
            };
        }
    }
}

/// Whether `object` still holds a sensitive value in the clear.
pub fn has_clear_values(object: &Value) -> bool {
    fields_of(object).any(|field| {
        object
            .get(field)
            .and_then(Value::as_object)
            .is_some_and(|map| map.values().any(|v| !is_redacted(v)))
    })
}

/// The sensitive values whose declared value is not the one `recorded`
/// (a sealed object from the state) holds, as changes that carry no value.
pub fn unrecorded_changes(declared: &Value, recorded: &Value) -> Vec<Change> {
    let mut changes = Vec::new();
    for field in fields_of(declared) {
        let empty = serde_json::Map::new();
        let want = declared
            .get(field)
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let have = recorded
            .get(field)
            .and_then(Value::as_object)
            .unwrap_or(&empty);
        let keys: std::collections::BTreeSet<&String> = want.keys().chain(have.keys()).collect();
        for key in keys {
            let (old, new) = match (have.get(key), want.get(key)) {
                (Some(record), Some(value)) if verifies(record, &value_text(value)) => continue,
                (old, new) => (old.is_some(), new.is_some()),
            };
            changes.push(concealed(&path_of(field, key), old, new));
        }
    }
    changes
}

/// Rewrites the changes of an object of `kind` so that those at a
/// sensitive field carry [`MARKER`] instead of values. A change at the map
/// itself (a Secret's whole `data` added) becomes one change per key.
pub fn conceal(object: &Value, changes: Vec<Change>) -> Vec<Change> {
    let fields: Vec<&str> = fields_of(object).collect();
    if fields.is_empty() {
        return changes;
    }
    let mut out = Vec::with_capacity(changes.len());
    for change in changes {
        let Some(field) = fields.iter().find(|f| diff::is_under(&change.path, f)) else {
            out.push(change);
            continue;
        };
        if change.path != *field {
            out.push(concealed(
                &change.path,
                change.old.is_some(),
                change.new.is_some(),
            ));
            continue;
        }
        let keys = |side: &Option<Value>| -> Vec<String> {
            side.as_ref()
                .and_then(Value::as_object)
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default()
        };
        let (old_keys, new_keys) = (keys(&change.old), keys(&change.new));
        let all: std::collections::BTreeSet<&String> = old_keys.iter().chain(&new_keys).collect();
        if all.is_empty() {
            // Not a map, or an empty one: nothing in it to hide but its shape.
            out.push(concealed(
                &change.path,
                change.old.is_some(),
                change.new.is_some(),
            ));
        }
        for key in all {
            out.push(concealed(
                &path_of(field, key),
                old_keys.contains(key),
                new_keys.contains(key),
            ));
        }
    }
    out
}

/// An error from sending `object`, with its sensitive values scrubbed
/// from every message the server wrote (see [`scrub`]).
pub fn scrub_error(error: ClusterError, object: &Value) -> ClusterError {
    if fields_of(object).next().is_none() {
        return error;
    }
    match error {
        ClusterError::Api {
            action,
            target,
            mut status,
        } => {
            status.message = scrub(&status.message, object);
            if let Some(details) = status.details.as_mut() {
                for cause in &mut details.causes {
                    cause.message = scrub(&cause.message, object);
                }
            }
            ClusterError::Api {
                action,
                target,
                status,
            }
        }
        ClusterError::Forbidden {
            action,
            target,
            message,
        } => ClusterError::Forbidden {
            action,
            target,
            message: scrub(&message, object),
        },
        ClusterError::Other {
            action,
            target,
            reason,
        } => ClusterError::Other {
            action,
            target,
            reason: scrub(&reason, object),
        },
        other => other,
    }
}

/// `text` with every sensitive value of `object` (as given, and decoded
/// from base64 for `data`) replaced by [`MARKER`]. The API server already
/// redacts the values it quotes; this keeps a message that quotes one
/// anyway from carrying it further. Values shorter than four characters are
/// replaced only where quoted, so a one-letter password does not garble
/// every word.
pub fn scrub(text: &str, object: &Value) -> String {
    let mut values: Vec<String> = Vec::new();
    for field in fields_of(object) {
        let Some(map) = object.get(field).and_then(Value::as_object) else {
            continue;
        };
        for value in map.values().filter_map(Value::as_str) {
            values.push(value.to_string());
            if field == "data"
                && let Ok(bytes) =
                    serde_json::from_value::<k8s_openapi::ByteString>(Value::from(value))
                && let Ok(plain) = String::from_utf8(bytes.0)
            {
                values.push(plain);
            }
        }
    }
    // Longest first, so a value that contains another is replaced whole.
    values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    let mut text = text.to_string();
    for value in values.iter().filter(|v| !v.is_empty()) {
        if value.len() >= 4 {
            text = text.replace(value.as_str(), MARKER);
        } else {
            text = text.replace(&format!("\"{value}\""), &format!("\"{MARKER}\""));
        }
    }
    text
}

fn concealed(path: &str, old: bool, new: bool) -> Change {
    let marker = || Some(Value::String(MARKER.to_string()));
    Change {
        path: path.to_string(),
        old: if old { marker() } else { None },
        new: if new { marker() } else { None },
        sensitive: true,
    }
}

fn path_of(field: &str, key: &str) -> String {
    let mut path = field.to_string();
    diff::push_key(&mut path, key);
    path
}

fn for_each_value(object: &mut Value, mut each: impl FnMut(&mut Value)) {
    let fields: Vec<&str> = fields_of(object).collect();
    for field in fields {
        if let Some(map) = object.get_mut(field).and_then(Value::as_object_mut) {
            map.values_mut().for_each(&mut each);
        }
    }
}

/// The value as hashed: strings as they are (base64 for `data`), anything
/// else (which the server would refuse) as JSON.
fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn new_seal(text: &str) -> String {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).expect("the operating system provides random bytes");
    format!(
        "{MARKER} {SEAL_SCHEME}:{}:{}",
        hex(&salt),
        hex(&hmac(&salt, text.as_bytes()))
    )
}

/// Whether a record made by [`seal`] is of `text`.
fn verifies(record: &Value, text: &str) -> bool {
    let Some(rest) = record
        .as_str()
        .and_then(|r| r.strip_prefix(MARKER))
        .and_then(|r| r.strip_prefix(' '))
        .and_then(|r| r.strip_prefix(SEAL_SCHEME))
        .and_then(|r| r.strip_prefix(':'))
    else {
        return false;
    };
    let Some((salt, mac)) = rest.split_once(':') else {
        return false;
    };
    let Some(salt) = unhex(salt) else {
        return false;
    };
    let expected = hex(&hmac(&salt, text.as_bytes()));
    // Both are hex of the same length; compare without an early exit.
    expected.len() == mac.len()
        && expected
            .bytes()
            .zip(mac.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The key of this process's digests: random, never written anywhere.
fn process_key() -> &'static [u8; 32] {
    static KEY: OnceLock<[u8; 32]> = OnceLock::new();
    KEY.get_or_init(|| {
        let mut key = [0u8; 32];
        getrandom::getrandom(&mut key).expect("the operating system provides random bytes");
        key
    })
}

/// HMAC-SHA256 (RFC 2104), spelled out over `sha2` since it is ten lines.
fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn secret(data: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "namespace": "ns"}, "data": data})
    }

    #[test]
    fn hmac_matches_rfc_4231_test_case_2() {
        assert_eq!(
            hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn hmac_hashes_a_key_longer_than_a_block() {
        // RFC 4231 test case 6.
        assert_eq!(
            hex(&hmac(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn only_secret_data_and_string_data_are_sensitive() {
        let mut config = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"k": "v"}});
        mask(&mut config);
        assert_eq!(config["data"]["k"], "v");
        let mut other = json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "hunter2"}});
        mask(&mut other);
        assert_eq!(other["metadata"]["name"], "hunter2");
    }

    #[test]
    fn masked_values_compare_equal_only_when_the_values_are() {
        let mut a = secret(json!({"password": "aHVudGVyMg==", "same": "eA=="}));
        let mut b = secret(json!({"password": "b3RoZXI=", "same": "eA=="}));
        mask(&mut a);
        mask(&mut b);
        let text = format!("{a}{b}");
        assert!(
            !text.contains("aHVudGVyMg==") && !text.contains("b3RoZXI="),
            "{text}"
        );
        assert_ne!(a["data"]["password"], b["data"]["password"]);
        assert_eq!(a["data"]["same"], b["data"]["same"]);
        assert!(is_redacted(&a["data"]["password"]));
    }

    #[test]
    fn a_value_that_only_looks_redacted_is_still_masked_and_sealed() {
        let lookalike = "(sensitive) my real password";
        let mut object = json!({"apiVersion": "v1", "kind": "Secret",
            "stringData": {"password": lookalike}});
        assert!(has_clear_values(&object));
        let mut masked = object.clone();
        mask(&mut masked);
        assert_ne!(masked["stringData"]["password"], lookalike);
        seal(&mut object, None);
        assert!(!object.to_string().contains("my real password"));
        assert!(is_redacted(&object["stringData"]["password"]));
    }

    #[test]
    fn a_seal_verifies_its_value_only_and_differs_per_value() {
        let mut first = secret(json!({"a": "c2VjcmV0", "b": "c2VjcmV0"}));
        seal(&mut first, None);
        let text = first.to_string();
        assert!(!text.contains("c2VjcmV0"), "{text}");
        // The same value in two keys leaves unrelated records.
        assert_ne!(first["data"]["a"], first["data"]["b"]);
        assert!(verifies(&first["data"]["a"], "c2VjcmV0"));
        assert!(!verifies(&first["data"]["a"], "c2VjcmV1"));
        assert!(!has_clear_values(&first));
        assert!(has_clear_values(&secret(json!({"a": "c2VjcmV0"}))));
    }

    #[test]
    fn sealing_again_keeps_the_records_of_unchanged_values() {
        let mut first = secret(json!({"a": "c2VjcmV0", "b": "eA=="}));
        seal(&mut first, None);
        let mut second = secret(json!({"a": "c2VjcmV0", "b": "eQ=="}));
        seal(&mut second, Some(&first));
        assert_eq!(second["data"]["a"], first["data"]["a"]);
        assert_ne!(second["data"]["b"], first["data"]["b"]);
        assert!(verifies(&second["data"]["b"], "eQ=="));
    }

    #[test]
    fn unrecorded_changes_name_changed_added_and_removed_keys_without_values() {
        let mut recorded = secret(json!({"kept": "YQ==", "changed": "Yg==", "gone": "Yw=="}));
        seal(&mut recorded, None);
        let declared = secret(json!({"kept": "YQ==", "changed": "Yj==", "new": "ZA=="}));
        let changes = unrecorded_changes(&declared, &recorded);
        let summary: Vec<(&str, bool, bool)> = changes
            .iter()
            .map(|c| (c.path.as_str(), c.old.is_some(), c.new.is_some()))
            .collect();
        assert_eq!(
            summary,
            [
                ("data.changed", true, true),
                ("data.gone", true, false),
                ("data.new", false, true)
            ]
        );
        assert!(changes.iter().all(|c| c.sensitive));
        assert!(!format!("{changes:?}").contains("=="), "{changes:?}");
    }

    #[test]
    fn conceal_splits_a_whole_map_into_one_change_per_key() {
        let object = secret(json!({}));
        let changes = vec![
            Change {
                path: "data".into(),
                old: None,
                new: Some(json!({"password": "aHVudGVyMg==", "user": "YQ=="})),
                sensitive: false,
            },
            Change {
                path: "type".into(),
                old: None,
                new: Some(json!("Opaque")),
                sensitive: false,
            },
        ];
        let concealed = conceal(&object, changes);
        assert_eq!(concealed.len(), 3);
        assert_eq!(concealed[0].path, "data.password");
        assert_eq!(concealed[0].old, None);
        assert_eq!(concealed[0].new, Some(json!(MARKER)));
        assert!(concealed[0].sensitive);
        assert_eq!(concealed[2].new, Some(json!("Opaque")));
        assert!(!concealed[2].sensitive);
    }

    #[test]
    fn scrub_replaces_values_plain_and_encoded() {
        let object = secret(json!({"password": "aHVudGVyMg==", "pin": "MTI="}));
        let message =
            r#"data[password]: Invalid value: "hunter2" (aHVudGVyMg==), pin "12", 12 rules"#;
        assert_eq!(
            scrub(message, &object),
            r#"data[password]: Invalid value: "(sensitive)" ((sensitive)), pin "(sensitive)", 12 rules"#
        );
    }
}
