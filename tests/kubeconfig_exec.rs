//! A kubeconfig that comes with a checkout (the stack file's `kubeconfig:`
//! inside the project) may name a credential plugin, which kube would run
//! on connecting: it runs only when allowed, and is named first.

use std::path::{Path, PathBuf};

use crate::harness::{TestStack, local_kubeconfig_field, node_port};
use crate::util;

/// Writes `<project>/kube/config`: the local control plane, with a user
/// whose exec plugin says `plugin-started` on stderr, touches `marker` and
/// prints the admin's client certificate as an ExecCredential, so the
/// plugin is a working one.
fn project_kubeconfig(project: &Path, marker: &Path) -> PathBuf {
    let dir = project.join("kube");
    std::fs::create_dir_all(&dir).unwrap();
    let pki = util::kubeconfig().parent().unwrap().join("pki");
    let read = |name: &str| std::fs::read_to_string(pki.join(name)).unwrap();
    let credential = serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {
            "clientCertificateData": read("admin.crt"),
            "clientKeyData": read("admin.key"),
        }
    });
    let credential_file = dir.join("credential.json");
    std::fs::write(&credential_file, credential.to_string()).unwrap();
    let script = format!(
        "echo plugin-started >&2; touch '{}' && cat '{}'",
        marker.display(),
        credential_file.display()
    );
    let path = dir.join("config");
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: local\n  cluster:\n    server: {}\n    certificate-authority-data: {}\ncontexts:\n- name: local\n  context: {{cluster: local, user: plugin}}\ncurrent-context: local\nusers:\n- name: plugin\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      interactiveMode: IfAvailable\n      command: sh\n      args: [\"-c\", {}]\n",
            local_kubeconfig_field("server"),
            local_kubeconfig_field("certificate-authority-data"),
            serde_json::to_string(&script).unwrap()
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_project_kubeconfig_runs_its_exec_plugin_only_when_allowed() {
    let stack = TestStack::new("kc-exec");
    let marker = stack.project.root().join("plugin-ran");
    let kubeconfig = project_kubeconfig(stack.project.root(), &marker);
    stack.project.write_stack(
        "dev",
        &format!(
            "kubeconfig: kube/config\nnamespace: {}\necho:\n  replicas: 1\n  nodePort: {}\n",
            stack.namespace,
            node_port()
        ),
    );

    for command in [
        &["preview"][..],
        &["up", "--yes"],
        &["destroy", "--yes"],
        &["refresh", "--yes"],
    ] {
        stack
            .run(command)
            .assert_code(1)
            .assert_contains("comes from inside the project")
            .assert_contains("exec `sh -c 'echo plugin-started >&2; touch")
            .assert_contains(&kubeconfig.display().to_string())
            .assert_contains("--allow-kubeconfig-exec")
            .assert_contains("ECHO_IAC_ALLOW_KUBECONFIG_EXEC=1");
        assert!(!marker.exists(), "echo-iac {command:?} ran the plugin");
    }

    let allowed = stack.run_env(&["preview"], &[("ECHO_IAC_ALLOW_KUBECONFIG_EXEC", "1")]);
    allowed
        .assert_code(0)
        .assert_contains("note: running the credential plugin of user `plugin`");
    let named = allowed.stderr.find("note: running").unwrap();
    let started = allowed
        .stderr
        .find("plugin-started")
        .expect("the plugin ran");
    assert!(named < started, "named after it ran: {allowed}");
    assert!(marker.exists(), "the allowed plugin did not run: {allowed}");

    std::fs::remove_file(&marker).unwrap();
    stack.ok(&["--allow-kubeconfig-exec", "preview"]);
    assert!(marker.exists());

    // Named on the command line, it is the user's own choice, as with
    // kubectl.
    std::fs::remove_file(&marker).unwrap();
    let chosen = stack.ok(&["--kubeconfig", kubeconfig.to_str().unwrap(), "preview"]);
    assert!(!chosen.stderr.contains("note: running"), "{chosen}");
    assert!(marker.exists());
}
