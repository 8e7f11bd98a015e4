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

use echo_iac_engine::{Plan, Step};

/// The steps a preview lists: those that do something or are blocked, or
/// every step when nothing changes.
fn listed_steps(plan: &Plan) -> Vec<&Step> {
    if plan.has_changes() {
        plan.steps
            .iter()
            .filter(|s| s.is_change() || s.blocker.is_some())
            .collect()
    } else {
        plan.steps.iter().collect()
    }
}

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod sensitive_props;
