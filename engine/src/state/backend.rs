//! Where a stack keeps its state, as written in a stack file's `backend:`
//! or in `ECHO_IAC_BACKEND`: `file://<dir>` or `kubernetes://<namespace>`.

use std::fmt;
use std::path::{Path, PathBuf};

/// The default: the project's own `state/` folder.
pub const DEFAULT: &str = "file://state";

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A folder; relative paths are relative to the project folder.
    File(PathBuf),
    /// A namespace of the stack's own cluster.
    Kubernetes { namespace: String },
}

/// Why a backend URL was refused, and what is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendError {
    pub message: String,
    pub hint: String,
}

impl Backend {
    /// Parses a backend URL; `root` anchors a relative `file://` path.
    pub fn parse(text: &str, root: &Path) -> Result<Backend, BackendError> {
        let refuse = |message: String| {
            BackendError {
            message,
            hint: "write `file://<folder>` (default `file://state`, relative to the project folder) or `kubernetes://<namespace>` (a namespace of the stack's cluster that exists)".to_string(),
        }
        };
        if let Some(dir) = text.strip_prefix("file://") {
            if dir.is_empty() {
                return Err(refuse("`file://` names no folder".to_string()));
            }
            let path = Path::new(dir);
            return Ok(Backend::File(if path.is_absolute() {
                path.to_path_buf()
            } else {
                root.join(path)
            }));
        }
        if let Some(namespace) = text.strip_prefix("kubernetes://") {
            let namespace = namespace.strip_suffix('/').unwrap_or(namespace);
            if let Some(problem) = namespace_problem(namespace) {
                return Err(refuse(format!(
                    "`kubernetes://{namespace}` does not name a namespace: {problem}"
                )));
            }
            return Ok(Backend::Kubernetes {
                namespace: namespace.to_string(),
            });
        }
        let scheme = text.split_once("://").map(|(s, _)| s);
        Err(refuse(match scheme {
            Some(scheme) => format!("unknown backend scheme `{scheme}://`"),
            None => format!("`{text}` is not a backend URL"),
        }))
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Backend::File(dir) => write!(f, "file://{}", dir.display()),
            Backend::Kubernetes { namespace } => write!(f, "kubernetes://{namespace}"),
        }
    }
}

/// Why `name` is not a namespace name (an RFC 1123 label), if it is not.
fn namespace_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("the namespace is empty".into());
    }
    if name.len() > 63 {
        return Some(format!(
            "it is {} characters long, at most 63 are allowed",
            name.len()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Some(format!(
            "`{c}` is not allowed (lowercase letters, digits and `-` only)"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Some("it must start and end with a letter or digit".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_backends_resolve_against_the_project_folder() {
        let root = Path::new("/p");
        assert_eq!(
            Backend::parse(DEFAULT, root).unwrap(),
            Backend::File(PathBuf::from("/p/state"))
        );
        assert_eq!(
            Backend::parse("file:///var/state", root).unwrap(),
            Backend::File(PathBuf::from("/var/state"))
        );
    }

    #[test]
    fn kubernetes_backend_names_a_namespace() {
        assert_eq!(
            Backend::parse("kubernetes://echo-state", Path::new("/")).unwrap(),
            Backend::Kubernetes {
                namespace: "echo-state".into()
            }
        );
        let err = Backend::parse("kubernetes://Echo_State", Path::new("/")).unwrap_err();
        assert!(err.message.contains("`E` is not allowed"), "{err:?}");
        assert!(Backend::parse("kubernetes://", Path::new("/")).is_err());
    }

    #[test]
    fn unknown_schemes_and_plain_paths_are_refused() {
        let err = Backend::parse("s3://bucket", Path::new("/")).unwrap_err();
        assert_eq!(err.message, "unknown backend scheme `s3://`");
        assert!(err.hint.contains("kubernetes://<namespace>"));
        let err = Backend::parse("state", Path::new("/")).unwrap_err();
        assert!(err.message.contains("not a backend URL"));
        assert!(Backend::parse("file://", Path::new("/")).is_err());
    }
}
