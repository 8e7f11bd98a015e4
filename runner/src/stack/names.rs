//! What Kubernetes accepts as a name, a label key and a label value, checked
//! here so that a stack file's mistakes are reported at their place in the
//! file instead of as an API server's rejection.

/// Longest DNS label and label value (and name part of a label key).
pub const MAX_LABEL_CHARS: usize = 63;
/// Longest prefix of a label key (a DNS subdomain).
const MAX_PREFIX_CHARS: usize = 253;

/// Why `value` is not a label value; `None` if it is one.
pub fn label_value_problem(value: &str) -> Option<String> {
    let count = value.chars().count();
    if value.is_empty() {
        return Some("it is empty".into());
    }
    if count > MAX_LABEL_CHARS {
        return Some(format!(
            "it has {count} characters; at most {MAX_LABEL_CHARS} are allowed"
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Some(format!(
            "{} is not allowed; only letters, digits, '-', '_' and '.' are",
            show_char(c)
        ));
    }
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !alnum(value.chars().next()) || !alnum(value.chars().last()) {
        return Some("it must start and end with a letter or digit".into());
    }
    None
}

/// Why `key` is not a label key: an optional DNS-subdomain prefix and `/`,
/// then a name of up to 63 characters.
pub fn label_key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let ok = !prefix.is_empty()
            && prefix.len() <= MAX_PREFIX_CHARS
            && prefix
                .split('.')
                .all(|part| dns_label_problem(part, MAX_LABEL_CHARS, false).is_none());
        if !ok {
            return Some(format!("prefix {prefix:?} is not a DNS subdomain"));
        }
    }
    if name.is_empty() {
        return Some("the name part is empty".into());
    }
    label_value_problem(name)
}

/// Why `value` is not a DNS label (RFC 1123, or RFC 1035 when it must start
/// with a letter) of at most `max` characters; `None` if it is one.
pub fn dns_label_problem(value: &str, max: usize, starts_with_letter: bool) -> Option<String> {
    let count = value.chars().count();
    if value.is_empty() {
        return Some("it is empty".into());
    }
    if count > max {
        return Some(format!(
            "it has {count} characters; at most {max} are allowed"
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Some(if c.is_ascii_uppercase() {
            format!("`{c}`: uppercase letters are not allowed")
        } else {
            format!(
                "{} is not allowed; only lowercase letters, digits and '-' are",
                show_char(c)
            )
        });
    }
    let first = value.chars().next().unwrap_or_default();
    if starts_with_letter && !first.is_ascii_lowercase() {
        return Some("it must start with a lowercase letter".into());
    }
    if !first.is_ascii_alphanumeric() {
        return Some("it must start with a letter or digit".into());
    }
    if !value.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        return Some("it must end with a letter or digit".into());
    }
    None
}

/// A character as a message names it: whitespace and control characters by
/// what they are, since quoting them would show nothing.
pub fn show_char(c: char) -> String {
    match c {
        ' ' => "a space".into(),
        '\n' | '\r' | '\u{2028}' | '\u{2029}' => "a line break".into(),
        '\t' => "a tab".into(),
        c if c.is_control() || c.is_whitespace() => {
            format!("the character `{}`", c.escape_unicode())
        }
        c => format!("`{c}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_keys_take_an_optional_subdomain_prefix() {
        assert_eq!(label_key_problem("echo-iac.io/node"), None);
        assert_eq!(label_key_problem("node"), None);
        assert!(
            label_key_problem("Echo_IAC.io/node")
                .unwrap()
                .contains("prefix")
        );
        assert!(
            label_key_problem("echo-iac.io/")
                .unwrap()
                .contains("name part is empty")
        );
        assert!(label_key_problem("bad key!").unwrap().contains("a space"));
    }

    #[test]
    fn label_values_allow_dots_and_underscores_inside() {
        assert_eq!(label_value_problem("Prod_2.eu"), None);
        assert!(label_value_problem("_x").unwrap().contains("start and end"));
        assert!(
            label_value_problem(&"v".repeat(64))
                .unwrap()
                .contains("at most 63")
        );
    }

    #[test]
    fn dns_1035_labels_start_with_a_letter() {
        assert_eq!(dns_label_problem("1echo", 63, false), None);
        assert_eq!(
            dns_label_problem("1echo", 63, true).as_deref(),
            Some("it must start with a lowercase letter")
        );
    }

    #[test]
    fn invisible_characters_are_named() {
        assert_eq!(show_char('\t'), "a tab");
        assert_eq!(show_char('\u{a0}'), "the character `\\u{a0}`");
        assert_eq!(show_char('$'), "`$`");
    }
}
