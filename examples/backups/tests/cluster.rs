//! The backups program on the local control plane (`make cluster`), run as
//! a user runs it, through the runner's command line: a preview before the
//! kind exists, checked locally; `up`, which applies the definition, then
//! the schedules, and waits until a controller reports them ready (the test
//! plays the controller, patching their status); a controller's
//! `Ready=False`, which fails the wait at once; destroy.
//!
//! The definition is cluster-wide and the control plane is shared with
//! tests running at the same time, so each test takes a group of its own
//! (the stack file's `group:`), named after its namespace, and deletes the
//! definition however it ends.

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use echo_iac_testutil::{TestNamespace, kubeconfig, kubectl, kubectl_json, kubectl_ok};
use serde_json::Value;

fn command(project: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_backups-iac"));
    command
        .args(args)
        .current_dir(project)
        .env_remove("ECHO_IAC_STACK")
        .env_remove("ECHO_IAC_BACKEND")
        .stdin(Stdio::null());
    command
}

fn backups(project: &Path, args: &[&str]) -> Output {
    command(project, args).output().expect("run backups-iac")
}

fn ok(project: &Path, args: &[&str]) -> String {
    let output = backups(project, args);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "backups-iac {args:?} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The group of one test's BackupSchedule kind; dropping it deletes the
/// definition, however the test ends.
struct Group {
    name: String,
}

impl Group {
    /// A group named after the test's namespace, unique to the run.
    fn of(ns: &TestNamespace) -> Self {
        Group {
            name: format!("{ns}.example.com"),
        }
    }

    fn crd(&self) -> String {
        format!("backupschedules.{}", self.name)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        // Never panic here: a panic while a failing test unwinds would abort.
        let _ = kubectl(&[
            "delete",
            "crd",
            &self.crd(),
            "--ignore-not-found",
            "--wait=false",
        ]);
    }
}

/// Writes `stacks/dev.yaml` for namespace `ns` (which the test made) with
/// the shipped stack's two schedules; `orders_extra` adds keys to the
/// first, indented as its others.
fn write_stack(project: &Path, ns: &str, group: &Group, orders_extra: &str) {
    std::fs::create_dir_all(project.join("stacks")).unwrap();
    std::fs::write(
        project.join("stacks/dev.yaml"),
        format!(
            "kubeconfig: {}\ncontext: echo-iac-local\nnamespace: {ns}\ncreateNamespace: false\n\
             backups:\n  group: {}\n  schedules:\n\
             \x20 - name: orders-nightly\n    target: postgres/orders\n    schedule: \"0 2 * * *\"\n    retain: 14\n{orders_extra}\
             \x20 - name: media-weekly\n    target: s3/media\n    schedule: \"@weekly\"\n",
            kubeconfig().display(),
            group.name
        ),
    )
    .unwrap();
}

/// The plan row of an object: `+   BackupSchedule   ns/orders-nightly   create`.
fn row<'a>(plan: &'a str, kind: &str, name: &str) -> &'a str {
    plan.lines()
        .find(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            words.len() >= 3 && words[1] == kind && words[2].ends_with(name)
        })
        .unwrap_or_else(|| panic!("no row for {kind} {name} in:\n{plan}"))
}

fn assert_op(plan: &str, kind: &str, name: &str, op: &str) {
    let row = row(plan, kind, name);
    assert!(
        row.trim_end().ends_with(op),
        "{kind} {name} is not `{op}`:\n{plan}"
    );
}

fn crd_exists(group: &Group) -> bool {
    let output = kubectl(&[
        "get",
        "crd",
        &group.crd(),
        "--ignore-not-found",
        "-o",
        "name",
    ]);
    assert!(output.status.success(), "{output:?}");
    !output.stdout.is_empty()
}

/// Sets the `Ready` condition of schedule `name`, as a controller would.
fn report(group: &Group, ns: &str, name: &str, status: &str, reason: &str, message: &str) {
    let patch = serde_json::json!({"status": {"conditions": [{
        "type": "Ready", "status": status, "reason": reason, "message": message,
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }]}});
    kubectl_ok(&[
        "patch",
        &group.crd(),
        name,
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch.to_string(),
    ]);
}

/// Starts `up` in the background and returns once it is waiting for the
/// schedules (the state records the wait as pending), and not before: they
/// must not look ready to it yet.
fn start_up(project: &Path, timeout: &str) -> Child {
    let mut up = command(project, &["up", "--yes", "--timeout", timeout])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let state = std::fs::read_to_string(project.join("state/dev.json")).unwrap_or_default();
        let waiting = serde_json::from_str::<Value>(&state)
            .ok()
            .and_then(|s| s["pending"].as_array().cloned())
            .is_some_and(|pending| {
                pending
                    .iter()
                    .filter(|p| p["op"] == "wait" && p["id"]["kind"] == "BackupSchedule")
                    .count()
                    == 2
            });
        if waiting {
            return up;
        }
        if let Some(status) = up.try_wait().unwrap() {
            let output = finish(&mut up, Duration::ZERO);
            panic!(
                "up exited ({status}) before waiting for the schedules:\n{}\n{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        assert!(Instant::now() < deadline, "up never started waiting");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits up to `limit` for `child` to exit and returns what it printed.
fn finish(child: &mut Child, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut output = Output {
        status: child.wait().unwrap(),
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    use std::io::Read;
    if let Some(mut out) = child.stdout.take() {
        out.read_to_end(&mut output.stdout).unwrap();
    }
    if let Some(mut err) = child.stderr.take() {
        err.read_to_end(&mut output.stderr).unwrap();
    }
    output
}

#[test]
fn a_preview_before_the_kind_exists_checks_the_schedules_locally_and_creates_nothing() {
    let ns = TestNamespace::new("backups-preview");
    let group = Group::of(&ns);
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    write_stack(dir, ns.name(), &group, "");

    let preview = ok(dir, &["preview"]);
    assert_op(&preview, "CustomResourceDefinition", &group.crd(), "create");
    for name in ["orders-nightly", "media-weekly"] {
        assert_op(&preview, "BackupSchedule", name, "create");
    }
    assert!(preview.contains("Resources: + 3 to create"), "{preview}");
    assert_eq!(preview.matches("validated locally").count(), 2, "{preview}");
    let plan: Value = serde_json::from_str(&ok(dir, &["preview", "--json"])).unwrap();
    let steps = plan["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3, "{plan:#}");
    assert!(steps.iter().all(|s| s["op"] == "create"), "{plan:#}");
    assert!(!crd_exists(&group), "preview created the definition");
}

#[test]
fn a_retain_below_its_minimum_is_refused_in_preview_naming_the_field_and_the_rule() {
    let ns = TestNamespace::new("backups-refused");
    let group = Group::of(&ns);
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    write_stack(dir, ns.name(), &group, "    minimumRetain: 30\n");

    let output = backups(dir, &["preview"]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.status.code(), Some(1), "{all}");
    assert!(
        all.contains(
            "spec.retain: retain must not be below minimumRetain (rule: self.retain >= self.minimumRetain)"
        ),
        "{all}"
    );
    assert!(
        all.contains("! 1 blocked"),
        "only orders-nightly is refused:\n{all}"
    );
    let up = backups(dir, &["up", "--yes"]);
    assert_eq!(up.status.code(), Some(1));
    assert!(!crd_exists(&group), "a refused up applied the definition");
}

#[test]
fn up_waits_for_the_controller_to_report_ready_and_destroy_removes_the_definition_last() {
    let ns = TestNamespace::new("backups-up");
    let group = Group::of(&ns);
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    write_stack(dir, ns.name(), &group, "");

    let mut up = start_up(dir, "2m");
    // The definition was established and both schedules applied, with the
    // definition's defaults.
    let weekly = kubectl_json(&["get", &group.crd(), "media-weekly", "-n", ns.name()]);
    assert_eq!(weekly["spec"]["retain"], 7, "{weekly:#}");
    assert_eq!(weekly["spec"]["suspend"], false, "{weekly:#}");
    // One ready is not enough.
    report(&group, ns.name(), "orders-nightly", "True", "Done", "ok");
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        up.try_wait().unwrap().is_none(),
        "up returned with media-weekly not ready"
    );
    report(&group, ns.name(), "media-weekly", "True", "Done", "ok");
    let output = finish(&mut up, Duration::from_secs(30));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("waiting for condition Ready=True"),
        "the wait names its rule:\n{stderr}"
    );
    let outputs = ok(dir, &["output", "schedules", "--json"]);
    let schedules: Value = serde_json::from_str(&outputs).unwrap();
    assert_eq!(
        schedules,
        serde_json::json!({"media-weekly": "True", "orders-nightly": "True"})
    );

    ok(dir, &["preview", "--expect-no-changes"]);

    let output = backups(dir, &["destroy", "--yes"]);
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(output.status.success(), "{stderr}");
    let at = |what: &str| {
        stderr
            .find(what)
            .unwrap_or_else(|| panic!("no {what:?} in:\n{stderr}"))
    };
    let definition = at(&format!("CustomResourceDefinition {} deleted", group.crd()));
    for name in ["orders-nightly", "media-weekly"] {
        assert!(at(&format!("BackupSchedule {ns}/{name} deleted")) < definition);
    }
    assert!(!crd_exists(&group), "destroy left the definition");
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("state/dev.json")).unwrap())
            .unwrap();
    assert_eq!(state["resources"], serde_json::json!([]));
}

#[test]
fn a_controllers_ready_false_fails_the_wait_at_once_with_its_message() {
    let ns = TestNamespace::new("backups-failed");
    let group = Group::of(&ns);
    let project = tempfile::tempdir().unwrap();
    let dir = project.path();
    write_stack(dir, ns.name(), &group, "");

    let mut up = start_up(dir, "10m");
    let reported = Instant::now();
    report(
        &group,
        ns.name(),
        "orders-nightly",
        "False",
        "TargetNotFound",
        "no database postgres/orders",
    );
    let output = finish(&mut up, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        reported.elapsed() < Duration::from_secs(30),
        "the failure took {:?}",
        reported.elapsed()
    );
    assert!(
        stderr.contains(&format!(
            "BackupSchedule {ns}/orders-nightly failed: condition Ready=False: TargetNotFound: no database postgres/orders"
        )),
        "{stderr}"
    );

    ok(dir, &["destroy", "--yes"]);
    assert!(!crd_exists(&group), "destroy left the definition");
}
