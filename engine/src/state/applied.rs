//! An object as the state records it, kept as text until it is read.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// An object as this stack applied it ([`super::ResourceState::applied`]),
/// kept as its compact JSON text and parsed where it is read.
///
/// A parsed object takes about ten times its text in memory, mostly in its
/// many small maps, and most runs read few of a state's objects: a no-op
/// preview reads none, an `up` those whose sensitive values it checks. So a
/// state of thousands of objects costs little more than its file.
#[derive(Clone, PartialEq, Eq)]
pub struct Applied {
    /// Written only by `From<Value>` and `modify`, from a value: it always
    /// parses.
    text: Box<str>,
}

impl Applied {
    /// The object, parsed anew: keep it only as long as it is needed.
    pub fn value(&self) -> Value {
        serde_json::from_str(&self.text).expect("a value's own JSON text parses")
    }

    /// Changes the object in place.
    pub fn modify(&mut self, change: impl FnOnce(&mut Value)) {
        let mut value = self.value();
        change(&mut value);
        *self = Applied::from(value);
    }
}

impl From<Value> for Applied {
    fn from(value: Value) -> Applied {
        Applied::from(&value)
    }
}

impl From<&Value> for Applied {
    fn from(value: &Value) -> Applied {
        Applied {
            text: value.to_string().into_boxed_str(),
        }
    }
}

impl PartialEq<Value> for Applied {
    fn eq(&self, other: &Value) -> bool {
        self.value() == *other
    }
}

impl fmt::Debug for Applied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value().fmt(f)
    }
}

impl Serialize for Applied {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Applied {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Applied, D::Error> {
        Value::deserialize(deserializer).map(Applied::from)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_applied_object_reads_back_and_round_trips_as_the_value() {
        let object = json!({"kind": "ConfigMap", "data": {"a": "b", "n": 1.5}, "list": [1, null]});
        let applied = Applied::from(object.clone());
        assert_eq!(applied.value(), object);
        assert_eq!(applied, object);
        let text = serde_json::to_string_pretty(&applied).unwrap();
        assert_eq!(text, serde_json::to_string_pretty(&object).unwrap());
        let back: Applied = serde_json::from_str(&text).unwrap();
        assert_eq!(back, applied);
    }

    #[test]
    fn a_modified_object_keeps_the_change() {
        let mut applied = Applied::from(json!({"data": {"a": "b"}}));
        applied.modify(|v| v["data"]["a"] = json!("c"));
        assert_eq!(applied, json!({"data": {"a": "c"}}));
    }
}
