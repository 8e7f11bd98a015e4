//! `kubeconfig:`: one path or a list of them, `~` expanded and relative
//! paths resolved against the project folder.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::error::StackError;
use super::source::Source;

/// `kubeconfig:` or `manifests:` as written: one path, or a list of them.
pub(super) enum KubeconfigPaths {
    One(String),
    Many(Vec<Spanned<String>>),
    /// Neither: a number, a boolean or a mapping, reported where it stands.
    Other,
}

// By hand rather than `#[serde(untagged)]`, which buffers the value and
// loses the positions of the list's items.
impl<'de> Deserialize<'de> for KubeconfigPaths {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = KubeconfigPaths;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a path or a list of paths")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(KubeconfigPaths::One(v.to_string()))
            }
            // An error raised here would carry no position, so what is not
            // a path is returned and reported with the value's.
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(KubeconfigPaths::Other)
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(KubeconfigPaths::Other)
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(KubeconfigPaths::Other)
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(KubeconfigPaths::Other)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                while map
                    .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
                    .is_some()
                {}
                Ok(KubeconfigPaths::Other)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<String>>()? {
                    items.push(item);
                }
                Ok(KubeconfigPaths::Many(items))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// One path or a list; an empty list is a mistake, not "the default".
pub(super) fn resolve(
    src: &Source<'_>,
    paths: Spanned<KubeconfigPaths>,
    project_root: &Path,
    home: Option<&Path>,
) -> Result<Vec<PathBuf>, StackError> {
    let items = match paths.value {
        KubeconfigPaths::One(path) => vec![Spanned::new(path, paths.referenced, paths.defined)],
        KubeconfigPaths::Many(items) if items.is_empty() => {
            let empty = Spanned::new(String::new(), paths.referenced, paths.defined);
            return Err(src.at(
                &empty,
                "`kubeconfig` is an empty list".into(),
                "empty",
                "give one path or a list of paths, or remove the key to use $KUBECONFIG, then ~/.kube/config",
            ));
        }
        KubeconfigPaths::Many(items) => items,
        KubeconfigPaths::Other => {
            let written = src
                .written(paths.referenced)
                .and_then(|w| w.lines().next())
                .unwrap_or_default();
            let found = if written.is_empty() || written.starts_with('{') || written.contains(": ")
            {
                ", found a mapping".to_string()
            } else {
                format!(", found `{}`", written.escape_debug())
            };
            return Err(src.at(
                &paths,
                format!("`kubeconfig` must be a path, or a list of paths{found}"),
                "not a path",
                "write it like `kubeconfig: ~/.kube/config`, quoted if the path reads as a \
                 number or true/false (`kubeconfig: \"2024\"`)",
            ));
        }
    };
    items
        .iter()
        .map(|path| resolve_one(src, path, project_root, home))
        .collect()
}

fn resolve_one(
    src: &Source<'_>,
    path: &Spanned<String>,
    project_root: &Path,
    home: Option<&Path>,
) -> Result<PathBuf, StackError> {
    let written = path.value.as_str();
    if written.trim().is_empty() {
        return Err(src.at(
            path,
            "`kubeconfig` is empty".into(),
            "empty",
            "give a path, or remove the key to use $KUBECONFIG, then ~/.kube/config",
        ));
    }
    let rest = if written == "~" {
        Some("")
    } else {
        written.strip_prefix("~/")
    };
    let expanded = match (rest, home) {
        (Some(rest), Some(home)) => home.join(rest),
        (Some(_), None) => {
            return Err(src.at(
                path,
                "`~` in `kubeconfig` cannot be expanded: no home directory is known".into(),
                "needs $HOME",
                "set HOME, or write the kubeconfig's full path",
            ));
        }
        (None, _) if written.starts_with('~') => {
            return Err(src.at(
                path,
                format!(
                    "`kubeconfig` is `{written}`; only `~` and `~/...` are expanded, not `~user`"
                ),
                "not expanded",
                "write the kubeconfig's full path",
            ));
        }
        (None, _) => PathBuf::from(written),
    };
    // Relative to the project, not the working directory, so a stack means
    // the same thing wherever echo-iac is run from.
    Ok(if expanded.is_absolute() {
        expanded
    } else {
        project_root.join(expanded)
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use crate::stack::testing::{assert_error, parse_err, parse_ok, parse_without_home};

    #[test]
    fn kubeconfig_tilde_expands_to_home() {
        let config = parse_ok("kubeconfig: ~/.kube/config\nnamespace: a\n");
        assert_eq!(
            config.kubeconfig,
            vec![PathBuf::from("/home/dev/.kube/config")]
        );
    }

    #[test]
    fn kubeconfig_relative_path_resolves_against_the_project_folder() {
        let config = parse_ok("kubeconfig: .cluster/kubeconfig\nnamespace: a\n");
        assert_eq!(
            config.kubeconfig,
            vec![PathBuf::from("/projects/echo/.cluster/kubeconfig")]
        );
    }

    #[test]
    fn kubeconfig_absolute_path_is_kept() {
        let config = parse_ok("kubeconfig: /etc/kubeconfig\nnamespace: a\n");
        assert_eq!(config.kubeconfig, vec![PathBuf::from("/etc/kubeconfig")]);
    }

    #[test]
    fn kubeconfig_may_be_a_list_resolved_item_by_item() {
        let config =
            parse_ok("kubeconfig:\n  - ~/.kube/config\n  - .cluster/kubeconfig\nnamespace: a\n");
        assert_eq!(
            config.kubeconfig,
            vec![
                PathBuf::from("/home/dev/.kube/config"),
                PathBuf::from("/projects/echo/.cluster/kubeconfig")
            ]
        );
    }

    #[test]
    fn kubeconfig_list_item_errors_point_at_the_item() {
        let err = parse_err("namespace: a\nkubeconfig:\n  - /etc/k\n  - ~bob/config\n");
        assert_error(&err, 4, 5, &["only `~` and `~/...`"]);
    }

    #[test]
    fn kubeconfig_empty_list_is_rejected() {
        let err = parse_err("namespace: a\nkubeconfig: []\n");
        assert!(err.to_string().contains("empty list"), "{err}");
    }

    #[test]
    fn kubeconfig_tilde_user_is_rejected() {
        let err = parse_err("namespace: a\nkubeconfig: ~bob/config\n");
        assert_error(&err, 2, 13, &["only `~` and `~/...`", "full path"]);
    }

    #[test]
    fn kubeconfig_tilde_without_home_is_rejected() {
        let err =
            parse_without_home("dev", "namespace: a\nkubeconfig: ~/.kube/config\n").unwrap_err();
        assert_error(&err, 2, 13, &["cannot be expanded", "HOME"]);
    }
}
