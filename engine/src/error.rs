//! What can stop a preview, an apply or a destroy.

use crate::cluster::ClusterError;
use crate::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("namespace `{0}` does not exist")]
    NamespaceMissing(String),
    #[error("namespace `{0}` is being deleted, so nothing can be created in it")]
    NamespaceTerminating(String),
    #[error("{count} step(s) cannot be carried out as planned (see the preview above)")]
    Blocked { count: usize, hint: String },
    #[error("{what} did not become ready within {timeout}:\n{details}")]
    Timeout {
        what: String,
        timeout: String,
        details: String,
    },
    #[error("{id} was deleted but is still there after {timeout} (finalizers: {finalizers})")]
    NotGone {
        id: String,
        timeout: String,
        finalizers: String,
    },
    #[error("rollout of {id} failed: {details}")]
    RolloutFailed { id: String, details: String },
    /// An object other than a Deployment that, by the rules of its kind,
    /// will not become ready without a change (a failed Job, a stalled
    /// resource, a CRD whose names clash).
    #[error("{id} failed: {details}")]
    Failed { id: String, details: String },
    /// Every new pod of a rollout has been stuck for the grace period on a
    /// reason that waiting does not fix.
    #[error(
        "{id} cannot become ready: every new pod has been stuck for {grace} on a reason that waiting will not fix:\n{details}"
    )]
    Stuck {
        id: String,
        grace: String,
        details: String,
        /// What to fix, for the hint.
        fix: String,
    },
    #[error("interrupted; steps in flight were finished and recorded")]
    Interrupted,
}

impl EngineError {
    pub fn hint(&self) -> Option<String> {
        match self {
            EngineError::Cluster(e) => e.hint(),
            EngineError::State(e) => e.hint(),
            EngineError::NamespaceMissing(_) => Some(
                "create it, or set `createNamespace: true` in the stack file so the stack creates it"
                    .into(),
            ),
            EngineError::NamespaceTerminating(_) => {
                Some("wait until the namespace is gone, then run again".into())
            }
            EngineError::Blocked { hint, .. } => Some(hint.clone()),
            EngineError::Timeout { .. } => Some(
                "the changes were applied and recorded; run `echo-iac up` again to keep waiting, or raise --timeout".into(),
            ),
            EngineError::NotGone { .. } => Some(
                "something still holds it, usually a finalizer named above whose controller has not finished; the step is recorded as pending, so run the command again once it is gone, or raise --timeout".into(),
            ),
            EngineError::RolloutFailed { .. } => Some(
                "fix the cause above (image, resources, config) and run `echo-iac up` again".into(),
            ),
            EngineError::Failed { .. } => Some(
                "fix the cause above and run `echo-iac up` again".into(),
            ),
            EngineError::Stuck { fix, .. } => Some(format!(
                "{fix}; what was applied is recorded, so run `echo-iac up` again once it is fixed (--wait-grace sets how long a stuck rollout is waited for)"
            )),
            EngineError::Interrupted => {
                Some("run the command again to finish what was started".into())
            }
        }
    }
}
