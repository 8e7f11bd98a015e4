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
