//! Team state: a stack's state and lock kept in its cluster
//! (`backend: kubernetes://<namespace>`), shared by machines that share
//! nothing else. Each "machine" is a project folder of its own, with its
//! own `state/`, holding the same stack file.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Run, Running, TestProject, TestStack, node_port};
use crate::util;

fn body(port: i32, message: &str) -> String {
    format!("echo:\n  replicas: 1\n  nodePort: {port}\n  message: {message}\n")
}

/// A second machine for `stack`: another project folder holding the same
/// stack file (and nothing else).
struct Machine {
    project: TestProject,
}

impl Machine {
    fn beside(stack: &TestStack) -> Machine {
        let project = TestProject::new();
        let text = std::fs::read_to_string(stack.project.stack_file(&stack.name)).unwrap();
        project.write_stack(&stack.name, &text);
        Machine { project }
    }

    fn run(&self, args: &[&str]) -> Run {
        let mut all = vec!["--stack", "dev"];
        all.extend(args);
        self.project.run(&all)
    }

    fn spawn(&self, args: &[&str], env: &[(&str, &str)]) -> Running {
        let mut all = vec!["--stack", "dev"];
        all.extend(args);
        self.project.spawn(&all, env)
    }

    fn write(&self, stack: &TestStack, body: &str) {
        self.project.write_stack("dev", &shared_file(stack, body));
    }
}

/// The stack file with the cluster backend in the stack's own namespace.
fn shared_file(stack: &TestStack, body: &str) -> String {
    stack.file_text(&format!(
        "backend: kubernetes://{}\n{body}",
        stack.namespace
    ))
}

fn shared_stack(prefix: &str, body: &str) -> TestStack {
    let stack = TestStack::new(prefix);
    stack
        .project
        .write_stack(&stack.name, &shared_file(&stack, body));
    stack
}

/// The state as `stack export` prints it.
fn exported(run: Run) -> Value {
    run.assert_code(0);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("not JSON ({e}):\n{run}"))
}

fn config_message(stack: &TestStack) -> String {
    stack.get("configmap", "nginx-echo-config")["data"]["default.conf"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn two_machines_share_one_stack_through_the_cluster() {
    let port = node_port();
    let stack = shared_stack("team-share", &body(port, "from one"));
    let other = Machine::beside(&stack);

    stack
        .ok(&["up", "--yes"])
        .assert_contains("the stack is ready");
    assert!(
        !stack.project.root().join("state").exists(),
        "the cluster backend writes no local state"
    );
    let head = stack.get("secret", "echo-iac-state-dev");
    assert_eq!(head["type"], "echo-iac.io/state");
    assert_eq!(head["metadata"]["labels"]["echo-iac.io/stack"], "dev");
    assert_eq!(
        head["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "echo-iac"
    );

    // The second machine sees the stack as the first left it.
    other
        .run(&["preview", "--expect-no-changes"])
        .assert_code(0);
    assert!(!other.project.root().join("state").exists());

    // A change from the second machine, which the first then sees.
    other.write(&stack, &body(port, "from two"));
    other.run(&["up", "--yes"]).assert_code(0);
    assert!(config_message(&stack).contains("from two"));
    stack
        .project
        .write_stack("dev", &shared_file(&stack, &body(port, "from two")));
    stack.ok(&["preview", "--expect-no-changes"]);

    // Both runs are in the history, newest first, with who wrote them.
    let history: Value = serde_json::from_str(&stack.ok(&["stack", "history", "--json"]).stdout)
        .expect("history --json is JSON");
    let revisions = history.as_array().unwrap();
    // One revision per run, however many times each wrote the state.
    assert_eq!(revisions.len(), 2, "{history:#}");
    assert!(
        revisions[0]["serial"].as_u64() > revisions[1]["serial"].as_u64(),
        "{history:#}"
    );
    assert_eq!(revisions[0]["writtenBy"]["command"], "echo-iac up");
    assert_eq!(revisions[0]["summary"], "2 changed", "{history:#}");
    assert_eq!(
        revisions[1]["summary"], "first kept revision: 3 object(s)",
        "{history:#}"
    );
    assert!(
        revisions.iter().all(|r| r["operation"]["finished"] == true),
        "{history:#}"
    );
    stack
        .ok(&["stack", "history"])
        .assert_contains("SERIAL")
        .assert_contains("echo-iac up");

    // Prune works from either machine: destroy from the second.
    other.run(&["destroy", "--yes"]).assert_code(0);
    assert!(!stack.exists("deployment", "nginx-echo-nodeport"));
    stack
        .ok(&["destroy", "--yes"])
        .assert_contains("Nothing to destroy");
}

#[test]
fn a_second_writer_is_refused_at_once_naming_the_holder_or_waits() {
    let stack = shared_stack("team-lock", &body(node_port(), "hi"));
    let other = Machine::beside(&stack);
    let mut holder = stack.spawn(&["up", "--yes"], &[("ECHO_IAC_FAULT", "wait:1:pause")]);
    holder.wait_for_pause("wait:1");

    let start = Instant::now();
    let refused = other.run(&["up", "--yes"]);
    let took = start.elapsed();
    refused
        .assert_code(1)
        .assert_contains("stack dev is locked by `echo-iac up`")
        .assert_contains(&format!("pid {}", holder.pid()))
        .assert_contains(&format!("Lease {}/echo-iac-lock-dev", stack.namespace))
        .assert_contains("nothing to unlock by hand");
    assert!(took < Duration::from_secs(1), "{refused} took {took:?}");
    let lease = stack.get("lease", "echo-iac-lock-dev");
    assert_eq!(lease["spec"]["leaseDurationSeconds"], 15);
    let holder_text = lease["metadata"]["annotations"]["echo-iac.io/holder"]
        .as_str()
        .unwrap();
    assert!(
        holder_text.contains(&format!("\"pid\":{}", holder.pid())),
        "{holder_text}"
    );

    // Preview takes no lock.
    other.run(&["preview"]).assert_code(0);

    let mut waiter = other.spawn(&["up", "--yes", "--wait-for-lock", "60s"], &[]);
    std::thread::sleep(Duration::from_secs(1));
    assert!(waiter.is_running(), "the waiting run did not wait");
    holder.signal(libc::SIGUSR1);
    holder.wait(Duration::from_secs(60)).assert_code(0);
    waiter
        .wait(Duration::from_secs(60))
        .assert_code(0)
        .assert_contains("No changes; the stack is ready");
    // A released lease is gone, not left to run out.
    assert!(!stack.exists("lease", "echo-iac-lock-dev"));
    stack.ok(&["destroy", "--yes"]);
}

#[test]
fn a_killed_holders_lease_runs_out_and_the_next_run_takes_it() {
    let stack = shared_stack("team-kill", &body(node_port(), "hi"));
    let other = Machine::beside(&stack);
    let mut holder = stack.spawn(
        &["up", "--yes"],
        &[("ECHO_IAC_FAULT", "before-apply:1:pause")],
    );
    holder.wait_for_pause("before-apply:1");

    holder.signal(libc::SIGKILL);
    let killed = Instant::now();
    holder.wait(Duration::from_secs(10)).assert_killed();
    let mut next = other.spawn(&["up", "--yes", "--wait-for-lock", "60s"], &[]);
    next.wait_for_stderr("Waiting until ready", Duration::from_secs(40));
    let took = killed.elapsed();
    // 15 s of lease, then at most a poll and the run's own plan and apply.
    assert!(took < Duration::from_secs(20), "took over after {took:?}");
    let run = next.wait(Duration::from_secs(60));
    run.assert_code(0)
        .assert_contains("an earlier run stopped before finishing");
    other
        .run(&["preview", "--expect-no-changes"])
        .assert_code(0);
    other.run(&["destroy", "--yes"]).assert_code(0);
}

#[test]
fn a_holder_paused_past_its_lease_loses_it_and_writes_nothing_when_it_wakes() {
    let port = node_port();
    let stack = shared_stack("team-stop", &body(port, "first"));
    let other = Machine::beside(&stack);
    other.write(&stack, &body(port, "second"));
    let mut first = stack.spawn(
        &["up", "--yes"],
        &[("ECHO_IAC_FAULT", "before-apply:1:pause")],
    );
    first.wait_for_pause("before-apply:1");
    first.signal(libc::SIGSTOP);

    // The second run waits out the frozen holder's lease and completes.
    let second = other.run(&["up", "--yes", "--wait-for-lock", "60s"]);
    second.assert_code(0).assert_contains("the stack is ready");
    let after_second = exported(other.run(&["stack", "export"]));

    first.signal(libc::SIGCONT);
    first.signal(libc::SIGUSR1);
    let woken = first.wait(Duration::from_secs(60));
    woken
        .assert_code(1)
        .assert_contains("lost the lock on stack dev")
        .assert_contains("wrote nothing more");

    assert!(config_message(&stack).contains("second"), "{woken}");
    let state = exported(other.run(&["stack", "export"]));
    assert_eq!(state, after_second, "the woken run wrote the state");
    other
        .run(&["preview", "--expect-no-changes"])
        .assert_code(0);
    other.run(&["destroy", "--yes"]).assert_code(0);
}

#[test]
fn a_corrupt_state_secret_is_reported_with_the_last_good_revision_and_kept() {
    let port = node_port();
    let stack = shared_stack("team-corrupt", &body(port, "hi"));
    stack.ok(&["up", "--yes"]);
    // A second run, so that the history keeps the first.
    stack
        .project
        .write_stack("dev", &shared_file(&stack, &body(port, "again")));
    stack.ok(&["up", "--yes"]);
    let head = stack.get("secret", "echo-iac-state-dev");
    let index: Value =
        serde_json::from_slice(&base64(&head["data"]["index.json"])).expect("the index is JSON");
    let current = index["revisions"][0]["serial"].as_u64().unwrap();
    let previous = index["revisions"][1]["serial"].as_u64().unwrap();

    // Truncated: the current revision's bytes cut short.
    let key = format!("state.{current}.gz");
    patch_head(&stack, json!({key.clone(): "H4sIAAAA"}));
    let version = |stack: &TestStack| {
        stack.get("secret", "echo-iac-state-dev")["metadata"]["resourceVersion"].clone()
    };
    let before = version(&stack);
    for command in [&["preview"][..], &["up", "--yes"], &["destroy", "--yes"]] {
        stack
            .run(command)
            .assert_code(1)
            .assert_contains(&format!(
                "state revision {current} in Secret {}/echo-iac-state-dev is corrupt",
                stack.namespace
            ))
            .assert_contains(&format!("the last good copy is revision {previous}"))
            .assert_contains(&format!("stack export --revision {previous}"));
    }
    assert_eq!(version(&stack), before, "the Secret was written");

    // The hint's restore works.
    let file = stack.project.root().join("good.json");
    stack.ok(&[
        "stack",
        "export",
        "--revision",
        &previous.to_string(),
        file.to_str().unwrap(),
    ]);
    stack.ok(&["stack", "import", "--force", file.to_str().unwrap()]);
    stack.ok(&["up", "--yes"]);

    // An index that does not parse names the Secret and what is wrong.
    patch_head(&stack, json!({"index.json": "eyJmb3Jt"}));
    stack
        .run(&["preview"])
        .assert_code(1)
        .assert_contains("index.json` does not parse")
        .assert_contains("was left unchanged");
}

#[test]
fn a_missing_backend_namespace_is_a_clear_error() {
    let stack = TestStack::new("team-nons");
    stack.project.write_stack(
        "dev",
        &stack.file_text(&format!(
            "backend: kubernetes://no-such-ns-{}\n{}",
            std::process::id(),
            body(node_port(), "hi")
        )),
    );
    for command in [&["preview"][..], &["up", "--yes"]] {
        stack
            .run(command)
            .assert_code(1)
            .assert_contains(&format!(
                "the state backend namespace `no-such-ns-{}` does not exist",
                std::process::id()
            ))
            .assert_contains("kubectl create namespace");
    }
    assert!(!stack.exists("deployment", "nginx-echo-nodeport"));
}

#[test]
fn backend_from_the_environment_overrides_the_stack_file() {
    let stack = TestStack::new("team-env");
    stack.write(&body(node_port(), "hi"));
    let backend = format!("kubernetes://{}", stack.namespace);
    let env = [("ECHO_IAC_BACKEND", backend.as_str())];
    stack.project.run_env(&["up", "--yes"], &env).assert_code(0);
    assert!(stack.state().is_none(), "wrote the file backend");
    assert!(stack.exists("secret", "echo-iac-state-dev"));
    stack
        .project
        .run_env(&["preview", "--expect-no-changes"], &env)
        .assert_code(0);
    stack
        .project
        .run_env(&["stack", "ls"], &env)
        .assert_contains(&backend);
    stack
        .project
        .run_env(&["preview"], &[("ECHO_IAC_BACKEND", "s3://bucket")])
        .assert_code(1)
        .assert_contains("ECHO_IAC_BACKEND=s3://bucket: unknown backend scheme `s3://`");
    stack
        .project
        .run_env(&["destroy", "--yes"], &env)
        .assert_code(0);
}

/// A state of `count` objects whose documents do not compress well, as a
/// large stack's uids and specs do not either.
fn large_state(count: usize, namespace: &str) -> Value {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut noise = |n: usize| -> String {
        (0..n)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                char::from(b'a' + (seed % 26) as u8)
            })
            .collect()
    };
    let resources: Vec<Value> = (0..count)
        .map(|i| {
            json!({
                "id": {"apiVersion": "v1", "kind": "ConfigMap", "namespace": namespace, "name": format!("e{i}-config")},
                "uid": noise(36),
                "dependsOn": [],
                "applied": {"apiVersion": "v1", "kind": "ConfigMap", "data": {"default.conf": noise(600)}},
            })
        })
        .collect();
    json!({"version": 2, "stack": "dev", "serial": 41, "resources": resources, "pending": [], "outputs": {"namespace": namespace}})
}

fn same_document(a: &Value, b: &Value) {
    for key in ["stack", "serial", "resources", "pending", "outputs"] {
        assert!(a[key] == b[key], "documents differ in `{key}`");
    }
}

#[test]
fn a_3000_object_state_round_trips_through_several_secrets_and_between_backends() {
    let stack = TestStack::new("team-large");
    stack.write(&body(node_port(), "hi"));
    let document = large_state(3000, &stack.namespace);
    let file = stack.project.root().join("large.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&document).unwrap()).unwrap();
    let file = file.to_str().unwrap();

    // Into the file backend, out again.
    stack.ok(&["stack", "import", file]);
    let from_file = exported(stack.run(&["stack", "export"]));
    same_document(&from_file, &document);

    // Into the cluster backend: split over several part Secrets.
    let backend = format!("kubernetes://{}", stack.namespace);
    let kube = [("ECHO_IAC_BACKEND", backend.as_str())];
    let moved = stack.project.root().join("moved.json");
    stack.ok(&["stack", "export", moved.to_str().unwrap()]);
    stack
        .project
        .run_env(&["stack", "import", moved.to_str().unwrap()], &kube)
        .assert_code(0);
    let parts = util::kubectl_json(&[
        "get",
        "secrets",
        "-n",
        &stack.namespace,
        "-l",
        "echo-iac.io/state-of=dev",
    ]);
    let parts = parts["items"].as_array().unwrap().len();
    assert!(parts >= 2, "the state fits in {parts} part(s)");
    let from_cluster = exported(stack.project.run_env(&["stack", "export"], &kube));
    same_document(&from_cluster, &document);

    // An older document does not overwrite a newer state without --force.
    let mut older = document.clone();
    older["serial"] = json!(3);
    let older_file = stack.project.root().join("older.json");
    std::fs::write(&older_file, older.to_string()).unwrap();
    stack
        .project
        .run_env(&["stack", "import", older_file.to_str().unwrap()], &kube)
        .assert_code(1)
        .assert_contains("newer than the document's serial 3")
        .assert_contains("--force");
    let history = stack
        .project
        .run_env(&["stack", "history", "--json"], &kube);
    history.assert_code(0);
    assert!(history.stdout.contains("\"serial\": 41"), "{history}");

    // And back to another folder of the file backend, losing nothing.
    let back = [("ECHO_IAC_BACKEND", "file://other-state")];
    let moved_back = stack.project.root().join("back.json");
    stack
        .project
        .run_env(&["stack", "export", moved_back.to_str().unwrap()], &kube)
        .assert_code(0);
    stack
        .project
        .run_env(&["stack", "import", moved_back.to_str().unwrap()], &back)
        .assert_code(0);
    let round_trip = exported(stack.project.run_env(&["stack", "export"], &back));
    same_document(&round_trip, &document);
}

#[test]
fn objects_with_the_stacks_labels_that_the_state_lost_are_found() {
    let stack = TestStack::new("team-lost");
    stack.write(&body(node_port(), "hi"));
    stack.ok(&["up", "--yes"]);
    std::fs::remove_file(stack.project.state_file("dev")).unwrap();

    let plan = stack.plan();
    let untracked = plan["untracked"].as_array().unwrap();
    assert_eq!(untracked.len(), 3, "{plan:#}");
    assert!(untracked.iter().all(|u| u["declared"] == true), "{plan:#}");
    stack
        .ok(&["preview"])
        .assert_contains("3 object(s) in the cluster carry the labels of stack dev")
        .assert_contains("echo-iac refresh");

    stack
        .ok(&["refresh", "--yes"])
        .assert_contains("was not in the state; recorded");
    let state = stack.state().expect("refresh wrote the state");
    assert_eq!(state["resources"].as_array().unwrap().len(), 3, "{state:#}");
    stack.ok(&["preview", "--expect-no-changes"]);

    // Lost again: destroy still finds and removes them.
    std::fs::remove_file(stack.project.state_file("dev")).unwrap();
    let destroy = stack.ok(&["destroy", "--yes"]);
    destroy.assert_contains("carries this stack's labels but is not in its state");
    // Dependents first, as the program declares them.
    let at = |kind: &str| {
        destroy
            .stderr
            .find(&format!(" -  {kind} "))
            .unwrap_or_else(|| panic!("no {kind} deleted: {destroy}"))
    };
    assert!(
        at("Service") < at("Deployment") && at("Deployment") < at("ConfigMap"),
        "{destroy}"
    );
    assert!(!stack.exists("deployment", "nginx-echo-nodeport"));
    assert!(!stack.exists("configmap", "nginx-echo-config"));
    stack
        .ok(&["destroy", "--yes"])
        .assert_contains("Nothing to destroy");
}

/// Overwrites keys of the head Secret's data (base64 values), as a damaged
/// or hand-edited state would look.
fn patch_head(stack: &TestStack, data: Value) {
    let patch = json!({ "data": data }).to_string();
    util::kubectl_ok(&[
        "patch",
        "secret",
        "echo-iac-state-dev",
        "-n",
        &stack.namespace,
        "--type=merge",
        "-p",
        &patch,
    ]);
}

/// A Secret's data value, decoded as the API decodes it.
fn base64(value: &Value) -> Vec<u8> {
    serde_json::from_value::<k8s_openapi::ByteString>(value.clone())
        .expect("Secret data is base64")
        .0
}

#[test]
fn export_of_a_revision_not_kept_lists_the_kept_ones() {
    let stack = shared_stack("team-not-kept", &body(node_port(), "one"));
    stack.ok(&["up", "--yes"]);
    stack
        .project
        .write_stack(&stack.name, &shared_file(&stack, &body(node_port(), "two")));
    stack.ok(&["up", "--yes"]);
    let history: Value =
        serde_json::from_str(&stack.ok(&["stack", "history", "--json"]).stdout).unwrap();
    let mut kept: Vec<u64> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["serial"].as_u64().unwrap())
        .collect();
    kept.sort_unstable();
    let (last, init) = kept.split_last().unwrap();
    let listed = format!(
        "{} and {last}",
        init.iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let run = stack.run(&["stack", "export", "--revision", "9999"]);
    run.assert_code(1)
        .assert_contains(&format!(
            "revision 9999 of Secret {}/echo-iac-state-dev is not kept; the kept revisions are {listed}",
            stack.namespace
        ))
        .assert_contains("stack history");
    assert!(!run.stderr.contains("corrupt"), "{run}");
    stack.ok(&["destroy", "--yes"]);
}

#[test]
fn stack_ls_says_why_a_state_cannot_be_read() {
    let stack = TestStack::new("team-ls-missing");
    let missing = format!("{}-gone", stack.namespace);
    stack.project.write_stack(
        &stack.name,
        &stack.file_text(&format!(
            "backend: kubernetes://{missing}\n{}",
            body(node_port(), "hi")
        )),
    );
    stack
        .project
        .run(&["stack", "ls"])
        .assert_code(0)
        .assert_contains("state unreadable")
        .assert_contains(&format!(
            "dev: the state backend namespace `{missing}` does not exist"
        ));
}

#[test]
fn a_head_secret_someone_else_created_is_neither_trusted_nor_overwritten() {
    let stack = shared_stack("team-foreign", &body(node_port(), "hi"));
    // Someone who may create Secrets in the backend's namespace plants a
    // head for the stack before its first run: the right name and labels,
    // but not the type the backend writes.
    let planted = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "echo-iac-state-dev", "labels": {
            "app.kubernetes.io/managed-by": "echo-iac", "echo-iac.io/stack": "dev"}},
        "type": "Opaque",
        "stringData": {"index.json": "{\"format\":1,\"revisions\":[]}"}});
    let created = util::kubectl_with_stdin(
        &["create", "-n", &stack.namespace, "-f", "-"],
        Some(&planted.to_string()),
    );
    assert!(created.status.success(), "{created:?}");
    let before = stack.get("secret", "echo-iac-state-dev");

    for args in [&["preview"][..], &["up", "--yes"][..]] {
        let run = stack.run(args);
        run.assert_code(1);
        run.assert_contains(&format!(
            "refusing to use Secret {}/echo-iac-state-dev as the state of stack dev: its type is `Opaque`, not `echo-iac.io/state`",
            stack.namespace
        ));
    }
    assert!(
        !stack.exists("configmap", "nginx-echo-config"),
        "up went ahead"
    );
    let after = stack.get("secret", "echo-iac-state-dev");
    assert_eq!(
        after["metadata"]["resourceVersion"],
        before["metadata"]["resourceVersion"]
    );
}
