//! Mistakes in how a stack file is written that serde-saphyr either lets
//! through or reports at the wrong place: YAML tags, lines indented under a
//! single value, bytes that are not UTF-8, and whole numbers written other
//! than in plain decimal.

use serde_saphyr::granit_parser::{Event, Parser};

use super::error::StackError;
use super::snippet::Mark;
use super::source::Source;

/// The first explicit YAML tag (`!!binary`, `!!python/object:...`, `!x`) in
/// the file, as an error. A stack file is plain settings: a tag either
/// changes how a value is read (`!!binary` decodes base64) or is dropped
/// without a word (`image: !!python/object:os.system ls` would read as
/// `ls`), so none is accepted. Syntax errors are left to the parser that
/// reads the settings, which reports them with better words.
pub(super) fn tag_error(src: &Source<'_>) -> Option<StackError> {
    for event in Parser::new_from_str(src.text) {
        let Ok((event, span)) = event else {
            return None;
        };
        let tagged = match &event {
            Event::Scalar(_, _, _, tag)
            | Event::SequenceStart(_, _, tag)
            | Event::MappingStart(_, _, tag) => tag.is_some(),
            _ => false,
        };
        if !tagged {
            continue;
        }
        let at = span.tag_start.unwrap_or(span.start);
        let (line, column) = (at.line(), at.col() + 1);
        let written: String = src
            .text
            .lines()
            .nth(line.saturating_sub(1))
            .unwrap_or_default()
            .chars()
            .skip(column - 1)
            .take_while(|c| !c.is_whitespace())
            .collect();
        return Some(
            src.error(
                Some((line, column)),
                format!(
                    "`{}` is a YAML tag, and stack files take none",
                    written.escape_debug()
                ),
                vec![Mark {
                    line,
                    column,
                    len: written.chars().count(),
                    label: "tag".into(),
                    primary: true,
                }],
                Some(
                    "remove the tag and write the value itself; quote it if it should be read as \
                 text (`image: \"1.2\"`)"
                        .into(),
                ),
            ),
        );
    }
    None
}

/// A line indented deeper than the `key: value` line above it, as an
/// error, when `near` (the line a YAML error was reported at) is one of
/// the two. YAML reads such a line as more of the value above (`replicas:
/// 2` then `  nodePort: 1` is the value `2 nodePort: 1`), so the parser's
/// own error names the value above, which is not what is wrong.
pub(super) fn over_indented(src: &Source<'_>, near: usize) -> Option<StackError> {
    let lines: Vec<&str> = src.text.lines().collect();
    let indent = |text: &str| text.chars().take_while(|c| *c == ' ').count();
    let significant = |text: &str| !text.trim().is_empty() && !text.trim_start().starts_with('#');
    for (index, text) in lines.iter().enumerate() {
        let Some((key, value)) = single_value(text) else {
            continue;
        };
        let Some((offset, next)) = lines[index + 1..]
            .iter()
            .enumerate()
            .find(|(_, next)| significant(next))
        else {
            continue;
        };
        let (parent, child) = (index + 1, index + 2 + offset);
        let key_column = text.len() - text.trim_start().trim_start_matches("- ").len();
        if indent(next) <= key_column || !(parent..=child).contains(&near) {
            continue;
        }
        let Some(child_key) = next.trim().split_once(':').map(|(k, _)| k.trim()) else {
            continue;
        };
        if child_key.is_empty() || child_key.contains(' ') {
            continue;
        }
        let column = indent(next) + 1;
        return Some(src.error(
            Some((child, column)),
            format!(
                "line {child} is indented under `{key}: {value}`, which holds a single value, \
                 so YAML reads `{child_key}` as part of that value"
            ),
            vec![
                Mark {
                    line: parent,
                    column: key_column + 1,
                    len: key.chars().count(),
                    label: "a single value".into(),
                    primary: false,
                },
                Mark {
                    line: child,
                    column,
                    len: child_key.chars().count(),
                    label: "indented too far".into(),
                    primary: true,
                },
            ],
            Some(format!(
                "indent `{child_key}:` as far as `{key}:` ({key_column} spaces) to make it a \
                 setting of its own"
            )),
        ));
    }
    None
}

/// `key` and `value` of a `key: value` line whose value is a single plain
/// value on that line: not a block (`|`, `>`), a flow collection or a
/// quoted text, which may go on over the next lines.
fn single_value(text: &str) -> Option<(&str, &str)> {
    let content = text.trim_start();
    let content = content.strip_prefix("- ").unwrap_or(content);
    let (key, value) = content.split_once(": ")?;
    let value = value.split(" #").next().unwrap_or_default().trim();
    let key = key.trim();
    let plain = !value.is_empty()
        && !value.starts_with(['|', '>', '[', '{', '"', '\'', '#', '&', '*', '!']);
    (plain && !key.is_empty() && !key.contains(' ')).then_some((key, value))
}

/// The error for a stack file that is not UTF-8, at its first bad byte.
pub(super) fn not_utf8(file: &std::path::Path, bytes: &[u8], valid_up_to: usize) -> StackError {
    let valid = String::from_utf8_lossy(&bytes[..valid_up_to]);
    let line = valid.matches('\n').count() + 1;
    let column = valid
        .rsplit('\n')
        .next()
        .unwrap_or_default()
        .chars()
        .count()
        + 1;
    let text = String::from_utf8_lossy(bytes);
    let src = Source { file, text: &text };
    src.error(
        Some((line, column)),
        format!(
            "the stack file is not UTF-8 text: byte 0x{:02X} cannot start or continue a character",
            bytes[valid_up_to]
        ),
        vec![Mark {
            line,
            column,
            len: 1,
            label: "not UTF-8".into(),
            primary: true,
        }],
        Some(
            "save the file as UTF-8 (for text in another encoding: `iconv -f latin1 -t utf-8`)"
                .into(),
        ),
    )
}

/// How `written`, a whole number the file spells other than in plain
/// decimal (`0x10`, `007`, `1_000`, `+3`, `"3"`), is spelled in plain
/// decimal; `None` when it already is, or is no whole number at all.
///
/// The one rule for whole numbers in a stack file: decimal digits, an
/// optional `-`, no leading zeros, no quotes. YAML 1.1 and 1.2 disagree on
/// `010` (8 or 10), and a quoted `"3"` is text everywhere else in the file.
pub fn decimal_spelling(written: &str) -> Option<String> {
    let plain = |t: &str| {
        let digits = t.strip_prefix('-').unwrap_or(t);
        !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit())
            && (digits == "0" || !digits.starts_with('0'))
    };
    if plain(written) {
        return None;
    }
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|q| written.strip_prefix(*q)?.strip_suffix(*q))
        .unwrap_or(written)
        .trim();
    let (negative, rest) = match unquoted.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, unquoted.strip_prefix('+').unwrap_or(unquoted)),
    };
    let rest = rest.replace('_', "");
    let (radix, digits) = match rest.get(..2) {
        Some("0x" | "0X") => (16, &rest[2..]),
        Some("0o" | "0O") => (8, &rest[2..]),
        Some("0b" | "0B") => (2, &rest[2..]),
        _ => (10, rest.as_str()),
    };
    let value = i64::from_str_radix(digits, radix).ok()?;
    Some(if negative { -value } else { value }.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_in_other_spellings_are_given_in_decimal() {
        for (written, decimal) in [
            ("0x10", "16"),
            ("007", "7"),
            ("1_000", "1000"),
            ("+3", "3"),
            ("\"3\"", "3"),
            ("0o17", "15"),
            ("-010", "-10"),
        ] {
            assert_eq!(
                decimal_spelling(written).as_deref(),
                Some(decimal),
                "{written}"
            );
        }
        for plain in ["0", "7", "-1", "30007"] {
            assert_eq!(decimal_spelling(plain), None, "{plain}");
        }
        assert_eq!(decimal_spelling("three"), None);
    }

    #[test]
    fn only_a_plain_single_value_can_have_a_line_indented_under_it() {
        assert_eq!(single_value("  replicas: 2"), Some(("replicas", "2")));
        assert_eq!(single_value("  - name: web # x"), Some(("name", "web")));
        for text in ["echo:", "message: |", "a: [1,", "m: \"two", "a: {x: 1,"] {
            assert_eq!(single_value(text), None, "{text}");
        }
    }
}
