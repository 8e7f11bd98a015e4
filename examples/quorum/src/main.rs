//! `quorum-iac <preview|diff|up|destroy> [STACK_FILE]`: the quorum program
//! run by a command line of its own, on the echo-iac engine. `diff` is a
//! preview that also shows each change and a unified diff of each object.
//! The state lives in `state/` beside the stack file's folder.

mod program;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use echo_iac_engine::apply::Event;
use echo_iac_engine::cluster::{Cluster, Target};
use echo_iac_engine::diff;
use echo_iac_engine::operation::{self, Observer, Options};
use echo_iac_engine::planner::{self, PlanOptions};
use echo_iac_engine::ready::Readiness;
use echo_iac_engine::state::{LocalStore, StateStore};
use echo_iac_engine::{Change, Op, Plan};

use program::StackFile;

const USAGE: &str = "usage: quorum-iac <preview|diff|up|destroy> [STACK_FILE]";

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (command, file) = match args.as_slice() {
        [command] => (command.as_str(), PathBuf::from("stacks/dev.yaml")),
        [command, file] => (command.as_str(), PathBuf::from(file)),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(command, &file).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: &str, file: &Path) -> Result<(), String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let settings: StackFile =
        serde_saphyr::from_str(&text).map_err(|e| format!("{}: {e}", file.display()))?;
    let stack = file
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| format!("{} has no stack name", file.display()))?
        .to_string();
    let folder = file
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    let target = Target {
        kubeconfig: settings.kubeconfig.iter().map(|k| folder.join(k)).collect(),
        context: settings.context.clone(),
        request_timeout: None,
    };
    let desired = program::declare(&stack, &settings).map_err(|e| e.to_string())?;
    let cluster = Cluster::connect(&target, program::identity())
        .await
        .map_err(|e| e.to_string())?;
    let store = LocalStore::new(folder.join("state"), &stack);
    let lock = store
        .lock(
            &format!("quorum-iac {command}"),
            Some(Duration::from_secs(30)),
        )
        .await
        .map_err(|e| e.to_string())?;
    let result = execute(command, &stack, &cluster, &store, &desired).await;
    lock.release().await;
    result
}

async fn execute(
    command: &str,
    stack: &str,
    cluster: &Cluster,
    store: &LocalStore,
    desired: &[echo_iac_engine::DesiredResource],
) -> Result<(), String> {
    static CANCEL: AtomicBool = AtomicBool::new(false);
    let options = Options {
        force_conflicts: false,
        concurrency: 8,
        timeout: Duration::from_secs(300),
        wait_grace: Duration::from_secs(120),
        cancel: &CANCEL,
    };
    let state = store.load().await.map_err(|e| e.to_string())?;
    match command {
        "preview" | "diff" | "up" => {
            let plan_options = PlanOptions {
                concurrency: 8,
                ..PlanOptions::default()
            };
            let plan = planner::plan_up(cluster, stack, desired, &state, plan_options)
                .await
                .map_err(|e| e.to_string())?;
            show(&plan);
            if command == "diff" {
                show_diff(&plan);
            }
            if let Some(step) = plan.blocked().next() {
                return Err(format!("{} cannot be applied as planned", step.id));
            }
            if command != "up" {
                return Ok(());
            }
            let applied = operation::up(cluster, store, state, &plan, desired, &options, &Lines)
                .await
                .map_err(|e| e.to_string())?;
            let service = format!("{}.{}.svc.cluster.local", program::NAME, namespace(desired));
            let outputs = [("service".to_string(), serde_json::json!(service))].into();
            applied.finish(outputs).await.map_err(|e| e.to_string())?;
            println!("ready: {service}");
            Ok(())
        }
        "destroy" => {
            let plan = planner::plan_destroy(cluster, stack, &state, desired, 8)
                .await
                .map_err(|e| e.to_string())?;
            show(&plan);
            operation::destroy(cluster, store, state, &plan, desired, &options, &Lines)
                .await
                .map_err(|e| e.to_string())?;
            println!("destroyed");
            Ok(())
        }
        _ => Err(USAGE.to_string()),
    }
}

fn namespace(desired: &[echo_iac_engine::DesiredResource]) -> &str {
    desired
        .iter()
        .find_map(|d| d.id.namespace.as_deref())
        .unwrap_or("default")
}

/// One line per step: its operation, the object, and the fields that change.
fn show(plan: &Plan) {
    for step in &plan.steps {
        let fields: Vec<&str> = step.changes.iter().map(|c| c.path.as_str()).collect();
        let detail = if fields.is_empty() || step.op == Op::Create {
            String::new()
        } else {
            format!(" ({})", fields.join(", "))
        };
        println!("{} {}{detail}", step.op.as_str(), step.id);
    }
}

/// Each change with its values, and a unified diff of each changed object.
/// The engine hands over no value of a Secret: a change says only that
/// one changed.
fn show_diff(plan: &Plan) {
    for step in plan.steps.iter().filter(|s| s.is_change()) {
        println!("{} {}", step.op.as_str(), step.id);
        for change in &step.changes {
            println!("  {}", describe(change));
        }
        print!(
            "{}",
            diff::unified_yaml(
                step.live.as_ref(),
                step.planned.as_ref(),
                &step.id.to_string()
            )
        );
    }
}

fn describe(change: &Change) -> String {
    let path = &change.path;
    match (&change.old, &change.new) {
        (Some(_), Some(_)) if change.sensitive => format!("~ {path}: (sensitive, changed)"),
        (None, Some(_)) if change.sensitive => format!("+ {path}: (sensitive)"),
        (Some(_), None) if change.sensitive => format!("- {path}: (sensitive)"),
        (Some(old), Some(new)) => format!("~ {path}: {old} → {new}"),
        (None, Some(new)) => format!("+ {path}: {new}"),
        (Some(old), None) => format!("- {path}: {old}"),
        (None, None) => path.clone(),
    }
}

/// Progress as plain lines on stderr.
struct Lines;

impl Observer for Lines {
    fn event(&self, event: Event<'_>) {
        if let Event::Finished { op, id, .. } = event {
            eprintln!("{} {id} done", op.as_str());
        }
    }

    fn waiting(&self, changed: &[&Readiness], _all: &[Readiness]) {
        for readiness in changed {
            eprintln!("waiting: {} {}", readiness.id, readiness.progress);
        }
    }
}
