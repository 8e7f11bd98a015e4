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

static VERSION: OnceLock<&'static str> = OnceLock::new();

/// The running program's version, as `--version` prints it.
pub(crate) fn version() -> &'static str {
    VERSION.get().copied().unwrap_or(env!("CARGO_PKG_VERSION"))
}

pub(crate) fn set_version(version: &'static str) {
    let _ = VERSION.set(version);
}
