//! Properties of `up` and `destroy` plans, for generated worlds: a few
//! objects with dependencies among them, each declared by the program or
//! not, held by the fake API server (as this stack applied it, or created
//! by someone else) or not, and recorded in the state (with the live
//! object's uid or a stale one) or not, some protected or retained by the
//! program, by the state's record or by a stack file's pattern.
//!
//! Each plan is checked against what the planner documents: one step per
//! object it concerns, the right operation and blocker for each, creates
//! and updates after what they depend on, deletes before it. Then a plan
//! that nothing blocks is carried out, and a plan of the world it leaves
//! has nothing more to do.

use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;

use super::*;
use crate::declare::Resources;
use crate::plan::{Blocker, Op, Step};
use crate::protect::{Guard, Protections};
use crate::state::ResourceState;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    ConfigMap,
    Secret,
    Service,
    Deployment,
}

impl Kind {
    const ALL: [Kind; 4] = [
        Kind::ConfigMap,
        Kind::Secret,
        Kind::Service,
        Kind::Deployment,
    ];

    fn api_version(self) -> &'static str {
        match self {
            Kind::Deployment => "apps/v1",
            _ => "v1",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::ConfigMap => "ConfigMap",
            Kind::Secret => "Secret",
            Kind::Service => "Service",
            Kind::Deployment => "Deployment",
        }
    }

    /// Object `name` of this kind at `version` (0 to 2), with the stack's
    /// labels.
    fn object(self, name: &str, version: u8) -> Value {
        match self {
            Kind::ConfigMap => config_map("ns", name, json!({"key": format!("v{version}")})),
            Kind::Secret => {
                // "v0", "v1", "v2" in base64.
                let value = ["djA=", "djE=", "djI="][usize::from(version)];
                json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                    "metadata": {"namespace": "ns", "name": name, "labels": stack_labels()},
                    "data": {"token": value}})
            }
            Kind::Service => {
                let mut object = service("ns", name, None);
                object["spec"]["ports"][0]["port"] = json!(8080 + i64::from(version));
                object
            }
            Kind::Deployment => deployment("ns", name, i64::from(version) + 1),
        }
    }
}

/// What the program asks for the object.
#[derive(Clone, Copy, Debug)]
struct Declared {
    version: u8,
    protect: bool,
    retain: bool,
}

/// What the server holds.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Live {
    Absent,
    /// Applied by this stack's field manager, with its labels.
    Ours(u8),
    /// Created by someone else, without the stack's labels.
    Foreign(u8),
}

/// What the state records.
#[derive(Clone, Copy, Debug)]
struct Recorded {
    version: u8,
    /// The live object's uid (when there is one); otherwise a stale uid.
    live_uid: bool,
    protect: bool,
    retain: bool,
}

#[derive(Clone, Debug)]
struct Object {
    kind: Kind,
    declared: Option<Declared>,
    live: Live,
    recorded: Option<Recorded>,
}

#[derive(Clone, Debug)]
struct World {
    objects: Vec<Object>,
    /// `(a, b)`: `a` depends on `b`. Acyclic.
    edges: BTreeSet<(usize, usize)>,
    /// A stack file's pattern: every object of the kind protected or
    /// retained.
    rule: Option<(Guard, Kind)>,
    /// Destroy retains protected objects instead of being blocked by them.
    keep_protected: bool,
}

fn version() -> impl Strategy<Value = u8> {
    0u8..3
}

fn object() -> impl Strategy<Value = Object> {
    let flag = || prop::bool::weighted(0.15);
    let declared = prop::option::weighted(
        0.7,
        (version(), flag(), flag()).prop_map(|(version, protect, retain)| Declared {
            version,
            protect,
            retain,
        }),
    );
    let live = prop_oneof![
        3 => Just(Live::Absent),
        5 => version().prop_map(Live::Ours),
        1 => version().prop_map(Live::Foreign),
    ];
    let recorded = prop::option::weighted(
        0.6,
        (version(), prop::bool::weighted(0.8), flag(), flag()).prop_map(
            |(version, live_uid, protect, retain)| Recorded {
                version,
                live_uid,
                protect,
                retain,
            },
        ),
    );
    (
        prop::sample::select(Kind::ALL.to_vec()),
        declared,
        live,
        recorded,
    )
        .prop_map(|(kind, declared, live, recorded)| Object {
            kind,
            declared,
            live,
            recorded,
        })
}

/// One to seven objects; each depends only on objects of a lower rank in
/// a shuffled order, so the dependencies are acyclic but in no particular
/// order by index.
fn world() -> impl Strategy<Value = World> {
    (1usize..8)
        .prop_flat_map(|n| {
            let rule = (
                prop::sample::select(vec![Guard::Protect, Guard::Retain]),
                prop::sample::select(Kind::ALL.to_vec()),
            );
            (
                prop::collection::vec(object(), n),
                prop::collection::btree_set((0..n, 0..n), 0..(2 * n)),
                Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
                prop::option::weighted(0.2, rule),
                any::<bool>(),
            )
        })
        .prop_map(|(objects, edges, rank, rule, keep_protected)| World {
            objects,
            edges: edges
                .into_iter()
                .filter(|(a, b)| rank[*a] > rank[*b])
                .collect(),
            rule,
            keep_protected,
        })
}

impl World {
    fn name(i: usize) -> String {
        format!("o{i}")
    }

    fn id(&self, i: usize) -> ResourceId {
        let kind = self.objects[i].kind;
        ResourceId::new(kind.api_version(), kind.name(), Some("ns"), &World::name(i))
    }

    fn depends_on(&self, i: usize) -> impl Iterator<Item = usize> + '_ {
        self.edges
            .iter()
            .filter(move |(a, _)| *a == i)
            .map(|(_, b)| *b)
    }

    fn protections(&self) -> Protections {
        let mut rules = Protections::new();
        if let Some((guard, kind)) = self.rule {
            let pattern = format!("{}/ns/*", kind.name());
            rules.add(
                guard,
                pattern.parse().expect("a pattern"),
                "stacks/dev.yaml:3",
            );
        }
        rules
    }

    /// What the program declares, through `Resources` as a program would:
    /// ordered dependencies first.
    fn desired(&self) -> Vec<DesiredResource> {
        let mut resources = Resources::new(&identity(), STACK);
        let ids: Vec<ResourceId> = (0..self.objects.len()).map(|i| self.id(i)).collect();
        for (i, object) in self.objects.iter().enumerate() {
            let Some(declared) = object.declared else {
                continue;
            };
            let after: Vec<&ResourceId> = self
                .depends_on(i)
                .filter(|j| self.objects[*j].declared.is_some())
                .map(|j| &ids[j])
                .collect();
            let id = resources.add_after(
                object.kind.object(&World::name(i), declared.version),
                &after,
            );
            if declared.protect {
                resources.protect(&id);
            }
            if declared.retain {
                resources.retain(&id);
            }
        }
        resources.finish().expect("acyclic and distinct")
    }

    /// Puts the live objects on the server and writes the state.
    async fn build(&self) -> Stack<MemoryStore> {
        let stack = Stack::in_memory();
        let mut uids = HashMap::new();
        for (i, object) in self.objects.iter().enumerate() {
            let stored = match object.live {
                Live::Absent => continue,
                Live::Ours(version) => stack
                    .fake
                    .apply_as(FIELD_MANAGER, object.kind.object(&World::name(i), version)),
                Live::Foreign(version) => {
                    let mut foreign = object.kind.object(&World::name(i), version);
                    foreign["metadata"]
                        .as_object_mut()
                        .expect("metadata")
                        .remove("labels");
                    stack.fake.insert(foreign)
                }
            };
            uids.insert(i, stored["metadata"]["uid"].as_str().unwrap().to_string());
        }
        let mut state = State::empty(STACK);
        for (i, object) in self.objects.iter().enumerate() {
            let Some(recorded) = object.recorded else {
                continue;
            };
            let uid = match uids.get(&i) {
                Some(uid) if recorded.live_uid => uid.clone(),
                _ => format!("00000000-0000-4000-8000-stale{i:07}"),
            };
            state.upsert_resource(ResourceState {
                id: self.id(i),
                uid,
                depends_on: self.depends_on(i).map(|j| self.id(j)).collect(),
                applied: object.kind.object(&World::name(i), recorded.version).into(),
                protect: recorded.protect,
                retain: recorded.retain,
                proof: None,
            });
        }
        stack.set_state(state).await;
        stack
    }

    /// Whether the stack owns the live object: it carries the stack's
    /// labels, or the state records its uid.
    fn owned(&self, i: usize) -> bool {
        let object = &self.objects[i];
        match object.live {
            Live::Absent => false,
            Live::Ours(_) => true,
            Live::Foreign(_) => object.recorded.is_some_and(|r| r.live_uid),
        }
    }

    /// Whether the state records the live object itself (its uid).
    fn recorded_live(&self, i: usize) -> bool {
        let object = &self.objects[i];
        object.live != Live::Absent && object.recorded.is_some_and(|r| r.live_uid)
    }

    /// Whether `guard` is asked for the object: by the program while it
    /// declares it, else by the state's record; or by the stack file.
    fn asks(&self, i: usize, guard: Guard) -> bool {
        let object = &self.objects[i];
        let pick = |protect: bool, retain: bool| match guard {
            Guard::Protect => protect,
            Guard::Retain => retain,
        };
        let by_program = match (object.declared, object.recorded) {
            (Some(d), _) => pick(d.protect, d.retain),
            (None, Some(r)) => pick(r.protect, r.retain),
            (None, None) => false,
        };
        by_program || self.rule == Some((guard, object.kind))
    }

    /// The operation and whether it is blocked, for a delete of a live
    /// object of the stack.
    fn guarded_delete(&self, i: usize, keep_protected: bool) -> (Op, bool) {
        if self.asks(i, Guard::Protect) {
            if keep_protected {
                (Op::Retain, false)
            } else {
                (Op::Delete, true)
            }
        } else if self.asks(i, Guard::Retain) {
            (Op::Retain, false)
        } else {
            (Op::Delete, false)
        }
    }

    /// The live objects carrying the stack's labels that the state does not
    /// record, among the kinds plans read: those of the objects declared or
    /// recorded.
    fn untracked(&self) -> BTreeSet<usize> {
        let read: Vec<Kind> = self
            .objects
            .iter()
            .filter(|o| o.declared.is_some() || o.recorded.is_some())
            .map(|o| o.kind)
            .collect();
        (0..self.objects.len())
            .filter(|&i| {
                let object = &self.objects[i];
                matches!(object.live, Live::Ours(_))
                    && object.recorded.is_none()
                    && read.contains(&object.kind)
            })
            .collect()
    }
}

fn position(plan: &Plan) -> HashMap<&ResourceId, usize> {
    plan.steps
        .iter()
        .enumerate()
        .map(|(p, s)| (&s.id, p))
        .collect()
}

fn step<'a>(plan: &'a Plan, id: &ResourceId) -> Option<&'a Step> {
    plan.steps.iter().find(|s| &s.id == id)
}

/// Every removal comes before the removals of what the object depends
/// on: as the state records it, or as the program declares it for an
/// object the state does not record.
fn check_deletes_dependents_first(world: &World, plan: &Plan) -> Result<(), TestCaseError> {
    let at = position(plan);
    let removed = |id: &ResourceId| step(plan, id).is_some_and(|s| s.op.is_removal());
    for (a, b) in &world.edges {
        let (object, dependency) = (&world.objects[*a], &world.objects[*b]);
        let depends = object.recorded.is_some()
            || (object.declared.is_some() && dependency.declared.is_some());
        let (id_a, id_b) = (world.id(*a), world.id(*b));
        if depends && removed(&id_a) && removed(&id_b) {
            prop_assert!(
                at[&id_a] < at[&id_b],
                "{} depends on {}, so goes first: {:?}",
                id_a,
                id_b,
                ops(plan)
            );
        }
    }
    Ok(())
}

/// A delete or retain of `id`, blocked as protected exactly when
/// `expected` says.
fn check_removal(
    id: &ResourceId,
    found: Option<&Step>,
    (op, blocked): (Op, bool),
) -> Result<(), TestCaseError> {
    let step = found.ok_or_else(|| TestCaseError::fail(format!("no step for {id}")))?;
    prop_assert_eq!(step.op, op, "{}: {:?}", id, step);
    match &step.blocker {
        None => prop_assert!(!blocked, "{} is not blocked: {:?}", id, step),
        Some(Blocker::Protected { .. }) => prop_assert!(blocked, "{}: {:?}", id, step),
        Some(other) => prop_assert!(false, "{} blocked by {:?}", id, other),
    }
    Ok(())
}

fn check_ids_once(plan: &Plan) -> Result<(), TestCaseError> {
    let mut seen = BTreeSet::new();
    for step in &plan.steps {
        prop_assert!(
            seen.insert(step.id.to_string()),
            "{} twice: {:?}",
            step.id,
            ops(plan)
        );
    }
    Ok(())
}

fn check_up_plan(
    world: &World,
    desired: &[DesiredResource],
    plan: &Plan,
) -> Result<(), TestCaseError> {
    check_ids_once(plan)?;
    let at = position(plan);
    for (i, object) in world.objects.iter().enumerate() {
        let id = world.id(i);
        let found = step(plan, &id);
        match (object.declared, object.recorded) {
            (Some(declared), recorded) => {
                let step = found.ok_or_else(|| TestCaseError::fail(format!("no step for {id}")))?;
                // Unchanged: as declared, and as the state records it (its
                // uid, and a Secret's values).
                let unchanged = |version: u8| {
                    version == declared.version
                        && recorded.is_none_or(|r| {
                            r.live_uid && (object.kind != Kind::Secret || r.version == version)
                        })
                };
                let expected = match object.live {
                    Live::Absent => Op::Create,
                    Live::Ours(version) if unchanged(version) => Op::Same,
                    _ => Op::Update,
                };
                prop_assert_eq!(step.op, expected, "{}: {:?}", id, step);
                let unmanaged = object.live != Live::Absent && !world.owned(i);
                match &step.blocker {
                    None => prop_assert!(!unmanaged, "{} is not the stack's: {:?}", id, step),
                    Some(Blocker::Unmanaged { .. }) => {
                        prop_assert!(unmanaged, "{}: {:?}", id, step)
                    }
                    Some(other) => prop_assert!(false, "{} blocked by {:?}", id, other),
                }
                // Dependencies first, whatever the operation.
                let desired = desired.iter().find(|d| d.id == id).expect("declared");
                for dependency in &desired.depends_on {
                    prop_assert!(
                        at[dependency] < at[&id],
                        "{} depends on {}: {:?}",
                        id,
                        dependency,
                        ops(plan)
                    );
                }
            }
            (None, Some(_)) => {
                let expected = if world.recorded_live(i) {
                    world.guarded_delete(i, false)
                } else {
                    // Gone, or another object now: only forgotten.
                    (Op::Delete, false)
                };
                check_removal(&id, found, expected)?;
            }
            (None, None) => prop_assert!(found.is_none(), "{} is not the plan's: {:?}", id, found),
        }
    }
    check_deletes_dependents_first(world, plan)?;
    let untracked: BTreeSet<String> = world
        .untracked()
        .into_iter()
        .map(|i| world.id(i).to_string())
        .collect();
    let found: BTreeSet<String> = plan.untracked.iter().map(|u| u.id.to_string()).collect();
    prop_assert_eq!(found, untracked);
    for u in &plan.untracked {
        let declared = desired.iter().any(|d| d.id == u.id);
        prop_assert_eq!(u.declared, declared, "{}", u.id);
    }
    Ok(())
}

fn check_destroy_plan(world: &World, plan: &Plan) -> Result<(), TestCaseError> {
    check_ids_once(plan)?;
    let untracked = world.untracked();
    for (i, object) in world.objects.iter().enumerate() {
        let id = world.id(i);
        let found = step(plan, &id);
        if object.recorded.is_some() {
            let expected = if world.recorded_live(i) {
                world.guarded_delete(i, world.keep_protected)
            } else {
                (Op::Delete, false)
            };
            check_removal(&id, found, expected)?;
        } else if untracked.contains(&i) && object.declared.is_some() {
            check_removal(&id, found, world.guarded_delete(i, world.keep_protected))?;
        } else {
            prop_assert!(found.is_none(), "{} is not the plan's: {:?}", id, found);
        }
    }
    check_deletes_dependents_first(world, plan)
}

/// Plans `up`, checks the plan, carries it out unless it is blocked, and
/// checks that a plan of what it left has nothing to do.
async fn up_converges(world: &World) -> Result<(), TestCaseError> {
    let stack = world.build().await;
    let desired = world.desired();
    let options = PlanOptions {
        protections: world.protections(),
        ..PlanOptions::default()
    };
    let plan = stack
        .plan_with(&desired, options.clone())
        .await
        .expect("a plan");
    check_up_plan(world, &desired, &plan)?;
    if plan.blocked().next().is_some() {
        return Ok(());
    }
    let (events, result) = stack.apply(&plan, &desired).await;
    prop_assert!(result.is_ok(), "{:?}: {:?}", result, events);

    let again = stack.plan_with(&desired, options).await.expect("a plan");
    prop_assert!(
        again
            .steps
            .iter()
            .all(|s| s.op == Op::Same && s.blocker.is_none()),
        "after {:?}: {:?}",
        ops(&plan),
        again.steps
    );
    let planned: Vec<&ResourceId> = again.steps.iter().map(|s| &s.id).collect();
    let declared: Vec<&ResourceId> = desired.iter().map(|d| &d.id).collect();
    prop_assert_eq!(planned, declared);
    let state = stack.state().await;
    let mut recorded: Vec<String> = state.resources.iter().map(|r| r.id.to_string()).collect();
    let mut expected: Vec<String> = desired.iter().map(|d| d.id.to_string()).collect();
    recorded.sort();
    expected.sort();
    prop_assert_eq!(recorded, expected);
    for record in &state.resources {
        let live = stack.fake.get(&record.id).expect("applied objects exist");
        prop_assert_eq!(live["metadata"]["uid"].as_str(), Some(record.uid.as_str()));
    }
    Ok(())
}

/// Plans `destroy`, checks the plan, carries it out unless it is
/// blocked, and checks that a plan of what it left has nothing to do.
async fn destroy_converges(world: &World) -> Result<(), TestCaseError> {
    let stack = world.build().await;
    let desired = world.desired();
    let options = planner::DestroyPlanOptions {
        protections: world.protections(),
        keep_protected: world.keep_protected,
        ..planner::DestroyPlanOptions::default()
    };
    let plan = stack.plan_destroy_options(&desired, options.clone()).await;
    check_destroy_plan(world, &plan)?;
    if plan.blocked().next().is_some() {
        return Ok(());
    }
    let (events, result) = stack.apply(&plan, &desired).await;
    prop_assert!(result.is_ok(), "{:?}: {:?}", result, events);

    // An object recreated outside under the stack's labels is left alone
    // by a destroy that finds it recorded with another uid; once the
    // record is gone, it is an untracked object the program declares,
    // which the next destroy deletes.
    let left_alone: Vec<(String, Op)> = (0..world.objects.len())
        .filter(|&i| {
            let object = &world.objects[i];
            matches!(object.live, Live::Ours(_))
                && object.declared.is_some()
                && object.recorded.is_some_and(|r| !r.live_uid)
        })
        .map(|i| {
            (
                world.id(i).to_string(),
                world.guarded_delete(i, world.keep_protected).0,
            )
        })
        .collect();
    let again = stack.plan_destroy_options(&desired, options).await;
    let planned: Vec<(String, Op)> = again
        .steps
        .iter()
        .map(|s| (s.id.to_string(), s.op))
        .collect();
    let mut planned_sorted = planned.clone();
    planned_sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = left_alone;
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    prop_assert_eq!(planned_sorted, expected, "after {:?}", ops(&plan));
    prop_assert!(stack.state().await.resources.is_empty());
    Ok(())
}

proptest! {
    #![proptest_config(super::proptest_config())]

    #[test]
    fn up_and_destroy_plan_each_object_by_the_rules_in_dependency_order_and_converge(
        world in world()
    ) {
        super::block_on_paused(async {
            up_converges(&world).await?;
            destroy_converges(&world).await
        })?;
    }
}
