//! What a person sees on a terminal while `up` works: driven under tmux,
//! read back with `capture-pane`. One live line per object in flight with
//! a spinner, its state and its newest reason, updated in place; settled
//! lines once done; colors unless NO_COLOR. Off a terminal, plain lines.

use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::{TestStack, node_port};
use crate::real_node::{place_on_real_node, real_node};
use crate::util;

const SPINNER: &[char] = &['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// A tmux server of this test's own (its own socket), killed at the end.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn new(name: &str) -> Self {
        Tmux {
            socket: format!("echo-iac-test-{name}-{}", std::process::id()),
        }
    }

    fn tmux(&self, args: &[&str]) -> String {
        let output = Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run tmux (Debian package tmux; .ci/run installs it)");
        assert!(
            output.status.success(),
            "tmux {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs `command` in a new 140x40 window; it stays open afterwards,
    /// with `EXIT=<code>` as its last line.
    fn start(&self, session: &str, command: &str) {
        let shell = format!("{command}; echo EXIT=$?; sleep 600");
        self.tmux(&[
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "140",
            "-y",
            "40",
            &shell,
        ]);
    }

    /// The screen as a person sees it (with `escapes`, its colors too).
    fn screen(&self, session: &str, escapes: bool) -> String {
        let mut args = vec!["capture-pane", "-p", "-S", "-", "-t", session];
        if escapes {
            args.push("-e");
        }
        self.tmux(&args)
    }

    fn wait_for_exit(&self, session: &str, timeout: Duration) -> String {
        util::wait_for(timeout, "the command to finish under tmux", || {
            let screen = self.screen(session, false);
            if screen.contains("EXIT=") {
                Ok(screen)
            } else {
                Err(screen)
            }
        })
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

fn command_line(stack: &TestStack, env: &str, args: &str) -> String {
    format!(
        "{env} {} -C {} --stack {} {args}",
        env!("CARGO_BIN_EXE_echo-iac"),
        stack.project.root().display(),
        stack.name
    )
}

#[test]
fn a_terminal_shows_a_live_line_per_object_with_its_reason_then_a_summary() {
    real_node();
    let stack = TestStack::new("live-progress");
    place_on_real_node(&stack.namespace);
    let port = node_port();
    stack.write(&format!(
        "echo:\n  replicas: 1\n  nodePort: {port}\n  image: nginx:cannot-be-pulled\n"
    ));
    let tmux = Tmux::new("live");
    tmux.start(
        "failing",
        &command_line(
            &stack,
            "env -u NO_COLOR TERM=xterm-256color",
            "up --yes --wait-grace 20s",
        ),
    );

    // While it waits: one line for the Deployment, a spinner in front, the
    // pull error as its reason; and the spinner turns.
    let deployment = format!(
        "Deployment {}/nginx-echo-nodeport: 0/1 available; ",
        stack.namespace
    );
    let mut spinners = std::collections::BTreeSet::new();
    util::wait_for(
        Duration::from_secs(40),
        "a live line with the pull reason",
        || {
            let screen = tmux.screen("failing", false);
            let line = screen
                .lines()
                .find(|l| l.contains(&deployment) && l.contains("ImagePull"))
                .ok_or_else(|| screen.clone())?;
            let first = line.trim_start().chars().next().unwrap_or(' ');
            if SPINNER.contains(&first) {
                spinners.insert(first);
            }
            if spinners.len() >= 2 {
                Ok(())
            } else {
                Err(format!("spinners seen: {spinners:?}; line: {line}"))
            }
        },
    );
    let screen = tmux.screen("failing", false);
    assert_eq!(
        screen.lines().filter(|l| l.contains(&deployment)).count(),
        1,
        "the Deployment's line is not updated in place:\n{screen}"
    );
    assert!(
        screen.contains(&format!(
            "Service {}/echo-nodeport-service: waiting for Deployment",
            stack.namespace
        )),
        "{screen}"
    );
    // Colors, since NO_COLOR is not set.
    let colored = tmux.screen("failing", true);
    assert!(
        colored.contains("\x1b["),
        "no colors on the terminal:\n{colored}"
    );

    // The end: the lines settle without spinners, the error follows.
    let screen = tmux.wait_for_exit("failing", Duration::from_secs(90));
    assert!(screen.contains("EXIT=1"), "{screen}");
    assert!(screen.contains("cannot become ready"), "{screen}");
    // Settled whole, where it stood; the reason, whole, is the error's.
    let settled = deployment.trim_end_matches("; ");
    let last = screen
        .lines()
        .rfind(|l| l.contains(settled))
        .unwrap_or_else(|| panic!("the Deployment's line is gone:\n{screen}"));
    assert_eq!(last, format!("   {settled}"), "{screen}");
    assert!(screen.contains("ImagePullBackOff"), "{screen}");
    // Applied objects are listed once each, settled.
    for kind in ["ConfigMap", "Deployment", "Service"] {
        let created = screen
            .lines()
            .filter(|l| {
                l.starts_with(&format!(" +  {kind} {}/", stack.namespace))
                    && l.contains("created (")
            })
            .count();
        assert_eq!(created, 1, "{kind} created lines:\n{screen}");
    }

    // Fixed, with NO_COLOR: no colors at all, and a summary at the end.
    stack.write(&format!(
        "echo:\n  replicas: 1\n  nodePort: {port}\n  image: nginx:alpine\n"
    ));
    tmux.start(
        "fixed",
        &command_line(&stack, "env NO_COLOR=1 TERM=xterm-256color", "up --yes"),
    );
    let screen = tmux.wait_for_exit("fixed", Duration::from_secs(90));
    assert!(screen.contains("EXIT=0"), "{screen}");
    assert!(
        screen.contains(&format!(
            " ✓  Deployment {}/nginx-echo-nodeport: 1/1 available",
            stack.namespace
        )),
        "{screen}"
    );
    assert!(
        screen.contains("change(s) applied; the stack is ready"),
        "{screen}"
    );
    let colored = tmux.screen("fixed", true);
    assert!(
        !colored.contains("\x1b[3"),
        "colors despite NO_COLOR:\n{colored:?}"
    );

    // --color always wins over NO_COLOR.
    tmux.start(
        "forced",
        &command_line(
            &stack,
            "env NO_COLOR=1 TERM=xterm-256color",
            "--color always up --yes",
        ),
    );
    tmux.wait_for_exit("forced", Duration::from_secs(60));
    assert!(
        tmux.screen("forced", true).contains("\x1b[3"),
        "--color always shows no colors"
    );

    // Off a terminal: plain, stable lines without control codes. (A run
    // that changes nothing waits for nothing, so this one rolls the pods.)
    stack.write(&format!(
        "echo:\n  replicas: 1\n  nodePort: {port}\n  image: nginx:alpine\n  message: Hello again\n"
    ));
    let run = stack.ok(&["up", "--yes"]);
    assert!(
        !run.stderr.contains('\x1b') && !run.stderr.contains('\r'),
        "control codes off a terminal:\n{:?}",
        run.stderr
    );
    run.assert_contains(&format!(
        "    ✓ Deployment {}/nginx-echo-nodeport: 1/1 available",
        stack.namespace
    ));
    stack.ok(&["destroy", "--yes"]);
}

/// A stack whose pods no node can take: the wait goes on, with the
/// scheduler's long reason, until it is stopped. Needs only the control
/// plane.
fn unschedulable(stack: &TestStack) {
    stack.write(&format!(
        "echo:\n  replicas: 1\n  nodePort: {}\n  nodeSelector:\n    echo-iac.io/node: nowhere\n",
        node_port()
    ));
}

#[test]
fn ctrl_c_during_a_live_wait_leaves_whole_settled_lines_and_no_spinner() {
    let stack = TestStack::new("live-interrupt");
    unschedulable(&stack);
    let tmux = Tmux::new("interrupt");
    tmux.start(
        "waiting",
        &command_line(
            &stack,
            "env NO_COLOR=1 TERM=xterm-256color",
            "up --yes --timeout 5m",
        ),
    );
    let deployment = format!(
        "Deployment {}/nginx-echo-nodeport: 0/1 available",
        stack.namespace
    );
    util::wait_for(Duration::from_secs(40), "a live line with a reason", || {
        let screen = tmux.screen("waiting", false);
        let line = screen
            .lines()
            .find(|l| l.contains(&deployment) && l.contains("; "))
            .ok_or_else(|| screen.clone())?;
        // Cut to the terminal's width, not wrapped onto the next line.
        if line.chars().count() <= 140 {
            Ok(())
        } else {
            Err(line.to_string())
        }
    });
    tmux.tmux(&["send-keys", "-t", "waiting", "C-c"]);
    let screen = tmux.wait_for_exit("waiting", Duration::from_secs(60));
    assert!(screen.contains("EXIT=130"), "{screen}");
    assert!(
        !screen.chars().any(|c| SPINNER.contains(&c)),
        "a spinner is left on the screen:\n{screen}"
    );
    let settled: Vec<&str> = screen.lines().filter(|l| l.contains(&deployment)).collect();
    assert_eq!(
        settled,
        [format!("   {deployment}").as_str()],
        "the Deployment's line is not left once, whole:\n{screen}"
    );
    stack.ok(&["destroy", "--yes"]);
}

#[test]
fn plain_progress_gives_a_long_reason_once_and_the_error_gives_it_whole() {
    let stack = TestStack::new("plain-reason");
    unschedulable(&stack);
    let run = stack.run(&["up", "--yes", "--timeout", "6s"]);
    run.assert_code(1);
    let progress: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("    … Deployment"))
        .collect();
    assert!(!progress.is_empty(), "{run}");
    let with_reason = progress.iter().filter(|l| l.contains("; ")).count();
    assert_eq!(with_reason, 1, "the reason is repeated:\n{run}");
    for line in &progress {
        assert!(line.chars().count() <= 200, "a long progress line: {line}");
    }
    // The scheduler's whole reason, in the error.
    run.assert_contains("didn't match Pod's node affinity/selector");
    stack.ok(&["destroy", "--yes"]);
}
