//! `echo-iac destroy`: deletes what the state lists, dependents first, and
//! nothing else.

use std::time::Instant;

use crate::cli::DestroyArgs;
use crate::error::Error;
use crate::program::Program;
use crate::render;
use echo_iac_engine::operation::{self, Options};
use echo_iac_engine::planner;
use echo_iac_engine::state::StateStore;

use super::{Session, confirm, note, print, show_plan, watch_interrupts};

pub async fn run<P: Program>(session: Session<P>, args: DestroyArgs) -> Result<(), Error> {
    let started = Instant::now();
    // Once changes are under way, an API server that restarts is waited
    // for as long as the run may take.
    let session = session.with_outage_budget(args.timeout);
    let store = session.store().await?;
    let wait = args.wait_for_lock;
    super::locked(
        &*store,
        &format!("{} destroy", P::NAME),
        wait,
        run_locked(&session, &*store, args, started),
    )
    .await
}

async fn run_locked<P: Program>(
    session: &Session<P>,
    store: &dyn StateStore,
    args: DestroyArgs,
    started: Instant,
) -> Result<(), Error> {
    let state = store.load().await?;
    let cluster = session.connect().await?;
    // The program's objects too: their kinds and namespaces are where
    // objects with this stack's labels that the state lost are looked for.
    // A program that cannot declare them (a setting it cannot use, a file
    // it cannot read) must not block teardown: the state alone says what
    // to delete.
    let desired = match session.desired() {
        Ok(desired) => desired,
        Err(error) => {
            note(&format!(
                "The program cannot declare its objects ({error}); destroying what the state lists."
            ));
            Vec::new()
        }
    };
    let plan = planner::plan_destroy(
        &cluster,
        &session.stack.name,
        &state,
        &desired,
        session.concurrency(),
    )
    .await?;
    if plan.steps.is_empty() && state.pending.is_empty() {
        if args.json {
            print(
                &serde_json::to_string_pretty(&render::plan_json(&plan)).expect("plans serialize"),
            );
        } else {
            print(&format!(
                "Nothing to destroy: stack {} manages no objects.",
                session.stack.name
            ));
        }
        return Ok(());
    }
    show_plan("Destroying", session, &cluster, &plan, false, args.json);
    confirm("Do you want to delete these objects?", args.yes, "destroy")?;

    let options = Options {
        force_conflicts: false,
        concurrency: session.concurrency(),
        timeout: args.timeout,
        wait_grace: args.timeout,
        cancel: watch_interrupts(),
    };
    let progress = session.progress(args.json);
    operation::destroy(&cluster, store, state, &plan, &desired, &options, &progress).await?;
    drop(progress);
    if !args.json {
        print(&format!(
            "Destroyed stack {} in {:.1}s",
            session.stack.name,
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(())
}
