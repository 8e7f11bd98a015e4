//! The one error a command returns, and how it is shown: a message, a hint
//! saying what to do next, and a stable exit code. This is the one place
//! where the engine's errors, which know no command line, are told in the
//! terms of this one: its commands, flags and stack-file keys.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use crate::project::{Project, ProjectError};
use crate::stack::StackError;
use echo_iac_engine::cluster::{ALLOW_PLUGINS_ENV, ClusterError, Transport};
use echo_iac_engine::state::{LockKind, Recovery, StateError};
use echo_iac_engine::{BlockedStep, Blocker, EngineError};

/// Exit codes, stable and documented in the README.
pub(crate) mod exit {
    pub(crate) const ERROR: i32 = 1;
    /// `preview --expect-no-changes` found changes. No error exits with
    /// it, so a drift check never reads a failure as drift.
    pub(crate) const CHANGES: i32 = 2;
    /// The command line is not one echo-iac understands (an unknown flag,
    /// a bad value, no command): sysexits' EX_USAGE, apart from both the
    /// errors of a run (1) and "changes found" (2, which clap would use).
    pub(crate) const USAGE: i32 = 64;
    pub(crate) const INTERRUPTED: i32 = 130;
}

/// Whether the run's project is echo-iac's own repository
/// ([`Project::has_local_control_plane`]), so hints may name `make cluster`.
static LOCAL_CONTROL_PLANE: AtomicBool = AtomicBool::new(false);

/// Notes the project a run works in, for the hints of its errors: an
/// error is told where it happens, without the project at hand.
pub(crate) fn note_project(project: &Project) {
    LOCAL_CONTROL_PLANE.store(project.has_local_control_plane(), Ordering::Relaxed);
}

/// `then` when the run's project is echo-iac's own repository, else nothing.
fn in_repository(then: &str) -> &str {
    if LOCAL_CONTROL_PLANE.load(Ordering::Relaxed) {
        then
    } else {
        ""
    }
}

/// Where a kubeconfig can be named, for hints.
const KUBECONFIG_PLACES: &str =
    "pass --kubeconfig FILE, set KUBECONFIG, or set `kubeconfig:` in the stack file";

/// Why a command failed, or stopped early.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No project, or no stack of it, could be chosen.
    #[error(transparent)]
    Project(#[from] ProjectError),
    /// The stack file could not be read or is not valid.
    #[error(transparent)]
    Stack(#[from] StackError),
    /// The state backend failed: reading, writing or locking the state.
    /// Boxed, as [`Error::Engine`] is, to keep every `Result` small.
    #[error(transparent)]
    State(Box<StateError>),
    /// The cluster could not be reached, or refused a request.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// A manifest of the stack file's `manifests:` holds a kind the
    /// cluster does not serve: told at its file, document and line.
    #[error(transparent)]
    UnknownManifestKind(StackError),
    /// Planning, applying or deleting failed, or was interrupted.
    #[error(transparent)]
    Engine(Box<EngineError>),
    /// The program declared objects that do not fit together (one twice,
    /// a dependency it did not declare, a cycle).
    #[error("the program's objects do not fit together: {0}")]
    Declare(#[from] echo_iac_engine::declare::DeclareError),
    /// A request the command refuses as given.
    #[error("{message}")]
    Refused {
        /// What is refused, and why.
        message: String,
        /// What to do instead.
        hint: String,
    },
    /// `up --rollback-on-failure` failed, and rolled the stack back to
    /// revision `to`; `rollback` says how that went (`None`: ready).
    #[error("{cause}\n{}", rolled_back_words(*to, rollback.as_deref()))]
    RolledBack {
        /// Why `up` failed.
        cause: Box<Error>,
        /// The revision rolled back to.
        to: u64,
        /// Why the rollback did not end ready, if it did not.
        rollback: Option<Box<Error>>,
    },
    /// The question before a change was answered no; the command already
    /// said so.
    #[error("cancelled at the prompt; nothing was changed")]
    Cancelled,
    /// Not a failure to report: the command already said what it found and
    /// only its exit code is left.
    #[error("")]
    Exit(i32),
}

fn rolled_back_words(to: u64, rollback: Option<&Error>) -> String {
    match rollback {
        None => format!("rolled back: the stack is back at revision {to}, which is ready"),
        Some(e) => format!(
            "rolling back to revision {to} did not end ready either: {}",
            e.message()
        ),
    }
}

impl From<StateError> for Error {
    fn from(error: StateError) -> Self {
        Error::State(Box::new(error))
    }
}

impl From<EngineError> for Error {
    fn from(error: EngineError) -> Self {
        Error::Engine(Box::new(error))
    }
}

impl Error {
    /// Whether the run stopped because it was interrupted (Ctrl-C or SIGTERM).
    pub(crate) fn is_interrupted(&self) -> bool {
        matches!(self, Error::Engine(e) if matches!(**e, EngineError::Interrupted))
    }

    /// A [`Error::Refused`]: the hint says what to do instead, as every
    /// error a user can fix must.
    pub fn refused(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Refused {
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Error::Exit(code) => *code,
            _ if self.is_interrupted() => exit::INTERRUPTED,
            _ => exit::ERROR,
        }
    }

    /// What to do next, for the line after the error; `None` when there
    /// is nothing to add.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Project(e) => e.hint(),
            Error::Stack(e) | Error::UnknownManifestKind(e) => e.hint(),
            Error::State(e) => state_hint(e),
            Error::Cluster(e) => cluster_hint(e),
            Error::Engine(e) => engine_hint(e),
            Error::Refused { hint, .. } => Some(hint.clone()),
            Error::RolledBack { rollback: None, .. } => Some(format!(
                "fix the cause above and run `{0} up` again; `{0} stack history` shows the failed run and the rollback",
                crate::name::bin()
            )),
            Error::RolledBack {
                rollback: Some(e), ..
            } => e.hint(),
            // A manifest carries its wait rule in its annotations too.
            Error::Declare(echo_iac_engine::declare::DeclareError::WaitRule {
                annotation, ..
            }) => Some(format!(
                "fix the annotation {annotation} on that object, in the program or in the stack file's manifests"
            )),
            Error::Declare(_) => Some(
                "this is a mistake in the program, not in the stack file: report it to its authors"
                    .into(),
            ),
            Error::Cancelled | Error::Exit(_) => None,
        }
    }

    /// The message as printed: `error: …` then `hint: …`, or nothing for
    /// [`Error::Exit`] and [`Error::Cancelled`], which were told already.
    pub(crate) fn report(&self) -> Option<Report<'_>> {
        (!matches!(self, Error::Exit(_) | Error::Cancelled)).then_some(Report(self))
    }

    /// The error as one line of words, without `error: `.
    pub(crate) fn message(&self) -> String {
        match self {
            Error::State(e) => state_message(e),
            Error::Engine(e) => match &**e {
                EngineError::State(e) => state_message(e),
                e => e.to_string(),
            },
            Error::Exit(code) if *code == exit::INTERRUPTED => "interrupted".into(),
            e => e.to_string(),
        }
    }

    /// A stable name for what went wrong, for machine output.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Error::Project(_) => "project",
            Error::Stack(_) => "stack-file",
            Error::UnknownManifestKind(_) => "unknown-kind",
            Error::State(e) => state_kind(e),
            Error::Cluster(e) => cluster_kind(e),
            Error::Engine(e) => match &**e {
                EngineError::Cluster(e) => cluster_kind(e),
                EngineError::State(e) => state_kind(e),
                EngineError::Declare(_) => "program",
                EngineError::NamespaceMissing(_) | EngineError::NamespaceTerminating(_) => {
                    "namespace"
                }
                EngineError::Blocked { .. } => "blocked",
                EngineError::Timeout { .. } | EngineError::NotGone { .. } => "timeout",
                EngineError::RolloutFailed { .. }
                | EngineError::Failed { .. }
                | EngineError::Stuck { .. } => "not-ready",
                EngineError::UnknownTarget { .. } => "target",
                EngineError::ForeignRevision { .. } => "revision",
                EngineError::Interrupted => "interrupted",
            },
            Error::Declare(_) => "program",
            Error::Refused { .. } => "refused",
            Error::RolledBack { .. } => "rolled-back",
            Error::Cancelled => "cancelled",
            Error::Exit(code) if *code == exit::INTERRUPTED => "interrupted",
            Error::Exit(_) => "failed",
        }
    }

    /// The objects the error is about (`Kind namespace/name`), where it
    /// names any.
    pub(crate) fn objects(&self) -> Vec<String> {
        let cluster = |e: &ClusterError| match e {
            ClusterError::Forbidden { target, .. }
            | ClusterError::Api { target, .. }
            | ClusterError::NamespaceRequired { target }
            | ClusterError::Other { target, .. } => vec![target.clone()],
            _ => Vec::new(),
        };
        let state = |e: &StateError| match e {
            StateError::Cluster { source, .. } => cluster(source),
            _ => Vec::new(),
        };
        match self {
            Error::Cluster(e) => cluster(e),
            Error::State(e) => state(e),
            Error::Engine(e) => match &**e {
                EngineError::Cluster(e) => cluster(e),
                EngineError::State(e) => state(e),
                EngineError::Blocked { steps } => steps.iter().map(|s| s.id.to_string()).collect(),
                EngineError::NotGone { id, .. }
                | EngineError::RolloutFailed { id, .. }
                | EngineError::Failed { id, .. }
                | EngineError::Stuck { id, .. } => vec![id.clone()],
                EngineError::NamespaceMissing(ns) | EngineError::NamespaceTerminating(ns) => {
                    vec![format!("Namespace {ns}")]
                }
                _ => Vec::new(),
            },
            Error::RolledBack { cause, .. } => cause.objects(),
            _ => Vec::new(),
        }
    }

    /// The JSON document a `--json` command prints on stdout when it
    /// fails, so that a pipeline can parse every outcome. Built from the
    /// same words as the message on stderr, which never hold a Secret's
    /// value.
    pub(crate) fn json(&self) -> Value {
        json!({
            "error": {
                "kind": self.kind(),
                "message": self.message(),
                "hint": self.hint(),
                "objects": self.objects(),
                "exitCode": self.exit_code(),
            }
        })
    }
}

fn cluster_kind(error: &ClusterError) -> &'static str {
    match error {
        ClusterError::KubeconfigMissing { .. }
        | ClusterError::Kubeconfig { .. }
        | ClusterError::UnknownContext { .. } => "kubeconfig",
        ClusterError::Unreachable { .. } => "unreachable",
        ClusterError::Tls { .. } | ClusterError::TlsHandshake { .. } => "tls",
        ClusterError::Unauthorized { .. } => "unauthorized",
        ClusterError::Forbidden { .. } => "forbidden",
        ClusterError::UnknownKind { .. } => "unknown-kind",
        ClusterError::Api { .. } | ClusterError::NamespaceRequired { .. } => "rejected",
        _ => "cluster",
    }
}

fn state_kind(error: &StateError) -> &'static str {
    match error {
        StateError::Locked { .. } | StateError::LockLost { .. } => "locked",
        StateError::Cluster { source, .. } => cluster_kind(source),
        _ => "state",
    }
}

pub(crate) struct Report<'a>(&'a Error);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.0.message())?;
        if let Some(hint) = self.0.hint() {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}

/// The state's own message, but naming this program where the engine can
/// only say "a newer release".
fn state_message(error: &StateError) -> String {
    let bin = crate::name::bin();
    match error {
        StateError::NewerVersion {
            location,
            found,
            supported,
        } => format!(
            "state {location} has schema version {found}, written by a newer {bin} (this one reads up to version {supported})"
        ),
        e => e.to_string(),
    }
}

fn engine_hint(error: &EngineError) -> Option<String> {
    let bin = crate::name::bin();
    Some(match error {
        EngineError::Cluster(e) => return cluster_hint(e),
        EngineError::State(e) => return state_hint(e),
        EngineError::Declare(_) => return None,
        EngineError::NamespaceMissing(_) => {
            "create it, or set `createNamespace: true` in the stack file so the stack creates it"
                .into()
        }
        EngineError::NamespaceTerminating(_) => {
            "wait until the namespace is gone, then run again".into()
        }
        EngineError::Blocked { steps } => blocked_hint(steps),
        EngineError::Timeout { .. } => format!("the changes were applied and recorded; run `{bin} up` again to keep waiting, or raise --timeout"),
        EngineError::NotGone { .. } => "something still holds it, usually a finalizer named above whose controller has not finished; the step is recorded as pending, so run the command again once it is gone, or raise --timeout".into(),
        EngineError::RolloutFailed { .. } => {
            format!("fix the cause above (image, resources, config) and run `{bin} up` again")
        }
        EngineError::Failed { .. } => format!("fix the cause above and run `{bin} up` again"),
        EngineError::Stuck { fix, .. } => format!(
            "{fix}; what was applied is recorded, so run `{bin} up` again once it is fixed (--wait-grace sets how long a stuck rollout is waited for)"
        ),
        EngineError::UnknownTarget { target, known } => unknown_target_hint(target, known),
        EngineError::ForeignRevision { .. } => format!(
            "roll back only to a revision of this program's stack: `{bin} stack history` lists them"
        ),
        EngineError::Interrupted => "run the command again to finish what was started".into(),
    })
}

/// The ids a mistyped `--target` most likely meant, or the stack's ids
/// when none is close.
fn unknown_target_hint(target: &str, known: &[String]) -> String {
    if known.is_empty() {
        return "the stack has no objects yet; drop --target".into();
    }
    let close = crate::suggest::nearest(target, known.iter().map(String::as_str), 3);
    if !close.is_empty() {
        let close: Vec<String> = close.iter().map(|id| format!("`{id}`")).collect();
        return format!(
            "did you mean {}? A target is KIND/NAMESPACE/NAME, or KIND/NAME in the stack's namespace",
            close.join(" or ")
        );
    }
    const SHOWN: usize = 10;
    let mut listed = known
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if known.len() > SHOWN {
        listed.push_str(&format!(" and {} more", known.len() - SHOWN));
    }
    format!("the stack's objects are: {listed}")
}

/// What to do about each kind of blocker the steps hold, in a fixed order.
fn blocked_hint(steps: &[BlockedStep]) -> String {
    let any = |kind: fn(&Blocker) -> bool| steps.iter().any(|s| kind(&s.blocker));
    let mut hints = Vec::new();
    if any(|b| matches!(b, Blocker::Conflicts { .. })) {
        hints.push("rerun with --force-conflicts to take the conflicting fields over");
    }
    if any(|b| matches!(b, Blocker::Unmanaged { .. })) {
        hints.push(
            "rerun with --adopt to take over the existing objects, or rename them in the stack",
        );
    }
    if any(|b| matches!(b, Blocker::Rejected { .. })) {
        hints.push("fix what the API server rejected (see its message above)");
    }
    if any(|b| matches!(b, Blocker::Refused { .. })) {
        hints.push("fix what was refused (see the reason above)");
    }
    if any(|b| matches!(b, Blocker::Protected { .. })) {
        hints.push(
            "a protected object is never deleted or replaced: declare it again as it is, or lift its protection (the program's, or the stack file's `protect:`) if it really is to go",
        );
    }
    hints.join("; ")
}

fn cluster_hint(error: &ClusterError) -> Option<String> {
    Some(match error {
        ClusterError::KubeconfigMissing { .. } => format!(
            "{KUBECONFIG_PLACES}{}",
            in_repository("; for this repository's local control plane, `make cluster` writes .cluster/kubeconfig")
        ),
        ClusterError::Kubeconfig { path, .. } => format!(
            "check that it is a valid kubeconfig (`kubectl config view --kubeconfig {}`), or {KUBECONFIG_PLACES} to use another",
            path.display()
        ),
        ClusterError::NoCurrentContext { known, .. } if known.is_empty() => format!(
            "it holds no cluster to talk to: {KUBECONFIG_PLACES} to name the kubeconfig of your cluster"
        ),
        ClusterError::NoCurrentContext { .. } => "name one of its contexts with --context or `context:` in the stack file, or set its current context (`kubectl config use-context NAME`)".into(),
        ClusterError::CredentialPlugin { command, missing: true, .. } => format!(
            "install `{command}` or put it on PATH (kubectl needs it too), or use a kubeconfig whose user does not need it"
        ),
        ClusterError::CredentialPlugin { command, .. } => format!(
            "run `{command}` by hand to see why, or fix the user's `exec` section in the kubeconfig"
        ),
        ClusterError::PluginRefused { .. } => format!("a kubeconfig that comes with a checkout could run any command: if you trust this project, rerun with --allow-kubeconfig-exec (or {ALLOW_PLUGINS_ENV}=1); otherwise pass your own kubeconfig with --kubeconfig"),
        ClusterError::UnknownContext { .. } => "set `context:` in the stack file or pass --context with one of the contexts listed".into(),
        ClusterError::Unreachable { cause, .. } => unreachable_hint(cause),
        ClusterError::Tls { .. } => format!(
            "the kubeconfig's certificate-authority does not match this server (or the server address is wrong): get a fresh kubeconfig for the cluster{}",
            in_repository("; for the local control plane, `make cluster` writes .cluster/kubeconfig")
        ),
        ClusterError::TlsHandshake { .. } => "check the kubeconfig's server address: its scheme (https://) and port must be the API server's; if the server refused the client certificate, get a fresh kubeconfig".into(),
        ClusterError::Unauthorized { .. } => "the credential is wrong or expired: refresh it in the kubeconfig".into(),
        ClusterError::Forbidden { .. } => "ask a cluster admin for the RBAC permission named above, or use a context that has it".into(),
        ClusterError::Api { status, .. } if status.code == 404 => "the object or its namespace does not exist".into(),
        ClusterError::UnknownKind { .. } => "install the API that serves it (for a custom resource, its CustomResourceDefinition) or fix the object's apiVersion and kind".into(),
        ClusterError::NamespaceRequired { .. } => "set metadata.namespace on the object".into(),
        _ => return None,
    })
}

/// What to do about a server that gave no answer, by why it gave none.
fn unreachable_hint(cause: &Transport) -> String {
    const ADDRESS: &str = "`kubectl config view --minify` shows the address used";
    match cause {
        Transport::Refused => format!(
            "check that the cluster is running and that the kubeconfig's server address and port are right ({ADDRESS})"
        ),
        Transport::Closed => "the server accepted the connection and closed it: it may be restarting (run the command again in a moment), or the address is not an API server's".into(),
        Transport::NoRoute => format!(
            "check the network path to the cluster (VPN, firewall) and the kubeconfig's server address ({ADDRESS})"
        ),
        Transport::NameNotResolved { .. } => format!(
            "check the host name in the kubeconfig's server address, and that your DNS (or VPN) knows it ({ADDRESS})"
        ),
        Transport::ConnectTimeout(_) => format!(
            "nothing answers at that address: check it ({ADDRESS}), and any firewall or VPN in the way"
        ),
        Transport::NoResponse(_) => "the server took the request and did not answer in time: it may be overloaded, or not an API server; raise --request-timeout (`0` waits without limit)".into(),
        _ => format!(
            "check that the cluster is running and the kubeconfig's server address is right ({ADDRESS})"
        ),
    }
}

fn state_hint(error: &StateError) -> Option<String> {
    let bin = crate::name::bin();
    Some(match error {
        StateError::Io { path, source, .. } => match source.kind() {
            io::ErrorKind::PermissionDenied => format!(
                "check that your user owns {} and may write to it",
                path.parent().unwrap_or(path).display()
            ),
            io::ErrorKind::StorageFull => "free some disk space and run the command again".into(),
            _ => return None,
        },
        StateError::Encode { .. } => return None,
        StateError::Corrupt { recovery, .. } => return recovery_hint(recovery.as_ref()),
        StateError::NewerVersion { .. } => {
            format!("upgrade {bin} to the version that wrote this state; it was left unchanged")
        }
        StateError::WrongStack {
            location,
            expected,
            found,
        } => format!(
            "it was probably copied or renamed from stack `{found}`. Select stack `{found}` instead, or put the state of `{expected}` back at {location}"
        ),
        StateError::Conflict { .. } => {
            "run the command again so it starts from the newer state; nothing was written".into()
        }
        StateError::Locked {
            location,
            holder,
            kind,
            ..
        } => {
            let who = match holder {
                Some(h) => format!("pid {} on host {}", h.pid, h.host),
                None => "the holder".to_string(),
            };
            match kind {
                LockKind::File { path } => format!(
                    "wait for that run to finish, or stop {who} if it hangs. The lock on {} is released by the system when its process exits, so never delete the file to break it",
                    path.display()
                ),
                LockKind::Lease {
                    renew_every,
                    duration,
                } => format!(
                    "wait for that run to finish (or pass --wait-for-lock), or stop {who} if it hangs. The holder renews {location} every {}s; if it dies, the lease runs out {}s after its last renewal and the next run takes it: there is nothing to unlock by hand",
                    renew_every.as_secs(),
                    duration.as_secs(),
                ),
            }
        }
        StateError::LockLost { .. } => format!(
            "another run may have taken the stack over since: run `{bin} preview` to see where the stack stands, then run the command again"
        ),
        StateError::SerialExhausted { .. } => "a state's serial grows by one per write, so this one was set by hand: lower its `serial` (and that of any kept copy above it), then run the command again; nothing was written".into(),
        StateError::RevisionNotKept { kept, .. } if kept.is_empty() => {
            format!("run `{bin} up` first: each write of the state is a revision")
        }
        StateError::RevisionNotKept { .. } => format!(
            "pick one of those with --revision; `{bin} stack history` says when each was written and by whom"
        ),
        StateError::Foreign { location, .. } => format!(
            "{bin} did not write {location}, and neither read nor changed it: look at it with `kubectl get -o yaml`, remove it if it is nobody's, and keep the backend in a namespace of its own that only the stack's runs may write"
        ),
        StateError::UnsafePath { hint, .. } => hint.clone(),
        StateError::BackendNamespaceMissing { namespace } => format!(
            "create it (`kubectl create namespace {namespace}`), or point `backend:` in the stack file (or ECHO_IAC_BACKEND) at a namespace that exists"
        ),
        StateError::Cluster { source, .. } => return cluster_hint(source),
    })
}

fn recovery_hint(recovery: &Recovery) -> Option<String> {
    let bin = crate::name::bin();
    Some(match recovery {
        Recovery::Unknown => return None,
        Recovery::File {
            file,
            good: Some(good),
            ..
        } => format!(
            "the file was left unchanged. Compare it with the last good copy (`diff {good} {file}`), then restore that copy with `cp {good} {file}` and run `{bin} preview` to see what changed since",
            good = good.display(),
            file = file.display(),
        ),
        Recovery::File {
            good: None,
            history,
            ..
        } => format!(
            "the file was left unchanged and no readable copy exists under {}. Repair it by hand at the position above; moving it aside would make {bin} forget the objects this stack owns",
            history.display()
        ),
        Recovery::Revision {
            good: Some(good), ..
        } => format!(
            "the Secret was left unchanged. Look at the last good revision with `{bin} stack export --revision {good}`, restore it with `{bin} stack export --revision {good} state.json && {bin} stack import --force state.json`, then run `{bin} preview` to see what changed since"
        ),
        Recovery::Revision {
            good: None,
            damaged,
        } => format!(
            "the Secret was left unchanged and no kept revision reads. Restore it from a backup or an `{bin} stack export` (`{bin} stack import --force FILE`); deleting it would make {bin} forget the objects this stack owns (`{bin} refresh` finds them again by their labels). Revision {damaged} is the damaged one"
        ),
        Recovery::Index { namespace, secret } => format!(
            "it was left unchanged. Its index names the revisions kept, so without it none can be found: restore the Secret from a backup, or from a `{bin} stack export` (`{bin} stack import --force FILE`), e.g. one taken with `kubectl get secret -n {namespace} {secret} -o yaml`"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use echo_iac_engine::{Conflict, ResourceId};

    #[test]
    fn a_blocked_plan_names_its_objects_and_what_to_do_about_each_blocker() {
        let step = |name: &str, blocker: Blocker| BlockedStep {
            id: ResourceId::new("v1", "ConfigMap", Some("ns"), name),
            blocker,
        };
        let error = Error::from(EngineError::Blocked {
            steps: vec![
                step("a", Blocker::Unmanaged { owner: None }),
                step(
                    "b",
                    Blocker::Conflicts {
                        conflicts: vec![Conflict {
                            path: "data.k".into(),
                            manager: "kubectl".into(),
                        }],
                    },
                ),
            ],
        });
        assert_eq!(
            error.message(),
            "2 step(s) cannot be carried out as planned (see the preview above)"
        );
        assert_eq!(
            error.hint().as_deref(),
            Some(
                "rerun with --force-conflicts to take the conflicting fields over; rerun with --adopt to take over the existing objects, or rename them in the stack"
            )
        );
        assert_eq!(error.kind(), "blocked");
        assert_eq!(error.objects(), ["ConfigMap ns/a", "ConfigMap ns/b"]);
    }
}
