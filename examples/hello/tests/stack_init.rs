//! `hello-iac stack init` writes the program's section, and the file loads.

use std::process::{Command, Output};

fn hello(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hello-iac"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .env_remove("ECHO_IAC_STACK")
        .env_remove("ECHO_IAC_BACKEND")
        .output()
        .expect("run hello-iac")
}

#[test]
fn a_new_stack_file_has_the_hello_section_and_renders() {
    let dir = tempfile::tempdir().unwrap();
    let init = hello(dir.path(), &["stack", "init", "dev"]);
    assert!(init.status.success(), "{init:?}");
    let text = std::fs::read_to_string(dir.path().join("stacks/dev.yaml")).unwrap();
    assert!(text.contains("\nnamespace: hello-iac-dev\n"), "{text}");
    assert!(
        text.contains("\nhello:\n  # What the pod prints.\n  greeting: hello\n"),
        "{text}"
    );

    let render = hello(dir.path(), &["render"]);
    let yaml = String::from_utf8_lossy(&render.stdout);
    assert!(render.status.success(), "{render:?}");
    assert!(yaml.contains("GREETING: hello"), "{yaml}");
}
