//! Why a stack could not be loaded. Every error renders the same way
//! whichever side found it (serde-saphyr, the stack's checks or the
//! program's): `file:line:column: message`, then the source lines with the
//! value underlined, so the one printer at the edge needs nothing but
//! `Display` and [`StackError::hint`].

use std::fmt;
use std::path::{Path, PathBuf};

use crate::project::ProjectError;
use crate::suggest::closest;

/// A stack file that is not valid, with the place and the source around it.
#[derive(Debug)]
pub struct SourceError {
    pub(super) file: PathBuf,
    pub(super) position: Option<(usize, usize)>,
    pub(super) message: String,
    pub(super) snippet: String,
    pub(super) hint: Option<String>,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = display_path(&self.file);
        match self.position {
            Some((line, column)) => write!(f, "{}:{line}:{column}: ", file.display())?,
            None => write!(f, "{}: ", file.display())?,
        }
        f.write_str(&self.message)?;
        if !self.snippet.is_empty() {
            write!(f, "\n{}", self.snippet)?;
        }
        Ok(())
    }
}

impl std::error::Error for SourceError {}

/// Why a stack could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    /// No stack file has the name asked for.
    #[error(
        "no stack named `{name}`: {} does not exist; stacks in this project: {}",
        display_path(file).display(),
        list(available)
    )]
    NotFound {
        /// The name asked for.
        name: String,
        /// Where its file would be.
        file: PathBuf,
        /// The project's stacks, for a suggestion.
        available: Vec<String>,
    },
    /// The stack file exists but cannot be read.
    #[error("cannot read {}: {source}", display_path(file).display())]
    Read {
        /// The stack file.
        file: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: std::io::Error,
    },
    /// The file's name is not a valid stack name: the name becomes a label
    /// value, so it follows the label rules.
    #[error(
        "{}: `{}` cannot be a stack name: {reason}",
        display_path(file).display(),
        name.escape_debug()
    )]
    InvalidName {
        /// The name, from the file name.
        name: String,
        /// The stack file.
        file: PathBuf,
        /// Which rule it breaks.
        reason: String,
    },
    /// The file's content is not valid: at a line and column when known,
    /// with the source lines underlined. Boxed to keep every `Result` small.
    #[error(transparent)]
    Invalid(Box<SourceError>),
    /// No stack could be chosen in the project.
    #[error(transparent)]
    Project(#[from] ProjectError),
}

impl StackError {
    /// What to do next, for the line after the error.
    pub fn hint(&self) -> Option<String> {
        match self {
            StackError::NotFound {
                name,
                file,
                available,
            } => Some(match closest(name, available.iter().map(String::as_str)) {
                Some(close) => format!("did you mean `--stack {close}`?"),
                None if available.is_empty() => {
                    format!("create {}", display_path(file).display())
                }
                None => format!(
                    "pick one of {} with --stack NAME, or create {}",
                    list(available),
                    display_path(file).display()
                ),
            }),
            StackError::Read { source, .. } => Some(match source.kind() {
                std::io::ErrorKind::PermissionDenied => {
                    "check that your user may read the file".into()
                }
                std::io::ErrorKind::IsADirectory => {
                    "a stack is a file, `stacks/<name>.yaml`: move the folder away".into()
                }
                _ => "check that the file is a readable regular file".into(),
            }),
            StackError::InvalidName { .. } => Some(
                "rename the stack file: the stack name is a label value, up to 63 letters, \
                 digits, '-', '_' or '.', starting and ending with a letter or digit"
                    .into(),
            ),
            StackError::Invalid(err) => err.hint.clone(),
            StackError::Project(err) => err.hint(),
        }
    }

    /// Line and column (1-based, in characters) of the offending value, when
    /// the error has one.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            StackError::Invalid(err) => err.position,
            _ => None,
        }
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// `file` relative to the working directory when it lies below it: shorter to
/// read, and what the user would type.
fn display_path(file: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| file.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| file.to_path_buf())
}
