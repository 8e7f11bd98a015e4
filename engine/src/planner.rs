//! Preview: compares each desired object with the live cluster and decides
//! what `up` would do to it.
//!
//! Every existing object is sent as a server-side apply with `dryRun=All`,
//! so the plan is what the cluster itself would store, defaults, admission
//! and validation included, not a guess made on the client.

use std::collections::{HashMap, HashSet};

use futures::{StreamExt, TryStreamExt, stream};
use serde_json::Value;

use super::crds::{self, DefinedKind, Definition};
use super::diff;
use super::error::EngineError;
use super::live::Live;
use super::nodeports;
use super::plan::{Blocker, Change, Conflict, Op, Plan, Step, Untracked};
use super::proof::{self, Environment};
use super::resource::{DesiredResource, ResourceId};
use super::sensitive;
use crate::cluster::{Cluster, ClusterError};
use crate::identity::Identity;
use crate::protect::{self, Guard, Protections};
use crate::state::{ResourceState, State};
use crate::target::Targets;
use crate::untracked::DeleteUntracked;

/// Where new objects are validated when their own namespace does not exist
/// yet; it exists in every cluster.
const STAND_IN_NAMESPACE: &str = "default";

/// How many objects a plan reads or previews at once unless told
/// otherwise: enough to hide the round trips of a remote API server, few
/// enough not to be throttled by it.
pub const DEFAULT_CONCURRENCY: usize = 16;

/// How `up` is planned.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// Take fields owned by other managers instead of reporting conflicts.
    pub force_conflicts: bool,
    /// Take over objects that exist but are not managed by this stack.
    pub adopt: bool,
    /// How many objects are previewed at once; 0 counts as 1.
    pub concurrency: usize,
    /// When given, only these objects are planned: every other object is
    /// neither applied nor pruned, and is listed in [`Plan::left_out`].
    pub targets: Option<Targets>,
    /// Objects protected or retained besides those the program marks (a
    /// stack file's patterns).
    pub protections: Protections,
    /// Dry-run every object, even those the state proves unchanged (see
    /// [`crate::proof`]).
    pub full: bool,
    /// The fewest objects a proof could spare a dry run for which proofs
    /// are read at all: reading what a proof needs costs
    /// [`proof::ENVIRONMENT_READS`] requests, so a smaller stack is cheaper
    /// dry-run whole. [`PROVE_FROM`] unless set.
    pub prove_from: usize,
    /// Keep each step's live and planned copies of its object
    /// ([`Step::live`], [`Step::planned`]), which only a diff shows: without
    /// them a plan of thousands of objects holds a fraction of the memory.
    pub objects: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            force_conflicts: false,
            adopt: false,
            concurrency: DEFAULT_CONCURRENCY,
            targets: None,
            protections: Protections::default(),
            full: false,
            prove_from: PROVE_FROM,
            objects: true,
        }
    }
}

/// The fewest provable objects for which a plan reads proofs: from there
/// on, the proofs' reads cost fewer requests than the dry runs they spare.
pub const PROVE_FROM: usize = proof::ENVIRONMENT_READS + 1;

/// Plans `up`: creates, updates and replaces for the desired objects, and
/// deletes for objects the state holds that the program no longer declares.
pub async fn plan_up(
    cluster: &Cluster,
    stack: &str,
    desired: &[DesiredResource],
    state: &State,
    options: &PlanOptions,
) -> Result<Plan, EngineError> {
    let concurrency = options.concurrency.max(1);
    let recorded = state.by_id();
    let declared: HashSet<&ResourceId> = desired.iter().map(|d| &d.id).collect();
    let pruned: Vec<&ResourceId> = deletion_order(state)
        .into_iter()
        .filter(|id| !declared.contains(id))
        .collect();
    let scope = Scope::new(options.targets.as_ref(), desired, state)?;
    let left_out = scope.left_out(desired.iter().map(|d| &d.id).chain(pruned.iter().copied()));
    let definitions = crds::declared_definitions(desired);
    let targeted: Vec<DesiredResource>;
    let desired: &[DesiredResource] = if scope.0.is_none() {
        desired
    } else {
        targeted = desired
            .iter()
            .filter(|d| scope.includes(&d.id))
            .cloned()
            .collect();
        &targeted
    };
    let pruned: Vec<&ResourceId> = pruned.into_iter().filter(|id| scope.includes(id)).collect();
    // Objects of kinds the cluster does not serve yet cannot exist, and
    // cannot be read.
    let unserved = crds::unserved_kinds(cluster, desired, &definitions).await?;
    let local: HashMap<DefinedKind, Definition> = definitions
        .iter()
        .filter(|(kind, _)| unserved.contains(kind))
        .map(|(k, d)| (k.clone(), d.clone()))
        .collect();
    // Read only when enough objects may be proven unchanged; without it
    // (not readable) every object is dry-run.
    let provable = desired
        .iter()
        .filter(|d| proof::allowed(&d.id) && recorded.get(&d.id).is_some_and(|r| r.proof.is_some()))
        .count();
    let proven = !options.full && provable > 0 && provable >= options.prove_from;
    let (live, environment) = futures::join!(
        Live::read(
            cluster,
            desired
                .iter()
                .map(|d| &d.id)
                .filter(|id| !local.contains_key(&DefinedKind::of(id)))
                .chain(pruned.iter().copied()),
        ),
        async {
            if proven {
                Environment::read(cluster).await.ok()
            } else {
                None
            }
        }
    );
    let live = live?;
    let new_namespaces: HashSet<String> = desired
        .iter()
        .filter(|d| d.id.kind == "Namespace" && live.head(&d.id).is_none())
        .map(|d| d.id.name.clone())
        .collect();
    check_namespaces_exist(cluster, desired, &new_namespaces, &live).await?;
    let crd_ids: HashMap<&str, &ResourceId> = desired
        .iter()
        .filter(|d| crds::is_crd(&d.id))
        .map(|d| (d.id.name.as_str(), &d.id))
        .collect();
    let reshaped = crds::schema_changes(
        definitions.iter().filter(|(k, _)| !local.contains_key(*k)),
        |crd| crd_ids.get(crd).and_then(|id| live.get(id)),
    );

    let ctx = Context {
        cluster,
        stack,
        state,
        options,
        new_namespaces: &new_namespaces,
        live: &live,
        declared: Some(&declared),
        scope: &scope,
        desired,
        protections: &options.protections,
        keep_protected: false,
        local: &local,
        reshaped: &reshaped,
        environment: environment.as_ref(),
        recorded: &recorded,
    };
    let mut steps: Vec<Step> = stream::iter(desired.iter().map(|d| ctx.plan_desired(d)))
        .buffered(concurrency)
        .map_ok(|step| kept(step, options.objects))
        .try_collect()
        .await?;
    for step in steps.iter_mut().filter(|s| s.op == Op::Replace) {
        ctx.guard_replace(step);
    }

    let deletes: Vec<Option<Step>> =
        stream::iter(pruned.into_iter().map(|id| ctx.plan_delete(id, true)))
            .buffered(concurrency)
            .map_ok(|step| step.map(|step| kept(step, options.objects)))
            .try_collect()
            .await?;
    steps.extend(deletes.into_iter().flatten());
    protect::keep_namespaces_of_retained(&mut steps);

    Ok(Plan {
        stack: stack.to_string(),
        steps,
        interrupted: interrupted(state, &left_out),
        untracked: untracked(&live, cluster.identity(), stack, state, &declared),
        left_out,
    })
}

/// How `destroy` is planned.
#[derive(Clone, Debug)]
pub struct DestroyPlanOptions {
    /// How many objects are read at once; 0 counts as 1.
    pub concurrency: usize,
    /// Which untracked objects that the program does not declare are
    /// deleted; by default none.
    pub delete_untracked: DeleteUntracked,
    /// When given, only these objects are deleted: every other object
    /// stays, in the cluster and in the state, and is listed in
    /// [`Plan::left_out`].
    pub targets: Option<Targets>,
    /// Objects protected or retained besides those the program marks (a
    /// stack file's patterns).
    pub protections: Protections,
    /// Protected objects are retained (kept running, unlabelled, dropped
    /// from the state) instead of blocking the plan.
    pub keep_protected: bool,
    /// Keep each step's live copy of its object, as [`PlanOptions::objects`].
    pub objects: bool,
}

impl Default for DestroyPlanOptions {
    fn default() -> Self {
        DestroyPlanOptions {
            concurrency: DEFAULT_CONCURRENCY,
            delete_untracked: DeleteUntracked::default(),
            targets: None,
            protections: Protections::default(),
            keep_protected: false,
            objects: true,
        }
    }
}

/// Plans `destroy`: a delete for every object in the state, dependents
/// first, and for every object that carries the stack's labels although the
/// state does not record it (found among the kinds and namespaces of the
/// state and of `desired`, the program's objects) and that the program
/// declares. Untracked objects the program does not declare are in
/// [`Plan::untracked`] and are deleted only as
/// [`DestroyPlanOptions::delete_untracked`] asks: labels alone do not make an
/// object the stack's, since anyone who may label it can set them.
pub async fn plan_destroy(
    cluster: &Cluster,
    stack: &str,
    desired: &[DesiredResource],
    state: &State,
    options: &DestroyPlanOptions,
) -> Result<Plan, EngineError> {
    let scope = Scope::new(options.targets.as_ref(), desired, state)?;
    let recorded = state.by_id();
    let mut order = deletion_order(state);
    let live = Live::read(
        cluster,
        order.iter().copied().chain(desired.iter().map(|d| &d.id)),
    )
    .await?;
    let declared: HashSet<&ResourceId> = desired.iter().map(|d| &d.id).collect();
    let found = untracked(&live, cluster.identity(), stack, state, &declared);
    let all_deleted: Vec<&Untracked> = found
        .iter()
        .filter(|u| u.declared || options.delete_untracked.selects(&u.id))
        .collect();
    let left_out = scope.left_out(
        order
            .iter()
            .copied()
            .chain(all_deleted.iter().map(|u| &u.id)),
    );
    order.retain(|id| scope.includes(id));
    let deleted: Vec<&Untracked> = all_deleted
        .into_iter()
        .filter(|u| scope.includes(&u.id))
        .collect();
    // Everything lives in a namespace, so untracked namespaces go last;
    // the other untracked objects first, but after the recorded objects
    // that depend on them (and, when declared, before what the program
    // says they depend on): the order the deletes are carried out in.
    let (namespaces, others): (Vec<&Untracked>, Vec<&Untracked>) =
        deleted.iter().partition(|u| u.id.kind == "Namespace");
    let declared_deps: HashMap<&ResourceId, &[ResourceId]> = desired
        .iter()
        .map(|d| (&d.id, d.depends_on.as_slice()))
        .collect();
    let entries: Vec<(&ResourceId, &[ResourceId])> = others
        .iter()
        .map(|u| &u.id)
        .chain(order)
        .map(|id| {
            let depends_on = match recorded.get(id) {
                Some(record) => record.depends_on.as_slice(),
                None => declared_deps.get(id).copied().unwrap_or_default(),
            };
            (id, depends_on)
        })
        .collect();
    let mut order = dependents_first(&entries);
    order.extend(namespaces.iter().map(|u| &u.id));
    let plan_options = PlanOptions::default();
    let ctx = Context {
        cluster,
        stack,
        state,
        options: &plan_options,
        new_namespaces: &HashSet::new(),
        live: &live,
        declared: None,
        scope: &scope,
        desired,
        protections: &options.protections,
        keep_protected: options.keep_protected,
        local: &HashMap::new(),
        reshaped: &HashMap::new(),
        environment: None,
        recorded: &recorded,
    };
    let mut steps: Vec<Step> = stream::iter(order.into_iter().map(|id| ctx.plan_delete(id, false)))
        .buffered(options.concurrency.max(1))
        .map_ok(|step| step.map(|step| kept(step, options.objects)))
        .try_collect::<Vec<Option<Step>>>()
        .await?
        .into_iter()
        .flatten()
        .collect();
    protect::keep_namespaces_of_retained(&mut steps);
    for step in &mut steps {
        // A retained or protected one says so in its reason already.
        let deleted_as_is = step.op == Op::Delete && step.blocker.is_none();
        if deleted_as_is && deleted.iter().any(|u| u.id == step.id && !u.declared) {
            step.reason = Some(
                "carries this stack's labels but is not in its state, and the stack does not declare it: deleted as asked"
                    .to_string(),
            );
        }
    }
    Ok(Plan {
        stack: stack.to_string(),
        steps,
        interrupted: interrupted(state, &left_out),
        untracked: found,
        left_out,
    })
}

/// `step`, without its copies of the object unless `objects` asks for them.
fn kept(mut step: Step, objects: bool) -> Step {
    if !objects {
        step.live = None;
        step.planned = None;
    }
    step
}

/// The objects a plan covers: all of them, or those its targets name.
struct Scope(Option<HashSet<ResourceId>>);

impl Scope {
    fn new(
        targets: Option<&Targets>,
        desired: &[DesiredResource],
        state: &State,
    ) -> Result<Scope, EngineError> {
        Ok(Scope(
            targets.map(|t| t.resolve(desired, state)).transpose()?,
        ))
    }

    fn includes(&self, id: &ResourceId) -> bool {
        self.0.as_ref().is_none_or(|chosen| chosen.contains(id))
    }

    /// The objects among `ids` the plan leaves out, once each, sorted.
    fn left_out<'a>(&self, ids: impl Iterator<Item = &'a ResourceId>) -> Vec<ResourceId> {
        let mut out: Vec<ResourceId> = Vec::new();
        for id in ids {
            if !self.includes(id) && !out.contains(id) {
                out.push(id.clone());
            }
        }
        out.sort_by_key(|id| id.to_string());
        out
    }
}

/// Objects read from the cluster that carry this stack's labels and that
/// its state neither records nor has pending. Objects a controller made
/// (owner references) are the controller's, not the stack's.
pub fn untracked(
    live: &Live,
    identity: &Identity,
    stack: &str,
    state: &State,
    declared: &HashSet<&ResourceId>,
) -> Vec<Untracked> {
    let pending: HashSet<&ResourceId> = state.pending.iter().map(|p| &p.id).collect();
    let recorded: HashSet<&ResourceId> = state.resources.iter().map(|r| &r.id).collect();
    let mut found: Vec<Untracked> = live
        .heads()
        .filter(|(id, object)| {
            identity.owned_by(object, stack)
                && !crate::state::is_state_secret(identity, object)
                && object["metadata"]["ownerReferences"].is_null()
                && !recorded.contains(id)
                && !pending.contains(id)
        })
        .map(|(id, object)| Untracked {
            id: id.clone(),
            uid: uid(object).unwrap_or_default().to_string(),
            declared: declared.contains(id),
        })
        .collect();
    found.sort_by_key(|a| a.id.to_string());
    found
}

/// The objects the state knows of, ordered so that every object comes
/// before the objects it depends on. That includes objects an interrupted
/// run started to create but never recorded: they may exist, and only this
/// stack would ever delete them.
pub(crate) fn deletion_order(state: &State) -> Vec<&ResourceId> {
    let unrecorded: Vec<&ResourceId> = state
        .pending
        .iter()
        .map(|p| &p.id)
        .filter(|id| state.resource(id).is_none())
        .collect();
    // Their dependencies are not recorded; everything lives in a namespace,
    // so namespaces go last and the rest first.
    let (namespaces, others): (Vec<&ResourceId>, Vec<&ResourceId>) = unrecorded
        .into_iter()
        .partition(|id| id.kind == "Namespace");
    let recorded: Vec<(&ResourceId, &[ResourceId])> = state
        .resources
        .iter()
        .map(|r| (&r.id, r.depends_on.as_slice()))
        .collect();
    let mut order = others;
    order.extend(dependents_first(&recorded));
    order.extend(namespaces);
    order
}

/// The objects of `entries`, each given with what it depends on, ordered
/// so that every object comes before the objects it depends on, and
/// otherwise in the order given. Dependencies outside `entries` do not
/// count.
fn dependents_first<'a>(entries: &[(&'a ResourceId, &[ResourceId])]) -> Vec<&'a ResourceId> {
    let position: HashMap<&ResourceId, usize> = entries
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i))
        .collect();
    // What each object depends on, by position, each once.
    let depends_on: Vec<Vec<usize>> = entries
        .iter()
        .map(|(_, depends_on)| {
            let mut on: Vec<usize> = depends_on
                .iter()
                .filter_map(|id| position.get(id).copied())
                .collect();
            on.sort_unstable();
            on.dedup();
            on
        })
        .collect();
    // How many objects not yet placed depend on each one.
    let mut dependents = vec![0usize; entries.len()];
    for on in &depends_on {
        for &i in on {
            dependents[i] += 1;
        }
    }
    let mut placed = vec![false; entries.len()];
    let mut order: Vec<&ResourceId> = Vec::with_capacity(entries.len());
    // Kahn's algorithm on the reversed graph, in passes over the given
    // order (the state's) so that it stays the one a reader expects:
    // an object can go once nothing left depends on it. Cycles cannot come
    // from the program, but a hand-edited state could hold one, so
    // whatever remains goes in order.
    while order.len() < entries.len() {
        let before = order.len();
        for (i, (id, _)) in entries.iter().enumerate() {
            if placed[i] || dependents[i] > 0 {
                continue;
            }
            placed[i] = true;
            order.push(*id);
            for &j in &depends_on[i] {
                dependents[j] -= 1;
            }
        }
        if order.len() == before {
            for (i, (id, _)) in entries.iter().enumerate() {
                if !placed[i] {
                    placed[i] = true;
                    order.push(*id);
                }
            }
        }
    }
    order
}

/// The operations an earlier run left unfinished, but for the objects the
/// plan leaves out: this plan does not converge them.
fn interrupted(state: &State, left_out: &[ResourceId]) -> Vec<String> {
    state
        .pending
        .iter()
        .filter(|p| !left_out.contains(&p.id))
        .map(|p| format!("{} {} (started {})", p.op, p.id, p.started))
        .collect()
}

struct Context<'a> {
    cluster: &'a Cluster,
    stack: &'a str,
    state: &'a State,
    options: &'a PlanOptions,
    new_namespaces: &'a HashSet<String>,
    live: &'a Live,
    /// What the program declares (`None` for destroy): a recorded object not
    /// in it is deleted by the plan.
    declared: Option<&'a HashSet<&'a ResourceId>>,
    /// The objects the plan covers.
    scope: &'a Scope,
    /// The program's objects (those the plan covers), with what it asks
    /// of each.
    desired: &'a [DesiredResource],
    /// Objects protected or retained besides those the program marks.
    protections: &'a Protections,
    /// Protected objects are retained instead of blocking a delete.
    keep_protected: bool,
    /// Kinds the cluster does not serve yet, defined by declared
    /// CustomResourceDefinitions: their objects are planned locally.
    local: &'a HashMap<DefinedKind, Definition>,
    /// Kinds whose definition's schema this plan changes: their objects are
    /// checked against the new schema too.
    reshaped: &'a HashMap<DefinedKind, Definition>,
    /// What the server's answers depend on now, when some object may be
    /// proven unchanged without a dry run.
    environment: Option<&'a Environment>,
    /// The state's objects by id.
    recorded: &'a HashMap<&'a ResourceId, &'a ResourceState>,
}

impl Context<'_> {
    fn recorded(&self, id: &ResourceId) -> Option<&ResourceState> {
        self.recorded.get(id).copied()
    }

    async fn plan_desired(&self, desired: &DesiredResource) -> Result<Step, EngineError> {
        let kind = DefinedKind::of(&desired.id);
        if let Some(definition) = self.local.get(&kind) {
            return Ok(self.plan_locally(desired, &kind, definition));
        }
        let step = self.plan_with_server(desired).await?;
        match self.reshaped.get(&kind) {
            Some(definition) => Ok(self.recheck(desired, &kind, definition, step)),
            None => Ok(step),
        }
    }

    /// A custom resource whose definition's schema this plan changes: the
    /// dry run checked it against the schema the cluster serves now, so it
    /// is checked against the new one here. Where the new schema refuses
    /// it, that refusal blocks the step; where only the old one did (a
    /// field the change adds), the step is planned from the local check.
    fn recheck(
        &self,
        desired: &DesiredResource,
        kind: &DefinedKind,
        definition: &Definition,
        mut step: Step,
    ) -> Step {
        let local = crds::plan_locally(
            &desired.object,
            kind,
            definition,
            crds::schema_changing(kind, definition),
        );
        let add_reason = |step: &mut Step, reason: String| {
            step.reason = Some(match step.reason.take() {
                Some(earlier) => format!("{earlier}; {reason}"),
                None => reason,
            });
        };
        match (&step.blocker, local.blocker) {
            (None | Some(Blocker::Rejected { .. }), Some(refused)) => {
                step.blocker = Some(refused);
                add_reason(&mut step, local.reason);
                step
            }
            (Some(Blocker::Rejected { message, .. }), None) => {
                let served = message.clone();
                let mut step = match self.live.get(&desired.id) {
                    Some(raw_live) => self.compare(
                        &desired.id,
                        diff::normalize(raw_live),
                        diff::normalize(&overlay(raw_live, &local.planned)),
                        None,
                    ),
                    None => self.create_step(desired, diff::normalize(&local.planned), None),
                };
                add_reason(
                    &mut step,
                    format!(
                        "{} (the schema served now refuses it: {served})",
                        local.reason
                    ),
                );
                step
            }
            _ => step,
        }
    }

    async fn plan_with_server(&self, desired: &DesiredResource) -> Result<Step, EngineError> {
        let id = &desired.id;
        let will_create_namespace = id
            .namespace
            .as_ref()
            .is_some_and(|ns| self.new_namespaces.contains(ns));
        if will_create_namespace {
            return self.plan_in_new_namespace(desired).await;
        }

        // The head (kind and metadata) decides most of a large stack's
        // steps; the whole object is parsed only when a step reads more.
        let Some(head) = self.live.head(id) else {
            return self.plan_create(desired).await;
        };
        let blocker = (!self.options.adopt && !self.owns(id, head)).then(|| Blocker::Unmanaged {
            owner: describe_owner(self.cluster.identity(), self.live.get(id).unwrap_or(head)),
        });
        if blocker.is_none() && self.proven_unchanged(desired, head) {
            // What a dry run would answer: the object as it is. Most of a
            // large stack takes this way, so it copies and compares nothing.
            return Ok(self.check_recorded(desired, Step::bare(Op::Same, id)));
        }
        let Some(raw_live) = self.live.parsed(id) else {
            return self.plan_create(desired).await;
        };
        let raw_live = &raw_live;
        if let Some(since) = raw_live["metadata"]["deletionTimestamp"].as_str() {
            // Nothing can be created in a namespace on its way out.
            if id.kind == "Namespace" {
                return Err(EngineError::NamespaceTerminating(id.name.clone()));
            }
            // Applying to it would change an object about to vanish (a
            // destroy that was interrupted, or someone else's delete), and
            // the wait would then wait for it in vain.
            return Ok(self.being_deleted(desired, diff::normalize(raw_live), since, blocker));
        }

        let live = diff::normalize(raw_live);
        let step = match self
            .cluster
            .apply(&desired.object, true, self.options.force_conflicts)
            .await
        {
            Ok(planned) => {
                let step = self.compare(id, live, diff::normalize(&planned), blocker);
                let step = self.check_recorded_uid(id, raw_live, step);
                self.check_recorded(desired, step)
            }
            Err(e) => self.plan_rejected_update(desired, live, blocker, e).await?,
        };
        self.guard_crd_update(desired, raw_live, step).await
    }

    /// Whether the state proves the object unchanged since this stack
    /// applied it, so that its dry run can only answer "same" (see
    /// [`crate::proof`]). Objects whose definition this plan reshapes are
    /// always dry-run: their defaults may change.
    fn proven_unchanged(&self, desired: &DesiredResource, head: &Value) -> bool {
        let (Some(environment), Some(record)) = (self.environment, self.recorded(&desired.id))
        else {
            return false;
        };
        let Some(recorded) = &record.proof else {
            return false;
        };
        !self.reshaped.contains_key(&DefinedKind::of(&desired.id))
            && proof::allowed(&desired.id)
            && self.live.owned(&desired.id).is_some_and(|owned| {
                proof::holds_for(
                    recorded,
                    &desired.object,
                    &record.uid,
                    head,
                    owned,
                    environment,
                )
            })
    }

    /// An update of a CustomResourceDefinition must not strand what the
    /// objects of its kind hold (see `crds::update_blocker`). That reason
    /// takes the place of the dry run's refusal, if any: for a stored
    /// version dropped from `spec.versions` the server's own says less.
    async fn guard_crd_update(
        &self,
        desired: &DesiredResource,
        raw_live: &Value,
        mut step: Step,
    ) -> Result<Step, EngineError> {
        let checked = step.op == Op::Update
            && crds::is_crd(&step.id)
            && matches!(step.blocker, None | Some(Blocker::Rejected { .. }));
        if checked
            && let Some(blocker) =
                crds::update_blocker(self.cluster, raw_live, &desired.object).await?
        {
            step.blocker = Some(blocker);
        }
        Ok(step)
    }

    /// A custom resource whose kind the cluster does not serve yet, defined
    /// by a CustomResourceDefinition this plan applies: no dry run can
    /// check it, so it is a create checked against its definition here,
    /// applied after the definition (a dependency by reference).
    fn plan_locally(
        &self,
        desired: &DesiredResource,
        kind: &DefinedKind,
        definition: &Definition,
    ) -> Step {
        let local = crds::plan_locally(
            &desired.object,
            kind,
            definition,
            crds::not_served_yet(kind, definition),
        );
        let mut step = self.create_step(desired, diff::normalize(&local.planned), local.blocker);
        step.reason = Some(match step.reason.take() {
            Some(reason) => format!("{reason}; {}", local.reason),
            None => local.reason,
        });
        step
    }

    /// An object bound for a namespace this run creates: nothing can be
    /// dry-run applied there, so validate a stand-in elsewhere and plan a
    /// create.
    async fn plan_in_new_namespace(&self, desired: &DesiredResource) -> Result<Step, EngineError> {
        let blocker = match self
            .cluster
            .validate_create_in(&desired.object, STAND_IN_NAMESPACE)
            .await
        {
            Ok(()) => None,
            // Validation is a courtesy: credentials scoped to the stack's own
            // namespace may not write elsewhere, even in a dry run.
            Err(ClusterError::Forbidden { .. }) => None,
            Err(ClusterError::Api { status, .. }) if nodeports::is_port_taken(&status) => {
                return self.plan_port_taken(desired, &status, true).await;
            }
            Err(ClusterError::Api { status, .. }) => Some(rejected(&status)),
            Err(e) => return Err(e.into()),
        };
        Ok(self.create_step(desired, diff::normalize(&desired.object), blocker))
    }

    async fn plan_create(&self, desired: &DesiredResource) -> Result<Step, EngineError> {
        let (planned, blocker) = match self.cluster.apply(&desired.object, true, false).await {
            Ok(planned) => (diff::normalize(&planned), None),
            Err(ClusterError::Api { status, .. }) if nodeports::is_port_taken(&status) => {
                return self.plan_port_taken(desired, &status, false).await;
            }
            Err(ClusterError::Api { status, .. }) => {
                (diff::normalize(&desired.object), Some(rejected(&status)))
            }
            Err(e) => return Err(e.into()),
        };
        Ok(self.create_step(desired, planned, blocker))
    }

    /// A create refused because a node port it asks for is taken. When
    /// every holder is an object this plan deletes, `up` deletes it first
    /// (see `nodeports::deletes_to_run_first`), so the create is validated
    /// without the port and planned; otherwise the refusal names the holder.
    async fn plan_port_taken(
        &self,
        desired: &DesiredResource,
        status: &kube::core::Status,
        stand_in: bool,
    ) -> Result<Step, EngineError> {
        let ports = nodeports::node_ports(&desired.object);
        let holders = nodeports::holders(self.cluster, &ports).await?;
        let freed = holders.as_deref().is_some_and(|holders| {
            !holders.is_empty() && holders.iter().all(|h| self.deleted_by_plan(&h.id, &h.uid))
        });
        if !freed {
            let mut blocker = rejected(status);
            if let Blocker::Rejected { message, .. } = &mut blocker {
                *message = nodeports::taken_message(message, holders.as_deref(), &ports);
            }
            return Ok(self.create_step(desired, diff::normalize(&desired.object), Some(blocker)));
        }
        let without = nodeports::without_node_ports(&desired.object);
        let (mut planned, blocker) = if stand_in {
            match self
                .cluster
                .validate_create_in(&without, STAND_IN_NAMESPACE)
                .await
            {
                Ok(()) | Err(ClusterError::Forbidden { .. }) => (desired.object.clone(), None),
                Err(ClusterError::Api { status, .. }) => {
                    (desired.object.clone(), Some(rejected(&status)))
                }
                Err(e) => return Err(e.into()),
            }
        } else {
            match self.cluster.apply(&without, true, false).await {
                Ok(planned) => (planned, None),
                Err(ClusterError::Api { status, .. }) => {
                    (desired.object.clone(), Some(rejected(&status)))
                }
                Err(e) => return Err(e.into()),
            }
        };
        nodeports::restore_node_ports(&mut planned, &desired.object);
        let mut step = self.create_step(desired, diff::normalize(&planned), blocker);
        let held: Vec<String> = holders
            .unwrap_or_default()
            .iter()
            .map(|h| format!("node port {} is held by {}", h.port, h.id))
            .collect();
        step.reason = Some(format!(
            "{}, which this plan deletes first",
            held.join(", ")
        ));
        Ok(step)
    }

    /// Whether the plan deletes this object: the state records it with
    /// this uid, the program no longer declares it, and the plan covers it.
    fn deleted_by_plan(&self, id: &ResourceId, uid: &str) -> bool {
        let Some(declared) = self.declared else {
            return false;
        };
        !declared.contains(id)
            && self.scope.includes(id)
            && self.recorded(id).is_some_and(|r| r.uid == uid)
            && self.asked_by(Guard::Protect, id).is_none()
            && self.asked_by(Guard::Retain, id).is_none()
    }

    fn asked_by(&self, guard: Guard, id: &ResourceId) -> Option<String> {
        protect::asked_by(guard, id, self.desired, self.state, self.protections)
    }

    /// A replace deletes the object first: a protected one's is blocked.
    fn guard_replace(&self, step: &mut Step) {
        if step.blocker.is_none()
            && let Some(by) = self.asked_by(Guard::Protect, &step.id)
        {
            step.blocker = Some(Blocker::Protected { by });
        }
    }

    /// A delete of a live object of this stack: blocked when the object is
    /// protected (or retained, when protected ones are to be kept), and a
    /// retain when it is retained.
    fn guard_delete(&self, mut step: Step) -> Step {
        let because = |what: String| match &step.reason {
            Some(reason) => format!("{reason}; {what}"),
            None => what,
        };
        if let Some(by) = self.asked_by(Guard::Protect, &step.id) {
            if self.keep_protected {
                step.reason = Some(because(format!(
                    "protected by {by}: kept running, without this stack's labels, and dropped from the state"
                )));
                step.op = Op::Retain;
            } else {
                step.blocker = Some(Blocker::Protected { by });
            }
        } else if let Some(by) = self.asked_by(Guard::Retain, &step.id) {
            step.reason = Some(because(format!(
                "retained as {by} asks: kept running, without this stack's labels, and dropped from the state"
            )));
            step.op = Op::Retain;
        }
        step
    }

    fn create_step(
        &self,
        desired: &DesiredResource,
        planned: Value,
        blocker: Option<Blocker>,
    ) -> Step {
        Step {
            op: Op::Create,
            id: desired.id.clone(),
            changes: added(&planned),
            reason: self.recreated_reason(&desired.id),
            blocker,
            live: None,
            planned: Some(planned),
        }
    }

    /// The dry run failed: a conflict with another field manager, an
    /// immutable field (a replace), or a plain rejection.
    async fn plan_rejected_update(
        &self,
        desired: &DesiredResource,
        live: Value,
        blocker: Option<Blocker>,
        error: ClusterError,
    ) -> Result<Step, EngineError> {
        let id = &desired.id;
        let ClusterError::Api { status, .. } = &error else {
            return Err(error.into());
        };
        if status.code == 409 {
            let conflicts = conflicts(status);
            // Show what forcing would change, so the conflict can be judged.
            let planned = match self.cluster.apply(&desired.object, true, true).await {
                Ok(planned) => diff::normalize(&planned),
                Err(ClusterError::Api { status, .. }) if immutable_fields(&status).is_some() => {
                    return Ok(self.replace(desired, live, &status));
                }
                Err(e) => return Err(e.into()),
            };
            let mut step = self.compare(id, live, planned, blocker);
            if step.blocker.is_none() {
                step.blocker = Some(Blocker::Conflicts { conflicts });
            }
            return Ok(step);
        }
        if immutable_fields(status).is_some() {
            let mut step = self.replace(desired, live, status);
            if blocker.is_some() {
                step.blocker = blocker;
            }
            return Ok(step);
        }
        let mut rejection = rejected(status);
        if nodeports::is_port_taken(status)
            && let Blocker::Rejected { message, .. } = &mut rejection
        {
            let ports = nodeports::node_ports(&desired.object);
            // The ports it holds already are not the ones refused.
            let holders = nodeports::holders(self.cluster, &ports)
                .await?
                .map(|all| all.into_iter().filter(|h| &h.id != id).collect::<Vec<_>>());
            *message = nodeports::taken_message(message, holders.as_deref(), &ports);
        }
        Ok(Step {
            op: Op::Update,
            id: id.clone(),
            changes: Vec::new(),
            reason: None,
            blocker: blocker.or(Some(rejection)),
            live: Some(live),
            planned: None,
        })
    }

    fn replace(&self, desired: &DesiredResource, live: Value, status: &kube::core::Status) -> Step {
        let fields = immutable_fields(status).unwrap_or_default();
        let planned = diff::normalize(&desired.object);
        let changes = diff::changes(&project(&live, &planned), &planned);
        Step {
            op: Op::Replace,
            id: desired.id.clone(),
            changes,
            reason: Some(format!(
                "{} cannot be changed in place (immutable); the object will be deleted and recreated",
                fields.join(", ")
            )),
            blocker: None,
            live: Some(live),
            planned: Some(planned),
        }
    }

    fn being_deleted(
        &self,
        desired: &DesiredResource,
        live: Value,
        since: &str,
        blocker: Option<Blocker>,
    ) -> Step {
        let planned = diff::normalize(&desired.object);
        Step {
            op: Op::Replace,
            id: desired.id.clone(),
            changes: diff::changes(&project(&live, &planned), &planned),
            reason: Some(format!(
                "being deleted since {since}; it is recreated once it is gone"
            )),
            blocker,
            live: Some(live),
            planned: Some(planned),
        }
    }

    fn compare(
        &self,
        id: &ResourceId,
        live: Value,
        planned: Value,
        blocker: Option<Blocker>,
    ) -> Step {
        let changes = diff::changes(&live, &planned);
        let op = if changes.is_empty() {
            Op::Same
        } else {
            Op::Update
        };
        // An unchanged object needs neither copy again, and a large stack
        // is mostly unchanged objects.
        let (live, planned) = match op {
            Op::Same => (None, None),
            _ => (Some(live), Some(planned)),
        };
        Step {
            op,
            id: id.clone(),
            changes,
            reason: None,
            // An unmanaged object that would not change still is not ours.
            blocker,
            live,
            planned,
        }
    }

    /// A sensitive value the cluster already holds but the state records
    /// otherwise (set outside this stack to the declared value, or a state
    /// restored from before a change): the dry run sees no change, so it
    /// takes the recorded hash to notice. The object is applied again,
    /// which records it.
    fn check_recorded(&self, desired: &DesiredResource, mut step: Step) -> Step {
        if step.op != Op::Same {
            return step;
        }
        let Some(recorded) = self.recorded(&desired.id) else {
            return step;
        };
        // Most objects hold nothing sensitive: their record is not read.
        if !sensitive::is_sensitive_kind(&desired.id) {
            return step;
        }
        let changes = sensitive::unrecorded_changes(&desired.object, &recorded.applied.value());
        if !changes.is_empty() {
            step.op = Op::Update;
            step.changes = changes;
            step.reason = Some(
                "the cluster holds the declared value, but the state records another".to_string(),
            );
        }
        step
    }

    /// An object recreated outside the stack under its labels (with
    /// another uid than the state records) that the dry run finds
    /// unchanged: it is applied again, which records its uid, as applying
    /// any change to it would. Left with the old uid in the state, it would
    /// be taken for someone else's by a later prune or destroy, and left
    /// behind.
    fn check_recorded_uid(&self, id: &ResourceId, raw_live: &Value, mut step: Step) -> Step {
        if step.op != Op::Same || step.blocker.is_some() {
            return step;
        }
        let Some(recorded) = self.recorded(id) else {
            return step;
        };
        if uid(raw_live) == Some(recorded.uid.as_str()) {
            return step;
        }
        step.op = Op::Update;
        step.reason = Some(format!(
            "the live object has another uid than the state records (it was recreated outside {}); applied again to record it",
            self.cluster.identity().name()
        ));
        step
    }

    async fn plan_delete(
        &self,
        id: &ResourceId,
        pruned: bool,
    ) -> Result<Option<Step>, EngineError> {
        let recorded = self.recorded(id);
        let live = self.live.parsed(id);
        if recorded.is_none() {
            // Left by an interrupted create, or labelled as this stack's
            // without being in its state: delete it only if it exists and
            // carries this stack's labels.
            let reason = if self.state.pending.iter().any(|p| &p.id == id) {
                "created by an interrupted run and never recorded"
            } else {
                "carries this stack's labels but is not in its state"
            };
            return Ok(live.filter(|live| self.labelled_ours(live)).map(|live| {
                self.guard_delete(Step {
                    op: Op::Delete,
                    id: id.clone(),
                    changes: Vec::new(),
                    reason: Some(reason.to_string()),
                    blocker: None,
                    live: Some(diff::normalized(live)),
                    planned: None,
                })
            }));
        }
        // Only a delete of the object the state records touches it; one
        // already gone, or recreated by someone else, is only forgotten.
        let recorded_live = match (&live, recorded) {
            (Some(live), Some(recorded)) => uid(live) == Some(recorded.uid.as_str()),
            _ => false,
        };
        let reason = match (&live, recorded) {
            (None, _) => {
                Some("already gone from the cluster; it is dropped from the state".to_string())
            }
            (Some(live), Some(recorded)) if uid(live) != Some(recorded.uid.as_str()) => {
                Some(format!(
                    "the live object has another uid (it was recreated outside {}); it is left alone and dropped from the state",
                    self.cluster.identity().name()
                ))
            }
            _ if pruned => Some("no longer declared by the stack".to_string()),
            _ => None,
        };
        let step = Step {
            op: Op::Delete,
            id: id.clone(),
            changes: Vec::new(),
            reason,
            blocker: None,
            live: live.map(diff::normalized),
            planned: None,
        };
        Ok(Some(if recorded_live {
            self.guard_delete(step)
        } else {
            step
        }))
    }

    /// This stack owns an object it recorded (same uid) or that carries its
    /// labels (created by a run that crashed before recording it).
    fn owns(&self, id: &ResourceId, live: &Value) -> bool {
        if let Some(recorded) = self.recorded(id)
            && uid(live) == Some(recorded.uid.as_str())
        {
            return true;
        }
        self.labelled_ours(live)
    }

    fn labelled_ours(&self, live: &Value) -> bool {
        self.cluster.identity().owned_by(live, self.stack)
    }

    fn recreated_reason(&self, id: &ResourceId) -> Option<String> {
        self.recorded(id).map(|_| {
            format!(
                "recorded in the state but missing from the cluster (deleted outside {})",
                self.cluster.identity().name()
            )
        })
    }
}

/// Objects bound for a namespace that neither exists nor is created by the
/// stack would fail one by one; say it once, with what to do.
///
/// A namespace whose every desired object already exists needs no check:
/// it exists, and nothing will be created in it.
async fn check_namespaces_exist(
    cluster: &Cluster,
    desired: &[DesiredResource],
    new_namespaces: &HashSet<String>,
    live: &Live,
) -> Result<(), EngineError> {
    let declared: HashSet<&str> = desired
        .iter()
        .filter(|d| d.id.kind == "Namespace")
        .map(|d| d.id.name.as_str())
        .collect();
    let mut checked = HashSet::new();
    for ns in desired.iter().filter_map(|d| d.id.namespace.as_deref()) {
        if declared.contains(ns) || new_namespaces.contains(ns) || !checked.insert(ns) {
            continue;
        }
        let all_live = desired
            .iter()
            .filter(|d| d.id.namespace.as_deref() == Some(ns))
            .all(|d| live.head(&d.id).is_some());
        if all_live {
            continue;
        }
        let id = ResourceId::new("v1", "Namespace", None, ns);
        match cluster.get(&id).await {
            Ok(Some(live)) => {
                if live["status"]["phase"] == "Terminating" {
                    return Err(EngineError::NamespaceTerminating(ns.to_string()));
                }
            }
            Ok(None) => return Err(EngineError::NamespaceMissing(ns.to_string())),
            // Namespaced credentials may not read namespaces; the dry runs
            // will say so if the namespace is really missing.
            Err(ClusterError::Forbidden { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The fields whose change the server refused as immutable, if that is
/// why the request failed.
fn immutable_fields(status: &kube::core::Status) -> Option<Vec<String>> {
    if status.code != 422 {
        return None;
    }
    let causes = status
        .details
        .as_ref()
        .map(|d| d.causes.as_slice())
        .unwrap_or_default();
    let fields: Vec<String> = causes
        .iter()
        .filter(|c| c.message.contains("immutable"))
        .map(|c| c.field.trim_start_matches('.').to_string())
        .collect();
    if !fields.is_empty() {
        return Some(fields);
    }
    status
        .message
        .contains("field is immutable")
        .then(|| vec!["a field".to_string()])
}

/// Conflicts from a 409 apply: each cause names a field and, in its
/// message, the manager that owns it (`conflict with "kubectl" using apps/v1`).
fn conflicts(status: &kube::core::Status) -> Vec<Conflict> {
    let causes = status
        .details
        .as_ref()
        .map(|d| d.causes.as_slice())
        .unwrap_or_default();
    let mut found: Vec<Conflict> = causes
        .iter()
        .map(|c| Conflict {
            path: c.field.trim_start_matches('.').to_string(),
            manager: c
                .message
                .split('"')
                .nth(1)
                .unwrap_or("another field manager")
                .to_string(),
        })
        .collect();
    if found.is_empty() {
        found.push(Conflict {
            path: "(not named by the server)".to_string(),
            manager: status.message.clone(),
        });
    }
    found
}

fn rejected(status: &kube::core::Status) -> Blocker {
    let fields = status
        .details
        .as_ref()
        .map(|d| {
            d.causes
                .iter()
                .filter(|c| !c.field.is_empty())
                .map(|c| c.field.trim_start_matches('.').to_string())
                .collect()
        })
        .unwrap_or_default();
    Blocker::Rejected {
        message: status.message.clone(),
        fields,
    }
}

fn uid(object: &Value) -> Option<&str> {
    object["metadata"]["uid"].as_str()
}

/// Who manages an object this stack does not: another stack, or the field
/// managers that wrote it.
fn describe_owner(identity: &Identity, live: &Value) -> Option<String> {
    if let Some(stack) = identity.owning_stack(live) {
        return Some(format!("managed by {} stack `{stack}`", identity.name()));
    }
    let managers: Vec<&str> = live["metadata"]["managedFields"]
        .as_array()
        .map(|fields| {
            fields
                .iter()
                .filter_map(|f| f["manager"].as_str())
                .collect()
        })
        .unwrap_or_default();
    (!managers.is_empty()).then(|| format!("written by {}", managers.join(", ")))
}

/// All of a new object's fields, as added.
fn added(planned: &Value) -> Vec<Change> {
    diff::changes(&Value::Object(Default::default()), planned)
}

/// `live` cut down to the fields `shape` has, so a replace shows only the
/// fields the stack sets, not every default the server filled in.
fn project(live: &Value, shape: &Value) -> Value {
    match (live, shape) {
        (Value::Object(l), Value::Object(s)) => Value::Object(
            s.keys()
                .filter_map(|k| l.get(k).map(|lv| (k.clone(), project(lv, &s[k]))))
                .collect(),
        ),
        (Value::Array(l), Value::Array(s)) => Value::Array(
            l.iter()
                .enumerate()
                .map(|(i, lv)| s.get(i).map_or_else(|| lv.clone(), |sv| project(lv, sv)))
                .collect(),
        ),
        _ => live.clone(),
    }
}

/// What server-side apply makes of `live` with `applied`: the applied
/// fields over the live object's, maps merged, everything else replaced.
fn overlay(live: &Value, applied: &Value) -> Value {
    match (live, applied) {
        (Value::Object(l), Value::Object(a)) => {
            let mut merged = l.clone();
            for (key, value) in a {
                let next = match l.get(key) {
                    Some(old) => overlay(old, value),
                    None => value.clone(),
                };
                merged.insert(key.clone(), next);
            }
            Value::Object(merged)
        }
        _ => applied.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::state::{ResourceState, State};

    fn id(kind: &str, name: &str) -> ResourceId {
        ResourceId::new("v1", kind, Some("ns"), name)
    }

    fn resource(id: ResourceId, depends_on: Vec<ResourceId>) -> ResourceState {
        ResourceState {
            id,
            uid: "u".into(),
            depends_on,
            applied: json!({}).into(),
            protect: false,
            retain: false,
            proof: None,
        }
    }

    #[test]
    fn deletion_order_puts_dependents_first() {
        let cm = id("ConfigMap", "c");
        let deploy = id("Deployment", "d");
        let svc = id("Service", "s");
        let mut state = State::empty("dev");
        state.resources = vec![
            resource(cm.clone(), vec![]),
            resource(deploy.clone(), vec![cm.clone()]),
            resource(svc.clone(), vec![deploy.clone()]),
        ];
        assert_eq!(deletion_order(&state), [&svc, &deploy, &cm]);
    }

    #[test]
    fn conflicts_name_the_field_and_manager() {
        let status: kube::core::Status = serde_json::from_value(json!({
            "code": 409,
            "message": "Apply failed with 1 conflict: conflict with \"kubectl\" using apps/v1: .spec.replicas",
            "details": {"causes": [{
                "reason": "FieldManagerConflict",
                "message": "conflict with \"kubectl\" using apps/v1",
                "field": ".spec.replicas"
            }]}
        }))
        .unwrap();
        assert_eq!(
            conflicts(&status),
            [Conflict {
                path: "spec.replicas".into(),
                manager: "kubectl".into()
            }]
        );
    }

    #[test]
    fn immutable_selector_is_detected() {
        let status: kube::core::Status = serde_json::from_value(json!({
            "code": 422,
            "message": "Deployment.apps \"d\" is invalid: spec.selector: Invalid value: ...: field is immutable",
            "details": {"causes": [{
                "reason": "FieldValueInvalid",
                "message": "Invalid value: ...: field is immutable",
                "field": "spec.selector"
            }]}
        }))
        .unwrap();
        assert_eq!(
            immutable_fields(&status),
            Some(vec!["spec.selector".to_string()])
        );
    }

    #[test]
    fn projection_keeps_only_declared_fields() {
        let live = json!({"spec": {"replicas": 3, "strategy": {"type": "RollingUpdate"},
            "template": {"spec": {"containers": [{"name": "web", "imagePullPolicy": "Always"}]}}}});
        let shape = json!({"spec": {"replicas": 1,
            "template": {"spec": {"containers": [{"name": "web"}]}}}});
        assert_eq!(
            project(&live, &shape),
            json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "web"}]}}}})
        );
    }

    #[test]
    fn owner_names_another_stack() {
        let live = json!({"metadata": {"labels": {
            "app.kubernetes.io/managed-by": "echo-iac", "echo-iac.io/stack": "staging"}}});
        assert_eq!(
            describe_owner(&Identity::new("echo-iac"), &live).as_deref(),
            Some("managed by echo-iac stack `staging`")
        );
    }
}
