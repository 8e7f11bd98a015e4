//! echo-iac-engine: desired Kubernetes objects in, a plan out, then apply,
//! wait and record. It knows no program, no stack file and no command line:
//! a program hands it typed objects with their dependencies, and the caller
//! decides how to show plans and errors.

mod apply;
pub mod cluster;
pub mod declare;
pub mod diff;
mod error;
mod fault;
mod field_path;
mod identity;
pub mod live;
mod nodeports;
pub mod operation;
mod plan;
pub mod planner;
pub mod ready;
mod reasons;
mod references;
mod resource;
pub mod sensitive;
pub mod state;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod untracked;

pub use error::EngineError;
pub use plan::{BlockedStep, Blocker, Change, Conflict, Op, Plan, Step, Summary, Untracked};
pub use resource::{DesiredResource, ResourceId};

pub use identity::{Identity, MANAGED_BY_LABEL};
