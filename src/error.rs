//! The one error a command returns, and how it is shown: a message, a hint
//! saying what to do next, and a stable exit code.

use std::fmt;

use crate::project::ProjectError;
use crate::stack::StackError;
use echo_iac_engine::EngineError;
use echo_iac_engine::cluster::ClusterError;
use echo_iac_engine::state::StateError;

/// Exit codes, stable and documented in the README.
pub mod exit {
    pub const SUCCESS: i32 = 0;
    pub const ERROR: i32 = 1;
    /// `preview --expect-no-changes` found changes.
    pub const CHANGES: i32 = 2;
    pub const INTERRUPTED: i32 = 130;
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Project(#[from] ProjectError),
    #[error(transparent)]
    Stack(#[from] StackError),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A request the command refuses as given.
    #[error("{message}")]
    Refused { message: String, hint: String },
    /// Not a failure to report: the command already said what it found and
    /// only its exit code is left.
    #[error("")]
    Exit(i32),
}

impl Error {
    pub fn refused(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Refused {
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Exit(code) => *code,
            Error::Engine(EngineError::Interrupted) => exit::INTERRUPTED,
            _ => exit::ERROR,
        }
    }

    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Project(e) => e.hint(),
            Error::Stack(e) => e.hint(),
            Error::State(e) => e.hint(),
            Error::Cluster(e) => e.hint(),
            Error::Engine(e) => e.hint(),
            Error::Refused { hint, .. } => Some(hint.clone()),
            Error::Exit(_) => None,
        }
    }

    /// The message as printed: `error: …` then `hint: …`, or nothing for
    /// [`Error::Exit`].
    pub fn report(&self) -> Option<Report<'_>> {
        (!matches!(self, Error::Exit(_))).then_some(Report(self))
    }
}

pub struct Report<'a>(&'a Error);

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "error: {}", self.0)?;
        if let Some(hint) = self.0.hint() {
            write!(f, "\nhint: {hint}")?;
        }
        Ok(())
    }
}
