//! What can stop a preview, an apply or a destroy.

use crate::cluster::ClusterError;
use crate::plan::BlockedStep;
use crate::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    State(#[from] StateError),
    /// The program's declaration is not a set of objects the engine can
    /// order.
    #[error(transparent)]
    Declare(#[from] crate::declare::DeclareError),
    #[error("namespace `{0}` does not exist")]
    NamespaceMissing(String),
    #[error("namespace `{0}` is being deleted, so nothing can be created in it")]
    NamespaceTerminating(String),
    /// The plan holds steps that cannot be carried out as they stand;
    /// nothing was applied.
    #[error("{} step(s) cannot be carried out as planned (see the preview above)", steps.len())]
    Blocked {
        /// Each blocked step's object and what blocks it, in plan order.
        steps: Vec<BlockedStep>,
    },
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
