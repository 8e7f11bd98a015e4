//! The proof of an unchanged object (see `crate::proof`): a preview that
//! skips the dry run of what the state proves unchanged gives the verdict
//! of one that dry-runs every object (`full`), whatever drifted since the
//! last `up`. Generated stacks are brought up on the fake API server, then
//! drift (their objects changed by other managers and clients, labels
//! removed, annotations added, objects deleted or created again, the
//! program's objects changed, the server upgraded, a mutating webhook
//! added) and are previewed both ways, over two rounds of drift and `up`.
//!
//! Each preview must also have skipped what it could: after an `up`, and
//! after a drift for the objects it left alone, nothing but Secrets (which
//! never get a proof) is dry-run.

use proptest::prelude::*;

use super::*;
use crate::plan::{Op, Step};

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

    /// A field the program sets, and another value for it.
    fn owned_field(self) -> (&'static [&'static str], Value) {
        match self {
            Kind::ConfigMap => (&["data", "key"], json!("drifted")),
            // "drifted" in base64.
            Kind::Secret => (&["data", "token"], json!("ZHJpZnRlZA==")),
            Kind::Service => (&["spec", "selector", "app"], json!("drifted")),
            Kind::Deployment => (&["spec", "replicas"], json!(7)),
        }
    }

    /// A field the program does not set, and a value for it.
    fn unowned_field(self) -> (&'static [&'static str], Value) {
        match self {
            Kind::ConfigMap => (&["data", "extra"], json!("x")),
            Kind::Secret => (&["data", "extra"], json!("eA==")),
            Kind::Service => (&["spec", "sessionAffinity"], json!("ClientIP")),
            Kind::Deployment => (&["spec", "minReadySeconds"], json!(5)),
        }
    }
}

/// What happens to one object between an `up` and the previews.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Drift {
    /// Another manager applies another value to a field the stack owns,
    /// forcing the conflict: the field is theirs now.
    OwnedTaken,
    /// Another manager applies a field the stack owns with the value it
    /// has: the field is owned by both.
    OwnedShared,
    /// Another client changes a field the stack owns without taking it.
    OwnedChanged,
    /// Another manager applies a field the stack does not own.
    UnownedSet,
    /// Another client changes a field the stack does not own.
    UnownedChanged,
    /// The stack's label is removed.
    LabelRemoved,
    /// Someone adds an annotation.
    AnnotationAdded,
    /// The object is deleted.
    Deleted,
    /// The object is deleted and created again as it was, under a new
    /// uid.
    Recreated(By),
    /// The program declares the object otherwise.
    DesiredChanged,
}

/// Who creates a deleted object again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum By {
    /// The stack's field manager, as it was declared (another run of the
    /// program, whose state lost it).
    Stack,
    /// A client copying it, labels and all (kubectl get, delete and
    /// create; a restore from a backup).
    Copy,
    /// The same, without the stack's labels.
    UnlabelledCopy,
}

/// One round of drift.
#[derive(Clone, Debug)]
struct Round {
    /// Per object, in order.
    drifts: Vec<Option<Drift>>,
    /// The API server is upgraded.
    upgraded: bool,
    /// A mutating webhook configuration is added.
    webhook: bool,
}

#[derive(Clone, Debug)]
struct Case {
    /// Each object's kind and first version.
    objects: Vec<(Kind, u8)>,
    rounds: Vec<Round>,
}

fn drift() -> impl Strategy<Value = Drift> {
    prop_oneof![
        Just(Drift::OwnedTaken),
        Just(Drift::OwnedShared),
        Just(Drift::OwnedChanged),
        Just(Drift::UnownedSet),
        Just(Drift::UnownedChanged),
        Just(Drift::LabelRemoved),
        Just(Drift::AnnotationAdded),
        Just(Drift::Deleted),
        prop::sample::select(vec![By::Stack, By::Copy, By::UnlabelledCopy])
            .prop_map(Drift::Recreated),
        Just(Drift::DesiredChanged),
    ]
}

fn round(n: usize) -> impl Strategy<Value = Round> {
    (
        prop::collection::vec(prop::option::weighted(0.5, drift()), n),
        prop::bool::weighted(0.15),
        prop::bool::weighted(0.15),
    )
        .prop_map(|(drifts, upgraded, webhook)| Round {
            drifts,
            upgraded,
            webhook,
        })
}

/// One to six objects, two rounds of drift.
fn case() -> impl Strategy<Value = Case> {
    (1usize..7).prop_flat_map(|n| {
        let object = (prop::sample::select(Kind::ALL.to_vec()), 0u8..3);
        (
            prop::collection::vec(object, n),
            prop::collection::vec(round(n), 2),
        )
            .prop_map(|(objects, rounds)| Case { objects, rounds })
    })
}

fn name(i: usize) -> String {
    format!("o{i}")
}

fn declare(kinds: &[Kind], versions: &[u8]) -> Vec<DesiredResource> {
    kinds
        .iter()
        .zip(versions)
        .enumerate()
        .map(|(i, (kind, version))| desired(kind.object(&name(i), *version), &[]))
        .collect()
}

/// `object` with `value` at `path`, the maps on the way made as needed.
fn set(object: &mut Value, path: &[&str], value: Value) {
    let mut at = object;
    for key in path {
        at = &mut at[*key];
    }
    *at = value;
}

/// Only the identity of an object of `kind`, with `value` at `path`: what
/// another manager applies.
fn partial(kind: Kind, i: usize, path: &[&str], value: Value) -> Value {
    let full = kind.object(&name(i), 0);
    let mut object = json!({"apiVersion": full["apiVersion"], "kind": full["kind"],
        "metadata": {"namespace": "ns", "name": name(i)}});
    set(&mut object, path, value);
    object
}

/// Makes `drift` happen to object `i` on the server (or to its declared
/// version).
fn happen(fake: &FakeApi, kind: Kind, i: usize, drift: Drift, version: &mut u8) {
    let id = id_of(&kind.object(&name(i), 0));
    let (owned, other) = kind.owned_field();
    let (unowned, value) = kind.unowned_field();
    match drift {
        Drift::OwnedTaken => {
            fake.apply_as("kubectl", partial(kind, i, owned, other));
        }
        Drift::OwnedShared => {
            let live = fake.get(&id).expect("applied");
            let mut current = &live;
            for key in owned {
                current = &current[*key];
            }
            fake.apply_as("kubectl", partial(kind, i, owned, current.clone()));
        }
        Drift::OwnedChanged => fake.update(&id, |o| set(o, owned, other)),
        Drift::UnownedSet => {
            fake.apply_as("kubectl", partial(kind, i, unowned, value));
        }
        Drift::UnownedChanged => fake.update(&id, |o| set(o, unowned, value)),
        Drift::LabelRemoved => fake.update(&id, |o| {
            o["metadata"]["labels"]
                .as_object_mut()
                .expect("labels")
                .remove(STACK_LABEL);
        }),
        Drift::AnnotationAdded => fake.update(&id, |o| {
            o["metadata"]["annotations"]["example.com/note"] = json!("hello");
        }),
        Drift::Deleted => {
            fake.remove(&id);
        }
        Drift::Recreated(By::Stack) => {
            fake.remove(&id);
            fake.apply_as(FIELD_MANAGER, kind.object(&name(i), *version));
        }
        Drift::Recreated(by) => {
            let mut again = fake.remove(&id).expect("applied");
            let meta = again["metadata"].as_object_mut().expect("metadata");
            for key in [
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "generation",
                "managedFields",
            ] {
                meta.remove(key);
            }
            if by == By::UnlabelledCopy {
                meta.remove("labels");
            }
            fake.insert(again);
        }
        Drift::DesiredChanged => *version = (*version + 1) % 3,
    }
}

/// What a preview says of each object: its steps, without the copies of
/// the live and planned objects (their changes say how they differ). A
/// Service's cluster IP, which a dry run of a create allocates anew each
/// time, is left out.
fn verdict(plan: &Plan) -> Vec<Step> {
    plan.steps
        .iter()
        .map(|step| {
            let mut step = step.clone();
            step.live = None;
            step.planned = None;
            for change in step.changes.iter_mut().filter(|c| c.path == "spec") {
                if let Some(Value::Object(spec)) = &mut change.new
                    && step.op == Op::Create
                {
                    spec.remove("clusterIP");
                }
            }
            step
        })
        .collect()
}

/// The objects a request log shows dry-run, by name.
fn dry_run_names(fake: &FakeApi) -> Vec<String> {
    let mut names: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| r.dry_run())
        .filter_map(|r| r.name.clone())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Plans `up` taking what other managers own and what the stack does not
/// manage, and carries it out.
async fn up(stack: &Stack<MemoryStore>, desired: &[DesiredResource]) -> Result<(), TestCaseError> {
    let options = PlanOptions {
        force_conflicts: true,
        adopt: true,
        ..PlanOptions::default()
    };
    let plan = stack.plan_with(desired, options).await.expect("a plan");
    prop_assert!(plan.blocked().next().is_none(), "{:?}", plan.steps);
    let locked = stack.locked().await;
    let journal = Journal::new(&locked, stack.state().await);
    let options = ApplyOptions {
        force_conflicts: true,
        concurrency: 4,
        timeout: TIMEOUT,
        cancel: &Cancel::default(),
    };
    let applied =
        apply::apply_plan(&stack.cluster, &plan, desired, &journal, &options, &|_| {}).await;
    locked.release().await;
    prop_assert!(applied.is_ok(), "{:?}", applied);
    Ok(())
}

/// Once `up` has run, a preview finds every object the same, and dry-runs
/// only the Secrets.
async fn check_proven(
    stack: &Stack<MemoryStore>,
    kinds: &[Kind],
    desired: &[DesiredResource],
) -> Result<(), TestCaseError> {
    stack.fake.clear_log();
    let plan = stack.plan(desired).await;
    prop_assert!(!plan.has_changes(), "{:?}", plan.steps);
    let secrets: Vec<String> = (0..kinds.len())
        .filter(|&i| kinds[i] == Kind::Secret)
        .map(name)
        .collect();
    prop_assert_eq!(dry_run_names(&stack.fake), secrets);
    Ok(())
}

async fn proven_and_full_agree(case: &Case) -> Result<(), TestCaseError> {
    let stack = Stack::in_memory();
    let kinds: Vec<Kind> = case.objects.iter().map(|(k, _)| *k).collect();
    let mut versions: Vec<u8> = case.objects.iter().map(|(_, v)| *v).collect();
    let desired = declare(&kinds, &versions);
    up(&stack, &desired).await?;
    check_proven(&stack, &kinds, &desired).await?;

    for (n, round) in case.rounds.iter().enumerate() {
        for (i, drift) in round.drifts.iter().enumerate() {
            if let Some(drift) = drift {
                happen(&stack.fake, kinds[i], i, *drift, &mut versions[i]);
            }
        }
        if round.upgraded {
            stack.fake.set_version(&format!("v1.36.{}", n + 1));
        }
        if round.webhook {
            stack.fake.insert(json!({
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "MutatingWebhookConfiguration",
                "metadata": {"name": format!("inject-{n}")},
                "webhooks": [{"name": "inject.example.com", "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                    "clientConfig": {"service": {"name": "inject", "namespace": "ns"}}}],
            }));
        }
        let desired = declare(&kinds, &versions);

        stack.fake.clear_log();
        let proven = stack.plan(&desired).await;
        let dry_run = dry_run_names(&stack.fake);
        let full = stack
            .plan_with(
                &desired,
                PlanOptions {
                    full: true,
                    ..PlanOptions::default()
                },
            )
            .await
            .expect("a plan");
        prop_assert_eq!(
            verdict(&proven),
            verdict(&full),
            "round {}: proven, then full",
            n + 1
        );
        prop_assert_eq!(&proven.untracked, &full.untracked);
        // What nothing touched, the state still proves, unless the server
        // or its admission changed: then every object is dry-run.
        for (i, drift) in round.drifts.iter().enumerate() {
            if round.upgraded || round.webhook {
                prop_assert!(
                    dry_run.contains(&name(i)),
                    "round {}: {} was not dry-run",
                    n + 1,
                    name(i)
                );
            } else if drift.is_none() && kinds[i] != Kind::Secret {
                prop_assert!(
                    !dry_run.contains(&name(i)),
                    "round {}: {} was dry-run",
                    n + 1,
                    name(i)
                );
            }
        }

        up(&stack, &desired).await?;
        check_proven(&stack, &kinds, &desired).await?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(super::proptest_config())]

    #[test]
    fn a_proven_preview_gives_the_verdict_of_a_full_one_whatever_drifted(case in case()) {
        super::block_on_paused(proven_and_full_agree(&case))?;
    }
}
