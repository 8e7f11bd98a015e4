//! `echo-iac destroy`: deletes what the state lists, dependents first, and
//! nothing else.

use std::time::Instant;

use crate::cli::{DestroyArgs, GlobalArgs};
use crate::engine::apply::{self, ApplyOptions, Event, Journal};
use crate::engine::planner;
use crate::error::Error;
use crate::render::{self, TextOptions};
use crate::state::StateStore;

use super::preview::header;
use super::up::past_tense as op_done;
use super::{Session, confirm, note, print, watch_interrupts};

pub async fn run(global: &GlobalArgs, args: DestroyArgs) -> Result<(), Error> {
    let started = Instant::now();
    let session = Session::open(global)?;
    let store = session.store();
    let _lock = super::lock(&store, "echo-iac destroy", args.wait_for_lock)?;
    let state = store.load()?;
    if state.resources.is_empty() && state.pending.is_empty() {
        if args.json {
            print(r#"{"stack":"","steps":[],"summary":{}}"#);
        } else {
            print(&format!(
                "Nothing to destroy: stack {} manages no objects.",
                session.stack.name
            ));
        }
        return Ok(());
    }
    // Once changes are under way, an API server that restarts is waited
    // for as long as the run may take.
    let cluster = session.connect().await?.with_outage_budget(args.timeout);
    let plan =
        planner::plan_destroy(&cluster, &session.stack.name, &state, session.concurrency()).await?;
    if args.json {
        print(&serde_json::to_string_pretty(&render::plan_json(&plan)).expect("plans serialize"));
    } else {
        print(&header("Destroying", &session, cluster.context()));
        print(&render::plan_text(
            &plan,
            &TextOptions {
                diff: false,
                color: session.color(),
            },
        ));
    }
    confirm("Do you want to delete these objects?", args.yes, "destroy")?;

    let cancel = watch_interrupts();
    let journal = Journal::new(&store, state);
    let options = ApplyOptions {
        force_conflicts: false,
        concurrency: session.concurrency(),
        timeout: args.timeout,
        cancel,
    };
    let quiet = args.json;
    let on_event = move |event: Event<'_>| {
        if quiet {
            return;
        }
        match event {
            Event::Started { .. } => {}
            Event::Finished { op, id, elapsed } => note(&format!(
                " {:<2} {id} {} ({:.1}s)",
                op.mark(),
                op_done(op),
                elapsed.as_secs_f64()
            )),
            Event::Note { id, message } => note(&format!(" !  {id}: {message}")),
        }
    };
    apply::apply_plan(&cluster, &plan, &[], &journal, &options, &on_event).await?;
    journal.update(|s| {
        // What is still pending names objects an interrupted run never
        // created (the plan found none of them live with this stack's
        // labels), so nothing of it is left to finish.
        s.pending.clear();
        s.outputs.clear();
    })?;
    if !args.json {
        print(&format!(
            "Destroyed stack {} in {:.1}s",
            session.stack.name,
            started.elapsed().as_secs_f64()
        ));
    }
    Ok(())
}
