//! What can stop a preview, an apply or a destroy.

use crate::cluster::ClusterError;
use crate::plan::BlockedStep;
use crate::state::StateError;

/// What stopped a plan, an `up` or a `destroy`. Variants carry what a
/// caller needs to tell the user how to go on, as data.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The cluster refused a request or could not be reached.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The state could not be read, written or locked.
    #[error(transparent)]
    State(#[from] StateError),
    /// The program's declaration is not a set of objects the engine can
    /// order.
    #[error(transparent)]
    Declare(#[from] crate::declare::DeclareError),
    /// The namespace the stack's objects go in does not exist, and the stack
    /// does not create it.
    #[error("namespace `{0}` does not exist")]
    NamespaceMissing(String),
    /// The namespace is being deleted.
    #[error("namespace `{0}` is being deleted, so nothing can be created in it")]
    NamespaceTerminating(String),
    /// The plan holds steps that cannot be carried out as they stand;
    /// nothing was applied.
    #[error("{} step(s) cannot be carried out as planned (see the preview above)", steps.len())]
    Blocked {
        /// Each blocked step's object and what blocks it, in plan order.
        steps: Vec<BlockedStep>,
    },
    /// The readiness wait ran out of time.
    #[error("{what} did not become ready within {timeout}:\n{details}")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long, in words (`5m`).
        timeout: String,
        /// Each object that was not ready, and why, one per line.
        details: String,
    },
    /// A deleted object was still there when the wait for it ran out.
    #[error("{id} was deleted but is still there after {timeout} (finalizers: {finalizers})")]
    NotGone {
        /// The object.
        id: String,
        /// How long it was waited for.
        timeout: String,
        /// The finalizers it still carries.
        finalizers: String,
    },
    /// A Deployment's rollout failed (past its progress deadline).
    #[error("rollout of {id} failed: {details}")]
    RolloutFailed {
        /// The Deployment.
        id: String,
        /// The controller's condition and the pods' reasons.
        details: String,
    },
    /// An object other than a Deployment that, by the rules of its kind,
    /// will not become ready without a change (a failed Job, a stalled
    /// resource, a CRD whose names clash).
    #[error("{id} failed: {details}")]
    Failed {
        /// The object.
        id: String,
        /// Why, in the words of its kind's rules.
        details: String,
    },
    /// Every new pod of a rollout has been stuck for the grace period on a
    /// reason that waiting does not fix.
    #[error(
        "{id} cannot become ready: every new pod has been stuck for {grace} on a reason that waiting will not fix:\n{details}"
    )]
    Stuck {
        /// The workload.
        id: String,
        /// How long its pods were stuck.
        grace: String,
        /// The pods' reasons, one per line.
        details: String,
        /// What to fix, for the hint.
        fix: String,
    },
    /// A target names no object the program declares or the state
    /// records; nothing was sent.
    #[error("target `{target}` names no object of this stack")]
    UnknownTarget {
        /// The target as given.
        target: String,
        /// Every object of the stack, as a target would name it
        /// (`Kind/namespace/name`), sorted.
        known: Vec<String>,
    },
    /// A revision a rollback was asked to go back to records an object
    /// that is not this program's stack's: another program wrote it.
    #[error(
        "revision {serial} was not written by {program} for stack {stack}: it records {id} without their labels"
    )]
    ForeignRevision {
        /// The revision.
        serial: u64,
        /// This program's name.
        program: String,
        /// The stack.
        stack: String,
        /// The first object without the labels.
        id: String,
    },
    /// The run was interrupted (Ctrl-C, SIGTERM): no step started after it,
    /// and the steps in flight were finished and recorded.
    #[error("interrupted; steps in flight were finished and recorded")]
    Interrupted,
}
