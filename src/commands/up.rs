//! `echo-iac up`: preview, confirm, apply in dependency order, wait until
//! ready, record the outputs.

use std::time::Instant;

use serde_json::json;

use crate::cli::{GlobalArgs, UpArgs};
use crate::error::Error;
use crate::program;
use crate::program::outputs;
use crate::render;
use echo_iac_engine::apply::{self, ApplyOptions, Journal};
use echo_iac_engine::state::StateStore;
use echo_iac_engine::{planner, ready};

use super::output::format_outputs;
use super::preview::{check_blocked, plan_options};
use super::{Session, confirm, print, show_plan, watch_interrupts};

/// The pending operation that stands for the readiness wait.
const WAIT_OP: &str = "wait";

pub async fn run(global: &GlobalArgs, args: UpArgs) -> Result<(), Error> {
    let started = Instant::now();
    // Once changes are under way, an API server that restarts is waited
    // for as long as the run may take.
    let session = Session::open(global)?.with_outage_budget(args.timeout);
    let store = session.store().await?;
    let wait = args.wait_for_lock;
    super::locked(
        &*store,
        "echo-iac up",
        wait,
        run_locked(&session, &*store, args, started),
    )
    .await
}

async fn run_locked(
    session: &Session,
    store: &dyn StateStore,
    args: UpArgs,
    started: Instant,
) -> Result<(), Error> {
    let state = store.load().await?;
    let desired = program::desired_resources(&session.stack);
    let cluster = session.connect().await?;
    let mut plan = planner::plan_up(
        &cluster,
        &session.stack.name,
        &desired,
        &state,
        plan_options(&args.plan, session.concurrency()),
    )
    .await?;

    if !args.json && !args.skip_preview {
        show_plan("Updating", session, &cluster, &plan, args.diff, false);
    }
    check_blocked(&plan)?;
    plan.drop_objects();
    if plan.has_changes() {
        confirm("Do you want to perform this update?", args.yes, "up")?;
    }

    let cancel = watch_interrupts();
    // Objects an interrupted run may have applied without seeing them work.
    let unfinished: Vec<_> = state.pending.iter().map(|p| p.id.clone()).collect();
    let journal = Journal::new(store, state);
    let options = ApplyOptions {
        force_conflicts: args.plan.force_conflicts,
        concurrency: session.concurrency(),
        timeout: args.timeout,
        cancel,
    };
    let quiet = args.json;
    let progress = session.progress(quiet);
    let on_event = |event: apply::Event<'_>| progress.on_event(event);
    apply::apply_plan(&cluster, &plan, &desired, &journal, &options, &on_event).await?;
    if !plan.interrupted.is_empty() {
        // Every declared object now matches the program, so what the
        // interrupted run left half done has converged.
        journal.update(|s| s.pending.clear()).await?;
        progress.note(&format!(
            "Recovered {} operation(s) an earlier run left unfinished",
            plan.interrupted.len()
        ));
    }

    let targets = ready::targets(&plan, &desired, &unfinished);
    if !targets.is_empty() {
        // A run stopped while waiting applied everything but never saw it
        // work: pending `wait` entries tell the next preview so.
        if plan.has_changes() {
            journal
                .update(|s| {
                    for target in &targets {
                        s.begin(WAIT_OP, target.id().clone());
                    }
                })
                .await?;
        }
        progress.note("Waiting until ready...");
        ready::wait_ready(
            &cluster,
            &targets,
            args.timeout,
            args.wait_grace,
            cancel,
            |changed, all| progress.waiting(changed, all),
        )
        .await?;
    }

    // Every live line has settled; what follows goes below them.
    drop(progress);
    let outputs = outputs::collect(&cluster, &session.stack.namespace, &desired).await?;
    let changed = journal.into_state();
    let mut state = changed;
    if state.outputs != outputs || plan.has_changes() {
        state.pending.retain(|p| p.op != WAIT_OP);
        state.outputs = outputs;
        store.save(&mut state).await?;
    }

    let summary = plan.summary();
    if args.json {
        let mut document = render::plan_json(&plan);
        document["outputs"] = json!(state.outputs);
        print(&serde_json::to_string_pretty(&document).expect("documents serialize"));
    } else {
        print(&format_outputs(&state.outputs));
        let changes = summary.create + summary.update + summary.replace + summary.delete;
        print(&format!(
            "{} in {:.1}s",
            if changes == 0 {
                "No changes; the stack is ready".to_string()
            } else {
                format!("{changes} change(s) applied; the stack is ready")
            },
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(())
}
