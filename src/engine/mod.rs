//! The engine: desired objects in, a plan out, then apply and wait.

pub mod apply;
pub mod diff;
pub mod error;
pub mod live;
pub mod nodeports;
pub mod outputs;
pub mod plan;
pub mod planner;
pub mod ready;
pub mod reasons;
pub mod resource;

pub use error::EngineError;
pub use plan::{Blocker, Change, Conflict, Op, Plan, Step, Summary, Untracked};
pub use resource::{DesiredResource, ResourceId};
