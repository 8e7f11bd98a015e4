//! The example as shipped: `render` reads its stack's `manifests/` and
//! prints the seed's three objects in the stack's namespace, with the
//! stack's labels, without contacting a cluster; `stack init` writes a
//! stack file with no section of the program's own.

use std::process::{Command, Output};

fn seed(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seed-iac"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .env_remove("ECHO_IAC_STACK")
        .env_remove("ECHO_IAC_BACKEND")
        .output()
        .expect("run seed-iac")
}

#[test]
fn render_shows_the_seeds_three_objects_from_the_manifests_folder() {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let render = seed(here, &["--stack", "dev", "render"]);
    let yaml = String::from_utf8_lossy(&render.stdout);
    assert!(render.status.success(), "{render:?}");
    for name in [
        "nginx-echo-config",
        "nginx-echo-nodeport",
        "echo-nodeport-service",
    ] {
        assert!(yaml.contains(&format!("name: {name}\n")), "{yaml}");
    }
    assert_eq!(yaml.matches("namespace: seed-dev\n").count(), 3, "{yaml}");
    assert_eq!(
        yaml.matches("seed-iac.io/stack: dev\n").count(),
        4,
        "{yaml}"
    );
    assert!(yaml.contains("kind: Namespace\n"), "{yaml}");
}

#[test]
fn a_new_stack_file_holds_only_the_generic_keys() {
    let dir = tempfile::tempdir().unwrap();
    let init = seed(dir.path(), &["stack", "init", "dev"]);
    assert!(init.status.success(), "{init:?}");
    let text = std::fs::read_to_string(dir.path().join("stacks/dev.yaml")).unwrap();
    assert!(text.contains("\n# manifests: manifests/\n"), "{text}");
    let render = seed(dir.path(), &["render"]);
    assert!(render.status.success(), "{render:?}");
    let yaml = String::from_utf8_lossy(&render.stdout);
    assert_eq!(
        yaml.matches("---\n").count(),
        1,
        "only the namespace: {yaml}"
    );
}
