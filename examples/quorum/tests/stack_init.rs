//! `quorum-iac stack init` writes the quorum section without a password,
//! and the file loads once the password comes from where it names.

use std::path::Path;
use std::process::{Command, Output};

fn quorum(dir: &Path, args: &[&str], password: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_quorum-iac"));
    command
        .arg("-C")
        .arg(dir)
        .args(args)
        .env_remove("ECHO_IAC_STACK")
        .env_remove("ECHO_IAC_BACKEND")
        .env_remove("QUORUM_PASSWORD");
    if let Some(password) = password {
        command.env("QUORUM_PASSWORD", password);
    }
    command.output().expect("run quorum-iac")
}

#[test]
fn a_new_stack_file_names_where_the_password_comes_from_and_holds_none() {
    let dir = tempfile::tempdir().unwrap();
    let init = quorum(dir.path(), &["stack", "init", "dev"], None);
    assert!(init.status.success(), "{init:?}");
    let text = std::fs::read_to_string(dir.path().join("stacks/dev.yaml")).unwrap();
    assert!(text.contains("\nquorum:\n"), "{text}");
    assert!(text.contains("  # passwordFile:\n"), "{text}");
    assert!(text.contains("QUORUM_PASSWORD"), "{text}");

    // Without a password the program says where to put one ...
    let refused = quorum(dir.path(), &["render"], None);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("QUORUM_PASSWORD"), "{stderr}");
    // ... and with one the file renders as written.
    let render = quorum(dir.path(), &["render"], Some("s3cret"));
    let yaml = String::from_utf8_lossy(&render.stdout);
    assert!(render.status.success(), "{render:?}");
    assert!(yaml.contains("kind: StatefulSet"), "{yaml}");
    assert!(yaml.contains("namespace: quorum-iac-dev"), "{yaml}");
}
