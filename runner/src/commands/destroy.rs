//! `echo-iac destroy`: deletes what the state lists, dependents first, and
//! what carries the stack's labels outside its state only where the program
//! declares it or `--delete-untracked` asks for it.

use std::time::Instant;

use crate::cli::{DestroyArgs, PlanFormat};
use crate::error::Error;
use crate::program::Program;
use crate::render;
use echo_iac_engine::operation::{self, DestroyOptions};
use echo_iac_engine::planner;
use echo_iac_engine::state::{Locked, StateStore};
use echo_iac_engine::untracked::{DeleteUntracked, Selector};
use echo_iac_engine::{Blocker, Plan};

use super::{Session, confirm, note, print, print_document, show_plan, watch_interrupts};

pub(crate) async fn run<P: Program>(session: Session<P>, args: DestroyArgs) -> Result<(), Error> {
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
        async |locked| run_locked(&session, locked, args, started).await,
    )
    .await
}

async fn run_locked<P: Program>(
    session: &Session<P>,
    locked: &Locked<'_>,
    args: DestroyArgs,
    started: Instant,
) -> Result<(), Error> {
    let store = locked.store();
    let state = store.load().await?;
    let cluster = session.connect().await?;
    // The program's objects too: their kinds and namespaces are where
    // objects with this stack's labels that the state lost are looked for.
    // A program that cannot declare them (a setting it cannot use, a file
    // it cannot read) must not block teardown: the state alone says what
    // to delete.
    let desired = match session.desired().await {
        Ok(desired) => desired,
        Err(error) => {
            note(&format!(
                "The program cannot declare its objects ({error}); destroying what the state lists."
            ));
            Vec::new()
        }
    };
    let delete_untracked = args.untracked_deletes();
    let plan = planner::plan_destroy(
        &cluster,
        &session.stack.name,
        &desired,
        &state,
        &planner::DestroyPlanOptions {
            concurrency: session.concurrency(),
            delete_untracked: delete_untracked.clone(),
            targets: args.target.targets(&session.stack.namespace),
            protections: session.stack.protections.clone(),
            keep_protected: args.keep_protected,
            // Its plan is shown without diffs.
            objects: false,
        },
    )
    .await?;
    check_named_untracked(&delete_untracked, &plan, &session.stack.name)?;
    let left = left_in_place(&plan);
    if plan.steps.is_empty() && !plan.left_out.is_empty() {
        if args.json {
            print_document(&render::plan_json(&plan));
        } else {
            print(&format!(
                "Nothing to destroy: no object the targets name is in the cluster; the {} object(s) left out by --target stay.",
                plan.left_out.len()
            ));
        }
        return Ok(());
    }
    if plan.steps.is_empty() && state.pending.is_empty() && left == 0 {
        if args.json {
            print_document(&render::plan_json(&plan));
        } else {
            // A state that was written stays until `stack rm` removes it.
            let state_note = if state.serial > 0 {
                format!("\n{}", state_left(session, store))
            } else {
                String::new()
            };
            print(&format!(
                "Nothing to destroy: stack {} manages no objects.{state_note}",
                session.stack.name
            ));
        }
        return Ok(());
    }
    // With --json the plan is the document printed once everything is
    // deleted; a failure prints an error document instead, so stdout
    // always holds exactly one.
    if !args.json {
        show_plan(
            "Destroying",
            session,
            &cluster,
            &plan,
            false,
            PlanFormat::Text,
        );
    }
    if plan.steps.is_empty() && state.pending.is_empty() {
        if args.json {
            print_document(&render::plan_json(&plan));
        } else {
            print(&format!(
                "Nothing to destroy: stack {} manages no objects; the {left} untracked object(s) above were left in place.",
                session.stack.name
            ));
        }
        return Ok(());
    }
    // With --json the blocked plan is the document, as a preview prints it.
    if args.json && plan.blocked().next().is_some() {
        print_document(&render::plan_json(&plan));
    }
    check_protected(&plan, &session.stack.name)?;
    confirm("Do you want to delete these objects?", args.yes, "destroy")?;

    let options = DestroyOptions {
        concurrency: session.concurrency(),
        timeout: args.timeout,
        cancel: watch_interrupts(),
    };
    let progress = session.progress(args.json);
    operation::destroy(
        &cluster, locked, state, &plan, &desired, &options, &progress,
    )
    .await?;
    drop(progress);
    if args.json {
        print_document(&render::plan_json(&plan));
    } else if !plan.left_out.is_empty() {
        print(&format!(
            "Destroyed {} object(s) of stack {} in {:.1}s; the {} object(s) left out by --target stay, in the cluster and in its state.",
            plan.steps.len(),
            session.stack.name,
            started.elapsed().as_secs_f64(),
            plan.left_out.len()
        ));
    } else {
        let mut kept = if left == 0 {
            String::new()
        } else {
            format!("; {left} untracked object(s) were left in place (listed above)")
        };
        let retained = plan.summary().retain;
        if retained > 0 {
            kept.push_str(&format!(
                "; {retained} object(s) retained: they keep running, no longer managed by the stack"
            ));
        }
        print(&format!(
            "Destroyed stack {} in {:.1}s{kept}\n{}",
            session.stack.name,
            started.elapsed().as_secs_f64(),
            state_left(session, store)
        ));
    }
    Ok(())
}

/// A destroy deletes nothing while the stack holds a protected object,
/// unless `--keep-protected` keeps those running outside the stack. Any
/// other blocked step stops it too, as `operation::destroy` would.
fn check_protected(plan: &Plan, stack: &str) -> Result<(), Error> {
    let protected: Vec<String> = plan
        .blocked()
        .filter_map(|s| match &s.blocker {
            Some(Blocker::Protected { by }) => Some(format!("{} (protected by {by})", s.id)),
            _ => None,
        })
        .collect();
    if !protected.is_empty() {
        return Err(Error::refused(
            format!(
                "destroy deleted nothing: stack {stack} holds {} protected object(s): {}",
                protected.len(),
                protected.join(", ")
            ),
            format!(
                "run `{bin} destroy --keep-protected` to destroy the rest and keep the protected objects running, outside the stack; or lift their protection (the stack file's `protect:`, or the program's) and run `{bin} up` first",
                bin = crate::name::bin()
            ),
        ));
    }
    Ok(operation::refuse_blocked(plan)?)
}

/// A name given to `--delete-untracked` that matches no untracked object
/// is most likely a typo: stop before anything is deleted.
fn check_named_untracked(
    delete_untracked: &DeleteUntracked,
    plan: &Plan,
    stack: &str,
) -> Result<(), Error> {
    let unmatched = delete_untracked.unmatched(&plan.untracked);
    if unmatched.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = unmatched.iter().map(ToString::to_string).collect();
    let found: Vec<String> = plan
        .untracked
        .iter()
        .filter(|u| !u.declared)
        .map(|u| Selector::of(&u.id).to_string())
        .collect();
    Err(Error::refused(
        format!(
            "--delete-untracked {}: no object with the labels of stack {stack} outside its state has that name",
            names.join(", ")
        ),
        if found.is_empty() {
            "the stack has no untracked objects; drop --delete-untracked".to_string()
        } else {
            format!("its untracked objects are: {}", found.join(", "))
        },
    ))
}

/// What stays once the objects are gone: the stack's now empty state, its
/// kept revisions and (in the cluster backend) its Secret, which only
/// `stack rm` removes.
fn state_left<P: Program>(session: &Session<P>, store: &dyn StateStore) -> String {
    format!(
        "Its state (now empty) and kept revisions stay in {}; `{} stack rm {}` removes them.",
        store.location(),
        crate::name::bin(),
        session.stack.name
    )
}

/// Untracked objects the plan leaves in place.
fn left_in_place(plan: &Plan) -> usize {
    plan.untracked
        .iter()
        .filter(|u| !plan.steps.iter().any(|s| s.id == u.id))
        .count()
}
