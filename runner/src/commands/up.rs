//! `echo-iac up`: preview, confirm, apply in dependency order, wait until
//! ready, record the outputs.

use std::time::Instant;

use serde_json::json;

use crate::cli::{PlanFormat, UpArgs};
use crate::error::Error;
use crate::program::Program;
use crate::render;
use echo_iac_engine::EngineError;
use echo_iac_engine::cluster::Cluster;
use echo_iac_engine::operation::{self, UpOptions};
use echo_iac_engine::planner;
use echo_iac_engine::state::Locked;

use super::output::format_outputs;
use super::{
    Session, check_blocked, confirm, note, plan_options, print, print_document, rollback,
    saved_plan, show_plan, watch_interrupts,
};

pub(crate) async fn run<P: Program>(session: Session<P>, args: UpArgs) -> Result<(), Error> {
    let started = Instant::now();
    // Once changes are under way, an API server that restarts is waited
    // for as long as the run may take.
    let session = session.with_outage_budget(args.timeout);
    let store = session.store().await?;
    let wait = args.wait_for_lock;
    super::locked(&*store, &format!("{} up", P::NAME), wait, async |locked| {
        run_locked(&session, locked, args, started).await
    })
    .await
}

async fn run_locked<P: Program>(
    session: &Session<P>,
    locked: &Locked<'_>,
    args: UpArgs,
    started: Instant,
) -> Result<(), Error> {
    let store = locked.store();
    // Read first: a plan file that cannot be used stops the run before
    // anything is asked of the cluster.
    let reviewed = match &args.saved_plan {
        Some(file) => Some(saved_plan::read(file, args.plan_max_age)?),
        None => None,
    };
    let plan_args = match &reviewed {
        Some(reviewed) => saved_plan::plan_args(reviewed, &args.plan),
        None => args.plan.clone(),
    };
    let state = store.load().await?;
    let desired = session.desired().await?;
    let cluster = session.connect().await?;
    let mut plan = planner::plan_up(
        &cluster,
        &session.stack.name,
        &desired,
        &state,
        &plan_options(&plan_args, session, args.diff && !args.skip_preview),
    )
    .await?;

    if !args.json && !args.skip_preview {
        show_plan(
            "Updating",
            session,
            &cluster,
            &plan,
            args.diff,
            PlanFormat::Text,
        );
    }
    // A reviewed plan never holds a blocked step: what differs from it is
    // the news, before any hint on how to unblock a plan nobody reviewed.
    if let (Some(file), Some(reviewed)) = (&args.saved_plan, &reviewed) {
        let now = saved_plan::record(&cluster, &plan, &desired, &state, &plan_args);
        saved_plan::check(file, reviewed, &now)?;
    }
    check_blocked(&plan)?;
    // With --json the plan is printed again at the end, changes and all.
    if args.json {
        plan.drop_objects();
    } else {
        plan.drop_details();
    }
    // A saved plan was reviewed: applying it exactly asks nobody again.
    if plan.has_changes() && reviewed.is_none() {
        confirm("Do you want to perform this update?", args.yes, "up")?;
    }

    let options = UpOptions {
        force_conflicts: plan_args.force_conflicts,
        concurrency: session.concurrency(),
        timeout: args.timeout,
        wait_grace: args.wait_grace,
        cancel: watch_interrupts(),
    };
    let progress = session.progress(args.json);
    let serial = state.serial;
    let applied = match operation::up(
        &cluster, locked, state, &plan, &desired, &options, &progress,
    )
    .await
    {
        Ok(applied) => applied,
        Err(error) if args.rollback_on_failure && worth_rolling_back(&error) => {
            drop(progress);
            return roll_back_after(session, locked, &cluster, error.into(), serial, &args).await;
        }
        Err(error) => {
            if args.rollback_on_failure && matches!(error, EngineError::Interrupted) {
                note(
                    "Interrupted: not rolled back (--rollback-on-failure rolls back a failed wait, never Ctrl-C)",
                );
            }
            return Err(error.into());
        }
    };
    // Every live line has settled; what follows goes below them.
    drop(progress);
    let outputs = session.outputs(&cluster, &desired).await?;
    let state = applied.finish(outputs).await?;

    let summary = plan.summary();
    if args.json {
        let mut document = render::plan_json(&plan);
        document["outputs"] = json!(state.outputs);
        print_document(&document);
    } else {
        print(&format_outputs(&state.outputs));
        let changes =
            summary.create + summary.update + summary.replace + summary.delete + summary.retain;
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

/// The failures `--rollback-on-failure` rolls back: a wait that ended
/// without the stack ready. An interrupt is the user's, and a failure to
/// reach the cluster or the state would stop a rollback too.
fn worth_rolling_back(error: &EngineError) -> bool {
    matches!(
        error,
        EngineError::Timeout { .. }
            | EngineError::RolloutFailed { .. }
            | EngineError::Failed { .. }
            | EngineError::Stuck { .. }
            | EngineError::NotGone { .. }
    )
}

/// Rolls back to the last revision whose run finished, after `cause`
/// failed the `up` that started from revision `started_from`.
async fn roll_back_after<P: Program>(
    session: &Session<P>,
    locked: &Locked<'_>,
    cluster: &Cluster,
    cause: Error,
    started_from: u64,
    args: &UpArgs,
) -> Result<(), Error> {
    let state = locked.load().await?;
    let Some(to) = rollback::last_finished(locked, started_from).await? else {
        note("Nothing to roll back to: no earlier run of this stack finished.");
        return Err(cause);
    };
    if !args.json {
        note(&format!("\nup failed: {}", cause.message()));
        note(&format!(
            "Rolling back to revision {to} (--rollback-on-failure)..."
        ));
    }
    let how = rollback::How {
        yes: true,
        json: args.json,
        diff: args.diff,
        skip_preview: false,
        force_conflicts: args.plan.force_conflicts,
        timeout: args.timeout,
        wait_grace: args.wait_grace,
    };
    let outcome = rollback::roll_back(session, locked, cluster, state, to, &how).await;
    Err(Error::RolledBack {
        cause: Box::new(cause),
        to,
        rollback: outcome.err().map(Box::new),
    })
}
