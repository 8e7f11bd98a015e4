//! What a user meets around the commands: shell completions, the manual
//! page, `KUBECONFIG` lists as kubectl reads them, and `-v` request logs.

use std::process::{Command, Stdio};

use crate::harness::{TestProject, TestStack, local_kubeconfig_field, node_port};
use crate::util;

/// Every subcommand a user can type, nested ones included.
const SUBCOMMANDS: &[&str] = &[
    "preview",
    "up",
    "destroy",
    "refresh",
    "render",
    "output",
    "stack",
    "ls",
    "init",
    "rm",
    "history",
    "export",
    "import",
    "completions",
    "man",
];

fn echo_iac(args: &[&str]) -> (String, String, bool) {
    let output = Command::new(env!("CARGO_BIN_EXE_echo-iac"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run echo-iac");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        output.status.success(),
    )
}

#[test]
fn completions_for_bash_zsh_and_fish_name_every_subcommand() {
    for shell in ["bash", "zsh", "fish"] {
        let (script, stderr, ok) = echo_iac(&["completions", shell]);
        assert!(ok, "completions {shell} failed: {stderr}");
        for sub in SUBCOMMANDS {
            let named = match shell {
                // fish: `-a "preview"`; bash: `preview)` or ` preview `; zsh: `'preview:`
                "fish" => script.contains(&format!("-a \"{sub}\"")),
                "zsh" => script.contains(&format!("'{sub}:")),
                _ => script.contains(&format!(" {sub} ")) || script.contains(&format!("{sub})")),
            };
            assert!(
                named,
                "the {shell} completions do not name `{sub}`:\n{script}"
            );
        }
        assert!(
            script.contains("--wait-grace") || script.contains("wait-grace"),
            "{shell}: options are missing"
        );
    }
    // The script is valid in the shell it is for.
    let (bash, _, _) = echo_iac(&["completions", "bash"]);
    let check = Command::new("bash")
        .args(["-n", "-c", &bash])
        .output()
        .expect("run bash -n");
    assert!(
        check.status.success(),
        "bash -n rejects the completion script: {}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn an_unknown_shell_is_refused_naming_the_shells() {
    let (_, stderr, ok) = echo_iac(&["completions", "tcsh"]);
    assert!(!ok);
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        assert!(stderr.contains(shell), "{stderr}");
    }
}

#[test]
fn the_man_page_renders_with_man_and_documents_every_subcommand() {
    let (page, stderr, ok) = echo_iac(&["man"]);
    assert!(ok, "man failed: {stderr}");
    assert!(
        page.starts_with(".ie") || page.contains(".TH"),
        "not roff:\n{page}"
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("echo-iac.1");
    std::fs::write(&file, &page).unwrap();
    let rendered = Command::new("man")
        .arg("-l")
        .arg(&file)
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .expect("run `man -l` (Debian package man-db; .ci/run installs it)");
    let text = String::from_utf8_lossy(&rendered.stdout);
    let errors = String::from_utf8_lossy(&rendered.stderr);
    assert!(rendered.status.success(), "man -l failed: {errors}");
    assert!(
        !errors.contains("warning"),
        "man -l warns about the page: {errors}"
    );
    for section in ["NAME", "SYNOPSIS", "OPTIONS", "EXIT STATUS", "ENVIRONMENT"] {
        assert!(text.contains(section), "no {section} in:\n{text}");
    }
    // Every exit code the README's table gives, each first on its line.
    let exit_status = &text[text.find("EXIT STATUS").unwrap()..text.find("ENVIRONMENT").unwrap()];
    for code in ["0", "1", "2", "64", "101", "130"] {
        assert!(
            exit_status
                .lines()
                .any(|line| line.split_whitespace().next() == Some(code)),
            "exit code {code} not in:\n{exit_status}"
        );
    }
    for sub in [
        "PREVIEW",
        "UP",
        "DESTROY",
        "REFRESH",
        "RENDER",
        "OUTPUT",
        "STACK LS",
        "STACK INIT",
        "STACK RM",
        "STACK HISTORY",
        "STACK EXPORT",
        "STACK IMPORT",
        "COMPLETIONS",
        "MAN",
    ] {
        assert!(
            text.contains(&format!("ECHO-IAC {sub}")),
            "no section for `echo-iac {}` in:\n{text}",
            sub.to_lowercase()
        );
    }
    assert!(text.contains("--wait-grace"), "{text}");
}

/// A stack without `kubeconfig:`, so that `KUBECONFIG` decides.
fn stack_without_kubeconfig(project: &TestProject, namespace: &str, port: i32) {
    project.write_stack(
        "dev",
        &format!("context: echo-iac-local\nnamespace: {namespace}\necho:\n  replicas: 1\n  nodePort: {port}\n"),
    );
}

#[test]
fn kubeconfig_list_skips_a_missing_file_as_kubectl_does() {
    let ns = util::TestNamespace::new("kubeconfig-list");
    let project = TestProject::new();
    stack_without_kubeconfig(&project, ns.name(), node_port());
    let real = util::kubeconfig();
    let list = format!("/nonexistent-first:{}", real.display());
    let run = project.run_env(&["preview"], &[("KUBECONFIG", &list)]);
    run.assert_code(0).assert_contains("+ 3 to create");

    // The same list in the stack file.
    project.write_stack(
        "dev",
        &format!(
            "kubeconfig:\n  - /nonexistent-first\n  - {}\ncontext: echo-iac-local\nnamespace: {}\necho:\n  replicas: 1\n  nodePort: {}\n",
            real.display(),
            ns.name(),
            node_port()
        ),
    );
    project.run(&["preview"]).assert_code(0);

    // Nothing in the list exists: every file is named.
    stack_without_kubeconfig(&project, ns.name(), node_port());
    let run = project.run_env(
        &["preview"],
        &[("KUBECONFIG", "/nonexistent-a:/nonexistent-b")],
    );
    run.assert_code(1)
        .assert_contains("no kubeconfig found at /nonexistent-a:/nonexistent-b");
}

#[test]
fn kubeconfig_list_merges_with_the_first_file_winning() {
    let ns = util::TestNamespace::new("kubeconfig-merge");
    let project = TestProject::new();
    let dir = tempfile::tempdir().unwrap();
    // The first file has a context of the same name, for the same server
    // but with a credential the server rejects; the first file wins, so the
    // run must fail with it. Its current-context wins too.
    let first = dir.path().join("first");
    std::fs::write(
        &first,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: echo-iac-local\nclusters:\n- name: same-server\n  cluster: {{server: \"{}\", insecure-skip-tls-verify: true}}\nusers:\n- name: nobody\n  user: {{token: not-a-token}}\ncontexts:\n- name: echo-iac-local\n  context: {{cluster: same-server, user: nobody}}\n",
            local_kubeconfig_field("server")
        ),
    )
    .unwrap();
    project.write_stack(
        "dev",
        &format!(
            "namespace: {}\necho:\n  replicas: 1\n  nodePort: {}\n",
            ns.name(),
            node_port()
        ),
    );
    let real = util::kubeconfig();
    let list = format!("{}:{}", first.display(), real.display());
    project
        .run_env(&["preview"], &[("KUBECONFIG", &list)])
        .assert_code(1)
        .assert_contains("rejected the credentials");
    let list = format!("{}:{}", real.display(), first.display());
    project
        .run_env(&["preview"], &[("KUBECONFIG", &list)])
        .assert_code(0);
}

#[test]
fn verbose_logs_each_api_request_without_credentials() {
    let stack = TestStack::new("verbose");
    stack.write(&format!(
        "echo:\n  replicas: 1\n  nodePort: {}\n",
        node_port()
    ));
    let run = stack.run(&["-v", "preview"]);
    run.assert_code(0);
    let path = format!("/api/v1/namespaces/{}/configmaps", stack.namespace);
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains(&path))
        .unwrap_or_else(|| panic!("no request to {path} logged:\n{run}"));
    // method, path, status, latency
    assert!(line.contains("GET "), "{line}");
    assert!(line.contains(" 200 ") || line.contains(" 404 "), "{line}");
    assert!(line.trim_end().ends_with("ms"), "{line}");
    assert!(
        run.stderr.contains("PATCH "),
        "the dry runs are not logged:\n{run}"
    );
    for secret in [
        "BEGIN",
        "PRIVATE",
        "Authorization",
        "authorization",
        "Bearer",
        "client-key",
    ] {
        assert!(!run.stderr.contains(secret), "{secret} in the log:\n{run}");
    }
    // The same through the environment; without either, nothing is logged.
    let run = stack.run_env(&["preview"], &[("ECHO_IAC_LOG", "debug")]);
    assert!(run.stderr.contains(&path), "{run}");
    let quiet = stack.run(&["preview"]);
    assert!(!quiet.stderr.contains(&path), "{quiet}");
    let bad = stack.run_env(&["preview"], &[("ECHO_IAC_LOG", "echo_iac=loud")]);
    bad.assert_code(1).assert_contains("is not a log filter");
}
