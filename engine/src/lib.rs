//! echo-iac-engine: desired Kubernetes objects in, a plan out, then apply,
//! wait and record. It knows no program, no stack file and no command line:
//! a program hands it typed objects with their dependencies, and the caller
//! decides how to show plans and errors.

pub mod apply;
pub mod cluster;
pub mod diff;
pub mod error;
pub mod fault;
pub mod live;
pub mod nodeports;
pub mod plan;
pub mod planner;
pub mod ready;
pub mod reasons;
pub mod resource;
pub mod state;
#[cfg(test)]
pub mod testing;

pub use error::EngineError;
pub use plan::{Blocker, Change, Conflict, Op, Plan, Step, Summary, Untracked};
pub use resource::{DesiredResource, ResourceId};

/// The field manager name under which every apply is made.
pub const FIELD_MANAGER: &str = "echo-iac";
/// Label every managed object carries, with value [`FIELD_MANAGER`].
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Label naming the stack that manages an object.
pub const STACK_LABEL: &str = "echo-iac.io/stack";
