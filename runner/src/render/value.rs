//! One-line renderings of JSON values for change lines.
//!
//! A change line has to stay readable in a terminal, so values are shown the
//! way they would be written in JSON (strings quoted, so `"80"` and `80` look
//! different) and cut short with a note of how much was left out; the full
//! value is one `--diff` away.

use serde_json::Value;

/// Longest rendering shown in full, in characters.
const INLINE_MAX: usize = 60;
/// How much of a long string to keep before cutting it.
const STRING_KEEP: usize = 40;
/// How many key names to list for an object too long to show.
const KEYS_SHOWN: usize = 4;

/// A compact one-line form of a value: scalars as JSON (`3`, `true`,
/// `"nginx:alpine"`), long strings cut with their length
/// (`"server {\n    listen 80;\n …" (412 chars)`), objects and arrays as compact
/// JSON while short, else their shape (`{…} (3 keys: image, name, ports)`,
/// `[…] (5 items)`).
pub(crate) fn format_value(v: &Value) -> String {
    let compact = v.to_string();
    if compact.chars().count() <= INLINE_MAX {
        return compact;
    }
    match v {
        Value::String(s) => cut_string(s),
        Value::Object(map) => {
            let mut keys: Vec<&str> = map.keys().map(String::as_str).collect();
            keys.sort_unstable();
            let mut listed = keys[..keys.len().min(KEYS_SHOWN)].join(", ");
            if keys.len() > KEYS_SHOWN {
                listed.push_str(&format!(", … {} more", keys.len() - KEYS_SHOWN));
            }
            format!(
                "{{…}} ({} {}: {listed})",
                keys.len(),
                plural(keys.len(), "key")
            )
        }
        Value::Array(items) => format!("[…] ({} {})", items.len(), plural(items.len(), "item")),
        // Numbers, booleans and null are never this long.
        _ => compact,
    }
}

/// Keeps the start of a string, escaped as JSON, and says how long it was.
/// The cut is made on the escaped text so a string full of newlines is cut as
/// short as a plain one.
fn cut_string(s: &str) -> String {
    let mut kept = String::new();
    let mut width = 0;
    for c in s.chars() {
        let escaped = Value::String(c.to_string()).to_string();
        let escaped = &escaped[1..escaped.len() - 1];
        width += escaped.chars().count();
        if width > STRING_KEEP {
            break;
        }
        kept.push_str(escaped);
    }
    let len = s.chars().count();
    format!("\"{kept}…\" ({len} {})", plural(len, "char"))
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        word.to_string()
    } else {
        format!("{word}s")
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn scalars_are_shown_as_json() {
        assert_eq!(format_value(&json!(3)), "3");
        assert_eq!(format_value(&json!(1.5)), "1.5");
        assert_eq!(format_value(&json!(true)), "true");
        assert_eq!(format_value(&json!(null)), "null");
        assert_eq!(format_value(&json!("80")), r#""80""#);
        assert_eq!(format_value(&json!("say \"hi\"")), r#""say \"hi\"""#);
    }

    #[test]
    fn short_collections_are_compact_json() {
        assert_eq!(
            format_value(&json!({"containerPort": 80, "protocol": "TCP"})),
            r#"{"containerPort":80,"protocol":"TCP"}"#
        );
        assert_eq!(format_value(&json!(["a", "b"])), r#"["a","b"]"#);
        assert_eq!(format_value(&json!({})), "{}");
    }

    #[test]
    fn long_strings_are_cut_with_their_length() {
        let conf = "server {\n    listen 80;\n    location / {\n        return 200 \"Hello! I am Pod: $server_addr\\n\";\n    }\n}\n";
        assert_eq!(
            format_value(&json!(conf)),
            format!(
                r#""server {{\n    listen 80;\n    location /…" ({} chars)"#,
                conf.chars().count()
            )
        );
    }

    #[test]
    fn strings_are_cut_on_character_boundaries() {
        let s = "ä".repeat(70);
        assert_eq!(
            format_value(&json!(s)),
            format!("\"{}…\" (70 chars)", "ä".repeat(40))
        );
    }

    #[test]
    fn long_objects_show_their_keys() {
        let container = json!({
            "name": "nginx",
            "image": "nginx:alpine",
            "ports": [{"containerPort": 80}],
            "volumeMounts": [{"name": "config", "mountPath": "/etc/nginx/conf.d"}],
            "resources": {},
        });
        assert_eq!(
            format_value(&container),
            "{…} (5 keys: image, name, ports, resources, … 1 more)"
        );
    }

    #[test]
    fn long_arrays_show_their_length() {
        let ports: Vec<_> = (0..10).map(|p| json!({"port": 8000 + p})).collect();
        assert_eq!(format_value(&json!(ports)), "[…] (10 items)");
    }
}
