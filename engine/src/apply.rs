//! Carrying out a plan: applies in dependency order, deletes in reverse,
//! each step journaled in the state before and after its API call.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::Cancel;
use std::time::Duration;

use futures::{StreamExt, stream};
use serde_json::Value;
use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::crds;
use super::error::EngineError;
use super::gone::GoneWatcher;
use super::nodeports;
use super::plan::{Op, Plan, Step};
use super::proof::{self, Environment, Proof};
use super::ready::Poll;
use super::resource::{DesiredResource, ResourceId, ResourceOptions};
use crate::cluster::{Cluster, ClusterError, Deletion};
use crate::fault::{self, Point};
use crate::state::{Locked, ResourceState, State};

/// What happened, as it happens, for the progress display.
#[derive(Clone, Debug)]
pub enum Event<'a> {
    /// A step is about to make its API calls.
    Started {
        /// What the step does.
        op: Op,
        /// The object it does it to.
        id: &'a ResourceId,
    },
    /// A step's calls are done and its result recorded.
    Finished {
        /// What the step did.
        op: Op,
        /// The object it did it to.
        id: &'a ResourceId,
        /// How long the step took.
        elapsed: Duration,
    },
    /// Something worth telling about a step in flight (a retry, a wait for an
    /// object to go).
    Note {
        /// The object the note is about.
        id: &'a ResourceId,
        /// The note, one line.
        message: String,
    },
}

pub(crate) struct ApplyOptions<'a> {
    pub force_conflicts: bool,
    pub concurrency: usize,
    /// Bounds waiting for deleted objects to be gone.
    pub timeout: Duration,
    /// Set on the first Ctrl-C: no new step starts; steps in flight finish.
    pub cancel: &'a Cancel,
}

/// Results recorded but not yet written are written once this many pile
/// up, so a large wave does not rewrite the whole state once per object.
const UNSAVED_LIMIT: usize = 64;

/// The state, written so that a crash at any point leaves a record of what
/// was done and what was in flight: every step of a wave is recorded as
/// pending (and written) before any of its API calls, and its result after.
/// Results are written in batches; a step whose result was not written yet
/// still reads as pending, and the next run converges it, since everything
/// echo-iac creates carries the stack's labels.
pub(crate) struct Journal<'a> {
    store: &'a Locked<'a>,
    state: Mutex<State>,
    unsaved: std::sync::atomic::AtomicUsize,
}

impl<'a> Journal<'a> {
    pub(crate) fn new(store: &'a Locked<'a>, state: State) -> Self {
        Journal {
            store,
            state: Mutex::new(state),
            unsaved: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    pub(crate) fn into_state(self) -> State {
        self.state.into_inner()
    }

    /// Changes the state and writes it at once.
    pub(crate) async fn update(&self, change: impl FnOnce(&mut State)) -> Result<(), EngineError> {
        let mut state = self.state.lock().await;
        change(&mut state);
        self.store.save(&mut state).await?;
        self.unsaved.store(0, Ordering::SeqCst);
        Ok(())
    }

    /// Changes the state and writes it at once as the run's last write: the
    /// operation ended as asked.
    pub(crate) async fn finish_run(
        &self,
        change: impl FnOnce(&mut State),
    ) -> Result<(), EngineError> {
        let mut state = self.state.lock().await;
        change(&mut state);
        self.store.save_finished(&mut state).await?;
        self.unsaved.store(0, Ordering::SeqCst);
        Ok(())
    }

    /// Changes the state, writing it only once enough changes piled up.
    async fn defer(&self, change: impl FnOnce(&mut State)) -> Result<(), EngineError> {
        let mut state = self.state.lock().await;
        change(&mut state);
        if self.unsaved.fetch_add(1, Ordering::SeqCst) + 1 >= UNSAVED_LIMIT {
            self.store.save(&mut state).await?;
            self.unsaved.store(0, Ordering::SeqCst);
        }
        Ok(())
    }

    /// Writes what `defer` has not written yet.
    pub(crate) async fn flush(&self) -> Result<(), EngineError> {
        if self.unsaved.load(Ordering::SeqCst) == 0 {
            return Ok(());
        }
        self.update(|_| {}).await
    }

    /// Fails once the stack's lock may be another run's; checked right
    /// before every mutating request.
    fn check_lock(&self) -> Result<(), EngineError> {
        Ok(self.store.check()?)
    }

    /// Records the steps about to start as pending, in one write.
    async fn begin_all(&self, steps: &[(Op, &ResourceId)]) -> Result<(), EngineError> {
        if steps.is_empty() {
            return Ok(());
        }
        self.update(|s| {
            for (op, id) in steps {
                s.begin(op.as_str(), (*id).clone());
            }
        })
        .await
    }

    async fn record(&self, resource: ResourceState) -> Result<(), EngineError> {
        self.defer(|s| {
            s.finish(&resource.id);
            s.upsert_resource(resource);
        })
        .await
    }

    /// Clears the pending entry of a step that never started.
    async fn abandon(&self, id: &ResourceId) -> Result<(), EngineError> {
        self.defer(|s| s.finish(id)).await
    }

    async fn forget(&self, id: &ResourceId) -> Result<(), EngineError> {
        self.defer(|s| {
            s.finish(id);
            s.remove_resource(id);
        })
        .await
    }

    /// Records what the program now asks of an object it left unchanged
    /// (protect, retain), if that differs from the record. A wait rule is
    /// not recorded: it concerns only the run that applies the object.
    async fn update_options(
        &self,
        id: &ResourceId,
        options: &ResourceOptions,
    ) -> Result<(), EngineError> {
        let differs = {
            let state = self.state.lock().await;
            state
                .resource(id)
                .is_some_and(|r| (r.protect, r.retain) != (options.protect, options.retain))
        };
        if !differs {
            return Ok(());
        }
        self.defer(|s| {
            if let Some(record) = s.resources.iter_mut().find(|r| &r.id == id) {
                record.protect = options.protect;
                record.retain = options.retain;
            }
        })
        .await
    }

    /// Records a proof for an object the plan found unchanged and the state
    /// records without one (applied before proofs were recorded).
    async fn record_proof(&self, id: &ResourceId, proof: Proof) -> Result<(), EngineError> {
        self.defer(|s| {
            if let Some(record) = s.resources.iter_mut().find(|r| &r.id == id) {
                record.proof = Some(proof);
            }
        })
        .await
    }

    /// Whether the state records `id` with a proof made in `environment`.
    async fn has_proof(&self, id: &ResourceId, environment: &Environment) -> bool {
        let state = self.state.lock().await;
        state
            .resource(id)
            .and_then(|r| r.proof.as_ref())
            .is_some_and(|p| p.environment == environment.0)
    }

    async fn recorded_uid(&self, id: &ResourceId) -> Option<String> {
        let state = self.state.lock().await;
        state.resource(id).map(|r| r.uid.clone())
    }
}

/// Applies the plan's creates, updates and replaces in dependency order,
/// then its deletes, dependents first. Steps whose dependencies are done
/// run concurrently, at most `concurrency` at once sending requests; the
/// waits for deleted objects to go are polled together meanwhile.
pub(crate) async fn apply_plan(
    cluster: &Cluster,
    plan: &Plan,
    desired: &[DesiredResource],
    journal: &Journal<'_>,
    options: &ApplyOptions<'_>,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Result<(), EngineError> {
    let gone = GoneWatcher::new(cluster, options.timeout, options.cancel);
    let steps = run_steps(cluster, plan, desired, journal, options, &gone, on_event);
    tokio::select! {
        result = steps => result,
        never = gone.run() => match never {},
    }
}

/// The steps of [`apply_plan`], whose deletes wait through `gone`.
async fn run_steps(
    cluster: &Cluster,
    plan: &Plan,
    desired: &[DesiredResource],
    journal: &Journal<'_>,
    options: &ApplyOptions<'_>,
    gone: &GoneWatcher<'_>,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Result<(), EngineError> {
    let by_id: HashMap<&ResourceId, &DesiredResource> =
        desired.iter().map(|d| (&d.id, d)).collect();
    let applies: Vec<&Step> = plan.steps.iter().filter(|s| !s.op.is_removal()).collect();
    // A retain goes where its delete would: dependents first.
    let deletes: Vec<&Step> = plan.steps.iter().filter(|s| s.op.is_removal()).collect();
    // Deletes that free a node port a create needs go before every apply.
    let first = {
        let state = journal.state.lock().await;
        nodeports::deletes_to_run_first(
            plan,
            |id| {
                by_id
                    .get(id)
                    .map_or_else(Vec::new, |d| nodeports::node_ports(&d.object))
            },
            &state,
        )
    };
    let (early_deletes, deletes): (Vec<&Step>, Vec<&Step>) =
        deletes.into_iter().partition(|s| first.contains(&s.id));

    let in_plan: HashSet<&ResourceId> = applies.iter().map(|s| &s.id).collect();
    let apply_deps = |step: &Step| -> Vec<ResourceId> {
        by_id[&step.id]
            .depends_on
            .iter()
            .filter(|d| in_plan.contains(d))
            .cloned()
            .collect()
    };

    // A delete waits for the deletes of everything that depends on it.
    let deleting: HashSet<&ResourceId> = deletes
        .iter()
        .chain(&early_deletes)
        .map(|s| &s.id)
        .collect();
    let dependents: HashMap<ResourceId, Vec<ResourceId>> = {
        let state = journal.state.lock().await;
        let mut map: HashMap<ResourceId, Vec<ResourceId>> = HashMap::new();
        // Objects the state does not record (found by their labels) take
        // their dependencies from the program, when it declares them.
        let unrecorded = desired
            .iter()
            .filter(|d| state.resource(&d.id).is_none())
            .map(|d| (&d.id, &d.depends_on));
        let recorded = state.resources.iter().map(|r| (&r.id, &r.depends_on));
        for (id, depends_on) in recorded.chain(unrecorded) {
            if !deleting.contains(id) {
                continue;
            }
            for dep in depends_on {
                map.entry(dep.clone()).or_default().push(id.clone());
            }
        }
        map
    };
    let delete_deps = |step: &Step| dependents.get(&step.id).cloned().unwrap_or_default();
    if !early_deletes.is_empty() {
        run_in_waves(
            &early_deletes,
            delete_deps,
            journal,
            options,
            |step, slot| delete_step(cluster, step, journal, options, gone, slot, on_event),
        )
        .await?;
    }
    // Kinds whose definition this run updates: the API server takes up a
    // new schema a moment after the definition is written.
    let reshaped: HashSet<crds::DefinedKind> = applies
        .iter()
        .filter(|s| s.op == Op::Update && crds::is_crd(&s.id))
        .flat_map(|s| crds::defined_kinds(&by_id[&s.id].object))
        .collect();
    // What the server's answers depend on besides the objects, recorded
    // in each proof; without it (not readable) no proof is recorded.
    let environment = if applies.is_empty() {
        None
    } else {
        Environment::read(cluster).await.ok()
    };
    run_in_waves(&applies, apply_deps, journal, options, |step, slot| {
        let context = StepContext {
            reshaped: reshaped.contains(&crds::DefinedKind::of(&step.id)),
            environment: environment.as_ref(),
            gone,
        };
        let applied = apply_step(
            cluster,
            step,
            by_id[&step.id],
            journal,
            options,
            context,
            on_event,
        );
        async move {
            let _slot = slot;
            applied.await
        }
    })
    .await?;
    // The early deletes are done by now.
    let late_deps = |step: &Step| {
        let mut deps = delete_deps(step);
        deps.retain(|d| !first.contains(d));
        deps
    };
    run_in_waves(
        &deletes,
        late_deps,
        journal,
        options,
        |step, slot| async move {
            match step.op {
                Op::Retain => {
                    let _slot = slot;
                    retain_step(cluster, step, journal, options, on_event).await
                }
                _ => delete_step(cluster, step, journal, options, gone, slot, on_event).await,
            }
        },
    )
    .await
}

/// Runs `run` for each step once the steps it waits for are done, a wave
/// at a time: the wave's steps are journaled as pending first, and its
/// results written after it. Each step starts with a slot, one of
/// `concurrency`, which it holds while it sends requests: a delete lets it
/// go while it waits for its object to be gone, so that the wave's other
/// deletes go out meanwhile and their waits share each poll. Stops
/// starting new steps after the first failure or a cancel, lets the ones
/// in flight finish and records them, and reports the first failure.
async fn run_in_waves<'s, F, Fut>(
    steps: &[&'s Step],
    waits_for: impl Fn(&Step) -> Vec<ResourceId>,
    journal: &Journal<'_>,
    options: &ApplyOptions<'_>,
    run: F,
) -> Result<(), EngineError>
where
    F: Fn(&'s Step, OwnedSemaphorePermit) -> Fut,
    Fut: Future<Output = Result<(), EngineError>>,
{
    let slots = Arc::new(Semaphore::new(options.concurrency.max(1)));
    let mut done: HashSet<ResourceId> = HashSet::new();
    let mut remaining: Vec<&'s Step> = steps.to_vec();
    while !remaining.is_empty() {
        if options.cancel.is_cancelled() {
            journal.flush().await?;
            return Err(EngineError::Interrupted);
        }
        let (ready, waiting): (Vec<&Step>, Vec<&Step>) = remaining
            .into_iter()
            .partition(|s| waits_for(s).iter().all(|d| done.contains(d)));
        // Dependencies always point at earlier steps, so an empty wave
        // means a cycle in hand-edited input; run the rest in order.
        let (ready, waiting) = if ready.is_empty() {
            (waiting, Vec::new())
        } else {
            (ready, waiting)
        };
        let mutating: Vec<(Op, &ResourceId)> = ready
            .iter()
            .filter(|s| s.op != Op::Same)
            .map(|s| (s.op, &s.id))
            .collect();
        // One write records this wave as pending and the previous wave's
        // results: a result not yet written still reads as pending, which
        // the next run converges, so the extra write between would only
        // cost a request per wave on the cluster backend.
        journal.begin_all(&mutating).await?;
        // The semaphore queues steps in the order they ask, which is
        // the wave's order.
        let results: Vec<Result<(), EngineError>> =
            futures::future::join_all(ready.iter().map(|s| {
                let run = &run;
                let slots = Arc::clone(&slots);
                async move {
                    let slot = slots.acquire_owned().await.expect("never closed");
                    if options.cancel.is_cancelled() {
                        if s.op != Op::Same {
                            journal.abandon(&s.id).await?;
                        }
                        return Err(EngineError::Interrupted);
                    }
                    run(s, slot).await
                }
            }))
            .await;
        if let Some(error) = results.into_iter().find_map(Result::err) {
            journal.flush().await?;
            return Err(error);
        }
        done.extend(ready.iter().map(|s| s.id.clone()));
        remaining = waiting;
    }
    journal.flush().await
}

async fn apply_step(
    cluster: &Cluster,
    step: &Step,
    desired: &DesiredResource,
    journal: &Journal<'_>,
    options: &ApplyOptions<'_>,
    context: StepContext<'_>,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Result<(), EngineError> {
    let id = &step.id;
    let field_manager = cluster.identity().field_manager();
    if step.op == Op::Same {
        // Nothing to send; make sure the state knows the object (a run that
        // crashed after creating it may not have recorded it).
        if journal.recorded_uid(id).await.is_none()
            && let Some(live) = cluster.get(id).await?
            && let Some(live_uid) = uid(&live)
        {
            let proof = context
                .environment
                .and_then(|e| proof::of_apply(&desired.object, &live, field_manager, e));
            journal
                .record(recorded(desired, live_uid.to_string(), proof))
                .await?;
        } else if let Some(environment) = context.environment
            && proof::allowed(id)
            && !journal.has_proof(id, environment).await
            && let Some(live) = cluster.get(id).await?
            && uid(&live).map(str::to_string) == journal.recorded_uid(id).await
            && let Some(proof) = proof::of_apply(&desired.object, &live, field_manager, environment)
        {
            // The plan's dry run found it unchanged (its proof, if any, was
            // made under another server version or admission set), so what
            // is live now is what applying it would store: a proof for the
            // next plan.
            journal.record_proof(id, proof).await?;
        }
        journal.update_options(id, &desired.options).await?;
        return Ok(());
    }

    let start = Instant::now();
    on_event(Event::Started { op: step.op, id });
    fault::reached(Point::BeforeApply, options.cancel).await;
    if step.op == Op::Replace
        && let Some(live) = cluster.get(id).await?
        && let Some(live_uid) = uid(&live)
    {
        journal.check_lock()?;
        if cluster.delete(id, live_uid).await? == Deletion::Started {
            context.gone.wait_gone(id, live_uid).await?;
        }
    }
    journal.check_lock()?;
    let applied = if context.reshaped {
        apply_after_schema_change(cluster, &desired.object, options).await?
    } else {
        cluster
            .apply(&desired.object, false, options.force_conflicts)
            .await?
    };
    fault::reached(Point::AfterApply, options.cancel).await;
    let new_uid = uid(&applied).unwrap_or_default().to_string();
    let proof = context
        .environment
        .and_then(|e| proof::of_apply(&desired.object, &applied, field_manager, e));
    journal.record(recorded(desired, new_uid, proof)).await?;
    if crds::is_crd(id) {
        // Objects of its kinds come in later waves: they need it served.
        crds::wait_established(
            cluster,
            id,
            &desired.object,
            options.timeout,
            options.cancel,
        )
        .await?;
    }
    on_event(Event::Finished {
        op: step.op,
        id,
        elapsed: start.elapsed(),
    });
    Ok(())
}

/// Applies an object whose definition this run has just updated. The API
/// server serves a definition's new schema only once it has taken up the
/// update, so a refusal by the schema it served before (a field the update
/// adds) is retried for a few seconds; the plan checked the object against
/// the new schema.
async fn apply_after_schema_change(
    cluster: &Cluster,
    object: &Value,
    options: &ApplyOptions<'_>,
) -> Result<Value, EngineError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut poll = Poll::new();
    loop {
        match cluster.apply(object, false, options.force_conflicts).await {
            Ok(applied) => return Ok(applied),
            Err(ClusterError::Api { status, .. })
                if matches!(status.code, 400 | 422 | 500) && Instant::now() < deadline =>
            {
                poll.wait(options.cancel).await;
                if options.cancel.is_cancelled() {
                    return Err(EngineError::Interrupted);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Deletes the step's object and waits until it is gone, holding `slot`
/// only until the delete is sent.
async fn delete_step(
    cluster: &Cluster,
    step: &Step,
    journal: &Journal<'_>,
    options: &ApplyOptions<'_>,
    gone: &GoneWatcher<'_>,
    slot: OwnedSemaphorePermit,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Result<(), EngineError> {
    let id = &step.id;
    let start = Instant::now();
    let recorded_uid = match journal.recorded_uid(id).await {
        Some(uid) => uid,
        // Never recorded (an interrupted create): the planner checked that
        // the live object carries this stack's labels.
        None => match cluster.get(id).await?.as_ref().and_then(uid) {
            Some(live_uid) => live_uid.to_string(),
            None => {
                journal.forget(id).await?;
                return Ok(());
            }
        },
    };
    on_event(Event::Started { op: Op::Delete, id });
    if id.kind == "Namespace"
        && let Some(why) = foreign_content(cluster, id, journal).await?
    {
        on_event(Event::Note {
            id,
            message: format!("kept: {why}; it is no longer managed by this stack"),
        });
        journal.forget(id).await?;
        return Ok(());
    }
    if crds::is_crd(id)
        && let Some(why) = foreign_custom_objects(cluster, id, journal).await?
    {
        on_event(Event::Note {
            id,
            message: format!("kept: {why}; it is no longer managed by this stack"),
        });
        journal.forget(id).await?;
        return Ok(());
    }
    journal.check_lock()?;
    // The uid precondition makes the server refuse to delete a same-named
    // object that someone created since; that one is left alone.
    match cluster.delete(id, &recorded_uid).await {
        Ok(Deletion::Started) => {
            fault::reached(Point::Delete, options.cancel).await;
            drop(slot);
            gone.wait_gone(id, &recorded_uid).await?
        }
        Ok(Deletion::Done) => fault::reached(Point::Delete, options.cancel).await,
        Ok(Deletion::NotFound) => {}
        Err(ClusterError::Api { status, .. }) if status.code == 409 => on_event(Event::Note {
            id,
            message: format!(
                "left alone: the live object has another uid (recreated outside {})",
                cluster.identity().name()
            ),
        }),
        Err(e) => return Err(e.into()),
    }
    journal.forget(id).await?;
    on_event(Event::Finished {
        op: Op::Delete,
        id,
        elapsed: start.elapsed(),
    });
    Ok(())
}

/// How often removing the labels is tried again when the object changed
/// between reading and patching it.
const RETAIN_ATTEMPTS: usize = 5;

/// Leaves the object in the cluster, no longer the stack's: its ownership
/// labels are removed (nothing else of it changes), then it is dropped from
/// the state. Journaled as pending like any step, so that a run stopped in
/// between does it again; an object already unlabelled, gone, or recreated
/// by someone else is only dropped from the state.
async fn retain_step(
    cluster: &Cluster,
    step: &Step,
    journal: &Journal<'_>,
    options: &ApplyOptions<'_>,
    on_event: &(dyn Fn(Event<'_>) + Sync),
) -> Result<(), EngineError> {
    let id = &step.id;
    let start = Instant::now();
    on_event(Event::Started { op: Op::Retain, id });
    let recorded_uid = journal.recorded_uid(id).await;
    let stack = journal.state.lock().await.stack.clone();
    let identity = cluster.identity();
    let labels: Vec<String> = identity.ownership_labels(&stack).into_keys().collect();
    let mut attempt = 1;
    loop {
        let Some(live) = cluster.get(id).await? else {
            break;
        };
        let same_object = recorded_uid
            .as_deref()
            .is_none_or(|u| uid(&live) == Some(u));
        if !same_object || !identity.owned_by(&live, &stack) {
            break;
        }
        let version = live["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or_default();
        journal.check_lock()?;
        match cluster.remove_labels(id, version, &labels).await {
            Ok(_) => {
                fault::reached(Point::Retain, options.cancel).await;
                break;
            }
            // Changed since it was read: read it again.
            Err(ClusterError::Api { status, .. })
                if status.code == 409 && attempt < RETAIN_ATTEMPTS =>
            {
                attempt += 1;
            }
            Err(e) => return Err(e.into()),
        }
    }
    journal.forget(id).await?;
    on_event(Event::Finished {
        op: Op::Retain,
        id,
        elapsed: start.elapsed(),
    });
    Ok(())
}

/// Kinds people commonly put in a namespace, looked at (besides the kinds
/// the stack itself keeps there) before a namespace the stack created is
/// deleted with everything in it. Listing every kind the cluster serves
/// would cost a discovery and dozens of lists per destroy.
const COMMON_KINDS: [(&str, &str); 11] = [
    ("v1", "Pod"),
    ("v1", "Service"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "PersistentVolumeClaim"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("apps/v1", "DaemonSet"),
    ("batch/v1", "Job"),
    ("batch/v1", "CronJob"),
    ("networking.k8s.io/v1", "Ingress"),
];

/// Why a namespace the stack created must stay: objects in it that the
/// stack does not manage, among the kinds it keeps there and the
/// [`COMMON_KINDS`].
async fn foreign_content(
    cluster: &Cluster,
    namespace: &ResourceId,
    journal: &Journal<'_>,
) -> Result<Option<String>, EngineError> {
    // (kind, name) of what the stack keeps there; (apiVersion, kind) to list.
    type Names = HashSet<(String, String)>;
    type Kinds = BTreeSet<(String, String)>;
    let (ours, mut kinds): (Names, Kinds) = {
        let state = journal.state.lock().await;
        let inside = || {
            state
                .resources
                .iter()
                .filter(|r| r.id.namespace.as_deref() == Some(&namespace.name))
        };
        (
            inside()
                .map(|r| (r.id.kind.clone(), r.id.name.clone()))
                .collect(),
            inside()
                .map(|r| (r.id.api_version.clone(), r.id.kind.clone()))
                .collect(),
        )
    };
    kinds.extend(
        COMMON_KINDS
            .iter()
            .map(|(api_version, kind)| (api_version.to_string(), kind.to_string())),
    );
    let listed: Vec<(String, Result<Vec<Value>, ClusterError>)> =
        stream::iter(kinds.into_iter().map(|(api_version, kind)| async move {
            let objects = cluster
                .list(&api_version, &kind, Some(&namespace.name), None)
                .await;
            (kind, objects)
        }))
        .buffer_unordered(8)
        .collect()
        .await;
    let mut unseen = Vec::new();
    let mut found = Vec::new();
    for (kind, objects) in listed {
        match objects {
            Ok(objects) => found.push((kind, objects)),
            // A kind this cluster does not serve holds nothing.
            Err(ClusterError::UnknownKind { .. }) => {}
            // What these credentials cannot see might be someone's.
            Err(ClusterError::Forbidden { .. }) => unseen.push(kind),
            Err(e) => return Err(e.into()),
        }
    }
    if !unseen.is_empty() {
        unseen.sort();
        return Ok(Some(format!(
            "namespace {} may hold objects this stack does not manage (not allowed to list its {})",
            namespace.name,
            unseen.join(", ")
        )));
    }
    let mut foreign = Vec::new();
    for (kind, objects) in found {
        for object in objects {
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            let owned_by_controller = object["metadata"]["ownerReferences"].is_array();
            // The root CA bundle is put in every namespace by the cluster.
            if name == "kube-root-ca.crt" || owned_by_controller {
                continue;
            }
            if !ours.contains(&(kind.to_string(), name.to_string())) {
                foreign.push(format!("{kind} {name}"));
            }
        }
    }
    Ok((!foreign.is_empty()).then(|| {
        format!(
            "namespace {} holds objects this stack does not manage ({})",
            namespace.name,
            foreign.join(", ")
        )
    }))
}

/// Why a CustomResourceDefinition the stack created must stay: objects of
/// its kinds that the stack does not manage (deleting it would delete them).
async fn foreign_custom_objects(
    cluster: &Cluster,
    crd: &ResourceId,
    journal: &Journal<'_>,
) -> Result<Option<String>, EngineError> {
    let Some(live) = cluster.get(crd).await? else {
        return Ok(None);
    };
    let ours: HashSet<ResourceId> = {
        let state = journal.state.lock().await;
        state
            .resources
            .iter()
            .map(|r| r.id.clone())
            .chain(state.pending.iter().map(|p| p.id.clone()))
            .collect()
    };
    crds::foreign_objects(cluster, &live, &ours).await
}

/// What a step's apply needs to know of the run besides its object.
#[derive(Clone, Copy)]
struct StepContext<'a> {
    /// The object's definition was updated in this run (see
    /// `apply_after_schema_change`).
    reshaped: bool,
    /// What the server's answers depend on, for the object's proof.
    environment: Option<&'a Environment>,
    /// Waits for a replaced object's old self to go.
    gone: &'a GoneWatcher<'a>,
}

fn recorded(desired: &DesiredResource, uid: String, proof: Option<Proof>) -> ResourceState {
    ResourceState {
        id: desired.id.clone(),
        uid,
        depends_on: desired.depends_on.clone(),
        applied: (&desired.object).into(),
        protect: desired.options.protect,
        retain: desired.options.retain,
        proof,
    }
}

fn uid(object: &Value) -> Option<&str> {
    object["metadata"]["uid"].as_str()
}
