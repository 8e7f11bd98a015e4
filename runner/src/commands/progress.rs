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
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::ColorChoice;
use echo_iac_engine::operation::Event;
use echo_iac_engine::operation::Observer;
use echo_iac_engine::ready::Readiness;
use echo_iac_engine::{Op, ResourceId};

use super::note;

/// Above this many objects to wait for, progress is a count, not a line each.
const LINES: usize = 20;
/// Longest reason a plain line shows; the final error gives it whole.
const PLAIN_REASON_CHARS: usize = 100;
const TICK: Duration = Duration::from_millis(120);
const SPINNER: &[&str] = &["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏", " "];

const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const RED: &str = "\x1b[31m";
const CYAN: &str = "\x1b[36m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Quiet,
    Plain,
    Live,
}

impl Mode {
    /// Live only where a person watches: stdout and stderr both on a
    /// terminal that can move its cursor, and no log lines interleaved.
    pub(crate) fn choose(quiet: bool, logging: bool) -> Mode {
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
pub(crate) fn stderr_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
        }
    }
}

/// The live display on screen, if any, so that a line printed from
/// elsewhere while it runs (Ctrl-C's notice) goes above its lines instead
/// of between them, where it would shift them and leave copies behind.
static LIVE: Mutex<Option<MultiProgress>> = Mutex::new(None);

/// Prints the notice of an interrupt on stderr, above the live lines when
/// a display is live. `keyboard`: it came from Ctrl-C, which the terminal
/// may have echoed as `^C` past the live lines' last column, on a line of
/// its own that the display does not know of; that line is taken away
/// first, or each redraw would leave a copy of a live line behind.
pub(crate) fn note_interrupt(text: &str, keyboard: bool) {
    let live = LIVE.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match live {
        Some(multi) => {
            if keyboard && echoes_control_keys() {
                let _ = write!(std::io::stderr(), "\r\x1b[2K\x1b[1A");
            }
            let _ = multi.println(text);
        }
        None => note(text),
    }
}

/// Whether the terminal on stdin echoes Ctrl-C as `^C` (ECHO and ECHOCTL,
/// the default of every terminal).
fn echoes_control_keys() -> bool {
    // SAFETY: tcgetattr only writes the termios it is given, and fails
    // harmlessly when stdin is not a terminal.
    let mut termios: libc::termios = unsafe { std::mem::zeroed() };
    let read = unsafe { libc::tcgetattr(libc::STDIN_FILENO, &mut termios) } == 0;
    let wanted = libc::ECHO | libc::ECHOCTL;
    read && termios.c_lflag & wanted == wanted
}

pub(crate) struct Progress {
    mode: Mode,
    color: bool,
    multi: MultiProgress,
    /// Live lines of the steps in flight.
    steps: Mutex<HashMap<ResourceId, ProgressBar>>,
    /// Live lines of the readiness wait, in target order.
    waits: Mutex<Vec<ProgressBar>>,
    /// The reason each object's plain line last showed, so that a reason
    /// that stays (a long pull error) is shown once, not on every update.
    shown_reasons: Mutex<HashMap<ResourceId, String>>,
}

impl Progress {
    pub(crate) fn new(mode: Mode, color: bool) -> Self {
        let target = match mode {
            Mode::Live => ProgressDrawTarget::stderr_with_hz(10),
            _ => ProgressDrawTarget::hidden(),
        };
        let multi = MultiProgress::with_draw_target(target);
        if mode == Mode::Live {
            *LIVE.lock().unwrap_or_else(|e| e.into_inner()) = Some(multi.clone());
        }
        Progress {
            mode,
            color,
            multi,
            steps: Mutex::new(HashMap::new()),
            waits: Mutex::new(Vec::new()),
            shown_reasons: Mutex::new(HashMap::new()),
        }
    }

    /// A line above the live ones (or just a line).
    pub(crate) fn note(&self, text: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain => note(text),
            Mode::Live => {
                let _ = self.multi.println(text);
            }
        }
    }

    /// An applied or deleted object: started, finished, or a remark on it.
    pub(crate) fn on_event(&self, event: Event<'_>) {
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
    pub(crate) fn waiting(&self, changed: &[&Readiness], all: &[Readiness]) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Plain => {
                // A line per object reads well for a few; for many, a count.
                if all.len() > LINES {
                    let ready = all.iter().filter(|r| r.ready).count();
                    note(&format!("    {ready}/{} ready", all.len()));
                    return;
                }
                let mut shown = self
                    .shown_reasons
                    .lock()
                    .expect("progress lock is never poisoned");
                for r in changed {
                    let why = match &r.reason {
                        Some(why) if shown.get(&r.id) != Some(why) => {
                            shown.insert(r.id.clone(), why.clone());
                            format!("; {}", cut(why, PLAIN_REASON_CHARS))
                        }
                        _ => String::new(),
                    };
                    note(&format!(
                        "    {} {}: {}{why}",
                        if r.ready { "✓" } else { "…" },
                        r.id,
                        r.progress,
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
                // The line is cut at the terminal's width as it is drawn;
                // the prefix (not drawn) keeps what it settles on.
                bar.set_prefix(format!("{}: {}", r.id, r.progress));
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
            Op::Delete | Op::Retain => RED,
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
    /// A run that stops early (an error, Ctrl-C) takes its live lines away
    /// and leaves each as a plain line of where it stood, whole: a line
    /// left drawn would keep its spinner and be cut at the terminal's
    /// width. The reason it was waiting on is the final error's to give.
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
        let mut left = Vec::new();
        for bar in &bars {
            if !bar.is_finished() {
                bar.disable_steady_tick();
                let prefix = bar.prefix();
                left.push(if prefix.is_empty() {
                    bar.message()
                } else {
                    prefix
                });
            }
        }
        if self.mode == Mode::Live {
            *LIVE.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        if self.mode == Mode::Live && !bars.is_empty() {
            // Wipe the drawn lines first, then stop drawing: removing the
            // last bar leaves the screen as it was.
            let _ = self.multi.clear();
            self.multi.set_draw_target(ProgressDrawTarget::hidden());
        }
        for bar in &bars {
            self.retire(bar);
        }
        for line in left {
            note(&format!("   {line}"));
        }
    }
}

/// `text` cut to `max` characters, with `…` where it was cut.
fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn past_tense(op: Op) -> &'static str {
    match op {
        Op::Same => "unchanged",
        Op::Create => "created",
        Op::Update => "updated",
        Op::Replace => "replaced",
        Op::Delete => "deleted",
        Op::Retain => "retained",
    }
}

fn present_tense(op: Op) -> &'static str {
    match op {
        Op::Same => "checking",
        Op::Create => "creating",
        Op::Update => "updating",
        Op::Replace => "replacing",
        Op::Delete => "deleting",
        Op::Retain => "retaining",
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
