//! Each kind of bad input or unusable cluster fails with exit 1, a message
//! naming what is wrong and a hint, and changes neither the state nor the
//! cluster. (Stack-file errors are in `stack_errors.rs`.)

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{
    Run, TestProject, TestStack, local_kubeconfig_field, node_port, state_files, write_kubeconfig,
};
use crate::util::{self, TestNamespace};

/// The commands that contact the cluster and may change things.
const COMMANDS: [&[&str]; 4] = [
    &["preview"],
    &["up", "--yes"],
    &["destroy", "--yes"],
    &["refresh", "--yes"],
];

fn echo(port: i32) -> String {
    format!("echo:\n  replicas: 1\n  nodePort: {port}\n")
}

/// A state for stack `dev` that records one object, so that `destroy` and
/// `refresh` have something to do and must reach the cluster.
fn write_state(project: &TestProject) {
    let dir = project.root().join("state");
    std::fs::create_dir_all(&dir).unwrap();
    let state = json!({
        "version": 1, "stack": "dev", "serial": 4,
        "resources": [{
            "id": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": "echo-dev", "name": "nginx-echo-config"},
            "uid": "0b0e5c1e-0000-4000-8000-000000000000",
            "dependsOn": [],
            "applied": {"apiVersion": "v1", "kind": "ConfigMap"}
        }],
        "pending": [], "outputs": {}
    });
    std::fs::write(
        dir.join("dev.json"),
        serde_json::to_vec_pretty(&state).unwrap(),
    )
    .unwrap();
}

/// A project whose stack `dev` uses `kubeconfig` (and `extra` lines), with
/// a state recording one object.
fn project_with(kubeconfig: &Path, extra: &str) -> TestProject {
    let project = TestProject::new();
    project.write_stack(
        "dev",
        &format!(
            "kubeconfig: {}\n{extra}namespace: echo-dev\n{}",
            kubeconfig.display(),
            echo(30999)
        ),
    );
    write_state(&project);
    project
}

/// Runs every command in `project`: each exits 1 within `within`, with all
/// of `words` and a hint, without `secret` anywhere in its output, and the
/// state files are left exactly as they were.
fn assert_refused_everywhere(
    project: &TestProject,
    words: &[&str],
    secret: Option<&str>,
    within: Duration,
) {
    let before = state_files(project);
    for command in COMMANDS {
        let start = Instant::now();
        let run = project.run(command);
        let took = start.elapsed();
        assert_refused(&run, words);
        assert!(took < within, "{run}\ntook {took:?}, more than {within:?}");
        if let Some(secret) = secret {
            assert!(
                !run.all().contains(secret),
                "the output shows the credential: {run}"
            );
        }
    }
    assert_eq!(
        state_files(project),
        before,
        "a failed run changed the state"
    );
}

fn assert_refused(run: &Run, words: &[&str]) {
    run.assert_code(1)
        .assert_contains("error: ")
        .assert_contains("hint: ");
    for word in words {
        run.assert_contains(word);
    }
}

const QUICK: Duration = Duration::from_secs(5);

#[test]
fn missing_kubeconfig_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-kubeconfig");
    let project = project_with(&missing, "");
    assert_refused_everywhere(
        &project,
        &["no kubeconfig found at", &missing.display().to_string()],
        None,
        QUICK,
    );
}

#[test]
fn unreadable_kubeconfig_is_reported_without_its_contents() {
    // Root reads any file, so unreadable is a folder in the file's place.
    let dir = tempfile::tempdir().unwrap();
    let project = project_with(dir.path(), "");
    assert_refused_everywhere(
        &project,
        &[&format!(
            "cannot read kubeconfig {}: it is a folder, not a file",
            dir.path().display()
        )],
        None,
        QUICK,
    );

    // Malformed YAML: the parser would quote the lines around the error,
    // token included.
    let secret = "s3cr3t-token-value-0123456789";
    let broken = dir.path().join("broken");
    std::fs::write(
        &broken,
        format!("apiVersion: v1\nkind: Config\nusers:\n- name: u\n  user:\n    token: {secret}\n   bad: [\n"),
    )
    .unwrap();
    let project = project_with(&broken, "");
    assert_refused_everywhere(
        &project,
        &["cannot read kubeconfig", "line 7"],
        Some(secret),
        QUICK,
    );
}

#[test]
fn empty_kubeconfig_says_it_names_no_cluster_and_where_to_name_one() {
    let project = project_with(Path::new("/dev/null"), "");
    assert_refused_everywhere(
        &project,
        &[
            "kubeconfig /dev/null sets no current context and has no contexts",
            "--kubeconfig FILE, set KUBECONFIG, or set `kubeconfig:` in the stack file",
        ],
        None,
        QUICK,
    );
    let run = project.run(&["preview"]);
    assert!(!run.stderr.contains("failed to load"), "{run}");
}

#[test]
fn missing_credential_plugin_is_named_with_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(
        dir.path(),
        "exec",
        &local_kubeconfig_field("server"),
        Some(&local_kubeconfig_field("certificate-authority-data")),
        "exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: echo-iac-no-such-plugin\n      interactiveMode: Never",
    );
    let project = project_with(&kubeconfig, "");
    assert_refused_everywhere(
        &project,
        &[
            "the credential plugin `echo-iac-no-such-plugin` that kubeconfig",
            "is not installed (not found on PATH)",
            "install `echo-iac-no-such-plugin` or put it on PATH",
        ],
        None,
        QUICK,
    );
}

#[test]
fn make_cluster_is_suggested_only_inside_the_echo_iac_repository() {
    // Elsewhere: where a kubeconfig can be named, and nothing about this
    // repository's control plane.
    let dir = tempfile::tempdir().unwrap();
    let project = project_with(&dir.path().join("missing"), "");
    let run = project.run(&["preview"]);
    assert_refused(&run, &["--kubeconfig", "KUBECONFIG", "`kubeconfig:`"]);
    assert!(!run.stderr.contains("make cluster"), "{run}");
    // In the repository itself (known by the script that starts its
    // control plane), the local control plane too.
    let script = project.root().join("tests/cluster/up.sh");
    std::fs::create_dir_all(script.parent().unwrap()).unwrap();
    std::fs::write(&script, "#!/bin/sh\n").unwrap();
    let run = project.run(&["preview"]);
    assert_refused(
        &run,
        &[
            "no kubeconfig found at",
            "`make cluster` writes .cluster/kubeconfig",
        ],
    );
}

#[test]
fn unknown_context_lists_the_contexts_there_are() {
    let project = project_with(&util::kubeconfig(), "context: no-such-context\n");
    assert_refused_everywhere(
        &project,
        &[
            "context `no-such-context` is not in kubeconfig",
            "echo-iac-local",
        ],
        None,
        QUICK,
    );
    // The flag is checked the same way.
    let project = project_with(&util::kubeconfig(), "");
    let run = project.run(&["--context", "nope", "preview"]);
    assert_refused(&run, &["context `nope`"]);
}

#[test]
fn refused_connection_is_reported_as_unreachable_within_the_retry_budget() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(
        dir.path(),
        "refused",
        "https://127.0.0.1:1",
        None,
        "token: t",
    );
    let project = project_with(&kubeconfig, "");
    let before = state_files(&project);
    let start = Instant::now();
    let run = project.run(&["up", "--yes"]);
    assert_refused(
        &run,
        &[
            "cannot reach the Kubernetes API server at https://127.0.0.1:1",
            "connection refused",
        ],
    );
    assert!(
        start.elapsed() < Duration::from_secs(40),
        "{run}\ntook {:?}",
        start.elapsed()
    );
    assert_eq!(state_files(&project), before);
}

#[test]
fn server_that_never_answers_is_reported_within_the_retry_budget() {
    // Accepts connections (the kernel does, for the backlog) and never says
    // a word, as a blackholed address would.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = format!("https://{}", silent.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(dir.path(), "silent", &server, None, "token: t");
    let project = project_with(&kubeconfig, "");
    let before = state_files(&project);
    let start = Instant::now();
    let run = project.run(&["preview"]);
    assert_refused(
        &run,
        &[
            "cannot reach the Kubernetes API server",
            &server,
            "no connection within",
        ],
    );
    assert!(
        start.elapsed() < Duration::from_secs(40),
        "{run}\ntook {:?}",
        start.elapsed()
    );
    assert_eq!(state_files(&project), before);
}

#[test]
fn server_certificate_not_signed_by_the_kubeconfig_ca_is_a_tls_error() {
    // A certificate the server's was not signed by: the admin's client
    // certificate, trusted as if it were the CA.
    let pki = util::kubeconfig().parent().unwrap().join("pki");
    let wrong_ca = std::fs::read(pki.join("admin.crt")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(
        dir.path(),
        "wrong-ca",
        &local_kubeconfig_field("server"),
        Some(&base64(&wrong_ca)),
        "token: t",
    );
    let project = project_with(&kubeconfig, "");
    assert_refused_everywhere(
        &project,
        &[
            "presented a certificate that the kubeconfig does not trust",
            "certificate-authority",
        ],
        None,
        QUICK,
    );
}

#[test]
fn rejected_token_is_a_401_that_never_shows_the_token() {
    let secret = "wrong-token-5e3c7a9d1f";
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(
        dir.path(),
        "wrong-token",
        &local_kubeconfig_field("server"),
        Some(&local_kubeconfig_field("certificate-authority-data")),
        &format!("token: {secret}"),
    );
    let project = project_with(&kubeconfig, "");
    assert_refused_everywhere(
        &project,
        &["rejected the credentials", "401", "refresh it"],
        Some(secret),
        QUICK,
    );
}

#[test]
fn node_port_allocated_by_another_service_fails_preview_and_up() {
    let other = TestNamespace::new("port-owner");
    let port = node_port();
    util::kubectl_ok(&[
        "create",
        "service",
        "nodeport",
        "port-owner",
        "--tcp=80:80",
        &format!("--node-port={port}"),
        "-n",
        other.name(),
    ]);
    let stack = TestStack::new("port-taken");
    stack.write(&echo(port));

    for command in [&["preview"][..], &["up", "--yes"]] {
        let run = stack.run(command);
        assert_refused(&run, &[&port.to_string(), "already allocated"]);
    }
    assert!(stack.state().is_none(), "a state file was written");
    assert_eq!(objects(&stack.namespace), Vec::<String>::new());
}

/// The stack's kinds of object in `namespace`.
fn objects(namespace: &str) -> Vec<String> {
    util::kubectl_ok(&[
        "get",
        "configmaps,deployments,services",
        "-n",
        namespace,
        "-o",
        "name",
    ])
    .lines()
    .filter(|l| *l != "configmap/kube-root-ca.crt")
    .map(str::to_string)
    .collect()
}

/// Deletes a namespace but holds it Terminating until the hold is dropped.
fn terminating(namespace: &str) -> util::FinalizerHold {
    let hold = util::FinalizerHold::new("namespace", namespace, None);
    util::kubectl_ok(&["delete", "namespace", namespace, "--wait=false"]);
    hold
}

#[test]
fn namespace_being_deleted_is_named_and_nothing_is_created() {
    let stack = TestStack::new("terminating");
    let _terminating = terminating(&stack.namespace);
    for create in ["", "createNamespace: true\n"] {
        stack.write(&format!("{create}{}", echo(node_port())));
        for command in [&["preview"][..], &["up", "--yes"]] {
            let run = stack.run(command);
            assert_refused(
                &run,
                &[
                    &stack.namespace,
                    "is being deleted",
                    "wait until the namespace is gone",
                ],
            );
        }
    }
    assert!(stack.state().is_none(), "a state file was written");
    assert_eq!(objects(&stack.namespace), Vec::<String>::new());
}

/// The resourceVersions of the stack's objects, to prove nothing changed.
fn versions(stack: &TestStack) -> Vec<String> {
    [
        ("configmap", "nginx-echo-config"),
        ("deployment", "nginx-echo-nodeport"),
        ("service", "echo-nodeport-service"),
    ]
    .iter()
    .map(|(kind, name)| stack.get(kind, name)["metadata"]["resourceVersion"].to_string())
    .collect()
}

/// Brings the stack up, breaks its state file with `break_it` (which
/// returns words the error must hold besides `words`), and checks every
/// command refuses and leaves the file and the cluster alone.
fn assert_bad_state_refused(
    prefix: &str,
    break_it: impl FnOnce(&TestStack) -> Vec<String>,
    words: &[&str],
) {
    let stack = TestStack::new(prefix);
    let port = node_port();
    stack.write(&echo(port));
    stack.ok(&["up", "--yes"]);
    // A second run, so that the history keeps the first.
    stack.write(&format!("{}  message: again\n", echo(port)));
    stack.ok(&["up", "--yes"]);
    let mut words: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    words.extend(break_it(&stack));
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let cluster_before = versions(&stack);
    let files_before = state_files(&stack.project);
    for command in COMMANDS.iter().chain([&["output"][..]].iter()) {
        let run = stack.run(command);
        assert_refused(&run, &words);
    }
    assert_eq!(
        state_files(&stack.project),
        files_before,
        "the state was written"
    );
    assert_eq!(versions(&stack), cluster_before, "the cluster was changed");
}

#[test]
fn corrupt_state_is_never_overwritten_and_the_last_good_copy_is_named() {
    assert_bad_state_refused(
        "corrupt-state",
        |stack| {
            let path = stack.project.state_file("dev");
            let text = std::fs::read_to_string(&path).unwrap();
            // Cut short, as a disk that filled up mid-write would leave it.
            std::fs::write(&path, &text[..text.len() / 2]).unwrap();
            let history = stack.project.root().join("state/.history");
            let newest = std::fs::read_dir(&history)
                .unwrap()
                .map(|e| e.unwrap().path())
                .max_by_key(|p| {
                    let name = p.file_name().unwrap().to_str().unwrap().to_string();
                    name.trim_start_matches("dev.")
                        .trim_end_matches(".json")
                        .parse::<u64>()
                        .unwrap()
                })
                .unwrap();
            vec![path.display().to_string(), newest.display().to_string()]
        },
        &["is corrupt", "the last good copy is"],
    );
}

#[test]
fn state_from_a_newer_schema_version_is_refused_and_kept() {
    assert_bad_state_refused(
        "newer-state",
        |stack| {
            let path = stack.project.state_file("dev");
            let mut state = stack.state().unwrap();
            state["version"] = json!(99);
            state["laterField"] = json!({"x": 1});
            std::fs::write(&path, serde_json::to_vec_pretty(&state).unwrap()).unwrap();
            vec![path.display().to_string()]
        },
        &["schema version 99", "newer echo-iac", "upgrade echo-iac"],
    );
}

#[test]
fn state_of_another_stack_is_refused_and_kept() {
    assert_bad_state_refused(
        "foreign-state",
        |stack| {
            let path = stack.project.state_file("dev");
            let mut state = stack.state().unwrap();
            state["stack"] = json!("staging");
            std::fs::write(&path, serde_json::to_vec_pretty(&state).unwrap()).unwrap();
            vec![path.display().to_string()]
        },
        &["belongs to stack `staging`, not `dev`"],
    );
}

/// Standard base64, for kubeconfig `*-data` fields.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
