//! The engine: desired objects in, a plan out, then apply and wait.

pub mod diff;
pub mod plan;
pub mod resource;

pub use plan::{Blocker, Change, Conflict, Op, Plan, Step, Summary};
pub use resource::{DesiredResource, ResourceId};
