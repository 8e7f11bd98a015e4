//! echo-iac run with a ServiceAccount's token instead of the admin
//! certificate: with the least privilege it needs (one Role in the stack's
//! namespace), and with less.

use std::path::PathBuf;

use crate::harness::{TestStack, local_kubeconfig_field, node_port, state_files, write_kubeconfig};
use crate::util;

/// The Role that `preview`, `up`, `destroy` and `refresh` need for a stack
/// in an existing namespace, and nothing more: each verb was found
/// necessary by removing it. (`list` on Deployments and EndpointSlices is
/// for the readiness wait, which reads a namespace at a time.)
const LEAST_PRIVILEGE: &str = r#"
- apiGroups: [""]
  resources: [configmaps, services]
  verbs: [get, create, patch, delete]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, create, patch, delete]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list]
"#;

/// [`LEAST_PRIVILEGE`] with `get`, `patch` and `delete` limited to the echo
/// stack's own objects by `resourceNames`. `create` cannot be limited to
/// names (a create names its object only in its body), nor can `list` on
/// Deployments, which the readiness wait reads a namespace at a time.
const NAMED_OBJECTS_ONLY: &str = r#"
- apiGroups: [""]
  resources: [configmaps, services]
  verbs: [create]
- apiGroups: [""]
  resources: [configmaps]
  resourceNames: [nginx-echo-config]
  verbs: [get, patch, delete]
- apiGroups: [""]
  resources: [services]
  resourceNames: [echo-nodeport-service]
  verbs: [get, patch, delete]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [list, create]
- apiGroups: [apps]
  resources: [deployments]
  resourceNames: [nginx-echo-nodeport]
  verbs: [get, patch, delete]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list]
"#;

/// A ServiceAccount `deployer` in the stack's namespace bound to a Role
/// with `rules` (none: no Role at all), and a kubeconfig with its token.
/// Returns the kubeconfig's path and the token.
fn service_account(stack: &TestStack, rules: Option<&str>) -> (PathBuf, String) {
    let ns = stack.namespace.as_str();
    util::kubectl_ok(&["create", "serviceaccount", "deployer", "-n", ns]);
    if let Some(rules) = rules {
        set_role(stack, rules);
        util::kubectl_ok(&[
            "create",
            "rolebinding",
            "echo-iac",
            "--role=echo-iac",
            &format!("--serviceaccount={ns}:deployer"),
            "-n",
            ns,
        ]);
    }
    let token = util::kubectl_ok(&["create", "token", "deployer", "-n", ns, "--duration=1h"])
        .trim()
        .to_string();
    let kubeconfig = write_kubeconfig(
        stack.project.root(),
        "deployer.kubeconfig",
        &local_kubeconfig_field("server"),
        Some(&local_kubeconfig_field("certificate-authority-data")),
        &format!("token: {token}"),
    );
    (kubeconfig, token)
}

/// Creates or replaces the Role `echo-iac` in the stack's namespace.
fn set_role(stack: &TestStack, rules: &str) {
    util::apply_yaml(
        &stack.namespace,
        &format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: echo-iac\nrules:{rules}"
        ),
    );
}

fn write_stack(stack: &TestStack, kubeconfig: &std::path::Path, port: i32) {
    stack.project.write_stack(
        &stack.name,
        &format!(
            "kubeconfig: {}\nnamespace: {}\necho:\n  replicas: 2\n  nodePort: {port}\n",
            kubeconfig.display(),
            stack.namespace
        ),
    );
}

#[test]
fn least_privilege_role_is_enough_for_preview_up_refresh_and_destroy() {
    let stack = TestStack::new("rbac-least");
    let (kubeconfig, token) = service_account(&stack, Some(LEAST_PRIVILEGE));
    let port = node_port();
    write_stack(&stack, &kubeconfig, port);

    stack.ok(&["preview"]);
    let up = stack.ok(&["up", "--yes"]);
    up.assert_contains("the stack is ready");
    assert_eq!(
        stack.get("deployment", "nginx-echo-nodeport")["status"]["availableReplicas"],
        2
    );

    // A Role cannot grant reading nodes: the outputs have no URLs and say why.
    let state = stack.state().unwrap();
    let outputs = &state["outputs"];
    assert_eq!(outputs["nodePort"], port, "{outputs:#}");
    assert_eq!(outputs["urls"], serde_json::json!([]), "{outputs:#}");
    assert!(
        outputs["urlsUnknown"]
            .as_str()
            .unwrap_or_default()
            .contains("may not list nodes"),
        "{outputs:#}"
    );
    up.assert_contains("may not list nodes");

    stack.ok(&["preview", "--expect-no-changes"]);
    stack.ok(&["refresh", "--yes"]);
    // A change and an immutable selector: update and replace.
    stack.project.write_stack(
        &stack.name,
        &format!(
            "kubeconfig: {}\nnamespace: {}\necho:\n  replicas: 1\n  nodePort: {port}\n  message: hi\n  appLabel: echo-v2\n",
            kubeconfig.display(),
            stack.namespace
        ),
    );
    stack.ok(&["up", "--yes"]);
    stack.ok(&["destroy", "--yes"]);
    assert!(!stack.exists("deployment", "nginx-echo-nodeport"));

    for file in state_files(&stack.project).values() {
        assert!(
            !String::from_utf8_lossy(file).contains(&token),
            "the token was written to the state"
        );
    }
}

#[test]
fn role_limited_to_the_stacks_object_names_is_enough_and_reaches_nothing_else() {
    let stack = TestStack::new("rbac-named");
    let (kubeconfig, _) = service_account(&stack, Some(NAMED_OBJECTS_ONLY));
    let port = node_port();
    write_stack(&stack, &kubeconfig, port);

    stack.ok(&["preview"]);
    stack
        .ok(&["up", "--yes"])
        .assert_contains("the stack is ready");
    stack.ok(&["preview", "--expect-no-changes"]);
    stack.ok(&["refresh", "--yes"]);
    // An update and a replace (the selector is immutable).
    stack.project.write_stack(
        &stack.name,
        &format!(
            "kubeconfig: {}\nnamespace: {}\necho:\n  replicas: 1\n  nodePort: {port}\n  message: hi\n  appLabel: echo-v2\n",
            kubeconfig.display(),
            stack.namespace
        ),
    );
    stack.ok(&["up", "--yes"]);

    // Whatever else lives in the namespace is out of reach, even with the
    // stack's labels: the Role cannot list ConfigMaps, so not even
    // `--delete-untracked` finds it, and could not touch it if it did.
    util::apply_yaml(
        &stack.namespace,
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: theirs\n  labels:\n    app.kubernetes.io/managed-by: echo-iac\n    echo-iac.io/stack: dev\n",
    );
    let who = format!("system:serviceaccount:{}:deployer", stack.namespace);
    for verb in ["get", "patch", "delete"] {
        let can = util::kubectl(&[
            "auth",
            "can-i",
            verb,
            "configmaps/theirs",
            "-n",
            &stack.namespace,
            &format!("--as={who}"),
        ]);
        assert_eq!(
            String::from_utf8_lossy(&can.stdout).trim(),
            "no",
            "{verb} is allowed"
        );
    }
    stack.ok(&["destroy", "--yes", "--delete-untracked"]);
    for (kind, name) in [
        ("service", "echo-nodeport-service"),
        ("deployment", "nginx-echo-nodeport"),
        ("configmap", "nginx-echo-config"),
    ] {
        assert!(!stack.exists(kind, name), "{kind} {name} survived");
    }
    assert!(stack.exists("configmap", "theirs"));
}

#[test]
fn service_account_without_permissions_gets_a_403_naming_verb_and_resource() {
    let stack = TestStack::new("rbac-none");
    let (kubeconfig, token) = service_account(&stack, None);
    write_stack(&stack, &kubeconfig, node_port());

    for command in [&["preview"][..], &["up", "--yes"]] {
        let run = stack.run(command);
        run.assert_code(1)
            .assert_contains("not allowed to read")
            .assert_contains("cannot get resource")
            .assert_contains(&format!(
                "system:serviceaccount:{}:deployer",
                stack.namespace
            ))
            .assert_contains("hint: ask a cluster admin for the RBAC permission");
        assert!(!run.all().contains(&token), "the token was shown: {run}");
    }
    assert!(
        state_files(&stack.project).is_empty(),
        "a state file was written"
    );
    for kind in ["configmaps", "deployments", "services"] {
        let left = util::kubectl_ok(&["get", kind, "-n", &stack.namespace, "-o", "name"]);
        assert!(
            left.lines().all(|l| l == "configmap/kube-root-ca.crt"),
            "{left}"
        );
    }
}

#[test]
fn destroy_without_delete_permission_names_it_and_finishes_once_granted() {
    let stack = TestStack::new("rbac-nodelete");
    let no_delete = LEAST_PRIVILEGE.replace(
        "verbs: [get, create, patch, delete]",
        "verbs: [get, create, patch]",
    );
    let (kubeconfig, _) = service_account(&stack, Some(&no_delete));
    write_stack(&stack, &kubeconfig, node_port());
    stack.ok(&["up", "--yes"]);

    let run = stack.run(&["destroy", "--yes"]);
    run.assert_code(1)
        .assert_contains("not allowed to delete Service")
        .assert_contains("cannot delete resource \"services\"");
    // Nothing was deleted, and the state still lists every object.
    assert!(stack.exists("service", "echo-nodeport-service"));
    let state = stack.state().unwrap();
    assert_eq!(state["resources"].as_array().unwrap().len(), 3, "{state:#}");

    set_role(&stack, LEAST_PRIVILEGE);
    stack.ok(&["destroy", "--yes"]);
    for (kind, name) in [
        ("service", "echo-nodeport-service"),
        ("deployment", "nginx-echo-nodeport"),
        ("configmap", "nginx-echo-config"),
    ] {
        assert!(!stack.exists(kind, name), "{kind} {name} survived");
    }
}

/// What the cluster backend (`backend: kubernetes://<namespace>`) needs in
/// its namespace for stack `dev`, besides [`LEAST_PRIVILEGE`]: `create`
/// cannot be limited to names, the rest is.
const BACKEND_RULES: &str = r#"
- apiGroups: [""]
  resources: [secrets]
  verbs: [create]
- apiGroups: [""]
  resources: [secrets]
  resourceNames: [echo-iac-state-dev]
  verbs: [get, update]
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [create]
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  resourceNames: [echo-iac-lock-dev]
  verbs: [get, update, delete]
"#;

fn write_backend_stack(stack: &TestStack, kubeconfig: &std::path::Path, port: i32) {
    stack.project.write_stack(
        &stack.name,
        &format!(
            "kubeconfig: {}\nnamespace: {ns}\nbackend: kubernetes://{ns}\necho:\n  replicas: 1\n  nodePort: {port}\n",
            kubeconfig.display(),
            ns = stack.namespace
        ),
    );
}

#[test]
fn cluster_backend_runs_with_named_secret_and_lease_rules_and_needs_each_verb() {
    let stack = TestStack::new("rbac-backend");
    let rules = format!("{LEAST_PRIVILEGE}{BACKEND_RULES}");
    let (kubeconfig, token) = service_account(&stack, Some(&rules));
    write_backend_stack(&stack, &kubeconfig, node_port());

    stack.ok(&["preview"]);
    stack.ok(&["up", "--yes"]);
    stack.ok(&["preview", "--expect-no-changes"]);
    stack.ok(&["stack", "history"]);
    let head = stack.get("secret", "echo-iac-state-dev");
    assert!(
        !head.to_string().contains(&token),
        "the token was written to the state"
    );
    // The lease was given back: the next run need not wait for it.
    stack.ok(&["up", "--yes"]);

    // Each verb, taken away, breaks something that needs it.
    let cases = [
        // Reading the state.
        (
            rules.replace(
                "resourceNames: [echo-iac-state-dev]\n  verbs: [get, update]",
                "resourceNames: [echo-iac-state-dev]\n  verbs: [update]",
            ),
            &["preview"][..],
            "not allowed to read Secret",
        ),
        // Writing the next revision (the replica change makes `up` write).
        (
            rules.replace(
                "resourceNames: [echo-iac-state-dev]\n  verbs: [get, update]",
                "resourceNames: [echo-iac-state-dev]\n  verbs: [get]",
            ),
            &["up", "--yes"][..],
            "not allowed to write Secret",
        ),
        // Reading the lock.
        (
            rules.replace(
                "resourceNames: [echo-iac-lock-dev]\n  verbs: [get, update, delete]",
                "resourceNames: [echo-iac-lock-dev]\n  verbs: [update, delete]",
            ),
            &["up", "--yes"][..],
            "not allowed to read Lease",
        ),
        // Taking a fresh lock.
        (
            rules.replace(
                "resources: [leases]\n  verbs: [create]",
                "resources: [leases]\n  verbs: [list]",
            ),
            &["up", "--yes"][..],
            "not allowed to create Lease",
        ),
    ];
    let port = node_port();
    write_backend_stack(&stack, &kubeconfig, port);
    stack.project.write_stack(
        &stack.name,
        &std::fs::read_to_string(stack.project.stack_file(&stack.name))
            .unwrap()
            .replace("replicas: 1", "replicas: 2"),
    );
    for (role, command, needle) in cases {
        set_role(&stack, &role);
        let run = stack.run(command);
        run.assert_code(1).assert_contains(needle);
    }

    // Taking over a lease that ran out needs `update`, and giving it back
    // needs `delete` (else it is cleared in place, with `update`).
    set_role(&stack, &rules);
    util::apply_yaml(
        &stack.namespace,
        "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: echo-iac-lock-dev\nspec:\n  holderIdentity: gone@elsewhere pid 1\n  leaseDurationSeconds: 15\n  renewTime: \"2020-01-01T00:00:00.000000Z\"\n",
    );
    set_role(
        &stack,
        &rules.replace(
            "resourceNames: [echo-iac-lock-dev]\n  verbs: [get, update, delete]",
            "resourceNames: [echo-iac-lock-dev]\n  verbs: [get, delete]",
        ),
    );
    stack
        .run(&["up", "--yes"])
        .assert_code(1)
        .assert_contains("not allowed to take over Lease");
    set_role(
        &stack,
        &rules.replace(
            "resourceNames: [echo-iac-lock-dev]\n  verbs: [get, update, delete]",
            "resourceNames: [echo-iac-lock-dev]\n  verbs: [get, update]",
        ),
    );
    stack.ok(&["up", "--yes"]);
    let lease = stack.get("lease", "echo-iac-lock-dev");
    assert!(
        lease["spec"]["holderIdentity"].is_null(),
        "released in place: {lease:#}"
    );
    stack.ok(&["up", "--yes"]);

    set_role(&stack, &rules);
    stack.ok(&["destroy", "--yes"]);
    assert!(!stack.exists("deployment", "nginx-echo-nodeport"));
    assert!(!stack.exists("lease", "echo-iac-lock-dev"));
}
