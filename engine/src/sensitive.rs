//! Values that are never written down or shown: a Secret's `data` and
//! `stringData`, and every copy of them an object carries (the
//! `kubectl.kubernetes.io/last-applied-configuration` annotation that
//! client-side `kubectl apply` leaves on a Secret holds the whole Secret as
//! applied), as Pulumi treats secret outputs.
//!
//! Three forms stand in for a sensitive value, one per place it could leak:
//! - objects compared in a plan ([`crate::diff::normalize`]) hold
//!   `(sensitive) <digest>`, a keyed hash under a key that lives only in
//!   this process, so the planner and `--diff` still see which values
//!   differ, but no printed digest can be checked against a guess;
//! - a plan's [`Change`]s at those paths hold only [`MARKER`] and say
//!   `sensitive`, so they tell that a value changed, never what it was;
//! - the state (`seal`) holds `(sensitive) argon2id:<salt>:<hash>`, with
//!   a random salt per value kept beside the hash, so a later run can tell
//!   whether the declared value is still the one recorded.
//!
//! Why a salt stored in the state rather than a key derived per stack: a key
//! derived from anything a stack file or state holds is as public as a
//! stored salt, and a key kept anywhere else would need managing (and, once
//! lost, would make every value look changed). So whoever reads the state can
//! test guesses offline; Argon2id makes each guess cost what checking a value
//! costs here (2 MiB of memory and about a millisecond), where
//! the HMAC-SHA256 seals of earlier releases cost well under a microsecond.
//! Those older seals are still read (and replaced by a new seal when their
//! object is next applied). The salt stops precomputed tables and shows
//! nothing across values: the same password in two keys or two stacks gives
//! unrelated records. A short or common password stays guessable: the state
//! is to be guarded as the cluster's Secrets are.
//!
//! Which fields are sensitive is one table, `SENSITIVE_FIELDS`, keyed by
//! apiVersion, kind and a map field (all of its keys, or one); a program
//! could add its own there later.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::field_path;
use crate::plan::Change;

/// What a plan shows in place of a sensitive value.
pub const MARKER: &str = "(sensitive)";

/// The annotation in which client-side `kubectl apply` keeps the object as
/// last applied: on a Secret, its values.
pub(crate) const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The scheme of the seals written now.
const SEAL_SCHEME: &str = "argon2id";
/// The scheme of earlier releases' seals, still read.
const OLD_SEAL_SCHEME: &str = "hmac-sha256";

/// Argon2id's memory per seal, in KiB. With [`ARGON2_PASSES`], one seal
/// (and so one guess) takes about 1 ms on one core, some 600 times an
/// HMAC's, and 2 MiB of memory that a GPU cannot share between guesses;
/// checking a state's values costs a run about 1 ms per Secret value, once
/// (`cargo run -p echo-iac-engine --example seal_cost`).
pub(crate) const ARGON2_MEMORY_KIB: u32 = 2048;
/// Argon2id's passes over that memory.
pub(crate) const ARGON2_PASSES: u32 = 1;

/// A map in one kind whose values are sensitive: all of them, or the one
/// under `key`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SensitiveField {
    pub api_version: &'static str,
    pub kind: &'static str,
    /// The map's place in the object, e.g. `["metadata", "annotations"]`.
    pub map: &'static [&'static str],
    /// The one sensitive key of the map; `None` for every key.
    pub key: Option<&'static str>,
}

/// Every sensitive field this engine knows of.
pub(crate) const SENSITIVE_FIELDS: [SensitiveField; 3] = [
    SensitiveField {
        api_version: "v1",
        kind: "Secret",
        map: &["data"],
        key: None,
    },
    SensitiveField {
        api_version: "v1",
        kind: "Secret",
        map: &["stringData"],
        key: None,
    },
    SensitiveField {
        api_version: "v1",
        kind: "Secret",
        map: &["metadata", "annotations"],
        key: Some(LAST_APPLIED),
    },
];

impl SensitiveField {
    fn covers(&self, key: &str) -> bool {
        self.key.is_none_or(|k| k == key)
    }

    /// The segments down to the sensitive part: the map, or its one key.
    fn segments(&self) -> Vec<&'static str> {
        let mut segments = self.map.to_vec();
        segments.extend(self.key);
        segments
    }

    fn map_in<'a>(&self, object: &'a Value) -> Option<&'a Map<String, Value>> {
        self.map
            .iter()
            .try_fold(object, |value, segment| value.get(segment))?
            .as_object()
    }

    fn map_in_mut<'a>(&self, object: &'a mut Value) -> Option<&'a mut Map<String, Value>> {
        self.map
            .iter()
            .try_fold(object, |value, segment| value.get_mut(segment))?
            .as_object_mut()
    }

    /// The sensitive entries of `object`'s map.
    fn entries<'a>(&self, object: &'a Value) -> impl Iterator<Item = (&'a String, &'a Value)> {
        self.map_in(object)
            .into_iter()
            .flatten()
            .filter(|(key, _)| self.covers(key))
    }
}

/// The sensitive fields of `object`'s kind.
/// Whether objects of `id`'s kind hold sensitive values at all: what
/// decides, without reading an object, whether its values need a look.
pub(crate) fn is_sensitive_kind(id: &crate::ResourceId) -> bool {
    SENSITIVE_FIELDS
        .iter()
        .any(|f| f.api_version == id.api_version && f.kind == id.kind)
}

fn fields_of(object: &Value) -> impl Iterator<Item = &'static SensitiveField> + '_ {
    let api_version = object.get("apiVersion").and_then(Value::as_str);
    let kind = object.get("kind").and_then(Value::as_str);
    SENSITIVE_FIELDS
        .iter()
        .filter(move |f| Some(f.api_version) == api_version && Some(f.kind) == kind)
}

/// Whether a value already stands in for a sensitive one: a mask or a
/// seal as made here, not merely text that starts like one (a
/// `stringData` value may hold anything).
pub(crate) fn is_redacted(value: &Value) -> bool {
    let Some(rest) = value
        .as_str()
        .and_then(|s| s.strip_prefix(MARKER))
        .and_then(|s| s.strip_prefix(' '))
    else {
        return false;
    };
    is_hex(rest, 16) || parse_seal(rest).is_some()
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// A seal's scheme, salt and hash, when `rest` (a record after its
/// marker) is one.
fn parse_seal(rest: &str) -> Option<(&str, &str, &str)> {
    let mut parts = rest.split(':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(scheme), Some(salt), Some(hash), None)
            if (scheme == SEAL_SCHEME || scheme == OLD_SEAL_SCHEME)
                && is_hex(salt, 32)
                && is_hex(hash, 64) =>
        {
            Some((scheme, salt, hash))
        }
        _ => None,
    }
}

/// Replaces every sensitive value of `object` with `(sensitive) <digest>`,
/// keyed by this process only: equal values stay equal, different ones
/// differ, and nothing outside this process can tell which value it was.
pub(crate) fn mask(object: &mut Value) {
    for_each_value(object, |_, _, value| {
        if !is_redacted(value) {
            let text = value_text(value);
            let mac = hmac(process_key(), text.as_bytes());
            *value = Value::String(format!("{MARKER} {}", hex(&mac[..8])));
        }
    });
}

/// Replaces every sensitive value of `object` (as about to be recorded in
/// the state) with a salted Argon2id hash of it. A value `previous` already
/// records under a current seal keeps its record, so an unchanged object
/// writes the same bytes.
pub(crate) fn seal(object: &mut Value, previous: Option<&Value>) {
    for_each_value(object, |field, key, value| {
        if is_redacted(value) {
            return;
        }
        let text = value_text(value);
        let kept = previous
            .and_then(|p| field.map_in(p))
            .and_then(|m| m.get(key))
            .filter(|record| is_current(record) && verifies(record, &text));
        *value = match kept {
            Some(record) => record.clone(),
            None => Value::String(new_seal(&text)),
        };
    });
}

/// `recorded` (an object as the state holds it, its sensitive values
/// sealed) with the sensitive values `live` holds now, for re-applying a
/// recorded object whose values cannot be recovered: a rollback keeps a
/// Secret's current values. Keys recorded under `stringData` go back
/// there, decoded, so that the object is applied as it was; every other
/// live key under `data`. Returns the object and whether its values differ
/// from the ones recorded.
pub(crate) fn with_live_values(recorded: &Value, live: &Value) -> (Value, bool) {
    let mut object = recorded.clone();
    if fields_of(recorded).next().is_none() {
        return (object, false);
    }
    let as_text: BTreeSet<String> = recorded
        .get("stringData")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    let mut data = Map::new();
    let mut string_data = Map::new();
    for (key, value) in live
        .get("data")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let decoded = as_text
            .contains(key)
            .then(|| serde_json::from_value::<k8s_openapi::ByteString>(value.clone()).ok())
            .flatten()
            .and_then(|bytes| String::from_utf8(bytes.0).ok());
        match decoded {
            Some(text) => string_data.insert(key.clone(), Value::String(text)),
            None => data.insert(key.clone(), value.clone()),
        };
    }
    if let Some(map) = object.as_object_mut() {
        map.remove("data");
        map.remove("stringData");
        if !data.is_empty() {
            map.insert("data".into(), Value::Object(data));
        }
        if !string_data.is_empty() {
            map.insert("stringData".into(), Value::Object(string_data));
        }
    }
    let live_annotation = live["metadata"]["annotations"].get(LAST_APPLIED).cloned();
    if let Some(annotations) = object["metadata"]
        .get_mut("annotations")
        .and_then(Value::as_object_mut)
    {
        match live_annotation {
            Some(value) if annotations.contains_key(LAST_APPLIED) => {
                annotations.insert(LAST_APPLIED.into(), value);
            }
            _ => {
                annotations.remove(LAST_APPLIED);
            }
        }
    }
    let changed = !unrecorded_changes(&object, recorded).is_empty();
    (object, changed)
}

/// Whether `object`'s kind has sensitive fields.
pub(crate) fn has_sensitive_fields(object: &Value) -> bool {
    fields_of(object).next().is_some()
}

/// Whether `object` still holds a sensitive value in the clear.
pub(crate) fn has_clear_values(object: &Value) -> bool {
    fields_of(object).any(|field| field.entries(object).any(|(_, v)| !is_redacted(v)))
}

/// The sensitive values whose declared value is not the one `recorded`
/// (a sealed object from the state) holds, as changes that carry no value.
pub(crate) fn unrecorded_changes(declared: &Value, recorded: &Value) -> Vec<Change> {
    let mut changes = Vec::new();
    for field in fields_of(declared) {
        let want: HashMap<&String, &Value> = field.entries(declared).collect();
        let have: HashMap<&String, &Value> = field.entries(recorded).collect();
        let keys: BTreeSet<&String> = want.keys().chain(have.keys()).copied().collect();
        for key in keys {
            let (old, new) = match (have.get(key), want.get(key)) {
                (Some(record), Some(value)) if verifies(record, &value_text(value)) => continue,
                (old, new) => (old.is_some(), new.is_some()),
            };
            changes.push(concealed(&path_of(field.map, Some(key)), old, new));
        }
    }
    changes
}

/// Rewrites the changes of an object of `kind` so that none carries a
/// sensitive value: a change at or inside a sensitive field carries
/// [`MARKER`] instead of values; a change at a whole sensitive map (a
/// Secret's `data` added) becomes one change per key; and a change above
/// one (all of `metadata` added, with the last-applied annotation in it)
/// loses the sensitive part, which becomes changes of its own.
pub(crate) fn conceal(object: &Value, changes: Vec<Change>) -> Vec<Change> {
    let fields: Vec<&SensitiveField> = fields_of(object).collect();
    if fields.is_empty() {
        return changes;
    }
    let mut out = Vec::with_capacity(changes.len());
    for mut change in changes {
        let mut split = Vec::new();
        let mut whole = false;
        for field in &fields {
            let segments = field.segments();
            let path = path_of(&segments, None);
            if field_path::is_under(&change.path, &path) {
                if change.path == path && field.key.is_none() {
                    split.extend(per_key(&path, &change.old, &change.new));
                } else {
                    split.push(concealed(
                        &change.path,
                        change.old.is_some(),
                        change.new.is_some(),
                    ));
                }
                whole = true;
                break;
            }
            // A change above the field: take the field out of it.
            let Some(depth) =
                (0..segments.len()).find(|&i| path_of(&segments[..i], None) == change.path)
            else {
                continue;
            };
            let below = &segments[depth..];
            let old = change.old.as_mut().and_then(|v| take(v, below));
            let new = change.new.as_mut().and_then(|v| take(v, below));
            if field.key.is_none() {
                split.extend(per_key(&path, &old, &new));
            } else if old.is_some() || new.is_some() {
                split.push(concealed(&path, old.is_some(), new.is_some()));
            }
            // A side that held nothing but the sensitive part held nothing
            // else that changed.
            for side in [&mut change.old, &mut change.new] {
                if side.as_ref().is_some_and(is_empty_object) {
                    *side = None;
                }
            }
        }
        if !whole && (change.old.is_some() || change.new.is_some()) {
            out.push(change);
        }
        out.extend(split);
    }
    out
}

/// One concealed change per key of a sensitive map that changed as a
/// whole; an empty map or a value that is not one, as one change.
fn per_key(path: &str, old: &Option<Value>, new: &Option<Value>) -> Vec<Change> {
    let keys = |side: &Option<Value>| -> Vec<String> {
        side.as_ref()
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    };
    let (old_keys, new_keys) = (keys(old), keys(new));
    let all: BTreeSet<&String> = old_keys.iter().chain(&new_keys).collect();
    if all.is_empty() {
        if old.is_none() && new.is_none() {
            return Vec::new();
        }
        // Not a map, or an empty one: nothing in it to hide but its shape.
        return vec![concealed(path, old.is_some(), new.is_some())];
    }
    all.into_iter()
        .map(|key| {
            let mut key_path = path.to_string();
            field_path::push_key(&mut key_path, key);
            concealed(&key_path, old_keys.contains(key), new_keys.contains(key))
        })
        .collect()
}

/// Removes and returns the value at `segments` below `value`, dropping
/// maps the removal leaves empty on the way.
fn take(value: &mut Value, segments: &[&str]) -> Option<Value> {
    let (first, rest) = segments.split_first()?;
    let map = value.as_object_mut()?;
    if rest.is_empty() {
        return map.remove(*first);
    }
    let child = map.get_mut(*first)?;
    let taken = take(child, rest);
    if taken.is_some() && is_empty_object(child) {
        map.remove(*first);
    }
    taken
}

fn is_empty_object(value: &Value) -> bool {
    value.as_object().is_some_and(Map::is_empty)
}

/// `text` with every sensitive value of `object` (as given, and decoded
/// from base64 for `data`) replaced by [`MARKER`]. The API server already
/// redacts the values it quotes; this keeps a message that quotes one
/// anyway from carrying it further. Values shorter than four characters are
/// replaced only where quoted, so a one-letter password does not garble
/// every word.
pub(crate) fn scrub(text: &str, object: &Value) -> String {
    let mut values: Vec<String> = Vec::new();
    for field in fields_of(object) {
        for value in field.entries(object).filter_map(|(_, v)| v.as_str()) {
            values.push(value.to_string());
            if field.map == ["data"]
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

/// `segments` (then `key`) as a plan's field path.
fn path_of(segments: &[&str], key: Option<&str>) -> String {
    let mut path = String::new();
    for segment in segments.iter().copied().chain(key) {
        field_path::push_key(&mut path, segment);
    }
    path
}

fn for_each_value(object: &mut Value, mut each: impl FnMut(&SensitiveField, &str, &mut Value)) {
    let fields: Vec<&SensitiveField> = fields_of(object).collect();
    for field in fields {
        if let Some(map) = field.map_in_mut(object) {
            for (key, value) in map.iter_mut().filter(|(key, _)| field.covers(key)) {
                each(field, key, value);
            }
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
    let record = format!(
        "{MARKER} {SEAL_SCHEME}:{}:{}",
        hex(&salt),
        hex(&argon2id(&salt, text.as_bytes()))
    );
    remember(&record, text, true);
    record
}

/// Whether a record is a seal of the scheme written now.
fn is_current(record: &Value) -> bool {
    record
        .as_str()
        .and_then(|r| r.strip_prefix(MARKER))
        .and_then(|r| r.strip_prefix(' '))
        .and_then(parse_seal)
        .is_some_and(|(scheme, _, _)| scheme == SEAL_SCHEME)
}

/// Whether a record made by [`seal`] (now or by an earlier release) is of
/// `text`. Each answer is kept for the rest of the process, so a value that
/// a preview checked costs nothing more when `up` records it.
fn verifies(record: &Value, text: &str) -> bool {
    let Some(record) = record.as_str() else {
        return false;
    };
    let Some((scheme, salt, hash)) = record
        .strip_prefix(MARKER)
        .and_then(|r| r.strip_prefix(' '))
        .and_then(parse_seal)
    else {
        return false;
    };
    if let Some(known) = recall(record, text) {
        return known;
    }
    let Some(salt) = unhex(salt) else {
        return false;
    };
    let expected = hex(&match scheme {
        SEAL_SCHEME => argon2id(&salt, text.as_bytes()),
        _ => hmac(&salt, text.as_bytes()),
    });
    // Both are hex of the same length; compare without an early exit.
    let verified = expected.len() == hash.len()
        && expected
            .bytes()
            .zip(hash.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    remember(record, text, verified);
    verified
}

/// Answers of [`verifies`] in this process, by record and by a digest of
/// the value under the process key (the value itself is not kept).
type Answers = HashMap<(String, [u8; 32]), bool>;

fn answers() -> &'static Mutex<Answers> {
    static ANSWERS: OnceLock<Mutex<Answers>> = OnceLock::new();
    ANSWERS.get_or_init(Mutex::default)
}

fn recall(record: &str, text: &str) -> Option<bool> {
    let key = (record.to_string(), hmac(process_key(), text.as_bytes()));
    answers().lock().ok()?.get(&key).copied()
}

fn remember(record: &str, text: &str, verified: bool) {
    let key = (record.to_string(), hmac(process_key(), text.as_bytes()));
    if let Ok(mut answers) = answers().lock() {
        answers.insert(key, verified);
    }
}

/// A digest of a sensitive value that is the same on every run yet costs
/// as much to check a guess against as a seal does: Argon2id at the seals'
/// cost, salted by `context` (what the digest is of, e.g. the stack and the
/// object) instead of by random bytes, so that a value recorded where a
/// random salt cannot be kept (a pod template annotation) does not change
/// while the value does not, and equal values in other contexts give
/// unrelated digests.
pub(crate) fn stable_digest(context: &[&str], text: &[u8]) -> [u8; 32] {
    let mut salt = Sha256::new();
    for part in context {
        // Lengths first, so that no two lists of parts run together alike.
        salt.update((part.len() as u64).to_be_bytes());
        salt.update(part.as_bytes());
    }
    argon2id(&salt.finalize()[..16], text)
}

/// Argon2id (RFC 9106) of `text` with `salt`, at this release's cost.
fn argon2id(salt: &[u8], text: &[u8]) -> [u8; 32] {
    use argon2::{Algorithm, Argon2, Params, Version};
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, 1, Some(32))
        .expect("the parameters are within Argon2's limits");
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(text, salt, &mut out)
        .expect("a 16-byte salt and a value under 4 GiB are within Argon2's limits");
    out
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
    fn a_recorded_secret_takes_its_live_values_and_says_when_they_changed() {
        // Recorded with `token` under stringData and `ca` under data.
        let mut recorded = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "labels": {"a": "b"}},
            "type": "Opaque",
            "stringData": {"token": "one"},
            "data": {"ca": "Y2E="},
        });
        seal(&mut recorded, None);
        let live = |token: &str| {
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "s", "uid": "u"},
                "data": {"token": token, "ca": "Y2E="},
            })
        };

        // "b25l" is "one": unchanged; the token goes back under stringData.
        let (object, changed) = with_live_values(&recorded, &live("b25l"));
        assert!(!changed);
        assert_eq!(object["stringData"], json!({"token": "one"}));
        assert_eq!(object["data"], json!({"ca": "Y2E="}));
        assert_eq!(object["metadata"]["labels"], json!({"a": "b"}));
        assert_eq!(object["type"], "Opaque");

        // "dHdv" is "two": changed since, and kept as it is now.
        let (object, changed) = with_live_values(&recorded, &live("dHdv"));
        assert!(changed);
        assert_eq!(object["stringData"], json!({"token": "two"}));
        assert!(!has_clear_values(&recorded));
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

    fn applied_with_kubectl(password: &str) -> Value {
        let last_applied = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "namespace": "ns"}, "data": {"password": password}});
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "db", "namespace": "ns", "annotations": {
                LAST_APPLIED: last_applied.to_string(), "team": "payments"}},
            "data": {"password": password}})
    }

    #[test]
    fn the_last_applied_annotation_of_a_secret_is_masked_and_other_annotations_kept() {
        let mut object = applied_with_kubectl("aHVudGVyMg==");
        mask(&mut object);
        let text = object.to_string();
        assert!(!text.contains("aHVudGVyMg=="), "{text}");
        assert!(is_redacted(
            &object["metadata"]["annotations"][LAST_APPLIED]
        ));
        assert_eq!(object["metadata"]["annotations"]["team"], "payments");
        // A ConfigMap's copy holds nothing sensitive, and stays readable.
        let mut config = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"annotations": {LAST_APPLIED: "{\"data\":{}}"}}});
        mask(&mut config);
        assert_eq!(
            config["metadata"]["annotations"][LAST_APPLIED],
            "{\"data\":{}}"
        );
    }

    #[test]
    fn a_changed_last_applied_annotation_is_a_sensitive_change_without_values() {
        let mut old = applied_with_kubectl("b2xk");
        let mut new = applied_with_kubectl("bmV3");
        mask(&mut old);
        mask(&mut new);
        let changes = crate::diff::changes(&old, &new);
        let annotation = format!("metadata.annotations[\"{LAST_APPLIED}\"]");
        let summary: Vec<(&str, bool)> = changes
            .iter()
            .map(|c| (c.path.as_str(), c.sensitive))
            .collect();
        assert_eq!(
            summary,
            [("data.password", true), (annotation.as_str(), true)]
        );
        assert_eq!(changes[1].old, Some(json!(MARKER)));
        assert_eq!(changes[1].new, Some(json!(MARKER)));
    }

    #[test]
    fn a_change_above_the_annotation_keeps_the_rest_and_conceals_the_annotation() {
        let object = applied_with_kubectl("c2VjcmV0");
        let metadata = object["metadata"].clone();
        let changes = conceal(
            &object,
            vec![Change {
                path: "metadata".into(),
                old: None,
                new: Some(metadata),
                sensitive: false,
            }],
        );
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(changes[0].path, "metadata");
        assert_eq!(
            changes[0].new,
            Some(json!({"name": "db", "namespace": "ns", "annotations": {"team": "payments"}}))
        );
        assert!(!changes[0].sensitive);
        assert_eq!(
            changes[1].path,
            format!("metadata.annotations[\"{LAST_APPLIED}\"]")
        );
        assert!(changes[1].sensitive);
        assert_eq!(changes[1].new, Some(json!(MARKER)));
        assert!(!format!("{changes:?}").contains("c2VjcmV0"));

        // An annotations map holding nothing else leaves no change of its own.
        let lone = json!({LAST_APPLIED: "{\"data\":{\"k\":\"c2VjcmV0\"}}"});
        let changes = conceal(
            &object,
            vec![Change {
                path: "metadata.annotations".into(),
                old: Some(lone),
                new: None,
                sensitive: false,
            }],
        );
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!(changes[0].sensitive);
        assert_eq!(changes[0].old, Some(json!(MARKER)));
        assert_eq!(changes[0].new, None);
    }

    #[test]
    fn the_last_applied_annotation_is_sealed_in_the_state_and_scrubbed_from_messages() {
        let mut object = applied_with_kubectl("aHVudGVyMg==");
        let annotation = object["metadata"]["annotations"][LAST_APPLIED]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            scrub(&format!("bad: {annotation}"), &object),
            format!("bad: {MARKER}")
        );
        assert!(has_clear_values(&object));
        seal(&mut object, None);
        assert!(!object.to_string().contains("aHVudGVyMg=="));
        assert!(!has_clear_values(&object));
        assert!(verifies(
            &object["metadata"]["annotations"][LAST_APPLIED],
            &annotation
        ));
    }

    #[test]
    fn new_seals_are_argon2id_and_earlier_hmac_seals_still_verify() {
        let mut object = secret(json!({"a": "c2VjcmV0"}));
        seal(&mut object, None);
        let record = object["data"]["a"].as_str().unwrap();
        assert!(record.starts_with("(sensitive) argon2id:"), "{record}");
        assert!(is_redacted(&object["data"]["a"]));

        let salt = [7u8; 16];
        let old = json!(format!(
            "{MARKER} {OLD_SEAL_SCHEME}:{}:{}",
            hex(&salt),
            hex(&hmac(&salt, b"c2VjcmV0"))
        ));
        assert!(is_redacted(&old));
        assert!(verifies(&old, "c2VjcmV0"));
        assert!(!verifies(&old, "c2VjcmV1"));
        // Recorded again, an unchanged value gets a seal of today's scheme.
        let previous = secret(json!({"a": old}));
        let mut again = secret(json!({"a": "c2VjcmV0"}));
        seal(&mut again, Some(&previous));
        assert!(is_current(&again["data"]["a"]));
        assert!(unrecorded_changes(&secret(json!({"a": "c2VjcmV0"})), &previous).is_empty());
    }

    const REFERENCE_HASH: &str = "3636d5cdc1636b5c96fb2e8d03fceb91ea90e264a043bafcd0a9701395a36181";

    #[test]
    fn argon2id_matches_a_reference_hash() {
        // Computed with the reference implementation's parameters spelled out:
        // `echo -n password | argon2 somesaltsomesalt -id -m 11 -t 1 -p 1 -l 32 -r`
        // (version 0x13; 2048 KiB = 2^11).
        assert_eq!(ARGON2_MEMORY_KIB, 1 << 11);
        assert_eq!(ARGON2_PASSES, 1);
        assert_eq!(
            hex(&argon2id(b"somesaltsomesalt", b"password")),
            REFERENCE_HASH
        );
    }
}
