//! `preview --save-plan FILE` and `up --plan FILE`: the plan a person
//! reviewed is the plan that is applied, or nothing is.

use std::path::Path;
use std::time::{Duration, SystemTime};

use crate::cli::PlanArgs;
use crate::error::Error;
use echo_iac_engine::cluster::Cluster;
use echo_iac_engine::saved_plan::{Context, SavedOptions, SavedPlan};
use echo_iac_engine::state::{State, write_private_file};
use echo_iac_engine::{DesiredResource, Plan};

/// How many differences a refusal lists before it counts the rest: the
/// error stays on one screen.
const SHOWN: usize = 12;

fn options(args: &PlanArgs) -> SavedOptions {
    SavedOptions {
        force_conflicts: args.force_conflicts,
        adopt: args.adopt,
    }
}

/// The plan as a saved plan, in this run's context.
pub(crate) fn record(
    cluster: &Cluster,
    plan: &Plan,
    desired: &[DesiredResource],
    state: &State,
    args: &PlanArgs,
) -> SavedPlan {
    let context = Context {
        identity: cluster.identity(),
        program_version: crate::name::version(),
        server: cluster.server(),
        context: cluster.context(),
        options: options(args),
    };
    SavedPlan::of(plan, desired, state, &context)
}

/// Writes `saved` to `file`, private and never through a link.
pub(crate) fn write(file: &Path, saved: &SavedPlan) -> Result<(), Error> {
    write_private_file(file, saved.to_text().as_bytes())?;
    Ok(())
}

/// Reads the plan `file` holds, refusing one older than `max_age`.
pub(crate) fn read(file: &Path, max_age: Option<Duration>) -> Result<SavedPlan, Error> {
    let shown = file.display();
    let text = std::fs::read_to_string(file).map_err(|e| {
        Error::refused(
            format!("cannot read the saved plan {shown}: {e}"),
            "pass the file `preview --save-plan FILE` wrote",
        )
    })?;
    let saved = SavedPlan::parse(&text).map_err(|reason| {
        Error::refused(
            format!("{shown} is no plan this release can apply: {reason}"),
            format!(
                "make the plan again with `{} preview --save-plan {shown}`",
                crate::name::bin()
            ),
        )
    })?;
    if let Some(max_age) = max_age {
        let created = humantime::parse_rfc3339_weak(&saved.created).map_err(|e| {
            Error::refused(
                format!("{shown}: `created` is no time ({e})"),
                "make the plan again with `preview --save-plan`",
            )
        })?;
        let age = SystemTime::now()
            .duration_since(created)
            .unwrap_or_default();
        if age > max_age {
            return Err(Error::refused(
                format!(
                    "the saved plan {shown} is {} old, older than --plan-max-age {}",
                    humantime::format_duration(Duration::from_secs(age.as_secs())),
                    humantime::format_duration(max_age)
                ),
                format!(
                    "review a fresh plan: `{} preview --save-plan {shown}`",
                    crate::name::bin()
                ),
            ));
        }
    }
    Ok(saved)
}

/// The options `up --plan` plans with: the saved plan's, unless the
/// command line names its own (which then must be the same).
pub(crate) fn plan_args(saved: &SavedPlan, args: &PlanArgs) -> PlanArgs {
    if args.force_conflicts || args.adopt {
        return args.clone();
    }
    PlanArgs {
        force_conflicts: saved.options.force_conflicts,
        adopt: saved.options.adopt,
        full: args.full,
        target: args.target.clone(),
    }
}

/// Refuses, changing nothing, unless `now` is the reviewed plan.
pub(crate) fn check(file: &Path, reviewed: &SavedPlan, now: &SavedPlan) -> Result<(), Error> {
    let found = reviewed.differences(now);
    if found.is_empty() {
        return Ok(());
    }
    let mut message = format!(
        "the plan in {} (made {}) is not what applying now would do; nothing was changed:",
        file.display(),
        reviewed.created
    );
    for line in found.iter().take(SHOWN) {
        message.push_str(&format!("\n  - {line}"));
    }
    if found.len() > SHOWN {
        message.push_str(&format!("\n  ... and {} more", found.len() - SHOWN));
    }
    Err(Error::refused(
        message,
        format!(
            "the plan above is what `up` would do now; review it and save it again with `{} preview --save-plan {}`",
            crate::name::bin(),
            file.display()
        ),
    ))
}
