//! The programs this crate builds: the echo stack.

pub mod echo;
