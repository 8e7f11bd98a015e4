//! One writer per stack: while a run holds the lock, every other mutating
//! command fails at once naming it; a killed holder releases the lock with
//! its process; `--wait-for-lock` waits for the holder instead. The holder
//! is held at a pause point (`ECHO_IAC_FAULT=<point>:<n>:pause`), so nothing
//! depends on timing.

use std::time::{Duration, Instant};

use crate::harness::{Running, TestStack, node_port};

fn echo(port: i32) -> String {
    format!("echo:\n  replicas: 1\n  nodePort: {port}\n")
}

/// Starts `up` and waits until it holds the lock, paused before its first
/// apply.
fn paused_up(stack: &TestStack) -> Running {
    let mut up = stack.spawn(
        &["up", "--yes"],
        &[("ECHO_IAC_FAULT", "before-apply:1:pause")],
    );
    up.wait_for_pause("before-apply:1");
    up
}

#[test]
fn second_run_fails_at_once_naming_the_holder() {
    let stack = TestStack::new("lock-held");
    stack.write(&echo(node_port()));
    let holder = paused_up(&stack);

    for command in [
        &["up", "--yes"][..],
        &["destroy", "--yes"],
        &["refresh", "--yes"],
    ] {
        let start = Instant::now();
        let run = stack.run(command);
        let took = start.elapsed();
        run.assert_code(1)
            .assert_contains("stack dev is locked by `echo-iac up`")
            .assert_contains(&format!("pid {}", holder.pid()))
            .assert_contains("never delete the file");
        assert!(took < Duration::from_secs(1), "{run} took {took:?}");
    }
    // Preview takes no lock.
    stack.run(&["preview"]).assert_code(0);

    holder.signal(libc::SIGUSR1);
    holder.wait(Duration::from_secs(60)).assert_code(0);
    stack
        .ok(&["up", "--yes"])
        .assert_contains("No changes; the stack is ready");
}

#[test]
fn killed_holder_releases_the_lock_with_its_process() {
    let stack = TestStack::new("lock-killed");
    stack.write(&echo(node_port()));
    let holder = paused_up(&stack);
    holder.signal(libc::SIGKILL);
    holder.wait(Duration::from_secs(10)).assert_killed();

    let start = Instant::now();
    stack.ok(&["up", "--yes"]).assert_contains("Recovered");
    assert!(start.elapsed() < Duration::from_secs(30));
    stack.ok(&["destroy", "--yes"]);
}

#[test]
fn wait_for_lock_waits_until_the_holder_finishes() {
    let stack = TestStack::new("lock-wait");
    stack.write(&echo(node_port()));
    let holder = paused_up(&stack);

    stack
        .run(&["up", "--yes", "--wait-for-lock", "1s"])
        .assert_code(1)
        .assert_contains("still locked")
        .assert_contains("waited 1s");

    let mut waiter = stack.spawn(&["up", "--yes", "--wait-for-lock", "2m"], &[]);
    std::thread::sleep(Duration::from_millis(500));
    assert!(waiter.is_running(), "{}", waiter.stderr());

    holder.signal(libc::SIGUSR1);
    holder.wait(Duration::from_secs(60)).assert_code(0);
    waiter
        .wait(Duration::from_secs(60))
        .assert_code(0)
        .assert_contains("No changes");
    stack.ok(&["destroy", "--yes"]);
}

#[test]
fn state_lock_and_history_are_private_to_the_user() {
    use std::os::unix::fs::PermissionsExt;

    let stack = TestStack::new("private");
    let port = node_port();
    stack.write(&echo(port));
    stack.ok(&["up", "--yes"]);
    // A second run, so that the history keeps the first.
    stack.write(&format!("{}  message: again\n", echo(port)));
    stack.ok(&["up", "--yes"]);

    let state = stack.project.root().join("state");
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join(".history")), 0o700);
    assert_eq!(mode(&state.join("dev.json")), 0o600);
    assert_eq!(mode(&state.join("dev.echo-iac-lock")), 0o600);
    for copy in std::fs::read_dir(state.join(".history")).unwrap() {
        assert_eq!(mode(&copy.unwrap().path()), 0o600);
    }
    stack.ok(&["destroy", "--yes"]);
}
