//! `echo-iac preview`: the plan, and nothing changed.

use crate::cli::PreviewArgs;
use crate::error::{Error, exit};
use crate::program::Program;
use echo_iac_engine::planner;

use super::{Session, check_blocked, plan_options, show_plan};

pub(crate) async fn run<P: Program>(session: Session<P>, args: PreviewArgs) -> Result<(), Error> {
    // Preview takes no lock and writes nothing: it may run beside an `up`.
    let state = session.store().await?.load().await?;
    let desired = session.desired()?;
    let cluster = session.connect().await?;
    let plan = planner::plan_up(
        &cluster,
        &session.stack.name,
        &desired,
        &state,
        &plan_options(&args.plan, &session),
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
