//! The running program's name, as hints and messages spell its commands
//! (`run `quorum-iac up` again`). Set once by the runner before any command
//! runs; the tool's own name until then.

use std::sync::OnceLock;

static NAME: OnceLock<&'static str> = OnceLock::new();

/// The name of the running program's binary.
pub(crate) fn bin() -> &'static str {
    NAME.get().copied().unwrap_or("echo-iac")
}

pub(crate) fn set(name: &'static str) {
    let _ = NAME.set(name);
}
