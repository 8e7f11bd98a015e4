//! echo-iac: the echo stack as code, kept in step with a Kubernetes cluster
//! through previews and server-side apply. The echo program (`program`) is
//! written against the engine crate, `echo-iac-engine`; the rest is the
//! command line that runs it.

pub mod cli;
pub mod commands;
mod error;
mod logging;
mod program;
mod project;
mod render;
mod stack;
mod suggest;

pub use error::exit;
