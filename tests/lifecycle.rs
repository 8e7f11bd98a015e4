//! preview, up and destroy against the local control plane: each test brings
//! a stack up in a namespace of its own and checks the cluster and the state.

use std::time::Duration;

use serde_json::Value;

use crate::harness::{TestProject, TestStack, node_port, plan_changes, step};
use crate::util::{self, TestNamespace};

const SEED_CONFIG: &str = "server {\n  listen 80;\n  server_name localhost;\n  location / {\n    default_type text/plain;\n    return 200 \"Hello! I am Pod: $server_addr\\n\";\n  }\n}\n";

fn echo(replicas: i32, port: i32) -> String {
    format!("echo:\n  replicas: {replicas}\n  nodePort: {port}\n")
}

fn resource_versions(stack: &TestStack) -> Vec<String> {
    [
        ("configmap", "nginx-echo-config"),
        ("deployment", "nginx-echo-nodeport"),
        ("service", "echo-nodeport-service"),
    ]
    .iter()
    .map(|(kind, name)| {
        stack.get(kind, name)["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_string()
    })
    .collect()
}

fn state_uid(state: &Value, kind: &str, name: &str) -> String {
    state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"]["kind"] == kind && r["id"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {name} is not in the state: {state:#}"))["uid"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn preview_of_a_new_stack_lists_creates_and_changes_nothing() {
    // The stack creates its namespace, so the namespace must not exist yet.
    let project = TestProject::new();
    let namespace = format!("echo-preview-{}-{}", std::process::id(), node_port());
    let port = node_port();
    project.write_stack(
        "dev",
        &format!(
            "kubeconfig: {}\ncontext: echo-iac-local\nnamespace: {namespace}\ncreateNamespace: true\n{}",
            util::kubeconfig().display(),
            echo(3, port)
        ),
    );

    let run = project.run(&["preview", "--json"]);
    run.assert_code(0);
    let plan: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(
        plan_changes(&plan),
        [
            step("create", "Namespace", &namespace),
            step("create", "ConfigMap", "nginx-echo-config"),
            step("create", "Deployment", "nginx-echo-nodeport"),
            step("create", "Service", "echo-nodeport-service"),
        ]
    );
    assert_eq!(plan["summary"]["create"], 4);

    let text = project.run(&["preview"]);
    text.assert_code(0)
        .assert_contains("Namespace")
        .assert_contains("nginx-echo-nodeport")
        .assert_contains("create");

    assert!(
        !util::kubectl(&["get", "namespace", &namespace])
            .status
            .success(),
        "preview created the namespace"
    );
    assert!(project.state("dev").is_none(), "preview wrote a state file");
}

#[test]
fn up_creates_the_seed_objects_and_waits_until_ready() {
    let stack = TestStack::new("up-seed");
    let port = node_port();
    stack.write(&echo(3, port));

    let up = stack.ok(&["up", "--yes"]);
    up.assert_contains("Outputs");

    let cm = stack.get("configmap", "nginx-echo-config");
    assert_eq!(cm["data"]["default.conf"], SEED_CONFIG);

    let deploy = stack.get("deployment", "nginx-echo-nodeport");
    assert_eq!(deploy["spec"]["replicas"], 3);
    assert_eq!(
        deploy["spec"]["selector"]["matchLabels"]["app"],
        "echo-nodeport"
    );
    let container = &deploy["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "nginx:alpine");
    assert_eq!(container["ports"][0]["containerPort"], 80);
    assert_eq!(
        container["volumeMounts"][0]["mountPath"],
        "/etc/nginx/conf.d"
    );
    assert_eq!(
        deploy["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"],
        "nginx-echo-config"
    );
    // up returned only once the rollout was complete.
    assert_eq!(deploy["status"]["availableReplicas"], 3, "{deploy:#}");
    assert_eq!(deploy["status"]["updatedReplicas"], 3);
    assert_eq!(
        deploy["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "echo-iac"
    );
    assert_eq!(deploy["metadata"]["labels"]["echo-iac.io/stack"], "dev");

    let svc = stack.get("service", "echo-nodeport-service");
    assert_eq!(svc["spec"]["type"], "NodePort");
    assert_eq!(svc["spec"]["ports"][0]["nodePort"], port);
    assert_eq!(svc["spec"]["ports"][0]["port"], 80);
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], 80);
    assert_eq!(svc["spec"]["selector"]["app"], "echo-nodeport");

    let slices = util::kubectl_json(&[
        "get",
        "endpointslices",
        "-n",
        &stack.namespace,
        "-l",
        "kubernetes.io/service-name=echo-nodeport-service",
    ]);
    let ready = slices["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["conditions"]["ready"] == true)
        .count();
    assert_eq!(ready, 3, "{slices:#}");

    let state = stack.state().expect("up wrote the state");
    for (kind, name, live) in [
        ("ConfigMap", "nginx-echo-config", &cm),
        ("Deployment", "nginx-echo-nodeport", &deploy),
        ("Service", "echo-nodeport-service", &svc),
    ] {
        assert_eq!(
            state_uid(&state, kind, name),
            live["metadata"]["uid"].as_str().unwrap()
        );
    }
    assert!(state["pending"].as_array().unwrap().is_empty());

    let nodes = util::kubectl_json(&["get", "nodes"]);
    let node_count = nodes["items"].as_array().unwrap().len();
    let urls = state["outputs"]["urls"].as_array().expect("urls output");
    assert_eq!(urls.len(), node_count, "{:#}", state["outputs"]);
    assert!(
        urls.iter()
            .all(|u| u.as_str().unwrap().ends_with(&format!(":{port}")))
    );
    assert_eq!(state["outputs"]["nodePort"], port);

    let output = stack.ok(&["output", "nodePort"]);
    assert_eq!(output.stdout.trim(), port.to_string());
}

#[test]
fn second_up_changes_nothing_and_bumps_no_resource_version() {
    let stack = TestStack::new("noop");
    stack.write(&echo(1, node_port()));
    stack.ok(&["up", "--yes"]);
    let before = resource_versions(&stack);
    let serial_before = stack.state().unwrap()["serial"].clone();

    stack.ok(&["preview", "--expect-no-changes"]);
    let up = stack.ok(&["up", "--yes"]);
    up.assert_contains("No changes");

    assert_eq!(resource_versions(&stack), before);
    assert_eq!(stack.state().unwrap()["serial"], serial_before);
}

#[test]
fn message_change_updates_the_config_map_in_place_and_rolls_the_deployment() {
    let stack = TestStack::new("message");
    let port = node_port();
    stack.write(&echo(2, port));
    stack.ok(&["up", "--yes"]);
    let cm_uid = stack.get("configmap", "nginx-echo-config")["metadata"]["uid"].clone();
    let deploy_uid = stack.get("deployment", "nginx-echo-nodeport")["metadata"]["uid"].clone();

    stack.write(&format!(
        "echo:\n  replicas: 2\n  nodePort: {port}\n  message: Hi from dev\n"
    ));
    let plan = stack.plan();
    assert_eq!(
        plan_changes(&plan),
        [
            step("update", "ConfigMap", "nginx-echo-config"),
            step("update", "Deployment", "nginx-echo-nodeport"),
        ]
    );
    stack
        .run(&["preview", "--expect-no-changes"])
        .assert_code(2);

    stack.ok(&["up", "--yes"]);
    let cm = stack.get("configmap", "nginx-echo-config");
    assert!(
        cm["data"]["default.conf"]
            .as_str()
            .unwrap()
            .contains("return 200 \"Hi from dev: $server_addr\\n\";")
    );
    assert_eq!(cm["metadata"]["uid"], cm_uid, "the ConfigMap was replaced");
    let deploy = stack.get("deployment", "nginx-echo-nodeport");
    assert_eq!(
        deploy["metadata"]["uid"], deploy_uid,
        "the Deployment was replaced"
    );
    assert_eq!(deploy["status"]["updatedReplicas"], 2);

    // The config change rolled the pods: a second ReplicaSet exists.
    let sets = util::kubectl_json(&[
        "get",
        "replicasets",
        "-n",
        &stack.namespace,
        "-l",
        "app=echo-nodeport",
    ]);
    assert_eq!(sets["items"].as_array().unwrap().len(), 2, "{sets:#}");
}

#[test]
fn replicas_change_is_an_update_that_up_waits_out() {
    let stack = TestStack::new("scale");
    let port = node_port();
    stack.write(&echo(3, port));
    stack.ok(&["up", "--yes"]);

    stack.write(&echo(1, port));
    let plan = stack.plan();
    assert_eq!(
        plan_changes(&plan),
        [step("update", "Deployment", "nginx-echo-nodeport")]
    );
    let change = &plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["op"] == "update")
        .unwrap()["changes"][0];
    assert_eq!(change["path"], "spec.replicas");
    assert_eq!(change["old"], 3);
    assert_eq!(change["new"], 1);

    stack.ok(&["up", "--yes"]);
    let deploy = stack.get("deployment", "nginx-echo-nodeport");
    assert_eq!(deploy["status"]["replicas"], 1, "{deploy:#}");
    assert_eq!(deploy["status"]["availableReplicas"], 1);
}

#[test]
fn out_of_band_scale_is_a_conflict_that_only_force_conflicts_overrides() {
    let stack = TestStack::new("conflict");
    stack.write(&echo(2, node_port()));
    stack.ok(&["up", "--yes"]);
    util::kubectl_ok(&[
        "scale",
        "deployment/nginx-echo-nodeport",
        "--replicas=4",
        "-n",
        &stack.namespace,
    ]);

    let preview = stack.run(&["preview"]);
    preview
        .assert_code(1)
        .assert_contains("spec.replicas")
        .assert_contains("kubectl")
        .assert_contains("--force-conflicts");

    let up = stack.run(&["up", "--yes"]);
    up.assert_code(1).assert_contains("--force-conflicts");
    assert_eq!(
        stack.get("deployment", "nginx-echo-nodeport")["spec"]["replicas"],
        4
    );

    stack.ok(&["up", "--yes", "--force-conflicts"]);
    assert_eq!(
        stack.get("deployment", "nginx-echo-nodeport")["spec"]["replicas"],
        2
    );
    stack.ok(&["preview", "--expect-no-changes"]);
}

#[test]
fn service_deleted_out_of_band_is_previewed_as_create_and_recreated() {
    let stack = TestStack::new("recreate");
    let port = node_port();
    stack.write(&echo(1, port));
    stack.ok(&["up", "--yes"]);
    util::kubectl_ok(&[
        "delete",
        "service",
        "echo-nodeport-service",
        "-n",
        &stack.namespace,
    ]);

    let plan = stack.plan();
    assert_eq!(
        plan_changes(&plan),
        [step("create", "Service", "echo-nodeport-service")]
    );
    stack
        .run(&["preview"])
        .assert_contains("deleted outside echo-iac");

    stack.ok(&["up", "--yes"]);
    let svc = stack.get("service", "echo-nodeport-service");
    assert_eq!(svc["spec"]["ports"][0]["nodePort"], port);
    let state = stack.state().unwrap();
    assert_eq!(
        state_uid(&state, "Service", "echo-nodeport-service"),
        svc["metadata"]["uid"].as_str().unwrap()
    );
}

#[test]
fn selector_change_previews_a_replace_of_the_deployment_and_up_carries_it_out() {
    let stack = TestStack::new("selector");
    let port = node_port();
    stack.write(&echo(1, port));
    stack.ok(&["up", "--yes"]);
    let old_uid = stack.get("deployment", "nginx-echo-nodeport")["metadata"]["uid"].clone();

    stack.write(&format!(
        "echo:\n  replicas: 1\n  nodePort: {port}\n  appLabel: echo-v2\n"
    ));
    let plan = stack.plan();
    let steps = plan_changes(&plan);
    assert!(
        steps.contains(&step("replace", "Deployment", "nginx-echo-nodeport")),
        "{plan:#}"
    );
    assert!(steps.contains(&step("update", "Service", "echo-nodeport-service")));
    let text = stack.run(&["preview"]);
    text.assert_contains("spec.selector")
        .assert_contains("replace");

    stack.ok(&["up", "--yes"]);
    let deploy = stack.get("deployment", "nginx-echo-nodeport");
    assert_ne!(deploy["metadata"]["uid"], old_uid);
    assert_eq!(deploy["spec"]["selector"]["matchLabels"]["app"], "echo-v2");
    assert_eq!(deploy["status"]["availableReplicas"], 1);
    assert_eq!(
        stack.get("service", "echo-nodeport-service")["spec"]["selector"]["app"],
        "echo-v2"
    );
    stack.ok(&["preview", "--expect-no-changes"]);
}

#[test]
fn removing_an_echoes_entry_previews_and_performs_its_delete() {
    let stack = TestStack::new("prune");
    let (a, b) = (node_port(), node_port());
    stack.write(&format!(
        "echoes:\n  - name: alpha\n    replicas: 1\n    nodePort: {a}\n  - name: beta\n    replicas: 1\n    nodePort: {b}\n"
    ));
    stack.ok(&["up", "--yes"]);
    assert!(stack.exists("deployment", "beta"));

    stack.write(&format!(
        "echoes:\n  - name: alpha\n    replicas: 1\n    nodePort: {a}\n"
    ));
    let plan = stack.plan();
    assert_eq!(
        plan_changes(&plan),
        [
            step("delete", "Service", "beta-service"),
            step("delete", "Deployment", "beta"),
            step("delete", "ConfigMap", "beta-config"),
        ]
    );
    stack.ok(&["up", "--yes"]);
    for (kind, name) in [
        ("service", "beta-service"),
        ("deployment", "beta"),
        ("configmap", "beta-config"),
    ] {
        assert!(!stack.exists(kind, name), "{kind} {name} still exists");
    }
    assert!(stack.exists("deployment", "alpha"));
    let state = stack.state().unwrap();
    let names: Vec<&str> = state["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"]["name"].as_str().unwrap())
        .collect();
    assert!(!names.iter().any(|n| n.starts_with("beta")), "{names:?}");
}

#[test]
fn unmanaged_object_with_the_same_name_is_never_overwritten() {
    let stack = TestStack::new("unmanaged");
    stack.write(&echo(1, node_port()));
    util::kubectl_ok(&[
        "create",
        "configmap",
        "nginx-echo-config",
        "--from-literal=owner=someone-else",
        "-n",
        &stack.namespace,
    ]);

    let preview = stack.run(&["preview"]);
    preview
        .assert_code(1)
        .assert_contains("not managed by this stack")
        .assert_contains("--adopt");
    let up = stack.run(&["up", "--yes"]);
    up.assert_code(1);

    let cm = stack.get("configmap", "nginx-echo-config");
    assert_eq!(cm["data"]["owner"], "someone-else");
    assert!(cm["data"]["default.conf"].is_null());
    assert!(!stack.exists("deployment", "nginx-echo-nodeport"));
}

#[test]
fn destroy_removes_what_the_stack_created_and_nothing_else() {
    let stack = TestStack::new("destroy");
    stack.write(&echo(1, node_port()));
    stack.ok(&["up", "--yes"]);
    util::kubectl_ok(&[
        "create",
        "configmap",
        "unrelated",
        "--from-literal=keep=me",
        "-n",
        &stack.namespace,
    ]);

    stack
        .run(&["destroy"])
        .assert_code(1)
        .assert_contains("--yes");
    assert!(stack.exists("deployment", "nginx-echo-nodeport"));

    stack.ok(&["destroy", "--yes"]);
    for (kind, name) in [
        ("configmap", "nginx-echo-config"),
        ("deployment", "nginx-echo-nodeport"),
        ("service", "echo-nodeport-service"),
    ] {
        assert!(!stack.exists(kind, name), "{kind} {name} survived destroy");
    }
    assert!(stack.exists("configmap", "unrelated"));
    let state = stack.state().unwrap();
    assert!(
        state["resources"].as_array().unwrap().is_empty(),
        "{state:#}"
    );

    let again = stack.ok(&["destroy", "--yes"]);
    again.assert_contains("Nothing to destroy");
}

#[test]
fn destroy_deletes_the_namespace_it_created_only_when_empty_of_others() {
    let project = TestProject::new();
    let namespace = format!("echo-nsdel-{}-{}", std::process::id(), node_port());
    project.write_stack(
        "dev",
        &format!(
            "kubeconfig: {}\ncontext: echo-iac-local\nnamespace: {namespace}\ncreateNamespace: true\n{}",
            util::kubeconfig().display(),
            echo(1, node_port())
        ),
    );
    project.run(&["up", "--yes"]).assert_code(0);
    assert!(
        util::kubectl(&["get", "namespace", &namespace])
            .status
            .success()
    );

    project.run(&["destroy", "--yes"]).assert_code(0);
    util::wait_for(Duration::from_secs(60), "the namespace to be gone", || {
        if util::kubectl(&["get", "namespace", &namespace])
            .status
            .success()
        {
            Err("still there".to_string())
        } else {
            Ok(())
        }
    });
}

#[test]
fn two_stacks_live_side_by_side_and_destroying_one_keeps_the_other() {
    let project = TestProject::new();
    let dev_ns = TestNamespace::new("side-dev");
    let staging_ns = TestNamespace::new("side-staging");
    for (name, ns) in [("dev", &dev_ns), ("staging", &staging_ns)] {
        project.write_stack(
            name,
            &format!(
                "kubeconfig: {}\ncontext: echo-iac-local\nnamespace: {ns}\n{}",
                util::kubeconfig().display(),
                echo(1, node_port())
            ),
        );
    }
    project
        .run(&["--stack", "dev", "up", "--yes"])
        .assert_code(0);
    project
        .run(&["--stack", "staging", "up", "--yes"])
        .assert_code(0);

    let ls = project.run(&["stack", "ls"]);
    ls.assert_code(0)
        .assert_contains("dev")
        .assert_contains("staging");

    project
        .run(&["--stack", "dev", "destroy", "--yes"])
        .assert_code(0);
    let get = |ns: &TestNamespace| {
        util::kubectl(&["get", "deployment", "nginx-echo-nodeport", "-n", ns.name()])
            .status
            .success()
    };
    assert!(!get(&dev_ns));
    assert!(
        get(&staging_ns),
        "destroying dev removed staging's Deployment"
    );
    project
        .run(&["--stack", "staging", "preview", "--expect-no-changes"])
        .assert_code(0);
}
