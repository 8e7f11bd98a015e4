//! Which untracked objects a destroy may delete.
//!
//! An object that carries a stack's labels but that its state does not
//! record is found so that a stack whose state was lost can still be
//! destroyed. Labels prove nothing, though: anyone who may label a
//! ConfigMap can put a stack's labels on it. So an untracked object the
//! program declares (same kind, namespace and name) is the stack's own, and
//! one it does not declare is deleted only when the caller asks for it,
//! by name or all of them.

use std::fmt;
use std::str::FromStr;

use crate::plan::Untracked;
use crate::resource::ResourceId;

/// Which untracked objects that the program does not declare a destroy
/// deletes. Declared ones are always deleted: they are the stack's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum DeleteUntracked {
    /// None: they are listed and left in place.
    #[default]
    None,
    /// Every one found.
    All,
    /// Those the selectors name.
    Named(Vec<Selector>),
}

impl DeleteUntracked {
    /// Whether an untracked object with identity `id`, which the program
    /// does not declare, is to be deleted.
    pub fn selects(&self, id: &ResourceId) -> bool {
        match self {
            DeleteUntracked::None => false,
            DeleteUntracked::All => true,
            DeleteUntracked::Named(selectors) => selectors.iter().any(|s| s.matches(id)),
        }
    }

    /// The selectors that name none of `found`: most likely a typo, which
    /// should stop a destroy rather than pass unnoticed.
    pub fn unmatched<'a>(&'a self, found: &[Untracked]) -> Vec<&'a Selector> {
        match self {
            DeleteUntracked::Named(selectors) => selectors
                .iter()
                .filter(|s| !found.iter().any(|u| s.matches(&u.id)))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// Names objects as `KIND/NAME` (in any namespace) or
/// `KIND/NAMESPACE/NAME`; the kind's case does not matter
/// (`configmap/web` is `ConfigMap/web`), and `*` in the name matches any
/// run of characters (`ConfigMap/web-*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selector {
    /// The kind as written; matched without regard to case.
    pub kind: String,
    /// The namespace, when the selector names one.
    pub namespace: Option<String>,
    /// The object's name, or a pattern where `*` matches any run of
    /// characters.
    pub name: String,
}

impl Selector {
    /// How an object is written as a selector: `KIND/NAMESPACE/NAME`, or
    /// `KIND/NAME` for cluster-scoped objects.
    pub fn of(id: &ResourceId) -> Selector {
        Selector {
            kind: id.kind.clone(),
            namespace: id.namespace.clone(),
            name: id.name.clone(),
        }
    }

    /// Whether the object `id` is the one this selects.
    pub fn matches(&self, id: &ResourceId) -> bool {
        self.kind.eq_ignore_ascii_case(&id.kind)
            && glob_matches(&self.name, &id.name)
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| id.namespace.as_ref() == Some(ns))
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{ns}/{}", self.kind, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

impl FromStr for Selector {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = text.split('/').collect();
        if parts.iter().any(|p| p.trim().is_empty()) || !(2..=3).contains(&parts.len()) {
            return Err(format!(
                "`{text}` is not KIND/NAME or KIND/NAMESPACE/NAME (e.g. ConfigMap/web or ConfigMap/echo-dev/web)"
            ));
        }
        let (namespace, name) = match parts.as_slice() {
            [_, name] => (None, name),
            [_, ns, name] => (Some(ns.to_string()), name),
            _ => unreachable!("two or three parts"),
        };
        Ok(Selector {
            kind: parts[0].to_string(),
            namespace,
            name: name.to_string(),
        })
    }
}

/// Whether `pattern`, where `*` matches any run of characters, matches all
/// of `text`.
pub(crate) fn glob_matches(pattern: &str, text: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(ns: &str, name: &str) -> ResourceId {
        ResourceId::new("v1", "ConfigMap", Some(ns), name)
    }

    #[test]
    fn a_selector_without_namespace_matches_the_name_in_any_namespace() {
        let selector: Selector = "configmap/web".parse().unwrap();
        assert!(selector.matches(&cm("a", "web")));
        assert!(selector.matches(&cm("b", "web")));
        assert!(!selector.matches(&cm("a", "webs")));
        assert!(!selector.matches(&ResourceId::new("v1", "Secret", Some("a"), "web")));
    }

    #[test]
    fn a_selector_with_namespace_matches_only_there() {
        let selector: Selector = "ConfigMap/a/web".parse().unwrap();
        assert!(selector.matches(&cm("a", "web")));
        assert!(!selector.matches(&cm("b", "web")));
        assert_eq!(selector.to_string(), "ConfigMap/a/web");
        assert_eq!(Selector::of(&cm("a", "web")), selector);
    }

    #[test]
    fn malformed_selectors_are_refused_with_examples() {
        for text in ["web", "ConfigMap/", "/web", "a/b/c/d", "ConfigMap//web"] {
            let err = text.parse::<Selector>().unwrap_err();
            assert!(err.contains("KIND/NAME"), "{text}: {err}");
        }
    }

    #[test]
    fn nothing_is_selected_unless_asked() {
        let id = cm("a", "web");
        assert!(!DeleteUntracked::None.selects(&id));
        assert!(DeleteUntracked::All.selects(&id));
        let named = DeleteUntracked::Named(vec!["ConfigMap/other".parse().unwrap()]);
        assert!(!named.selects(&id));
    }

    #[test]
    fn selectors_that_name_nothing_found_are_reported() {
        let found = [Untracked {
            id: cm("a", "web"),
            uid: "u".into(),
            declared: false,
        }];
        let named = DeleteUntracked::Named(vec![
            "ConfigMap/web".parse().unwrap(),
            "ConfigMap/typo".parse().unwrap(),
        ]);
        let unmatched: Vec<String> = named
            .unmatched(&found)
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(unmatched, ["ConfigMap/typo"]);
    }
}
