//! serde-saphyr's errors reworded in the terms of a stack file: which key,
//! what it takes, and how to write it. The program supplies the words for
//! its own keys through [`ProgramConfig`].

use serde_saphyr::{Location, MessageFormatter, UserMessageFormatter};

use super::error::StackError;
use super::raw::all_keys;
use super::source::Source;
use super::{ProgramConfig, ValueKinds};
use crate::suggest::closest;

/// What a key takes, and how to write it, for a value of the wrong type.
pub struct KeyHelp {
    /// Completes "`key` must be ...", e.g. "a whole number (0-1000)".
    pub takes: String,
    /// The line after the error: how to write the value.
    pub hint: String,
}

impl KeyHelp {
    /// `key` takes `takes`; the hint shows it written as `key: example`.
    pub fn example(key: &str, takes: impl Into<String>, example: &str) -> KeyHelp {
        KeyHelp {
            takes: takes.into(),
            hint: format!("write it like `{key}: {example}`"),
        }
    }
}

/// An error said in a stack file's terms.
pub struct Wording {
    /// The error, without file and position.
    pub message: String,
    /// What the underline says.
    pub label: String,
    /// What to do next, for the line after the error.
    pub hint: String,
}

/// The generic keys' [`KeyHelp`].
fn generic_key_help(key: &str) -> Option<KeyHelp> {
    Some(match key {
        "createNamespace" => KeyHelp::example(key, "true or false", "true"),
        "historyLimit" => KeyHelp::example(key, "a whole number from 1 to 1000", "20"),
        "kubeconfig" => KeyHelp::example(key, "a path, or a list of paths", "~/.kube/config"),
        "manifests" => KeyHelp::example(
            key,
            "a file, folder or glob, or a list of them",
            "manifests/",
        ),
        "namespace" => KeyHelp::example(key, "a single text value", "echo-dev"),
        "context" => KeyHelp::example(key, "a single text value", "kind-dev"),
        "backend" => KeyHelp::example(
            key,
            "a backend URL, `file://<folder>` or `kubernetes://<namespace>`",
            "kubernetes://echo-state",
        ),
        _ => return None,
    })
}

fn key_help<C: ProgramConfig>(key: &str) -> Option<KeyHelp> {
    generic_key_help(key).or_else(|| C::key_help(key))
}

impl Source<'_> {
    /// Turns serde-saphyr's error into ours, rewording the common cases in the
    /// terms of a stack file (keys and what they take).
    pub(super) fn yaml_error<C: ProgramConfig>(&self, err: &serde_saphyr::Error) -> StackError {
        use serde_saphyr::Error as E;
        let err = err.without_snippet();
        let at = err.location().filter(|at| *at != Location::UNKNOWN);
        let elsewhere = matches!(
            err,
            E::SerdeUnknownField { .. }
                | E::DuplicateMappingKey { .. }
                | E::MultipleDocuments { .. }
        );
        if !elsewhere
            && let Some(found) = at
                .and_then(|at| self.position(at))
                .and_then(|(line, _)| super::surface::over_indented(self, line))
        {
            return found;
        }
        let key = at.and_then(|at| self.key_of(at));
        let help = key.as_deref().and_then(key_help::<C>);
        let is_type_error = matches!(
            err,
            E::InvalidScalar { .. }
                | E::Unexpected { .. }
                | E::SerdeInvalidType { .. }
                | E::SerdeInvalidValue { .. }
                | E::NullIntoString { .. }
                | E::InvalidBooleanStrict { .. }
        );
        let Wording {
            message,
            label,
            hint,
        } = match (err, help) {
            (
                E::SerdeUnknownField {
                    field, expected, ..
                },
                _,
            ) => Wording {
                message: format!(
                    "unknown key `{}`; allowed here: {}",
                    field.escape_debug(),
                    expected.join(", ")
                ),
                label: "unknown key".to_string(),
                hint: unknown_key_hint::<C>(field, expected),
            },
            (E::SerdeMissingField { field, .. }, _) => {
                C::missing_key(field).unwrap_or_else(|| Wording {
                    message: format!("`{field}` is required here"),
                    label: format!("missing `{field}`"),
                    hint: format!("add `{field}:`"),
                })
            }
            (E::DuplicateMappingKey { key: Some(key), .. }, _) => Wording {
                message: format!(
                    "key `{}` appears twice in the same mapping",
                    key.escape_debug()
                ),
                label: "repeated here".to_string(),
                hint: "keep one of the two".to_string(),
            },
            (E::MultipleDocuments { .. }, _) => Wording {
                message: "a stack file holds one YAML document, but a second one starts here"
                    .to_string(),
                label: "second document".to_string(),
                hint: "remove the `---` line and what follows, or move it to its own stack file"
                    .to_string(),
            },
            (E::QuotingRequired { value, .. }, _) => {
                let reads_as = if value.parse::<f64>().is_ok()
                    || value.starts_with("0x")
                    || value.starts_with("0o")
                    || value.contains('_')
                    || value.trim_start_matches(['+', '-']).starts_with('.')
                {
                    "a number"
                } else {
                    "a boolean"
                };
                let key = key.as_deref().unwrap_or("the value");
                Wording {
                    message: format!(
                        "`{key}` takes text, but YAML reads `{}` as {reads_as}",
                        value.escape_debug()
                    ),
                    label: format!("{reads_as}, not text"),
                    hint: format!(
                        "quote it to mean the text: `{key}: \"{}\"`",
                        value.escape_debug()
                    ),
                }
            }
            (E::NullIntoString { .. }, _) if at.is_some_and(|at| self.is_key(at)) => Wording {
                message: "a key cannot be empty or `~`: YAML reads it as null, not a name"
                    .to_string(),
                label: "null key".to_string(),
                hint: "write the setting's name before the `:`, e.g. `namespace: echo-dev`"
                    .to_string(),
            },
            (_, Some(help)) if is_type_error => {
                let key = key.as_deref().unwrap_or_default();
                let found = at.map(|at| self.found(at)).unwrap_or_default();
                let decimal = at
                    .and_then(|at| self.written(at))
                    .and_then(super::surface::decimal_spelling);
                Wording {
                    message: format!("`{key}` must be {}{found}", help.takes),
                    label: "wrong type".to_string(),
                    hint: match decimal {
                        Some(decimal) => format!(
                            "whole numbers are written in plain decimal digits, without \
                             leading zeros: `{key}: {decimal}`"
                        ),
                        None => help.hint,
                    },
                }
            }
            _ if is_type_error
                && at.is_some_and(|at| {
                    at.column() == 1 && self.found(at) != ", found a mapping"
                }) =>
            {
                let found = at.map(|at| self.found(at)).unwrap_or_default();
                Wording {
                    message: format!("a stack file must be a mapping of settings{found}"),
                    label: "not a mapping".to_string(),
                    hint: "start with `namespace: echo-dev`, one `key: value` per line".to_string(),
                }
            }
            (other, _) => {
                let message: String = UserMessageFormatter
                    .format_message(other)
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                let hint = if is_type_error {
                    type_summary(C::value_kinds())
                } else {
                    "fix the YAML at that spot: check the indentation, and quote values that \
                     contain `: ` or ` #`"
                        .to_string()
                };
                Wording {
                    message,
                    label: "here".to_string(),
                    hint,
                }
            }
        };
        let marks = at
            .map(|at| vec![self.mark(at, &label, true)])
            .unwrap_or_default();
        self.error(
            at.and_then(|at| self.position(at)),
            message,
            marks,
            Some(hint),
        )
    }

    /// The key a value belongs to: the `key:` before it on its line or, for
    /// a value on lines of its own, the nearest less-indented line ending in
    /// `key:`. Type errors point at the value and read better naming the key.
    fn key_of(&self, at: Location) -> Option<String> {
        let (line, column) = self.position(at)?;
        let lines: Vec<&str> = self.text.lines().collect();
        // A missing value is reported at the colon after its key.
        let text = lines.get(line - 1)?;
        let upto = column - usize::from(text.chars().nth(column - 1) != Some(':'));
        let before: String = text.chars().take(upto).collect();
        let before = before.trim();
        let before = before.strip_prefix('-').unwrap_or(before).trim();
        let key_line = if before.is_empty() {
            let indent = |text: &str| text.len() - text.trim_start().len();
            lines[..line - 1]
                .iter()
                .rev()
                .filter(|text| !text.trim().is_empty() && !text.trim_start().starts_with('#'))
                .find(|text| indent(text) < column - 1)?
                .trim()
        } else {
            before
        };
        let key = key_line.strip_prefix('-').unwrap_or(key_line).trim();
        let key = key.strip_suffix(':')?.trim_end();
        (!key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric())).then(|| key.to_string())
    }

    /// Whether the node at `at` is a mapping key: a `:` follows it.
    fn is_key(&self, at: Location) -> bool {
        let Some((line, column)) = self.position(at) else {
            return false;
        };
        let rest: String = self
            .text
            .lines()
            .nth(line - 1)
            .unwrap_or_default()
            .chars()
            .skip(column - 1)
            .collect();
        // A missing value is reported at the `:` after its key.
        let token = rest.split_whitespace().next().unwrap_or_default();
        !rest.starts_with(':') && token.ends_with(':')
    }

    /// `, found ...` describing the value at `at`, for type errors.
    fn found(&self, at: Location) -> String {
        let Some((line, column)) = self.position(at) else {
            return String::new();
        };
        let rest: String = self
            .text
            .lines()
            .nth(line - 1)
            .unwrap_or_default()
            .chars()
            .skip(column - 1)
            .collect();
        let rest = rest.trim_end();
        let quoted = rest.starts_with(['"', '\'']);
        if rest.is_empty() || rest == ":" || rest.starts_with('#') {
            ", found nothing".into()
        } else if rest.starts_with('[') || rest == "-" || rest.starts_with("- ") {
            ", found a list".into()
        } else if rest.starts_with('{') || (!quoted && (rest.contains(": ") || rest.ends_with(':')))
        {
            ", found a mapping".into()
        } else {
            let written = usize::try_from(at.span().byte_offset().unwrap_or(u64::MAX))
                .ok()
                .zip(usize::try_from(at.span().byte_len().unwrap_or(0)).ok())
                .and_then(|(start, len)| self.text.get(start..start + len))
                .and_then(|written| written.lines().next())
                .filter(|written| !written.is_empty())
                .unwrap_or(rest);
            format!(", found `{}`", written.escape_debug())
        }
    }
}

fn unknown_key_hint<C: ProgramConfig>(field: &str, expected: &[&str]) -> String {
    if let Some(close) = closest(field, expected.iter().copied()) {
        return format!("did you mean `{close}`? Keys are camelCase");
    }
    let top_level = expected == all_keys::<C>();
    if let Some(hint) = C::unknown_key_hint(field, top_level) {
        return hint;
    }
    format!("remove it, or use one of: {}", expected.join(", "))
}

/// Which keys take what, for a type error that names no key this module or
/// the program knows: the generic keys' kinds joined with the program's.
fn type_summary(program: ValueKinds) -> String {
    let mut numbers: Vec<&str> = vec!["historyLimit"];
    numbers.extend(program.numbers);
    let mut booleans = vec!["createNamespace"];
    booleans.extend(program.booleans);
    let mut parts = Vec::new();
    for (keys, one, many) in [
        (&mut numbers, "takes whole numbers", "take whole numbers"),
        (&mut booleans, "takes true or false", "take true or false"),
    ] {
        match keys.as_slice() {
            [] => {}
            [key] => parts.push(format!("{key} {one}")),
            [init @ .., last] => parts.push(format!("{} and {last} {many}", init.join(", "))),
        }
    }
    parts.extend(program.others.iter().map(|s| s.to_string()));
    parts.push("the rest text".to_string());
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_summary_names_the_generic_and_the_program_kinds() {
        assert_eq!(
            type_summary(ValueKinds::default()),
            "historyLimit takes whole numbers, createNamespace takes true or false, the rest text"
        );
        let kinds = ValueKinds {
            numbers: &["replicas", "nodePort"],
            booleans: &[],
            others: &["echo a mapping", "echoes a list of mappings"],
        };
        assert_eq!(
            type_summary(kinds),
            "historyLimit, replicas and nodePort take whole numbers, createNamespace takes true or false, \
             echo a mapping, echoes a list of mappings, the rest text"
        );
    }
}
