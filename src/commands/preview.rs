//! `echo-iac preview`: the plan, and nothing changed.

use crate::cli::{GlobalArgs, PlanArgs, PreviewArgs};
use crate::error::{Error, exit};
use crate::program;
use echo_iac_engine::planner::{self, PlanOptions};
use echo_iac_engine::{Blocker, EngineError, Plan};

use super::{Session, show_plan};

pub async fn run(global: &GlobalArgs, args: PreviewArgs) -> Result<(), Error> {
    let session = Session::open(global)?;
    // Preview takes no lock and writes nothing: it may run beside an `up`.
    let state = session.store().await?.load().await?;
    let desired = program::desired_resources(&session.stack);
    let cluster = session.connect().await?;
    let plan = planner::plan_up(
        &cluster,
        &session.stack.name,
        &desired,
        &state,
        plan_options(&args.plan, session.concurrency()),
    )
    .await?;

    show_plan(
        "Previewing",
        &session,
        &cluster,
        &plan,
        args.diff,
        args.json,
    );
    check_blocked(&plan)?;
    if args.expect_no_changes && plan.has_changes() {
        return Err(Error::Exit(exit::CHANGES));
    }
    Ok(())
}

pub fn plan_options(args: &PlanArgs, concurrency: usize) -> PlanOptions {
    PlanOptions {
        force_conflicts: args.force_conflicts,
        adopt: args.adopt,
        concurrency,
    }
}

/// A plan with blocked steps fails the preview too, so that a preview that
/// passes is one that `up` can carry out.
pub fn check_blocked(plan: &Plan) -> Result<(), Error> {
    let blocked: Vec<&Blocker> = plan.blocked().filter_map(|s| s.blocker.as_ref()).collect();
    if blocked.is_empty() {
        return Ok(());
    }
    let mut hints = Vec::new();
    if blocked
        .iter()
        .any(|b| matches!(b, Blocker::Conflicts { .. }))
    {
        hints.push("rerun with --force-conflicts to take the conflicting fields over");
    }
    if blocked
        .iter()
        .any(|b| matches!(b, Blocker::Unmanaged { .. }))
    {
        hints.push(
            "rerun with --adopt to take over the existing objects, or rename them in the stack",
        );
    }
    if blocked
        .iter()
        .any(|b| matches!(b, Blocker::Rejected { .. }))
    {
        hints.push("fix what the API server rejected (see its message above)");
    }
    Err(EngineError::Blocked {
        count: blocked.len(),
        hint: hints.join("; "),
    }
    .into())
}
