//! Node ports are cluster-wide: a clash names the Service that holds the
//! port, and a stack that moves to another namespace keeps its port, the
//! old Service going first.

use std::net::SocketAddr;
use std::time::Duration;

use crate::harness::{TestProject, TestStack, node_port, plan_changes, step};
use crate::real_node::{ON_REAL_NODE, answered_ip, http_get, real_node};
use crate::util;

#[test]
fn a_node_port_clash_names_the_service_that_holds_it() {
    let port = node_port();
    let holder = TestStack::new("port-holder");
    holder.write(&format!("echo:\n  replicas: 1\n  nodePort: {port}\n"));
    holder.ok(&["up", "--yes"]);

    let stack = TestStack::new("port-wanted");
    stack.write(&format!("echo:\n  replicas: 1\n  nodePort: {port}\n"));
    let run = stack.run(&["preview"]);
    // Three objects: the rejected Service counts as blocked only.
    run.assert_code(1)
        .assert_contains("Resources: + 2 to create, ! 1 blocked")
        .assert_contains("provided port is already allocated")
        .assert_contains(&format!(
            "node port {port} is held by Service {}/echo-nodeport-service (echo-iac stack `dev`)",
            holder.namespace
        ));
    stack
        .run(&["up", "--yes"])
        .assert_code(1)
        .assert_contains(&format!(
            "held by Service {}/echo-nodeport-service",
            holder.namespace
        ));
    assert!(
        !stack.exists("deployment", "nginx-echo-nodeport"),
        "up changed something although its preview was blocked"
    );

    // The same for a Service that exists and is moved to the taken port.
    stack.write(&format!(
        "echo:\n  replicas: 1\n  nodePort: {}\n",
        node_port()
    ));
    stack.ok(&["up", "--yes"]);
    stack.write(&format!("echo:\n  replicas: 1\n  nodePort: {port}\n"));
    stack
        .run(&["preview"])
        .assert_code(1)
        .assert_contains(&format!(
            "node port {port} is held by Service {}/echo-nodeport-service (echo-iac stack `dev`)",
            holder.namespace
        ));

    // A holder no stack manages is named without one.
    holder.ok(&["destroy", "--yes"]);
    let other = util::TestNamespace::new("port-kubectl");
    util::apply_yaml(
        &other,
        &format!(
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: by-hand\nspec:\n  type: NodePort\n  selector: {{app: x}}\n  ports:\n  - {{port: 80, nodePort: {port}}}\n"
        ),
    );
    stack
        .run(&["preview"])
        .assert_code(1)
        .assert_contains(&format!(
            "node port {port} is held by Service {other}/by-hand\n"
        ));
}

/// Deletes the namespaces a test's stack created, however the test ends.
struct Namespaces(Vec<String>);

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.0 {
            let _ = util::kubectl(&[
                "delete",
                "namespace",
                ns,
                "--wait=false",
                "--ignore-not-found",
            ]);
        }
    }
}

#[test]
fn a_stack_moves_to_a_new_namespace_keeping_its_node_port() {
    let (_, node_ip) = real_node();
    let port = node_port();
    let project = TestProject::new();
    let id = format!("{}-{port}", std::process::id());
    let (old, new) = (format!("move-from-{id}"), format!("move-to-{id}"));
    let _cleanup = Namespaces(vec![old.clone(), new.clone()]);
    let stack_file = |namespace: &str, message: &str| {
        format!(
            "kubeconfig: {}\ncontext: echo-iac-local\nnamespace: {namespace}\ncreateNamespace: true\necho:\n  replicas: 1\n  nodePort: {port}\n  message: {message}\n{ON_REAL_NODE}",
            util::kubeconfig().display()
        )
    };
    project.write_stack("dev", &stack_file(&old, "From the old namespace"));
    project.run(&["up", "--yes"]).assert_code(0);
    let addr: SocketAddr = format!("{node_ip}:{port}").parse().unwrap();
    util::wait_for(
        Duration::from_secs(60),
        "an answer from the old namespace",
        || {
            let (_, body) = http_get(addr)?;
            answered_ip(&body, "From the old namespace")
                .map(|_| ())
                .ok_or(format!("answered {body:?}"))
        },
    );

    project.write_stack("dev", &stack_file(&new, "From the new namespace"));
    let preview = project.run(&["preview"]);
    preview
        .assert_code(0)
        .assert_contains(&format!(
            "node port {port} is held by Service {old}/echo-nodeport-service, which this plan deletes first"
        ));
    let plan: serde_json::Value = {
        let run = project.run(&["preview", "--json"]);
        run.assert_code(0);
        serde_json::from_str(&run.stdout).unwrap()
    };
    let changes = plan_changes(&plan);
    for expected in [
        step("create", "Namespace", &new),
        step("create", "Service", "echo-nodeport-service"),
        step("delete", "Service", "echo-nodeport-service"),
        step("delete", "Namespace", &old),
    ] {
        assert!(
            changes.contains(&expected),
            "{expected:?} not in {changes:?}"
        );
    }

    let up = project.run(&["up", "--yes"]);
    up.assert_code(0);
    // The old Service went before the new one was created.
    let deleted = up
        .stderr
        .find(&format!("Service {old}/echo-nodeport-service deleted"))
        .unwrap_or_else(|| panic!("the old Service was not deleted:\n{up}"));
    let created = up
        .stderr
        .find(&format!("Service {new}/echo-nodeport-service created"))
        .unwrap_or_else(|| panic!("the new Service was not created:\n{up}"));
    assert!(
        deleted < created,
        "the new Service was created before the old one was deleted:\n{up}"
    );

    util::wait_for(
        Duration::from_secs(60),
        "an answer from the new namespace",
        || {
            let (_, body) = http_get(addr)?;
            answered_ip(&body, "From the new namespace")
                .map(|_| ())
                .ok_or(format!("answered {body:?}"))
        },
    );
    let service = util::kubectl_json(&["get", "service", "echo-nodeport-service", "-n", &new]);
    assert_eq!(service["spec"]["ports"][0]["nodePort"], port);
    util::wait_for(
        Duration::from_secs(60),
        "the old namespace to be gone",
        || {
            let out = util::kubectl(&["get", "namespace", &old]);
            if out.status.success() {
                Err("it still exists".to_string())
            } else {
                Ok(())
            }
        },
    );
    project
        .run(&["preview", "--expect-no-changes"])
        .assert_code(0);
    project.run(&["destroy", "--yes"]).assert_code(0);
}

#[test]
fn service_type_changes_in_place_dropping_or_taking_a_node_port() {
    let port = node_port();
    let stack = TestStack::new("service-type");
    let service = || stack.get("service", "echo-nodeport-service")["spec"].clone();

    stack.write("echo:\n  replicas: 1\n  serviceType: ClusterIP\n");
    stack.ok(&["up", "--yes"]);
    let spec = service();
    assert_eq!(spec["type"], "ClusterIP");
    assert!(spec["ports"][0].get("nodePort").is_none(), "{spec}");

    stack.write(&format!(
        "echo:\n  replicas: 1\n  serviceType: LoadBalancer\n  nodePort: {port}\n"
    ));
    let changes = plan_changes(&stack.plan());
    assert_eq!(
        changes,
        [step("update", "Service", "echo-nodeport-service")],
        "a new service type updates the Service in place"
    );
    // up is done once a load-balancer controller gave the Service an
    // address: MetalLB does where the real node runs with its add-ons.
    // Without one, up applies, then says what it waits for.
    let run = stack.run(&["up", "--yes", "--timeout", "10s"]);
    if run.code == 0 {
        let status = stack.get("service", "echo-nodeport-service")["status"].clone();
        assert!(
            status["loadBalancer"]["ingress"][0].is_object(),
            "up finished before the Service had an address: {status}\n{run}"
        );
    } else {
        run.assert_code(1)
            .assert_contains("did not become ready within 10s")
            .assert_contains("waiting for a load-balancer address")
            .assert_contains("no load-balancer controller has assigned an address");
    }
    let spec = service();
    assert_eq!(spec["type"], "LoadBalancer");
    assert_eq!(spec["ports"][0]["nodePort"], port);

    // Back to ClusterIP: the node port is given back, and nothing drifts.
    stack.write("echo:\n  replicas: 1\n  serviceType: ClusterIP\n");
    stack.ok(&["up", "--yes"]);
    let spec = service();
    assert_eq!(spec["type"], "ClusterIP");
    assert!(spec["ports"][0].get("nodePort").is_none(), "{spec}");
    stack.ok(&["preview", "--expect-no-changes"]);
    stack.ok(&["destroy", "--yes"]);
}
