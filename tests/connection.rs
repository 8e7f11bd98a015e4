//! Servers that cannot serve, each started by the test on loopback: a
//! refused port, one that closes every connection, one that never answers,
//! and a host name that does not resolve. Each run fails soon, says why in
//! words of its own, names the server and the context, and writes nothing.
//! The time bounds are loose on purpose: they prove "fails fast" rather
//! than measure it.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use crate::harness::{Run, TestProject, state_files, write_kubeconfig};

/// A project whose stack `dev` talks to `server` through context `test`.
fn project_for(server: &str) -> (TestProject, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = write_kubeconfig(dir.path(), "kubeconfig", server, None, "token: t");
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

/// Runs `args` and asserts it failed with exit 1 within `within`, naming
/// `server`, the context and every one of `words`, and changed no state.
fn assert_fails_within(
    project: &TestProject,
    args: &[&str],
    within: Duration,
    server: &str,
    words: &[&str],
) -> Run {
    let before = state_files(project);
    let start = Instant::now();
    let run = project.run(args);
    let took = start.elapsed();
    run.assert_code(1)
        .assert_contains(server)
        .assert_contains("context `test`")
        .assert_contains("hint: ");
    for word in words {
        run.assert_contains(word);
    }
    assert!(took < within, "{run}\ntook {took:?}, more than {within:?}");
    assert_eq!(
        state_files(project),
        before,
        "a failed run changed the state"
    );
    run
}

/// A loopback port nothing listens on.
fn refused_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A listener that accepts each connection and closes it at once, as an
/// API server does while it shuts down.
fn closing_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for connection in listener.incoming() {
            drop(connection);
        }
    });
    addr
}

const FAST: Duration = Duration::from_secs(5);

#[test]
fn refused_port_fails_within_seconds_naming_server_and_context() {
    let server = format!("https://{}", refused_port());
    let (project, _dir) = project_for(&server);
    for args in [&["preview"][..], &["up", "--yes"]] {
        let run = assert_fails_within(
            &project,
            args,
            FAST,
            &server,
            &[
                "cannot reach the Kubernetes API server",
                "connection refused",
            ],
        );
        // Said once, at the end: no retry notes for a server never reached.
        assert!(!run.stderr.contains("retrying"), "{run}");
    }
}

#[test]
fn server_that_closes_each_connection_is_a_closed_connection_not_a_certificate_error() {
    for scheme in ["https", "http"] {
        let server = format!("{scheme}://{}", closing_server());
        let (project, _dir) = project_for(&server);
        let run = assert_fails_within(
            &project,
            &["up", "--yes"],
            FAST,
            &server,
            &["closed the connection", "may be restarting"],
        );
        assert!(!run.all().contains("certificate"), "{run}");
    }
}

#[test]
fn host_name_that_does_not_resolve_is_named_within_seconds() {
    let server = "https://no-such-host.invalid:6443";
    let (project, _dir) = project_for(server);
    assert_fails_within(
        &project,
        &["preview"],
        FAST,
        server,
        &[
            "the host name `no-such-host.invalid` does not resolve",
            "DNS",
        ],
    );
}

#[test]
fn server_that_never_answers_is_given_up_after_the_request_timeout() {
    // The kernel accepts connections into the backlog; nobody reads them.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = format!("http://{}", silent.local_addr().unwrap());
    let (project, _dir) = project_for(&server);
    assert_fails_within(
        &project,
        &["--request-timeout", "1s", "preview"],
        FAST,
        &server,
        &["no response within 1s", "--request-timeout"],
    );
    // Without the flag, the first contact is bounded too (at 10 s), where
    // the read timeout alone would wait a minute.
    assert_fails_within(
        &project,
        &["up", "--yes"],
        Duration::from_secs(25),
        &server,
        &["no response within 10s"],
    );
}

/// A listener that answers the first request with 503 (so the server has
/// answered in this run) and then closes every connection, as a server
/// that went down for a restart.
fn answers_once_then_goes_away() -> SocketAddr {
    use std::io::{Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut first = true;
        for connection in listener.incoming() {
            let Ok(mut connection) = connection else {
                continue;
            };
            if std::mem::take(&mut first) {
                let mut request = [0u8; 4096];
                let _ = connection.read(&mut request);
                let body = r#"{"kind":"Status","apiVersion":"v1","status":"Failure","message":"restarting","reason":"ServiceUnavailable","code":503}"#;
                let _ = write!(
                    connection,
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        }
    });
    addr
}

#[test]
fn once_the_server_has_answered_an_outage_is_waited_out_with_a_visible_line() {
    let server = format!("http://{}", answers_once_then_goes_away());
    let (project, _dir) = project_for(&server);
    let start = Instant::now();
    let run = project.run(&["--concurrency", "1", "preview"]);
    let took = start.elapsed();
    // Not the 2 s of a server never reached: the usual 20 s of retries,
    // told once, with how long.
    assert!(took > Duration::from_secs(10), "{run}\ntook {took:?}");
    assert!(took < Duration::from_secs(40), "{run}\ntook {took:?}");
    run.assert_code(1)
        .assert_contains(&format!("note: waiting for the API server at {server}"))
        .assert_contains("retrying for up to");
    assert_eq!(
        run.stderr
            .matches("note: waiting for the API server")
            .count(),
        1,
        "{run}"
    );
}
