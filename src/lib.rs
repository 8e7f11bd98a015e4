//! echo-iac: the echo stack as code, kept in step with a Kubernetes cluster
//! through previews and server-side apply.

pub mod cli;
pub mod cluster;
pub mod commands;
pub mod engine;
pub mod error;
pub mod fault;
pub mod logging;
pub mod program;
pub mod project;
pub mod render;
pub mod stack;
pub mod state;

/// The field manager name under which every apply is made.
pub const FIELD_MANAGER: &str = "echo-iac";
/// Label every managed object carries, with value [`FIELD_MANAGER`].
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Label naming the stack that manages an object.
pub const STACK_LABEL: &str = "echo-iac.io/stack";
