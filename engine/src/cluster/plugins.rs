//! Credential plugins of kubeconfig files that a checkout brings.
//!
//! kube runs a user entry's `exec:` command (and a `gcp` auth-provider's
//! `cmd-path`) when it connects, as kubectl does. That is right for a
//! kubeconfig the user chose, and wrong for one that came with a
//! repository: a stack file pointing at a kubeconfig of its own would run
//! whatever the repository's author wrote on a plain `preview`. So a
//! guarded file's plugin runs only when the caller allows it, and is named
//! on stderr before it does; otherwise the connection is refused before
//! anything runs or is contacted.

use std::path::{Component, Path, PathBuf};

use kube::config::{AuthInfo, Kubeconfig};

use super::ClusterError;
use super::kubeconfig::Loaded;
use super::notice::{Notice, Notices};

/// Set to `1` to let kubeconfig files from inside a project run their
/// credential plugins.
pub const ALLOW_ENV: &str = "ECHO_IAC_ALLOW_KUBECONFIG_EXEC";

/// The longest command shown; a script passed to `sh -c` can be long.
const SHOWN_MAX: usize = 300;

/// Which kubeconfig files may run credential plugins (`exec:` and
/// `auth-provider:`) without being allowed to.
#[derive(Clone, Debug, Default)]
pub struct PluginGuard {
    /// Files whose plugins run only with `allow`; the default guards none.
    pub guarded: Vec<PathBuf>,
    /// Let the guarded files' plugins run, each told as a
    /// [`Notice::RunningCredentialPlugin`] first.
    pub allow: bool,
}

impl PluginGuard {
    /// Guards the files among `paths` that lie inside `folder`, by the path
    /// as written or by the file it resolves to (a symlink either way).
    pub fn inside(folder: &Path, paths: &[PathBuf], allow: bool) -> PluginGuard {
        let folder_real = folder.canonicalize().ok();
        let inside = |path: &Path| {
            normalize(path).starts_with(normalize(folder))
                || path.canonicalize().ok().is_some_and(|real| {
                    folder_real
                        .as_ref()
                        .is_some_and(|folder| real.starts_with(folder))
                })
        };
        PluginGuard {
            guarded: paths.iter().filter(|p| inside(p)).cloned().collect(),
            allow,
        }
    }

    /// Checks the user entry that `context` would use: a plugin from a
    /// guarded file is refused unless allowed, and named when it is.
    pub(super) fn check(
        &self,
        loaded: &Loaded,
        context: &str,
        notices: &Notices,
    ) -> Result<(), ClusterError> {
        let Some((user, plugin)) = plugin_of(&loaded.config, context) else {
            return Ok(());
        };
        let Some(path) = loaded.user_files.get(&user) else {
            return Ok(());
        };
        if !self.guarded.contains(path) {
            return Ok(());
        }
        if !self.allow {
            return Err(ClusterError::PluginRefused {
                path: path.clone(),
                user,
                plugin,
            });
        }
        notices.tell(Notice::RunningCredentialPlugin {
            user,
            kubeconfig: path.clone(),
            command: plugin,
        });
        Ok(())
    }
}

/// The user of `context` and what its plugin runs, if it has one.
fn plugin_of(config: &Kubeconfig, context: &str) -> Option<(String, String)> {
    let user = config
        .contexts
        .iter()
        .find(|c| c.name == context)?
        .context
        .as_ref()?
        .user
        .clone()?;
    let info = config
        .auth_infos
        .iter()
        .find(|a| a.name == user)?
        .auth_info
        .as_ref()?;
    describe(info).map(|plugin| (user, plugin))
}

/// `exec` with its command line, or `auth-provider` with its name and
/// command; never the environment it is given, which may hold secrets.
fn describe(info: &AuthInfo) -> Option<String> {
    if let Some(exec) = &info.exec {
        let mut words = vec![exec.command.clone().unwrap_or_default()];
        words.extend(exec.args.iter().flatten().cloned());
        return Some(format!("exec `{}`", shorten(&shell_words(&words))));
    }
    let provider = info.auth_provider.as_ref()?;
    Some(match provider.config.get("cmd-path") {
        Some(cmd) => {
            let args = provider.config.get("cmd-args").cloned().unwrap_or_default();
            format!(
                "auth-provider `{}`, which runs `{}`",
                provider.name,
                shorten(format!("{cmd} {args}").trim())
            )
        }
        None => format!("auth-provider `{}`", provider.name),
    })
}

/// Words joined as a shell would read them back: quoted where needed.
fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            let plain = !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c));
            if plain {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn shorten(text: &str) -> String {
    let one_line = text.replace('\n', "\\n");
    match one_line.char_indices().nth(SHOWN_MAX) {
        Some((at, _)) => format!("{}…", &one_line[..at]),
        None => one_line,
    }
}

/// `path` without `.` and with `..` applied, without touching the disk:
/// `project/../elsewhere/config` is not inside `project`.
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(yaml: &str, path: &Path) -> Loaded {
        let config = Kubeconfig::from_yaml(yaml).unwrap();
        let user_files = config
            .auth_infos
            .iter()
            .map(|a| (a.name.clone(), path.to_path_buf()))
            .collect();
        Loaded {
            config,
            source: path.to_path_buf(),
            user_files,
        }
    }

    const EXEC: &str = "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n- name: c\n  cluster: {server: \"https://127.0.0.1:1\"}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\n- name: plain\n  context: {cluster: c, user: t}\nusers:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: sh\n      args: [-c, \"touch /tmp/x; echo it's done\"]\n      env: [{name: TOKEN, value: hunter2}]\n- name: t\n  user: {token: abc}\n";

    #[test]
    fn a_guarded_files_exec_plugin_is_refused_and_named() {
        let path = PathBuf::from("/project/kubeconfig");
        let guard = PluginGuard {
            guarded: vec![path.clone()],
            allow: false,
        };
        let err = guard
            .check(&loaded(EXEC, &path), "c", &Notices::default())
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(r"exec `sh -c 'touch /tmp/x; echo it'\''s done'`"),
            "{text}"
        );
        assert!(text.contains("/project/kubeconfig"), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
    }

    #[test]
    fn a_plugin_runs_when_allowed_or_when_its_file_is_not_guarded() {
        let path = PathBuf::from("/project/kubeconfig");
        let allowed = PluginGuard {
            guarded: vec![path.clone()],
            allow: true,
        };
        let told = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let notices = Notices::to({
            let told = told.clone();
            move |notice| told.lock().unwrap().push(notice.to_string())
        });
        assert!(allowed.check(&loaded(EXEC, &path), "c", &notices).is_ok());
        let told = told.lock().unwrap();
        assert_eq!(told.len(), 1, "{told:?}");
        assert!(
            told[0].starts_with(
                "running the credential plugin of user `u` in kubeconfig /project/kubeconfig: "
            ),
            "{told:?}"
        );
        assert!(
            PluginGuard::default()
                .check(&loaded(EXEC, &path), "c", &Notices::default())
                .is_ok()
        );
    }

    #[test]
    fn a_guarded_file_without_a_plugin_for_the_context_is_fine() {
        let path = PathBuf::from("/project/kubeconfig");
        let guard = PluginGuard {
            guarded: vec![path.clone()],
            allow: false,
        };
        assert!(
            guard
                .check(&loaded(EXEC, &path), "plain", &Notices::default())
                .is_ok()
        );
    }

    #[test]
    fn auth_providers_are_plugins_and_their_command_is_named() {
        let yaml = EXEC.replace(
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: sh\n      args: [-c, \"touch /tmp/x; echo it's done\"]\n      env: [{name: TOKEN, value: hunter2}]\n",
            "    auth-provider:\n      name: gcp\n      config: {cmd-path: /bin/sh, cmd-args: \"-c id\"}\n",
        );
        let path = PathBuf::from("/project/kubeconfig");
        let guard = PluginGuard {
            guarded: vec![path.clone()],
            allow: false,
        };
        let err = guard
            .check(&loaded(&yaml, &path), "c", &Notices::default())
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("auth-provider `gcp`, which runs `/bin/sh -c id`"),
            "{err}"
        );
    }

    #[test]
    fn files_inside_the_folder_are_guarded_and_others_not() {
        let project = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = project.path();
        let own = root.join(".cluster/kubeconfig");
        let escaped = root.join("../elsewhere/kubeconfig");
        let home = outside.path().join("config");
        std::fs::write(&home, "").unwrap();
        let link = root.join("linked");
        std::os::unix::fs::symlink(&home, &link).unwrap();
        let guard = PluginGuard::inside(
            root,
            &[own.clone(), escaped, home.clone(), link.clone()],
            false,
        );
        assert_eq!(guard.guarded, [own, link]);
    }
}
