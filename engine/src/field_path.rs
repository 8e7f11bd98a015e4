//! Field paths as plans show them: `spec.replicas`,
//! `spec.template.spec.containers[0].image`, `data["default.conf"]`.
//! The diff builds them and the sensitive-value rules match against them.

use serde_json::Value;

/// Extends a field path by one map key: `spec` + `replicas` gives
/// `spec.replicas`, and a key that is not a plain identifier is quoted in
/// brackets (`data["default.conf"]`) so the path stays unambiguous.
pub(crate) fn push_key(path: &mut String, key: &str) {
    if is_plain_key(key) {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        path.push('[');
        path.push_str(&Value::from(key).to_string());
        path.push(']');
    }
}

/// Extends a field path by one list index: `containers` + 0 gives
/// `containers[0]`.
pub(crate) fn push_index(path: &mut String, index: usize) {
    path.push('[');
    path.push_str(&index.to_string());
    path.push(']');
}

/// Letters, digits, `_` and `-`, not starting with a digit: such a key cannot
/// be mistaken for a separator or an index.
fn is_plain_key(key: &str) -> bool {
    let mut chars = key.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Whether `path` is `prefix` itself or a field inside it.
pub(crate) fn is_under(path: &str, prefix: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.is_empty() || rest.is_empty() || rest.starts_with(['.', '[']),
        None => false,
    }
}
