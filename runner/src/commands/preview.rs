//! `echo-iac preview`: the plan, and nothing changed.

use crate::cli::{PlanFormat, PreviewArgs};
use crate::error::{Error, exit};
use crate::program::Program;
use crate::render::plan_json;
use echo_iac_engine::planner;

use super::{
    Session, check_blocked, note, plan_options, print, print_document, saved_plan, show_plan,
};

pub(crate) async fn run<P: Program>(session: Session<P>, args: PreviewArgs) -> Result<(), Error> {
    // Preview takes no lock and writes nothing: it may run beside an `up`.
    let state = session.store().await?.load().await?;
    let desired = session.desired().await?;
    let cluster = session.connect().await?;
    let plan = planner::plan_up(
        &cluster,
        &session.stack.name,
        &desired,
        &state,
        &plan_options(
            &args.plan,
            &session,
            args.diff || args.format() == PlanFormat::Markdown,
        ),
    )
    .await?;

    match (state.rolled_back_to(), args.format()) {
        (Some(to), PlanFormat::Json) => {
            let mut document = plan_json(&plan);
            document["rolledBackTo"] = to.into();
            print_document(&document);
        }
        (rolled_back, format) => {
            if let (Some(to), PlanFormat::Text) = (rolled_back, format) {
                print(&format!(
                    "Stack {} is rolled back to revision {to}: this is what the next `up` changes to apply the program again.\n",
                    session.stack.name
                ));
            }
            show_plan("Previewing", &session, &cluster, &plan, args.diff, format);
        }
    }
    check_blocked(&plan)?;
    if let Some(file) = &args.save_plan {
        let saved = saved_plan::record(&cluster, &plan, &desired, &state, &args.plan);
        saved_plan::write(file, &saved)?;
        note(&format!(
            "Saved the plan to {}: `{} --stack {} up --plan {}` applies exactly it, or nothing.",
            file.display(),
            crate::name::bin(),
            session.stack.name,
            file.display()
        ));
    }
    if args.expect_no_changes && plan.has_changes() {
        return Err(Error::Exit(exit::CHANGES));
    }
    Ok(())
}
