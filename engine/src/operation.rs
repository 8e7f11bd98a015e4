//! `up` and `destroy` as whole operations: apply a plan through the
//! journal, wait until what was applied works, and keep the state honest on
//! the way (what an interrupted run left is cleared once converged, a wait
//! in progress is recorded as pending, outputs are written once).
//!
//! A caller plans first (`planner`), shows the plan, asks, then runs the
//! operation. `up` stops after the wait and hands back an [`Applied`], so
//! that the program can read its outputs from the ready stack before the
//! state's last write.

use crate::Cancel;
use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

pub use crate::apply::Event;
use crate::apply::{self, ApplyOptions, Journal};
use crate::cluster::Cluster;
use crate::error::EngineError;
use crate::plan::Plan;
use crate::planner::DEFAULT_CONCURRENCY;
use crate::ready::{self, Readiness};
use crate::resource::{DesiredResource, ResourceId};
use crate::state::{Locked, State};

/// The pending operation that stands for the readiness wait: a run stopped
/// while waiting applied everything but never saw it work.
pub(crate) const WAIT_OP: &str = "wait";

/// What an operation tells as it goes.
pub trait Observer: Sync {
    /// A step started, finished, or has something to say.
    fn event(&self, event: Event<'_>);
    /// The readiness of what is waited for: those whose progress changed
    /// since the last call, and all of them.
    fn waiting(&self, _changed: &[&Readiness], _all: &[Readiness]) {}
    /// A line about the operation as a whole.
    fn note(&self, _message: &str) {}
}

/// An observer that tells nobody.
pub struct Silent;

impl Observer for Silent {
    fn event(&self, _event: Event<'_>) {}
}

/// How long `up` waits for what it applied to be ready, and `destroy` for
/// what it deleted to be gone, unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// How long `up` waits on a rollout whose new pods are all stuck on a
/// reason that waiting does not fix, unless told otherwise.
pub const DEFAULT_WAIT_GRACE: Duration = Duration::from_secs(30);

/// How `up` runs.
#[derive(Clone, Debug)]
pub struct UpOptions {
    /// Take fields owned by other field managers.
    pub force_conflicts: bool,
    /// How many steps send requests at once; 0 counts as 1. A delete
    /// waiting for its object to go does not count: those waits share
    /// their polls.
    pub concurrency: usize,
    /// Bounds the readiness wait, and the wait for replaced objects to go.
    pub timeout: Duration,
    /// How long a rollout whose new pods are all stuck on a reason that
    /// waiting does not fix is waited for.
    pub wait_grace: Duration,
    /// Asked on the first interrupt: no new step starts; steps in flight
    /// finish, and the wait stops at once.
    pub cancel: Cancel,
}

impl Default for UpOptions {
    fn default() -> Self {
        UpOptions {
            force_conflicts: false,
            concurrency: DEFAULT_CONCURRENCY,
            timeout: DEFAULT_TIMEOUT,
            wait_grace: DEFAULT_WAIT_GRACE,
            cancel: Cancel::default(),
        }
    }
}

/// How `destroy` runs.
#[derive(Clone, Debug)]
pub struct DestroyOptions {
    /// How many steps send requests at once; 0 counts as 1. A delete
    /// waiting for its object to go does not count: those waits share
    /// their polls.
    pub concurrency: usize,
    /// Bounds the wait for each deleted object to be gone.
    pub timeout: Duration,
    /// Asked on the first interrupt: no new step starts; steps in flight
    /// finish.
    pub cancel: Cancel,
}

impl Default for DestroyOptions {
    fn default() -> Self {
        DestroyOptions {
            concurrency: DEFAULT_CONCURRENCY,
            timeout: DEFAULT_TIMEOUT,
            cancel: Cancel::default(),
        }
    }
}

/// An `up` whose changes are applied and ready; [`Applied::finish`] records
/// the outputs.
#[must_use = "the outputs and the end of the wait are recorded only by `Applied::finish`"]
pub struct Applied<'a> {
    journal: Journal<'a>,
    store: &'a Locked<'a>,
    changed: bool,
    /// Objects the plan left out whose wait, pending from an earlier run,
    /// this run did not finish: it stays pending.
    unwaited: Vec<ResourceId>,
}

/// Applies `plan` (made by `planner::plan_up` for `desired` from `state`),
/// then waits until every object it applied, and every one an interrupted
/// run left pending, is ready.
pub async fn up<'a>(
    cluster: &Cluster,
    store: &'a Locked<'a>,
    state: State,
    plan: &Plan,
    desired: &[DesiredResource],
    options: &UpOptions,
    observer: &dyn Observer,
) -> Result<Applied<'a>, EngineError> {
    refuse_blocked(plan)?;
    // Objects an interrupted run may have applied without seeing them work.
    let unfinished: Vec<ResourceId> = state
        .pending
        .iter()
        .filter(|p| !plan.leaves_out(&p.id))
        .map(|p| p.id.clone())
        .collect();
    let journal = Journal::new(store, state);
    let apply_options = ApplyOptions {
        force_conflicts: options.force_conflicts,
        concurrency: options.concurrency,
        timeout: options.timeout,
        cancel: &options.cancel,
    };
    apply(cluster, plan, desired, &journal, &apply_options, observer).await?;
    if !plan.interrupted.is_empty() {
        // Every declared object now matches the program, so what the
        // interrupted run left half done has converged; what a targeted plan left out has not.
        journal
            .update(|s| s.pending.retain(|p| plan.leaves_out(&p.id)))
            .await?;
        observer.note(&format!(
            "Recovered {} operation(s) an earlier run left unfinished",
            plan.interrupted.len()
        ));
    }

    let targets = ready::targets(plan, desired, &unfinished);
    if !targets.is_empty() {
        if plan.has_changes() {
            journal
                .update(|s| {
                    for target in &targets {
                        s.begin(WAIT_OP, target.id().clone());
                    }
                })
                .await?;
        }
        observer.note("Waiting until ready...");
        ready::wait_ready(
            cluster,
            &targets,
            options.timeout,
            options.wait_grace,
            &options.cancel,
            |changed, all| observer.waiting(changed, all),
        )
        .await?;
    }
    stopped_early(&options.cancel)?;
    Ok(Applied {
        journal,
        store,
        changed: plan.has_changes(),
        unwaited: plan
            .left_out
            .iter()
            .filter(|id| !targets.iter().any(|t| t.id() == *id))
            .cloned()
            .collect(),
    })
}

impl Applied<'_> {
    /// Records `outputs` and clears the pending wait; writes the state only
    /// if that changes it. Returns the state as stored.
    pub async fn finish(self, outputs: BTreeMap<String, Value>) -> Result<State, EngineError> {
        let mut state = self.journal.into_state();
        // A run that wrote anything (a recovery, too) ends with a write
        // that says it finished, for the history.
        if state.outputs != outputs
            || self.changed
            || self.store.has_written()
            || self.store.rolling_back()
        {
            state
                .pending
                .retain(|p| p.op != WAIT_OP || self.unwaited.contains(&p.id));
            state.outputs = outputs;
            self.store.save_finished(&mut state).await?;
        }
        Ok(state)
    }
}

/// Deletes what `plan` (made by `planner::plan_destroy`) lists, dependents
/// first; the state is left with no objects, no pending entries and no
/// outputs, unless the plan leaves objects out (targets): their entries,
/// and the outputs, stay. `desired` gives the program's dependency order.
pub async fn destroy(
    cluster: &Cluster,
    store: &Locked<'_>,
    state: State,
    plan: &Plan,
    desired: &[DesiredResource],
    options: &DestroyOptions,
    observer: &dyn Observer,
) -> Result<State, EngineError> {
    refuse_blocked(plan)?;
    let journal = Journal::new(store, state);
    let apply_options = ApplyOptions {
        force_conflicts: false,
        concurrency: options.concurrency,
        timeout: options.timeout,
        cancel: &options.cancel,
    };
    apply(cluster, plan, desired, &journal, &apply_options, observer).await?;
    let tidy = |s: &mut State| {
        // What is still pending names objects an interrupted run never
        // created (the plan found none of them live with this stack's
        // labels), so nothing of it is left to finish, but for what a
        // targeted plan left out: that stays, and so do the outputs
        // of a stack that still has objects.
        s.pending.retain(|p| plan.leaves_out(&p.id));
        if plan.left_out.is_empty() {
            s.outputs.clear();
        }
    };
    if options.cancel.is_cancelled() {
        journal.update(tidy).await?;
    } else {
        journal.finish_run(tidy).await?;
    }
    stopped_early(&options.cancel)?;
    Ok(journal.into_state())
}

/// Fails with [`EngineError::Blocked`] when `plan` holds a step that
/// cannot be carried out. `up` and `destroy` check this themselves before
/// any request, so that no caller can apply part of a plan that was
/// refused as a whole; a preview calls it to fail as `up` would.
pub fn refuse_blocked(plan: &Plan) -> Result<(), EngineError> {
    let steps = plan.blocked_steps();
    if steps.is_empty() {
        return Ok(());
    }
    Err(EngineError::Blocked { steps })
}

/// An interrupt that came while the last steps were in flight had nothing
/// left to stop, yet the run still ends as interrupted: it was asked to
/// stop early, and a success would tell a script that sent the signal
/// that the run went undisturbed (for `destroy`, a wait for an object to
/// go may also have been cut short, see `gone::GoneWatcher::wait_gone`).
fn stopped_early(cancel: &Cancel) -> Result<(), EngineError> {
    if cancel.is_cancelled() {
        return Err(EngineError::Interrupted);
    }
    Ok(())
}

/// Carries out `plan` through `journal`, telling `observer` each step.
async fn apply(
    cluster: &Cluster,
    plan: &Plan,
    desired: &[DesiredResource],
    journal: &Journal<'_>,
    options: &ApplyOptions<'_>,
    observer: &dyn Observer,
) -> Result<(), EngineError> {
    let on_event = |event: Event<'_>| observer.event(event);
    apply::apply_plan(cluster, plan, desired, journal, options, &on_event).await
}
