//! Human and machine output of a plan.
//!
//! Everything here is a pure function from engine types to a `String` or a
//! JSON value; printing, and deciding whether the terminal takes colors, is
//! the caller's business. That keeps the output testable with snapshots.

mod json;
mod markdown;
mod text;
mod value;

pub(crate) use json::plan_json;
pub(crate) use markdown::{MarkdownHeader, plan_markdown};
pub(crate) use text::{TextOptions, plan_text};

#[cfg(test)]
mod fixtures;
