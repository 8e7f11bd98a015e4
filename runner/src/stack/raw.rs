//! The stack file's top-level mapping as written: the generic keys read
//! here, the program's keys handed to the program as they come.
//!
//! A map visitor by hand rather than `#[derive(Deserialize)]` with the
//! program's section under `#[serde(flatten)]`: flatten buffers the values,
//! which loses both their positions and `deny_unknown_fields`. Reading each
//! value straight from serde-saphyr's `MapAccess` keeps both.

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Mutex, PoisonError};

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_saphyr::Spanned;

use super::ProgramConfig;
use super::kubeconfig::KubeconfigPaths;

/// The keys every stack file may have, whatever its program.
const GENERIC_KEYS: &[&str] = &[
    "kubeconfig",
    "context",
    "namespace",
    "createNamespace",
    "backend",
    "historyLimit",
    "protect",
    "retain",
    "manifests",
];

pub(super) struct RawStack<C> {
    pub(super) kubeconfig: Option<Spanned<KubeconfigPaths>>,
    pub(super) context: Option<Spanned<String>>,
    pub(super) namespace: Option<Spanned<String>>,
    pub(super) create_namespace: Option<bool>,
    pub(super) backend: Option<Spanned<String>>,
    pub(super) history_limit: Option<Spanned<u64>>,
    pub(super) protect: Option<Vec<Spanned<String>>>,
    pub(super) retain: Option<Vec<Spanned<String>>>,
    pub(super) manifests: Option<Spanned<KubeconfigPaths>>,
    pub(super) program: C,
}

impl<'de, C: ProgramConfig> Deserialize<'de> for RawStack<C> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_struct("RawStack", all_keys::<C>(), StackVisitor(PhantomData))
    }
}

/// Every key allowed at the top of a stack file of program `C`: the generic
/// ones, then the program's.
///
/// serde's `unknown_field` takes the expected keys as a `'static` list, and a
/// generic function cannot join two constants into one at compile time, so
/// each program's list is joined on first use and kept for the process (one
/// small list per program type).
pub(super) fn all_keys<C: ProgramConfig>() -> &'static [&'static str] {
    static JOINED: Mutex<Vec<&'static [&'static str]>> = Mutex::new(Vec::new());
    let mut joined = JOINED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(keys) = joined
        .iter()
        .find(|keys| keys[GENERIC_KEYS.len()..] == *C::KEYS)
    {
        return keys;
    }
    let keys: &'static [&'static str] = Vec::leak([GENERIC_KEYS, C::KEYS].concat());
    joined.push(keys);
    keys
}

struct StackVisitor<C>(PhantomData<C>);

impl<'de, C: ProgramConfig> Visitor<'de> for StackVisitor<C> {
    type Value = RawStack<C>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("struct RawStack")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut raw = RawStack {
            kubeconfig: None,
            context: None,
            namespace: None,
            create_namespace: None,
            backend: None,
            history_limit: None,
            protect: None,
            retain: None,
            manifests: None,
            program: C::default(),
        };
        while let Some(key) = map.next_key_seed(Key(all_keys::<C>()))? {
            match key {
                "kubeconfig" => raw.kubeconfig = map.next_value()?,
                "context" => raw.context = map.next_value()?,
                "namespace" => raw.namespace = map.next_value()?,
                "createNamespace" => raw.create_namespace = map.next_value()?,
                "backend" => raw.backend = map.next_value()?,
                "historyLimit" => raw.history_limit = map.next_value()?,
                "protect" => raw.protect = map.next_value()?,
                "retain" => raw.retain = map.next_value()?,
                "manifests" => raw.manifests = map.next_value()?,
                key => raw.program.read_key(key, &mut map)?,
            }
        }
        Ok(raw)
    }
}

/// A top-level key, which must be one of `self.0`. Read as an identifier,
/// as derived structs read their fields, so that serde-saphyr reports an
/// unknown key at the key itself.
struct Key(&'static [&'static str]);

impl<'de> DeserializeSeed<'de> for Key {
    type Value = &'static str;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl Visitor<'_> for Key {
    type Value = &'static str;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("field identifier")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        self.0
            .iter()
            .find(|known| **known == key)
            .copied()
            .ok_or_else(|| E::unknown_field(key, self.0))
    }
}
