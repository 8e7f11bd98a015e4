//! Integration tests, run against the local control plane (`make cluster`,
//! or `make test` to start and stop it around the suite). One test binary,
//! one module per area.

mod control_plane;
mod harness;
mod lifecycle;
mod stack_errors;
mod util;
