//! Finding and merging kubeconfig files the way kubectl does.
//!
//! A list (`KUBECONFIG=a:b`, or a list under the stack file's `kubeconfig:`)
//! is merged with the first file winning for each entry and for
//! `current-context`; files in the list that do not exist are skipped, so
//! one `KUBECONFIG` works on machines that have only some of the files. A
//! single file named on its own (`--kubeconfig`, a one-path
//! `kubeconfig:`) must exist: a typo there should not silently fall back.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use kube::client::AuthError;
use kube::config::{Kubeconfig, KubeconfigError};

use super::{ClusterError, error_chain, home_dir, without_values};

/// The merged kubeconfig and the files it came from, for messages.
pub(crate) struct Loaded {
    pub config: Kubeconfig,
    /// The files read, joined as in `KUBECONFIG` (`a:b`).
    pub source: PathBuf,
    /// The file each user entry came from (the first that names it), so a
    /// credential plugin can be traced to the file that brought it.
    pub user_files: HashMap<String, PathBuf>,
}

/// Reads `paths` (the stack file's or the command line's), else
/// $KUBECONFIG, else ~/.kube/config.
pub fn load(paths: &[PathBuf]) -> Result<Loaded, ClusterError> {
    match paths {
        [] => {}
        [one] => return read_one(one),
        many => return merge(many),
    }
    match std::env::var_os("KUBECONFIG") {
        Some(list) => {
            let paths: Vec<PathBuf> = std::env::split_paths(&list)
                .filter(|p| !p.as_os_str().is_empty())
                .collect();
            if paths.is_empty() {
                read_one(&default_path())
            } else {
                merge(&paths)
            }
        }
        None => read_one(&default_path()),
    }
}

fn default_path() -> PathBuf {
    home_dir().join(".kube").join("config")
}

fn read_one(path: &Path) -> Result<Loaded, ClusterError> {
    if !path.exists() {
        return Err(ClusterError::KubeconfigMissing {
            path: path.to_path_buf(),
        });
    }
    let config = read(path)?;
    let mut user_files = HashMap::new();
    note_users(&mut user_files, &config, path);
    Ok(Loaded {
        config,
        source: path.to_path_buf(),
        user_files,
    })
}

/// Records `path` for the user entries of `config` that no earlier file
/// named, as the merge keeps the first.
fn note_users(user_files: &mut HashMap<String, PathBuf>, config: &Kubeconfig, path: &Path) {
    for user in &config.auth_infos {
        user_files
            .entry(user.name.clone())
            .or_insert_with(|| path.to_path_buf());
    }
}

/// Merges the files of a list that exist, first one winning.
fn merge(paths: &[PathBuf]) -> Result<Loaded, ClusterError> {
    let present: Vec<&PathBuf> = paths.iter().filter(|p| p.exists()).collect();
    if present.is_empty() {
        return Err(ClusterError::KubeconfigMissing {
            path: join(paths.iter()),
        });
    }
    let mut merged = Kubeconfig::default();
    let mut user_files = HashMap::new();
    for path in &present {
        let next = read(path)?;
        note_users(&mut user_files, &next, path);
        merged = merged.merge(next).map_err(|e| ClusterError::Kubeconfig {
            path: path.to_path_buf(),
            reason: format!(
                "cannot be merged with the files before it: {}",
                without_values(&error_chain(&e))
            ),
        })?;
    }
    Ok(Loaded {
        config: merged,
        source: join(present.into_iter()),
        user_files,
    })
}

fn read(path: &Path) -> Result<Kubeconfig, ClusterError> {
    if path.is_dir() {
        return Err(ClusterError::Kubeconfig {
            path: path.to_path_buf(),
            reason: "it is a folder, not a file".into(),
        });
    }
    if let Some(reason) = odd_utf16(path) {
        return Err(ClusterError::Kubeconfig {
            path: path.to_path_buf(),
            reason,
        });
    }
    // kube makes the certificate and key paths inside absolute, relative to
    // the file that names them, as kubectl does.
    Kubeconfig::read_from(path).map_err(|e| ClusterError::Kubeconfig {
        path: path.to_path_buf(),
        reason: super::without_userinfo(&reason(&e)),
    })
}

/// Why the file at `path` cannot be UTF-16 text although it starts with a
/// UTF-16 byte order mark: an odd number of bytes after it. kube 5 reads
/// such a file by pairs of bytes and panics on the last one, so it is
/// refused before kube sees it. `None` for any other file, and for one
/// that cannot be read (kube then says why).
fn odd_utf16(path: &Path) -> Option<String> {
    let bytes = std::fs::read(path).ok()?;
    let utf16 = matches!(bytes.as_slice(), [0xFF, 0xFE, ..] | [0xFE, 0xFF, ..]);
    (utf16 && bytes.len() % 2 == 1).then(|| {
        "it starts with a UTF-16 byte order mark, but holds an odd number of bytes: \
         save it as UTF-8 text"
            .to_string()
    })
}

/// Why kube could not use a kubeconfig, without its values, and with the
/// paths it names written plainly (kube quotes them as `'"path"'`).
pub(super) fn reason(error: &KubeconfigError) -> String {
    match error {
        KubeconfigError::ReadConfig(io, _) => io.to_string(),
        KubeconfigError::LoadCertificateAuthority(e)
        | KubeconfigError::LoadClientCertificate(e)
        | KubeconfigError::LoadClientKey(e) => {
            let what = match error {
                KubeconfigError::LoadCertificateAuthority(_) => "certificate authority",
                KubeconfigError::LoadClientCertificate(_) => "client certificate",
                _ => "client key",
            };
            match e {
                kube::config::LoadDataError::ReadFile(io, path) => {
                    format!("cannot read its {what} {}: {io}", path.display())
                }
                other => format!(
                    "cannot load its {what}: {}",
                    without_values(&error_chain(other))
                ),
            }
        }
        other => without_values(&error_chain(other)),
    }
}

/// Why a credential plugin failed, in a few words (its output may hold
/// a credential, so only the first line of what it wrote to stderr is
/// kept), and whether it is missing altogether.
pub(super) fn plugin_failure(error: &AuthError) -> (String, bool) {
    match error {
        AuthError::AuthExecStart(io) if io.kind() == std::io::ErrorKind::NotFound => {
            ("is not installed (not found on PATH)".into(), true)
        }
        AuthError::AuthExecStart(io) => (format!("could not be started: {io}"), false),
        AuthError::AuthExecRun { out, .. } => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            let first: String = stderr
                .trim()
                .lines()
                .next()
                .unwrap_or_default()
                .chars()
                .take(200)
                .collect();
            let status = match out.status.code() {
                Some(code) => format!("exit code {code}"),
                None => "a signal".to_string(),
            };
            if first.is_empty() {
                (format!("failed with {status}"), false)
            } else {
                (format!("failed with {status}: {first}"), false)
            }
        }
        other => (
            format!("failed: {}", without_values(&error_chain(other))),
            false,
        ),
    }
}

fn join<'a>(paths: impl Iterator<Item = &'a PathBuf>) -> PathBuf {
    let text: Vec<String> = paths.map(|p| p.display().to_string()).collect();
    PathBuf::from(text.join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &Path, name: &str, current: &str, contexts: &[(&str, &str)]) -> PathBuf {
        let mut text =
            format!("apiVersion: v1\nkind: Config\ncurrent-context: {current}\nclusters:\n");
        for (context, server) in contexts {
            text.push_str(&format!(
                "- name: {context}\n  cluster: {{server: \"{server}\"}}\n"
            ));
        }
        text.push_str("users:\n");
        for (context, _) in contexts {
            text.push_str(&format!("- name: {context}\n  user: {{token: t}}\n"));
        }
        text.push_str("contexts:\n");
        for (context, _) in contexts {
            text.push_str(&format!(
                "- name: {context}\n  context: {{cluster: {context}, user: {context}}}\n"
            ));
        }
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn a_list_skips_missing_files_and_the_first_file_wins() {
        let dir = tempfile::tempdir().unwrap();
        let a = config(
            dir.path(),
            "a",
            "one",
            &[("one", "https://a:1"), ("both", "https://a:2")],
        );
        let b = config(
            dir.path(),
            "b",
            "two",
            &[("two", "https://b:1"), ("both", "https://b:2")],
        );
        let missing = dir.path().join("missing");
        let loaded = merge(&[missing, a.clone(), b.clone()]).unwrap();
        assert_eq!(loaded.config.current_context.as_deref(), Some("one"));
        let server = |name: &str| {
            loaded
                .config
                .clusters
                .iter()
                .find(|c| c.name == name)
                .and_then(|c| c.cluster.as_ref())
                .and_then(|c| c.server.clone())
        };
        assert_eq!(server("both").as_deref(), Some("https://a:2"));
        assert_eq!(server("two").as_deref(), Some("https://b:1"));
        assert_eq!(
            loaded.source,
            PathBuf::from(format!("{}:{}", a.display(), b.display()))
        );
    }

    #[test]
    fn each_user_entry_is_traced_to_the_first_file_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let a = config(dir.path(), "a", "one", &[("one", "https://a:1")]);
        let b = config(
            dir.path(),
            "b",
            "two",
            &[("two", "https://b:1"), ("one", "https://b:2")],
        );
        let loaded = merge(&[a.clone(), b.clone()]).unwrap();
        assert_eq!(loaded.user_files["one"], a);
        assert_eq!(loaded.user_files["two"], b);
    }

    #[test]
    fn a_utf16_file_of_an_odd_length_is_refused_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let good = config(dir.path(), "good", "one", &[("one", "https://a:1")]);
        for bom in [[0xFE, 0xFF], [0xFF, 0xFE]] {
            let odd = dir.path().join("odd");
            std::fs::write(&odd, [&bom[..], b"`\t\x00"].concat()).unwrap();
            let err = merge(&[good.clone(), odd.clone()]).err().unwrap();
            let text = err.to_string();
            assert!(text.contains(&odd.display().to_string()), "{text}");
            assert!(text.contains("UTF-16"), "{text}");
        }
    }

    #[test]
    fn a_list_of_missing_files_names_them_all() {
        let err = merge(&[PathBuf::from("/no/a"), PathBuf::from("/no/b")])
            .err()
            .unwrap();
        assert_eq!(err.to_string(), "no kubeconfig found at /no/a:/no/b");
    }

    #[test]
    fn a_single_missing_file_is_an_error() {
        let err = load(&[PathBuf::from("/no/such/kubeconfig")]).err().unwrap();
        assert!(
            matches!(err, ClusterError::KubeconfigMissing { .. }),
            "{err}"
        );
    }
}
