//! The state document as bytes: what every backend stores, and the checks a
//! stored document passes before it is trusted.

use std::collections::HashSet;

use serde_json::Value;

use super::{Recovery, SCHEMA_VERSION, State, StateError};
use crate::sensitive;

/// Reads `bytes` as the state of `stack`, stored at `location`. The version
/// is checked before the schema, so a document from a newer release is
/// reported as such rather than as corrupt because of fields this release
/// does not know. A corrupt document comes back without a last good copy:
/// the backend knows where to look for one.
/// A state document's schema version, whatever else it holds.
#[derive(serde::Deserialize)]
struct VersionOnly {
    version: Option<Value>,
}

pub(crate) fn parse(location: &str, bytes: &[u8], stack: &str) -> Result<State, StateError> {
    let corrupt = |reason: String| StateError::Corrupt {
        location: location.to_string(),
        last_good: None,
        reason,
        recovery: Box::new(Recovery::Unknown),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(corrupt("the document is empty".to_string()));
    }
    // The version first, alone (the rest is skipped, not built), so that a
    // newer document is refused for what it is rather than for a field
    // this version does not know.
    // A document that is not even that gets the full parse's error below.
    let version = serde_json::from_slice::<VersionOnly>(bytes)
        .ok()
        .and_then(|v| v.version);
    if let Some(found) = version.as_ref().and_then(Value::as_u64)
        && found > u64::from(SCHEMA_VERSION)
    {
        return Err(StateError::NewerVersion {
            location: location.to_string(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    // Parsed again from the bytes, not the value, so schema errors carry a
    // line and column.
    let mut state: State = serde_json::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
    if state.version == 0 {
        return Err(corrupt("schema version 0 does not exist".to_string()));
    }
    // Version 1 is version 2 without `writtenBy`: nothing to convert.
    state.version = SCHEMA_VERSION;
    let mut seen = HashSet::with_capacity(state.resources.len());
    for resource in &state.resources {
        if !seen.insert(&resource.id) {
            return Err(corrupt(format!("{} is listed twice", resource.id)));
        }
    }
    if state.stack != stack {
        return Err(StateError::WrongStack {
            location: location.to_string(),
            expected: stack.to_string(),
            found: state.stack,
        });
    }
    Ok(state)
}

/// The document as stored: pretty JSON with a final newline, so a file
/// reads and diffs well. Every backend writes through here, so this is
/// where a sensitive value still in the clear (a state imported from an
/// older release, a resource set directly) is sealed at the latest.
pub(crate) fn encode(state: &State) -> Result<Vec<u8>, StateError> {
    let sealed;
    let state = if state.resources.iter().any(|r| {
        sensitive::is_sensitive_kind(&r.id) && sensitive::has_clear_values(&r.applied.value())
    }) {
        let mut copy = state.clone();
        for resource in &mut copy.resources {
            if sensitive::is_sensitive_kind(&resource.id) {
                resource
                    .applied
                    .modify(|applied| sensitive::seal(applied, None));
            }
        }
        sealed = copy;
        &sealed
    } else {
        state
    };
    let mut bytes = serde_json::to_vec_pretty(state).map_err(|source| StateError::Encode {
        stack: state.stack.clone(),
        source,
    })?;
    bytes.push(b'\n');
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_one_documents_read_as_the_current_version() {
        let text = br#"{"version": 1, "stack": "dev", "serial": 3}"#;
        let state = parse("s", text, "dev").unwrap();
        assert_eq!(state.version, SCHEMA_VERSION);
        assert_eq!(state.serial, 3);
        assert_eq!(state.written_by, None);
    }

    #[test]
    fn written_by_round_trips() {
        let mut state = State::empty("dev");
        state.written_by = Some(super::super::Writer::current("echo-iac up"));
        let bytes = encode(&state).unwrap();
        assert_eq!(parse("s", &bytes, "dev").unwrap(), state);
        assert!(String::from_utf8(bytes).unwrap().contains("\"writtenBy\""));
    }

    #[test]
    fn newer_version_is_reported_before_unknown_fields() {
        let text = br#"{"version": 99, "stack": "dev", "serial": 3, "what": 1}"#;
        assert!(matches!(
            parse("s", text, "dev"),
            Err(StateError::NewerVersion { found: 99, .. })
        ));
    }
}
