//! What `up` and `destroy` show while they work.
//!
//! On a terminal: one live line per object in flight, with a spinner, its
//! state and, while waiting, its newest reason; finished objects stay as
//! one settled line each, so the screen ends as a summary of the run.
//! Anywhere else (CI logs, a pipe, a file): plain lines, one per event,
//! that never change once written and carry no control codes. `--json`
//! shows nothing, and `-v` keeps plain lines so that log lines and
//! progress do not overwrite each other.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::ColorChoice;
use echo_iac_engine::apply::Event;
use echo_iac_engine::operation::Observer;
use echo_iac_engine::ready::Readiness;
use echo_iac_engine::{Op, ResourceId};

use super::note;

/// Above this many objects to wait for, progress is a count, not a line each.
const LINES: usize = 20;
const TICK: Duration = Duration::from_millis(120);
const SPINNER: &[&str] = &["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏", " "];

const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const RED: &str = "\x1b[31m";
const CYAN: &str = "\x1b[36m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Quiet,
    Plain,
    Live,
}

impl Mode {
    /// Live only where a person watches: stdout and stderr both on a
    /// terminal that can move its cursor, and no log lines interleaved.
    pub fn choose(quiet: bool, logging: bool) -> Mode {
        if quiet {
            return Mode::Quiet;
        }
        let terminal = std::io::stderr().is_terminal()
            && std::io::stdout().is_terminal()
            && std::env::var("TERM").map_or(true, |t| t != "dumb");
        if terminal && !logging {
            Mode::Live
        } else {
            Mode::Plain
        }
    }
}

/// Colors on stderr: `--color`, else none under `NO_COLOR` or off a terminal.
pub fn stderr_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
        }
    }
}

pub struct Progress {
    mode: Mode,
    color: bool,
    multi: MultiProgress,
    /// Live lines of the steps in flight.
    steps: Mutex<HashMap<ResourceId, ProgressBar>>,
    /// Live lines of the readiness wait, in target order.
    waits: Mutex<Vec<ProgressBar>>,
}

impl Progress {
    pub fn new(mode: Mode, color: bool) -> Self {
        let target = match mode {
            Mode::Live => ProgressDrawTarget::stderr_with_hz(10),
            _ => ProgressDrawTarget::hidden(),
        };
        Progress {
            mode,
            color,
            multi: MultiProgress::with_draw_target(target),
            steps: Mutex::new(HashMap::new()),
            waits: Mutex::new(Vec::new()),
        }
    }

    /// A line above the live ones (or just a line).
    pub fn note(&self, text: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain => note(text),
            Mode::Live => {
                let _ = self.multi.println(text);
            }
        }
    }

    /// An applied or deleted object: started, finished, or a remark on it.
    pub fn on_event(&self, event: Event<'_>) {
        match (self.mode, event) {
            (Mode::Quiet, _) => {}
            (Mode::Plain, Event::Started { .. }) => {}
            (_, Event::Finished { op, id, elapsed }) => {
                let line = format!(
                    " {} {id} {} ({:.1}s)",
                    self.mark(op),
                    past_tense(op),
                    elapsed.as_secs_f64()
                );
                match self.mode {
                    Mode::Live => {
                        if let Some(bar) = self.lock_steps().remove(id) {
                            self.retire(&bar);
                        }
                        self.note(&line);
                    }
                    _ => note(&line),
                }
            }
            (_, Event::Note { id, message }) => {
                let mark = self.paint(RED, "! ");
                self.note(&format!(" {mark} {id}: {message}"));
            }
            (Mode::Live, Event::Started { op, id }) => {
                let bar = self.spinner();
                bar.set_message(format!(
                    "{} {id} {}…",
                    self.mark(op),
                    self.paint(DIM, present_tense(op))
                ));
                self.lock_steps().insert(id.clone(), bar);
            }
        }
    }

    /// The readiness wait: the targets whose state changed, and all of them.
    pub fn waiting(&self, changed: &[&Readiness], all: &[Readiness]) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain => {
                // A line per object reads well for a few; for many, a count.
                if all.len() > LINES {
                    let ready = all.iter().filter(|r| r.ready).count();
                    note(&format!("    {ready}/{} ready", all.len()));
                    return;
                }
                for r in changed {
                    note(&format!(
                        "    {} {}: {}{}",
                        if r.ready { "✓" } else { "…" },
                        r.id,
                        r.progress,
                        reason(r)
                    ));
                }
            }
            Mode::Live => self.waiting_live(all),
        }
    }

    fn waiting_live(&self, all: &[Readiness]) {
        let mut bars = self.waits.lock().expect("progress lock is never poisoned");
        if bars.is_empty() {
            let count = if all.len() > LINES { 1 } else { all.len() };
            bars.extend((0..count).map(|_| self.spinner()));
        }
        if all.len() > LINES {
            let ready = all.iter().filter(|r| r.ready).count();
            let line = format!("{ready}/{} ready", all.len());
            if ready == all.len() {
                self.retire(&bars[0]);
                self.note(&format!(" {} {line}", self.paint(GREEN, "✓")));
            } else {
                bars[0].set_message(line);
            }
            return;
        }
        for (bar, r) in bars.iter().zip(all) {
            if bar.is_finished() {
                continue;
            }
            if r.ready {
                self.retire(bar);
                self.note(&format!(
                    " {}  {}: {}",
                    self.paint(GREEN, "✓"),
                    r.id,
                    r.progress
                ));
            } else {
                let why = r
                    .reason
                    .as_deref()
                    .map(|why| format!("; {}", self.paint(YELLOW, why)))
                    .unwrap_or_default();
                bar.set_message(format!("{}: {}{why}", r.id, r.progress));
            }
        }
    }

    /// Takes a live line away; what it settled on is printed above the
    /// live lines, where nothing redraws it. (A bar that finishes within
    /// one frame of starting may never be drawn, so finished bars are not
    /// left to show the outcome.)
    fn retire(&self, bar: &ProgressBar) {
        bar.finish_and_clear();
        self.multi.remove(bar);
    }

    fn spinner(&self) -> ProgressBar {
        let template = if self.color {
            format!(" {CYAN}{{spinner}}{RESET} {{wide_msg}}")
        } else {
            " {spinner} {wide_msg}".to_string()
        };
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template(&template)
                .expect("the template is valid")
                .tick_strings(SPINNER),
        );
        bar.enable_steady_tick(TICK);
        bar
    }

    fn mark(&self, op: Op) -> String {
        let color = match op {
            Op::Create => GREEN,
            Op::Update | Op::Replace => YELLOW,
            Op::Delete => RED,
            Op::Same => "",
        };
        // Padded before painting: escape codes have no width.
        self.paint(color, &format!("{:<2}", op.mark()))
    }

    fn paint(&self, color: &str, text: &str) -> String {
        if self.color && !color.is_empty() {
            format!("{color}{text}{RESET}")
        } else {
            text.to_string()
        }
    }

    fn lock_steps(&self) -> std::sync::MutexGuard<'_, HashMap<ResourceId, ProgressBar>> {
        self.steps.lock().expect("progress lock is never poisoned")
    }
}

impl Drop for Progress {
    /// A run that stops early (an error, Ctrl-C) leaves each live line as
    /// it last was, without a spinner, above the error.
    fn drop(&mut self) {
        let bars = self
            .lock_steps()
            .drain()
            .map(|(_, bar)| bar)
            .chain(
                self.waits
                    .lock()
                    .expect("progress lock is never poisoned")
                    .drain(..),
            )
            .collect::<Vec<_>>();
        for bar in bars {
            if !bar.is_finished() {
                // Truncated to the terminal's width, like the live line.
                bar.set_style(
                    ProgressStyle::with_template("   {wide_msg}").expect("the template is valid"),
                );
                bar.abandon();
            }
        }
    }
}

fn reason(r: &Readiness) -> String {
    r.reason
        .as_deref()
        .map(|why| format!("; {why}"))
        .unwrap_or_default()
}

fn past_tense(op: Op) -> &'static str {
    match op {
        Op::Same => "unchanged",
        Op::Create => "created",
        Op::Update => "updated",
        Op::Replace => "replaced",
        Op::Delete => "deleted",
    }
}

fn present_tense(op: Op) -> &'static str {
    match op {
        Op::Same => "checking",
        Op::Create => "creating",
        Op::Update => "updating",
        Op::Replace => "replacing",
        Op::Delete => "deleting",
    }
}

impl Observer for Progress {
    fn event(&self, event: Event<'_>) {
        self.on_event(event);
    }

    fn waiting(&self, changed: &[&Readiness], all: &[Readiness]) {
        Progress::waiting(self, changed, all);
    }

    fn note(&self, message: &str) {
        Progress::note(self, message);
    }
}
