//! Crash and pause points, switched on by tests to prove that a run killed
//! or interrupted at any step leaves a stack the next run can recover.
//!
//! `ECHO_IAC_FAULT=<point>:<n>[:pause]` (several separated by commas) acts
//! the n-th time the process reaches `<point>`:
//!
//! - by default it kills the process with SIGKILL: no destructor runs and
//!   nothing is flushed, as after `kill -9`, an OOM kill or a power cut;
//! - with `pause` it prints `echo-iac: paused at <point>:<n> (pid <pid>)` to
//!   stderr and waits until it gets SIGUSR1 or a new interrupt (Ctrl-C,
//!   SIGTERM), so a test can act while the run holds the lock, or signal it
//!   at a known step, without sleeping and hoping.
//!
//! The variable is read once. Unset, a point costs one atomic load. Without
//! the `fault-points` feature (release builds) a point is an empty function
//! and the variable is ignored.

use crate::Cancel;
#[cfg(feature = "fault-points")]
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(feature = "fault-points")]
use std::time::Duration;

/// The environment variable that switches faults on.
#[cfg(feature = "fault-points")]
pub const ENV: &str = "ECHO_IAC_FAULT";

#[cfg(feature = "fault-points")]
/// A pause that nobody resumes ends after this long, so a forgotten test
/// process does not hold a stack's lock forever.
const PAUSE_LIMIT: Duration = Duration::from_secs(600);

/// The places a fault can strike.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// A mutating call is journaled as pending and not yet sent.
    BeforeApply,
    /// An apply returned and is not yet recorded in the state.
    AfterApply,
    /// One poll of the readiness wait, after every apply was recorded.
    Wait,
    /// A delete was accepted and is not yet recorded in the state.
    Delete,
    /// A retained object's ownership labels were removed, and it is not
    /// yet dropped from the state.
    Retain,
    /// A state backend is about to make a new revision current: the
    /// cluster backend to send it, the file backend to rename it (written
    /// and synced to a temp file) over the state file.
    StateWrite,
}

#[cfg(any(test, feature = "fault-points"))]
const POINTS: [Point; 6] = [
    Point::BeforeApply,
    Point::AfterApply,
    Point::Wait,
    Point::Delete,
    Point::Retain,
    Point::StateWrite,
];

impl Point {
    #[cfg(any(test, feature = "fault-points"))]
    pub fn name(self) -> &'static str {
        match self {
            Point::BeforeApply => "before-apply",
            Point::AfterApply => "after-apply",
            Point::Wait => "wait",
            Point::Delete => "delete",
            Point::Retain => "retain",
            Point::StateWrite => "state-write",
        }
    }

    #[cfg(feature = "fault-points")]
    fn index(self) -> usize {
        self as usize
    }
}

#[cfg(any(test, feature = "fault-points"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Kill,
    Pause,
}

#[cfg(any(test, feature = "fault-points"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Rule {
    point: Point,
    nth: u64,
    action: Action,
}

#[cfg(feature = "fault-points")]
/// How many times each point has been reached, by [`Point::index`].
static REACHED: [AtomicU64; POINTS.len()] = [const { AtomicU64::new(0) }; POINTS.len()];

#[cfg(feature = "fault-points")]
fn rules() -> &'static [Rule] {
    use std::io::Write;
    static RULES: std::sync::OnceLock<Vec<Rule>> = std::sync::OnceLock::new();
    RULES.get_or_init(|| {
        let Ok(spec) = std::env::var(ENV) else {
            return Vec::new();
        };
        let (rules, errors) = parse(&spec);
        for error in errors {
            let _ = writeln!(std::io::stderr(), "echo-iac: ignoring {ENV} entry {error}");
        }
        rules
    })
}

#[cfg(any(test, feature = "fault-points"))]
/// Parses `<point>:<n>[:pause]` entries; returns the valid rules and a
/// message for each invalid entry.
fn parse(spec: &str) -> (Vec<Rule>, Vec<String>) {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let mut parts = entry.split(':');
        let point = parts
            .next()
            .and_then(|name| POINTS.into_iter().find(|p| p.name() == name));
        let nth = parts.next().and_then(|n| n.parse::<u64>().ok());
        let action = match parts.next() {
            None | Some("kill") => Some(Action::Kill),
            Some("pause") => Some(Action::Pause),
            Some(_) => None,
        };
        match (point, nth, action, parts.next()) {
            (Some(point), Some(nth), Some(action), None) if nth > 0 => {
                rules.push(Rule { point, nth, action })
            }
            _ => errors.push(format!(
                "`{entry}`: expected <point>:<n>[:pause] with point one of {} and n from 1",
                POINTS.map(Point::name).join(", ")
            )),
        }
    }
    (rules, errors)
}

/// Marks that the run reached `point`; kills or pauses the process if a
/// rule says so. `cancel` is the run's interrupt flag, which ends a pause.
#[cfg(feature = "fault-points")]
pub async fn reached(point: Point, cancel: &Cancel) {
    let rules = rules();
    if rules.is_empty() {
        return;
    }
    let count = REACHED[point.index()].fetch_add(1, Ordering::SeqCst) + 1;
    for rule in rules.iter().filter(|r| r.point == point && r.nth == count) {
        match rule.action {
            Action::Kill => kill(),
            Action::Pause => pause(point, count, cancel).await,
        }
    }
}

#[cfg(not(feature = "fault-points"))]
pub async fn reached(_point: Point, _cancel: &Cancel) {}

#[cfg(feature = "fault-points")]
fn kill() -> ! {
    // SAFETY: kill(2) on our own pid has no memory-safety preconditions.
    unsafe {
        libc::kill(libc::getpid(), libc::SIGKILL);
    }
    // SIGKILL cannot be caught, so this only runs if kill(2) failed.
    std::process::abort()
}

#[cfg(feature = "fault-points")]
async fn pause(point: Point, count: u64, cancel: &Cancel) {
    use std::io::Write;
    use tokio::signal::unix::{SignalKind, signal};
    // Installed before announcing the pause: a SIGUSR1 that arrived without
    // a handler would end the process.
    let mut resume = signal(SignalKind::user_defined1()).ok();
    let _ = writeln!(
        std::io::stderr(),
        "echo-iac: paused at {}:{count} (pid {})",
        point.name(),
        std::process::id()
    );
    // Only an interrupt that arrives during the pause ends it, so that a
    // test can pause a run that is already winding down and interrupt it
    // a second time.
    let interrupted_before = cancel.is_cancelled();
    let deadline = tokio::time::Instant::now() + PAUSE_LIMIT;
    while (interrupted_before || !cancel.is_cancelled()) && tokio::time::Instant::now() < deadline {
        let resumed = async {
            match resume.as_mut() {
                Some(signal) => {
                    signal.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = resumed => break,
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_name_a_point_a_count_and_maybe_pause() {
        let (rules, errors) = parse("before-apply:2, wait:1:pause,delete:3:kill");
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            rules,
            [
                Rule {
                    point: Point::BeforeApply,
                    nth: 2,
                    action: Action::Kill
                },
                Rule {
                    point: Point::Wait,
                    nth: 1,
                    action: Action::Pause
                },
                Rule {
                    point: Point::Delete,
                    nth: 3,
                    action: Action::Kill
                },
            ]
        );
    }

    #[test]
    fn invalid_entries_are_reported_and_skipped() {
        let (rules, errors) = parse("nowhere:1,wait:0,wait:x,wait:1:later,after-apply:1:pause:9");
        assert!(rules.is_empty(), "{rules:?}");
        assert_eq!(errors.len(), 5, "{errors:?}");
        assert!(errors[0].contains("before-apply, after-apply, wait, delete, retain, state-write"));
    }
}
