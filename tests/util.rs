//! The shared test helpers (the `echo-iac-testutil` crate), under the name
//! the integration tests use.

pub use echo_iac_testutil::*;
