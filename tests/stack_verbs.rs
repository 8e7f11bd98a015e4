//! The stack verbs Pulumi users expect: `stack init` writes a new stack
//! file that loads as it is, and `stack rm` removes a destroyed stack's
//! state, kept revisions and lock from either backend, never an object or
//! a Secret it cannot prove its own.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;

use crate::harness::{Run, Running, TestProject, TestStack, node_port};
use crate::util;

fn echo(port: i32) -> String {
    format!("echo:\n  replicas: 1\n  nodePort: {port}\n")
}

/// Runs `echo-iac <args>` in `dir`, with no `-C` and no terminal.
fn run_in(dir: &Path, args: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_echo-iac"))
        .current_dir(dir)
        .args(args)
        .env_remove("ECHO_IAC_STACK")
        .env_remove("ECHO_IAC_BACKEND")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("run echo-iac");
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    Run {
        command: format!("echo-iac {}", args.join(" ")),
        code: output.status.code().unwrap_or(-1),
        signal: None,
        stdout: text(&output.stdout),
        stderr: text(&output.stderr),
    }
}

/// The files under `dir` and its `.history`, by name, sorted.
fn files(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for sub in [dir.to_path_buf(), dir.join(".history")] {
        for entry in std::fs::read_dir(&sub).into_iter().flatten().flatten() {
            if entry.file_type().unwrap().is_file() {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    names.sort();
    names
}

#[test]
fn stack_init_writes_a_commented_stack_file_that_loads_as_it_is() {
    let dir = tempfile::tempdir().unwrap();

    let run = run_in(dir.path(), &["stack", "init", "dev"]);
    run.assert_code(0)
        .assert_contains("Created stack dev: stacks/dev.yaml")
        .assert_contains("echo-iac --stack dev preview");

    let text = std::fs::read_to_string(dir.path().join("stacks/dev.yaml")).unwrap();
    assert!(text.contains("\nnamespace: echo-iac-dev\n"), "{text}");
    assert!(text.contains("\ncreateNamespace: true\n"), "{text}");
    for commented in ["# kubeconfig:", "# context:", "# backend: file://state"] {
        assert!(text.contains(commented), "{commented} missing:\n{text}");
    }
    assert!(text.contains("\necho:\n  # How many pods answer"), "{text}");
    // Every setting comes with a comment on the line above.
    let lines: Vec<&str> = text.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if !line.trim().is_empty() && !line.trim_start().starts_with('#') && *line != "echo:" {
            assert!(
                lines[i - 1].trim_start().starts_with('#'),
                "`{line}` has no comment above it:\n{text}"
            );
        }
    }

    // It loads: `render` needs nothing but the file.
    let render = run_in(dir.path(), &["render"]);
    render
        .assert_code(0)
        .assert_contains("name: nginx-echo-nodeport")
        .assert_contains("namespace: echo-iac-dev")
        .assert_contains("nodePort: 30007");
}

#[test]
fn stack_init_takes_a_namespace_and_a_backend_and_adds_to_an_existing_project() {
    let project = TestProject::new();
    project.write_stack("prod", "namespace: echo-prod\n");

    project
        .run(&[
            "stack",
            "init",
            "ci",
            "--namespace",
            "echo-ci",
            "--backend",
            "kubernetes://echo-state",
        ])
        .assert_code(0);

    let text = std::fs::read_to_string(project.stack_file("ci")).unwrap();
    assert!(text.contains("\nnamespace: echo-ci\n"), "{text}");
    assert!(
        text.contains("\nbackend: kubernetes://echo-state\n"),
        "{text}"
    );
    project
        .run(&["--stack", "ci", "render"])
        .assert_code(0)
        .assert_contains("namespace: echo-ci");
    // A backend that leaves the project is refused, and nothing written.
    project
        .run(&["stack", "init", "qa", "--backend", "file://../elsewhere"])
        .assert_code(1)
        .assert_contains("--backend file://../elsewhere");
    assert!(!project.stack_file("qa").exists());
}

#[test]
fn stack_init_never_overwrites_a_stack_file_and_names_it() {
    let project = TestProject::new();
    project.write_stack("dev", "namespace: mine\n");

    project
        .run(&["stack", "init", "dev"])
        .assert_code(1)
        .assert_contains("stack `dev` exists already")
        .assert_contains("stacks/dev.yaml")
        .assert_contains("nothing was written");
    assert_eq!(
        std::fs::read_to_string(project.stack_file("dev")).unwrap(),
        "namespace: mine\n"
    );

    // Nor the `.yml` spelling of the same stack.
    let yml = project.root().join("stacks/ci.yml");
    std::fs::write(&yml, "namespace: ci\n").unwrap();
    project
        .run(&["stack", "init", "ci"])
        .assert_code(1)
        .assert_contains("stacks/ci.yml");
    assert!(!project.stack_file("ci").exists());
    assert_eq!(std::fs::read_to_string(&yml).unwrap(), "namespace: ci\n");
}

#[test]
fn stack_init_never_writes_through_a_linked_stacks_folder() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("stacks")).unwrap();

    run_in(dir.path(), &["stack", "init", "dev"])
        .assert_code(1)
        .assert_contains("is a symbolic link to")
        .assert_contains(&elsewhere.path().display().to_string())
        .assert_contains("nothing was written");
    assert_eq!(
        std::fs::read_dir(elsewhere.path()).unwrap().count(),
        0,
        "a file was written through the link"
    );
}

#[test]
fn stack_init_and_rm_refuse_a_name_that_is_no_stack_name_as_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["Bad Name", "../escape", "dev-", &"x".repeat(64)] {
        run_in(dir.path(), &["stack", "init", name])
            .assert_code(64)
            .assert_contains("stack name");
    }
    assert!(!dir.path().join("stacks").exists(), "nothing was created");

    let project = TestProject::new();
    project
        .run(&["stack", "rm", "a/b", "--yes"])
        .assert_code(64)
        .assert_contains("stack name");
    project
        .run(&["stack", "rm", "ghost", "--yes"])
        .assert_code(1)
        .assert_contains("no stack named `ghost`");
}

#[test]
fn stack_rm_of_a_state_that_does_not_read_needs_force_and_says_so() {
    let project = TestProject::new();
    project.write_stack("dev", "namespace: echo-dev\n");
    std::fs::create_dir(project.root().join("state")).unwrap();
    std::fs::write(project.state_file("dev"), "{ not json").unwrap();

    project
        .run(&["stack", "rm", "dev", "--yes"])
        .assert_code(1)
        .assert_contains("is corrupt")
        .assert_contains("pass --force");
    assert!(project.state_file("dev").exists());

    project
        .run(&["stack", "rm", "dev", "--force", "--yes"])
        .assert_code(0)
        .assert_contains("does not read")
        .assert_contains("echo-iac.io/stack=dev");
    assert!(!project.state_file("dev").exists());
}

#[test]
fn stack_rm_needs_only_the_generic_keys_of_the_stack_file() {
    let project = TestProject::new();
    // An echo section that no longer reads: a wrong type and a typo.
    project.write_stack(
        "dev",
        "namespace: echo-dev\necho:\n  replicas: many\n  imag: x\n",
    );
    std::fs::create_dir(project.root().join("state")).unwrap();
    std::fs::write(project.state_file("dev"), "{ not json").unwrap();
    project.run(&["preview"]).assert_code(1);

    project
        .run(&["stack", "rm", "dev", "--force", "--yes"])
        .assert_code(0)
        .assert_contains("Removed the state of stack dev");
    assert!(!project.state_file("dev").exists());

    // Where the state is must still read.
    project.write_stack("dev", "namespace: [echo-dev]\n");
    project
        .run(&["stack", "rm", "dev", "--force", "--yes"])
        .assert_code(1)
        .assert_contains("stacks/dev.yaml:1:");
}

#[test]
fn stack_rm_removes_a_destroyed_stacks_state_history_and_lock_and_keeps_its_file() {
    let stack = TestStack::new("stack-rm-file");
    stack.write(&echo(node_port()));
    stack.ok(&["up", "--yes"]);
    let state_dir = stack.project.root().join("state");

    // Refused while the state lists objects, keeping everything.
    let before = files(&state_dir);
    stack
        .project
        .run(&["stack", "rm", "dev", "--yes"])
        .assert_code(1)
        .assert_contains("stack dev still manages 3 object(s)")
        .assert_contains(&format!(
            "Deployment {}/nginx-echo-nodeport",
            stack.namespace
        ))
        .assert_contains("echo-iac --stack dev destroy");
    assert_eq!(files(&state_dir), before);

    stack
        .ok(&["destroy", "--yes"])
        .assert_contains("`echo-iac stack rm dev` removes them");

    // Without a terminal it does not guess an answer.
    stack
        .project
        .run(&["stack", "rm", "dev"])
        .assert_code(1)
        .assert_contains("needs confirmation")
        .assert_contains("echo-iac stack rm dev --yes");
    assert!(stack.state().is_some());

    // Another run holding the lock stops it, as it stops `up`.
    let holder = paused_up(&stack);
    stack
        .project
        .run(&["stack", "rm", "dev", "--yes"])
        .assert_code(1)
        .assert_contains("stack dev is locked by `echo-iac up`");
    holder.signal(libc::SIGKILL);
    let _ = holder.wait(Duration::from_secs(30));
    stack.ok(&["destroy", "--yes"]);

    assert!(files(&state_dir).iter().any(|f| f.starts_with("dev.")));
    let run = stack.project.run(&["stack", "rm", "dev", "--yes"]);
    run.assert_code(0)
        .assert_contains("Removed the state of stack dev")
        .assert_contains("state file")
        .assert_contains("kept revision(s)")
        .assert_contains("lock file")
        .assert_contains("was kept");
    assert_eq!(files(&state_dir), Vec::<String>::new(), "{run}");
    assert!(stack.project.stack_file("dev").exists());

    let ls = stack.project.run(&["stack", "ls"]);
    ls.assert_code(0);
    let row = ls.stdout.lines().find(|l| l.starts_with("dev ")).unwrap();
    assert!(
        row.contains("never") && row.trim_end().ends_with('0'),
        "{ls}"
    );

    // The stack can start over from its file.
    stack.ok(&["preview"]).assert_contains("create");
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
fn stack_rm_force_forgets_the_objects_naming_each_and_leaves_them_running() {
    let stack = TestStack::new("stack-rm-force");
    stack.write(&echo(node_port()));
    stack.ok(&["up", "--yes"]);

    let run = stack
        .project
        .run(&["stack", "rm", "dev", "--force", "--yes"]);
    run.assert_code(0)
        .assert_contains("Stack dev's state lists 3 object(s)")
        .assert_contains("in no stack's state")
        .assert_contains("Forgot the 3 object(s) listed above");
    for object in [
        "ConfigMap {ns}/nginx-echo-config",
        "Deployment {ns}/nginx-echo-nodeport",
        "Service {ns}/echo-nodeport-service",
    ] {
        run.assert_contains(&object.replace("{ns}", &stack.namespace));
    }
    assert!(stack.state().is_none());
    assert!(stack.exists("deployment", "nginx-echo-nodeport"));
    assert!(stack.exists("service", "echo-nodeport-service"));
}

#[test]
fn stack_rm_with_the_cluster_backend_deletes_its_secrets_and_lease_and_nothing_else() {
    let stack = TestStack::new("stack-rm-kube");
    stack.project.write_stack(
        "dev",
        &stack.file_text(&format!(
            "backend: kubernetes://{}\n{}",
            stack.namespace,
            echo(node_port())
        )),
    );
    stack.ok(&["up", "--yes"]);
    // A Secret with the stack's labels and a part's name, but not the
    // backend's type; and one of nobody's.
    let labels = json!({
        "app.kubernetes.io/managed-by": "echo-iac",
        "echo-iac.io/stack": "dev",
        "echo-iac.io/state-of": "dev",
    });
    for (name, type_) in [
        ("echo-iac-state-dev-1-0123456789ab-0", "Opaque"),
        ("db-credentials", "Opaque"),
    ] {
        let secret = json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "labels": labels}, "type": type_,
            "stringData": {"k": "v"}});
        util::apply_yaml(&stack.namespace, &secret.to_string());
    }

    stack.ok(&["destroy", "--yes"]).assert_contains(&format!(
        "stay in Secret {}/echo-iac-state-dev; `echo-iac stack rm dev` removes them",
        stack.namespace
    ));
    assert!(stack.exists("secret", "echo-iac-state-dev"));

    let run = stack.project.run(&["stack", "rm", "dev", "--yes"]);
    run.assert_code(0)
        .assert_contains(&format!("Secret {}/echo-iac-state-dev", stack.namespace))
        .assert_contains(&format!("Lease {}/echo-iac-lock-dev", stack.namespace));

    assert!(!stack.exists("secret", "echo-iac-state-dev"), "{run}");
    assert!(!stack.exists("lease", "echo-iac-lock-dev"), "{run}");
    assert!(stack.exists("secret", "echo-iac-state-dev-1-0123456789ab-0"));
    assert!(stack.exists("secret", "db-credentials"));
    let ls = stack.project.run(&["stack", "ls"]);
    let row = ls.stdout.lines().find(|l| l.starts_with("dev ")).unwrap();
    assert!(row.contains("never"), "{ls}");
}
