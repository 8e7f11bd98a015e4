//! echo-iac: the echo stack as code, kept in step with a Kubernetes cluster
//! through previews and server-side apply.

pub mod cli;
pub mod commands;
pub mod error;
pub mod logging;
pub mod program;
pub mod project;
pub mod render;
pub mod stack;

pub use echo_iac_engine::{FIELD_MANAGER, MANAGED_BY_LABEL, STACK_LABEL};
