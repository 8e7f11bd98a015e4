//! `echo-iac rollback [SERIAL]`: back to the objects a kept revision
//! recorded, as an `up` in everything else (lock, journal, preview,
//! confirmation, progress, wait); and the same after a failed
//! `up --rollback-on-failure`.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::cli::{PlanFormat, RollbackArgs};
use crate::error::Error;
use crate::program::Program;
use crate::render;
use echo_iac_engine::cluster::Cluster;
use echo_iac_engine::operation::{self, UpOptions};
use echo_iac_engine::planner::{self, PlanOptions};
use echo_iac_engine::rollback::{self, Rollback};
use echo_iac_engine::state::{Locked, Revision, State};

use super::output::format_outputs;
use super::{
    Session, check_blocked, confirm, note, print, print_document, show_plan, watch_interrupts,
};

pub(crate) async fn run<P: Program>(session: Session<P>, args: RollbackArgs) -> Result<(), Error> {
    let started = Instant::now();
    let session = session.with_outage_budget(args.timeout);
    let store = session.store().await?;
    let wait = args.wait_for_lock;
    super::locked(
        &*store,
        &format!("{} rollback", P::NAME),
        wait,
        async |locked| {
            let state = locked.load().await?;
            let revisions = locked.store().history().await?;
            let to = match args.serial {
                Some(serial) => serial,
                None => default_revision(&revisions, &state, &session.stack.name)?,
            };
            let cluster = session.connect().await?;
            let how = How {
                yes: args.yes,
                json: args.json,
                diff: args.diff,
                skip_preview: args.skip_preview,
                force_conflicts: args.force_conflicts,
                timeout: args.timeout,
                wait_grace: args.wait_grace,
            };
            let done = roll_back(&session, locked, &cluster, state, to, &how).await?;
            if !args.json {
                print(&format!(
                    "{} in {:.1}s",
                    done.summary(),
                    started.elapsed().as_secs_f64()
                ));
            }
            Ok(())
        },
    )
    .await
}

/// How a rollback runs: the flags it shares with `up`.
pub(crate) struct How {
    pub yes: bool,
    pub json: bool,
    pub diff: bool,
    pub skip_preview: bool,
    pub force_conflicts: bool,
    pub timeout: Duration,
    pub wait_grace: Duration,
}

/// What a rollback did.
pub(crate) struct Done {
    pub to: u64,
    changes: usize,
}

impl Done {
    fn summary(&self) -> String {
        match self.changes {
            0 => format!(
                "Rolled back to revision {}: no changes; the stack is ready",
                self.to
            ),
            n => format!(
                "Rolled back to revision {}: {n} change(s) applied; the stack is ready",
                self.to
            ),
        }
    }
}

/// The revision before the current one: the newest kept revision of an
/// earlier run; or, when a rollback was cut short, the revision it was
/// going back to, so that running it again finishes it.
fn default_revision(revisions: &[Revision], state: &State, stack: &str) -> Result<u64, Error> {
    if let Some(mark) = &state.operation
        && let Some(to) = mark.rollback_to
        && !mark.finished
    {
        return Ok(to);
    }
    revisions
        .iter()
        .find(|r| r.serial < state.serial)
        .map(|r| r.serial)
        .ok_or_else(|| {
            Error::refused(
                format!(
                    "stack {stack} has no earlier revision to roll back to{}",
                    if state.serial == 0 {
                        ": it has no state yet"
                    } else {
                        ""
                    }
                ),
                format!(
                    "`{} stack history` lists the kept revisions",
                    crate::name::bin()
                ),
            )
        })
}

/// The newest kept revision up to `at_most` whose run finished: where
/// `up --rollback-on-failure` goes back to.
pub(crate) async fn last_finished(locked: &Locked<'_>, at_most: u64) -> Result<Option<u64>, Error> {
    let revisions = locked.store().history().await?;
    Ok(revisions
        .iter()
        .filter(|r| r.serial <= at_most)
        .find(|r| r.finished() != Some(false))
        .map(|r| r.serial))
}

/// Plans the way from the live objects back to revision `to`, shows it,
/// asks (unless `how.yes`), applies it, waits, and records it as a new
/// revision that says `rollback to <to>`.
pub(crate) async fn roll_back<P: Program>(
    session: &Session<P>,
    locked: &Locked<'_>,
    cluster: &Cluster,
    state: State,
    to: u64,
    how: &How,
) -> Result<Done, Error> {
    if to == state.serial {
        return Err(Error::refused(
            format!(
                "revision {to} is the current state of stack {}",
                session.stack.name
            ),
            format!(
                "name an earlier revision from `{} stack history`",
                crate::name::bin()
            ),
        ));
    }
    let revision = locked.store().revision(to).await?;
    check_program::<P>(&revision)?;
    let Rollback {
        desired,
        kept,
        outputs,
        ..
    } = rollback::prepare(cluster, &revision, &state).await?;
    let mut plan = planner::plan_up(
        cluster,
        &session.stack.name,
        &desired,
        &state,
        &PlanOptions {
            force_conflicts: how.force_conflicts,
            concurrency: session.concurrency(),
            protections: session.stack.protections.clone(),
            objects: how.diff && !how.skip_preview,
            ..PlanOptions::default()
        },
    )
    .await?;
    if !how.json && !how.skip_preview {
        show_plan(
            &format!("Rolling back to revision {to}:"),
            session,
            cluster,
            &plan,
            how.diff,
            PlanFormat::Text,
        );
    }
    if !how.json {
        for k in &kept {
            note(&format!("  {}: {}", k.id, k.reason.describe()));
        }
    }
    check_blocked(&plan)?;
    plan.drop_objects();
    if plan.has_changes() {
        confirm("Do you want to roll back?", how.yes, "rollback")?;
    }

    locked.begin_rollback(to);
    let options = UpOptions {
        force_conflicts: how.force_conflicts,
        concurrency: session.concurrency(),
        timeout: how.timeout,
        wait_grace: how.wait_grace,
        cancel: watch_interrupts(),
    };
    let progress = session.progress(how.json);
    let applied =
        operation::up(cluster, locked, state, &plan, &desired, &options, &progress).await?;
    drop(progress);
    let state = applied.finish(outputs).await?;

    let summary = plan.summary();
    let changes = summary.create + summary.update + summary.replace + summary.delete;
    if how.json {
        let mut document = render::plan_json(&plan);
        document["outputs"] = json!(state.outputs);
        document["rollback"] = json!({
            "to": to,
            "serial": state.serial,
            "kept": kept.iter().map(|k| json!({
                "id": k.id.to_string(),
                "reason": k.reason.describe(),
            })).collect::<Vec<_>>(),
        });
        print_document(&document);
    } else {
        print(&format_outputs(&state.outputs));
    }
    Ok(Done { to, changes })
}

/// A revision another program wrote is not this program's to restore,
/// even under the same stack name.
fn check_program<P: Program>(revision: &State) -> Result<(), Error> {
    let Some(writer) = &revision.written_by else {
        return Ok(());
    };
    let program = writer.command.split_whitespace().next().unwrap_or_default();
    if program.is_empty() || program == P::NAME {
        return Ok(());
    }
    Err(Error::refused(
        format!(
            "revision {} was written by `{}`, not by {}: it is another program's",
            revision.serial,
            writer.command,
            P::NAME
        ),
        format!(
            "roll back only to a revision this program wrote: `{} stack history` lists them",
            crate::name::bin()
        ),
    ))
}
