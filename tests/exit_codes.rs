//! Every exit code in the README's table, and the JSON error document a
//! failing `--json` command prints on stdout. Usage errors exit 64, never
//! 2: 2 means "changes found", and a drift check must not read a typo as
//! drift.

use std::net::TcpListener;
use std::process::{Command, Stdio};

use serde_json::Value;

use crate::harness::{Run, TestProject, TestStack, node_port, write_kubeconfig};
use crate::util;

/// Runs the binary with exactly `args` (no `-C`), outside any project.
fn bare(args: &[&str]) -> Run {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_echo-iac"))
        .args(args)
        .current_dir(dir.path())
        .env_remove("ECHO_IAC_STACK")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run echo-iac");
    Run {
        command: format!("echo-iac {}", args.join(" ")),
        code: output.status.code().unwrap_or(-1),
        signal: None,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Stdout as the one JSON document it must be.
fn document(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {run}"))
}

/// A project whose stack `dev` points at a port nothing listens on.
fn unreachable_project() -> (TestProject, tempfile::TempDir) {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let server = format!("https://127.0.0.1:{port}");
    let kubeconfig = write_kubeconfig(dir.path(), "kubeconfig", &server, None, "token: t");
    let project = TestProject::new();
    project.write_stack(
        "dev",
        &format!(
            "kubeconfig: {}\nnamespace: echo-dev\necho:\n  replicas: 1\n  nodePort: 30999\n",
            kubeconfig.display()
        ),
    );
    (project, dir)
}

#[test]
fn help_and_version_exit_0() {
    for args in [&["--help"][..], &["--version"], &["up", "--help"]] {
        let run = bare(args);
        run.assert_code(0);
        assert!(!run.stdout.is_empty(), "{run}");
    }
    bare(&["--help"]).assert_contains("64 usage error");
}

#[test]
fn usage_errors_exit_64_never_2() {
    for args in [
        &["preview", "--expect-no-change"][..],
        &["up", "--timeout", "5"],
        &[],
        &["--request-timeout", "soon", "render"],
        &["no-such-command"],
    ] {
        // Clap's own words, help included for a bare `echo-iac`.
        bare(args).assert_code(64).assert_contains("--help");
    }
    bare(&["preview", "--expect-no-change"]).assert_contains("--expect-no-changes");
}

#[test]
fn usage_error_with_json_prints_an_error_document() {
    let run = bare(&["preview", "--json", "--expect-no-change"]);
    run.assert_code(64);
    let error = &document(&run)["error"];
    assert_eq!(error["kind"], "usage", "{run}");
    assert_eq!(error["exitCode"], 64);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("--expect-no-change"),
        "{run}"
    );
    assert!(
        error["hint"]
            .as_str()
            .unwrap()
            .contains("--expect-no-changes"),
        "{run}"
    );
}

#[test]
fn json_with_another_format_is_a_usage_error() {
    let run = bare(&["preview", "--json", "--format", "markdown"]);
    run.assert_code(64);
    let error = &document(&run)["error"];
    assert_eq!(error["kind"], "usage", "{run}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("'--format markdown'"),
        "{run}"
    );
    bare(&["preview", "--format", "text", "--json"])
        .assert_code(64)
        .assert_contains("--format text");
}

#[test]
fn a_run_that_fails_exits_1() {
    let (project, _dir) = unreachable_project();
    project
        .run(&["preview"])
        .assert_code(1)
        .assert_contains("error: ")
        .assert_contains("hint: ");
}

#[test]
fn preview_that_finds_changes_exits_2() {
    let stack = TestStack::new("exit-two");
    stack.write(&format!(
        "echo:\n  replicas: 1\n  nodePort: {}\n",
        node_port()
    ));
    stack
        .run(&["preview", "--expect-no-changes"])
        .assert_code(2)
        .assert_contains("create");
}

#[test]
fn markdown_preview_that_finds_changes_prints_a_comment_and_exits_2() {
    let stack = TestStack::new("exit-two-md");
    stack.write(&format!(
        "echo:\n  replicas: 1\n  nodePort: {}\n",
        node_port()
    ));
    let run = stack.run(&["preview", "--format", "markdown", "--expect-no-changes"]);
    run.assert_code(2)
        .assert_contains("### echo-iac preview of stack `dev`")
        .assert_contains("| `+` | Deployment |")
        .assert_contains("```diff\n");
    assert!(run.stdout.chars().count() < 65_536, "{run}");
}

#[test]
fn every_json_command_that_fails_prints_one_error_document() {
    let (project, _dir) = unreachable_project();
    for args in [
        &["preview", "--json"][..],
        &["up", "--yes", "--json"],
        &["destroy", "--yes", "--json"],
        &["test", "--json"],
    ] {
        let run = project.run(args);
        run.assert_code(1);
        let error = &document(&run)["error"];
        assert_eq!(error["kind"], "unreachable", "{run}");
        assert_eq!(error["exitCode"], 1, "{run}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("connection refused"), "{run}");
        assert!(message.contains("context `test`"), "{run}");
        assert!(!error["hint"].as_str().unwrap().is_empty(), "{run}");
        assert!(error["objects"].is_array(), "{run}");
        // The person reading the log still gets the message on stderr.
        assert!(run.stderr.contains("error: "), "{run}");
    }

    // Commands that only read the state fail on a damaged one the same way.
    std::fs::create_dir_all(project.root().join("state")).unwrap();
    std::fs::write(project.state_file("dev"), "{ not json").unwrap();
    for args in [&["output", "--json"][..], &["stack", "history", "--json"]] {
        let run = project.run(args);
        run.assert_code(1);
        assert_eq!(document(&run)["error"]["kind"], "state", "{run}");
    }
}

#[test]
fn json_error_document_never_shows_a_credential() {
    let secret = "s3cr3t-token-in-a-broken-kubeconfig";
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!("apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: {secret}\n   bad: [\n"),
    )
    .unwrap();
    let project = TestProject::new();
    project.write_stack(
        "dev",
        &format!(
            "kubeconfig: {}\nnamespace: echo-dev\necho:\n  nodePort: 30999\n",
            kubeconfig.display()
        ),
    );
    let run = project.run(&["up", "--yes", "--json"]);
    run.assert_code(1);
    assert_eq!(document(&run)["error"]["kind"], "kubeconfig", "{run}");
    assert!(!run.all().contains(secret), "{run}");
}

#[test]
fn blocked_up_with_json_names_the_blocked_objects() {
    let stack = TestStack::new("json-blocked");
    stack.write(&format!(
        "echo:\n  replicas: 1\n  nodePort: {}\n",
        node_port()
    ));
    util::kubectl_ok(&[
        "create",
        "configmap",
        "nginx-echo-config",
        "--from-literal=owner=someone-else",
        "-n",
        &stack.namespace,
    ]);
    let run = stack.run(&["up", "--yes", "--json"]);
    run.assert_code(1);
    let error = &document(&run)["error"];
    assert_eq!(error["kind"], "blocked", "{run}");
    assert_eq!(
        error["objects"],
        serde_json::json!([format!("ConfigMap {}/nginx-echo-config", stack.namespace)]),
        "{run}"
    );
    assert!(error["hint"].as_str().unwrap().contains("--adopt"), "{run}");
}
