//! The seed's three YAML files, deployed through a stack file's
//! `manifests:` by a program that declares nothing of its own, on the real
//! node that `make cluster-node` starts beside the kwok nodes: preview, up,
//! `curl http://<node IP>:<node port>` answered by the pods, a preview
//! with no changes, destroy.
//!
//! The node is tainted, so that the suite's other pods stay on the kwok
//! nodes; this test's namespace places its pods there with the annotations
//! of the PodNodeSelector and PodTolerationRestriction admission plugins,
//! as the echo program's real-node test does.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use echo_iac_testutil::{TestNamespace, http_get, kubeconfig, kubectl_json, kubectl_ok, wait_for};
use serde_json::Value;

const NODE_LABEL: &str = "echo-iac.io/node=real";
const TOLERATION: &str =
    r#"[{"key":"echo-iac.io/node","operator":"Equal","value":"real","effect":"NoSchedule"}]"#;

/// The real node's name and InternalIP; panics with how to start it.
fn real_node() -> (String, String) {
    const HOW: &str = "the real node is not running: run `make cluster-node` \
        (as root, after `make cluster`), or `make test`, which starts it";
    let nodes = kubectl_json(&["get", "nodes", "-l", NODE_LABEL]);
    let node = nodes["items"]
        .as_array()
        .and_then(|items| items.first())
        .unwrap_or_else(|| panic!("no node labelled {NODE_LABEL}; {HOW}"));
    let name = node["metadata"]["name"].as_str().unwrap_or("?").to_string();
    let ip = node["status"]["addresses"]
        .as_array()
        .and_then(|a| a.iter().find(|a| a["type"] == "InternalIP"))
        .and_then(|a| a["address"].as_str())
        .unwrap_or_else(|| panic!("node {name} has no InternalIP; {HOW}"))
        .to_string();
    (name, ip)
}

/// Node ports are cluster-wide: the echo tests keep below 32600, this one
/// takes one above, spread by process.
fn node_port() -> u16 {
    32650 + (std::process::id() % 100) as u16
}

fn seed(project: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_seed-iac"))
        .arg("-C")
        .arg(project)
        .args(args)
        .env_remove("ECHO_IAC_STACK")
        .env_remove("ECHO_IAC_BACKEND")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run seed-iac")
}

fn ok(project: &Path, args: &[&str]) -> String {
    let output = seed(project, args);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "seed-iac {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A project holding the example's manifests, the Service's node port
/// rewritten to `port`, and a stack `dev` in `namespace` that deploys them.
fn project(namespace: &str, port: u16) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(dir.path().join("manifests")).unwrap();
    std::fs::create_dir_all(dir.path().join("stacks")).unwrap();
    for file in ["configmap.yaml", "deployment.yaml", "service.yaml"] {
        let text = std::fs::read_to_string(here.join("manifests").join(file)).unwrap();
        let text = if file == "service.yaml" {
            assert!(text.contains("nodePort: 30007\n"), "{text}");
            text.replace("nodePort: 30007\n", &format!("nodePort: {port}\n"))
        } else {
            text
        };
        std::fs::write(dir.path().join("manifests").join(file), text).unwrap();
    }
    std::fs::write(
        dir.path().join("stacks/dev.yaml"),
        format!(
            "kubeconfig: {}\ncontext: echo-iac-local\nnamespace: {namespace}\nmanifests: manifests/\n",
            kubeconfig().display()
        ),
    )
    .unwrap();
    dir
}

fn pods(namespace: &str) -> Vec<Value> {
    kubectl_json(&[
        "get",
        "pods",
        "-n",
        namespace,
        "-l",
        "app=echo-nodeport",
        "-o",
        "json",
    ])["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[test]
fn the_seeds_yaml_files_answer_on_the_real_nodes_node_port() {
    let (node, node_ip) = real_node();
    let namespace = TestNamespace::new("seed-manifests");
    let ns = namespace.name();
    kubectl_ok(&[
        "annotate",
        "namespace",
        ns,
        &format!("scheduler.alpha.kubernetes.io/node-selector={NODE_LABEL}"),
        &format!("scheduler.alpha.kubernetes.io/defaultTolerations={TOLERATION}"),
    ]);
    let port = node_port();
    let project = project(ns, port);
    let root = project.path();

    // The three documents, in the stack's namespace, as creates.
    let plan = ok(root, &["preview"]);
    for (kind, name) in [
        ("ConfigMap", "nginx-echo-config"),
        ("Deployment", "nginx-echo-nodeport"),
        ("Service", "echo-nodeport-service"),
    ] {
        let row = plan
            .lines()
            .find(|line| line.contains(kind) && line.contains(&format!("{ns}/{name}")))
            .unwrap_or_else(|| panic!("no row for {kind} {ns}/{name}:\n{plan}"));
        assert!(row.trim_end().ends_with("create"), "{row}\n{plan}");
    }

    ok(root, &["up", "--yes"]);
    let service = kubectl_json(&[
        "get",
        "service",
        "echo-nodeport-service",
        "-n",
        ns,
        "-o",
        "json",
    ]);
    assert_eq!(
        service["metadata"]["labels"]["app.kubernetes.io/managed-by"], "seed-iac",
        "{service:#}"
    );
    assert_eq!(service["metadata"]["labels"]["seed-iac.io/stack"], "dev");
    assert_eq!(service["spec"]["ports"][0]["nodePort"], port);
    let running = pods(ns);
    assert_eq!(running.len(), 3, "{running:#?}");
    for pod in &running {
        assert_eq!(pod["spec"]["nodeName"], node, "pod not on the real node");
    }

    // Every answer comes from one of the Deployment's pods.
    let ips: BTreeSet<String> = pods(ns)
        .iter()
        .filter_map(|p| p["status"]["podIP"].as_str().map(str::to_string))
        .collect();
    let addr: SocketAddr = format!("{node_ip}:{port}").parse().unwrap();
    wait_for(
        Duration::from_secs(60),
        &format!("an answer from {addr}"),
        || {
            let (status, body) = http_get(addr)?;
            if status != 200 {
                return Err(format!("answered {status}: {body:?}"));
            }
            Ok(())
        },
    );
    for _ in 0..10 {
        let (status, body) = http_get(addr).unwrap_or_else(|e| panic!("GET {addr}: {e}"));
        assert_eq!(status, 200, "{body:?}");
        let ip = body
            .strip_suffix('\n')
            .and_then(|b| b.strip_prefix("Hello! I am Pod: "))
            .unwrap_or_else(|| panic!("answered {body:?}"));
        assert!(ips.contains(ip), "{ip} is not one of the pods {ips:?}");
    }

    // Unchanged files plan no change.
    let output = seed(root, &["preview", "--expect-no-changes"]);
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    ok(root, &["destroy", "--yes"]);
    wait_for(
        Duration::from_secs(30),
        &format!("{addr} to stop answering"),
        || match http_get(addr) {
            Err(_) => Ok(()),
            Ok(answer) => Err(format!("it still answers {answer:?}")),
        },
    );
    let left = kubectl_json(&[
        "get",
        "deployments,services,configmaps",
        "-n",
        ns,
        "-l",
        "seed-iac.io/stack=dev",
        "-o",
        "json",
    ]);
    assert_eq!(left["items"].as_array().map(Vec::len), Some(0), "{left:#}");
}
