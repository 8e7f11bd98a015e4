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

/// One step of a field path.
#[cfg(test)]
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Segment {
    Key(String),
    Index(usize),
}

/// Reads a path [`push_key`] and [`push_index`] wrote back into its steps;
/// `None` for text they cannot write.
#[cfg(test)]
pub(crate) fn segments(path: &str) -> Option<Vec<Segment>> {
    let mut out = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix("[\"") {
            // A quoted key: JSON string text up to the first quote that no
            // backslash escapes.
            let mut escaped = false;
            let end = inner.char_indices().find_map(|(i, c)| match c {
                _ if escaped => {
                    escaped = false;
                    None
                }
                '\\' => {
                    escaped = true;
                    None
                }
                '"' => Some(i),
                _ => None,
            })?;
            let key: String = serde_json::from_str(&rest[1..end + 3]).ok()?;
            out.push(Segment::Key(key));
            rest = inner[end + 1..].strip_prefix(']')?;
        } else if let Some(inner) = rest.strip_prefix('[') {
            let end = inner.find(']')?;
            let digits = &inner[..end];
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            out.push(Segment::Index(digits.parse().ok()?));
            rest = &inner[end + 1..];
        } else {
            let plain = if out.is_empty() {
                rest
            } else {
                rest.strip_prefix('.')?
            };
            let end = plain.find(['.', '[']).unwrap_or(plain.len());
            let key = &plain[..end];
            if !is_plain_key(key) {
                return None;
            }
            out.push(Segment::Key(key.to_string()));
            rest = &plain[end..];
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn segment() -> impl Strategy<Value = Segment> {
        prop_oneof![
            "[a-z][a-zA-Z0-9_-]{0,8}".prop_map(Segment::Key),
            // Anything at all, quoted: dots, brackets, quotes, escapes,
            // digits first, the empty key.
            any::<String>().prop_map(Segment::Key),
            "[0-9.\\[\\]\"\\\\ ]{0,6}".prop_map(Segment::Key),
            (0usize..1000).prop_map(Segment::Index),
        ]
    }

    fn written(steps: &[Segment]) -> String {
        let mut path = String::new();
        for step in steps {
            match step {
                Segment::Key(key) => push_key(&mut path, key),
                Segment::Index(index) => push_index(&mut path, *index),
            }
        }
        path
    }

    proptest! {
        #![proptest_config(crate::testing::proptest_config())]

        #[test]
        fn a_path_reads_back_as_the_steps_that_wrote_it(
            steps in prop::collection::vec(segment(), 0..6)
        ) {
            let path = written(&steps);
            prop_assert_eq!(segments(&path), Some(steps), "{}", path);
        }

        #[test]
        fn a_path_is_under_each_of_its_prefixes(
            steps in prop::collection::vec(segment(), 0..6),
            at in 0usize..6,
        ) {
            let prefix = written(&steps[..at.min(steps.len())]);
            prop_assert!(is_under(&written(&steps), &prefix));
        }
    }

    #[test]
    fn keys_that_look_like_syntax_are_quoted() {
        let mut path = String::new();
        push_key(&mut path, "data");
        push_key(&mut path, "default.conf");
        push_index(&mut path, 0);
        push_key(&mut path, "a\"]");
        assert_eq!(path, r#"data["default.conf"][0]["a\"]"]"#);
    }
}
