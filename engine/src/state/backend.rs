//! Where a stack keeps its state, as written in a stack file's `backend:`
//! or in `ECHO_IAC_BACKEND`: `file://<dir>` or `kubernetes://<namespace>`.
//!
//! A relative `file://` folder stays inside the project: a stack file is
//! often someone else's, and `file://../elsewhere` would let it aim the
//! state's writes at another project's files. A folder outside the project
//! must be written as an absolute path, where it is plain to see.

use std::fmt;
use std::path::{Component, Path, PathBuf};

/// The default: the project's own `state/` folder.
pub const DEFAULT: &str = "file://state";

/// Where a stack's state is kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A folder: an absolute path as written, or a relative one resolved
    /// inside the project folder.
    File(PathBuf),
    /// A namespace of the stack's own cluster.
    Kubernetes {
        /// Where the state's Secrets and the lock's Lease live.
        namespace: String,
    },
}

/// Why a backend URL was refused, and what is allowed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackendError {
    /// What is wrong with the URL.
    pub message: String,
    /// What is allowed instead.
    pub hint: String,
    /// A few words for the mark under the value in a stack file.
    pub label: &'static str,
}

impl Backend {
    /// Parses a backend URL; `root` anchors a relative `file://` path.
    pub fn parse(text: &str, root: &Path) -> Result<Backend, BackendError> {
        let refuse = |message: String| {
            BackendError {
            message,
            hint: "write `file://<folder>` (default `file://state`, relative to the project folder) or `kubernetes://<namespace>` (a namespace of the stack's cluster that exists)".to_string(),
            label: "not a backend URL",
        }
        };
        if let Some(dir) = text.strip_prefix("file://") {
            if dir.is_empty() {
                return Err(refuse("`file://` names no folder".to_string()));
            }
            let path = Path::new(dir);
            if path.is_absolute() {
                return Ok(Backend::File(path.to_path_buf()));
            }
            return match below(path) {
                Some(inside) => Ok(Backend::File(root.join(inside))),
                None => Err(BackendError {
                    message: format!("`file://{dir}` leads out of the project folder"),
                    hint: format!(
                        "a relative folder stays inside the project ({}), so that a stack file cannot aim the state's writes at other files; if the state is really meant to live outside it, write its absolute path: `file://{}`",
                        root.display(),
                        resolve(root, path).display()
                    ),
                    label: "outside the project folder",
                }),
            };
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

/// `path` (relative) with `.` and `..` worked out, or `None` if a `..`
/// climbs above where it starts.
fn below(path: &Path) -> Option<PathBuf> {
    let mut inside = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(name) => inside.push(name),
            Component::CurDir => {}
            Component::ParentDir => {
                if !inside.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(inside)
}

/// `root` joined with `path`, with `.` and `..` worked out, for showing.
fn resolve(root: &Path, path: &Path) -> PathBuf {
    let mut resolved = root.to_path_buf();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                resolved.pop();
            }
            Component::CurDir => {}
            other => resolved.push(other),
        }
    }
    resolved
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
    fn relative_file_backend_that_leaves_the_project_is_refused_with_the_absolute_path() {
        let root = Path::new("/work/proj");
        let err = Backend::parse("file://../otherproj", root).unwrap_err();
        assert_eq!(
            err.message,
            "`file://../otherproj` leads out of the project folder"
        );
        assert!(err.hint.contains("`file:///work/otherproj`"), "{err:?}");
        assert_eq!(err.label, "outside the project folder");
        assert!(Backend::parse("file://state/../../x", root).is_err());
        assert!(Backend::parse("file://./..", root).is_err());
    }

    #[test]
    fn relative_file_backend_inside_the_project_is_resolved_there() {
        let root = Path::new("/p");
        assert_eq!(
            Backend::parse("file://ops/../state/./dev", root).unwrap(),
            Backend::File(PathBuf::from("/p/state/dev"))
        );
        assert_eq!(
            Backend::parse("file:///elsewhere/../state", root).unwrap(),
            Backend::File(PathBuf::from("/elsewhere/../state"))
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
