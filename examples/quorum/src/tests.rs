//! The quorum program's objects and plans, against the engine's fake API
//! server: no cluster needed.

use echo_iac_engine::diff::unified_yaml;
use echo_iac_engine::testing::FakeStack;
use echo_iac_engine::{DesiredResource, Identity, Op, Plan, ResourceId};
use echo_iac_runner::{Program, StackInfo};

use crate::program::{NAME, Quorum, Settings, declare};

const STACK: &str = "dev";
const NAMESPACE: &str = "quorum-dev";
const PASSWORD: &str = "correct-horse-battery-staple";

fn identity() -> Identity {
    Identity::new(Quorum::NAME)
}

fn info() -> StackInfo {
    StackInfo::new(STACK, NAMESPACE, true, identity())
}

fn objects(settings: &Settings, password: &str) -> Vec<DesiredResource> {
    declare(&info(), settings, password)
        .finish()
        .expect("quorum's objects fit together")
}

fn stack() -> FakeStack {
    FakeStack::new(identity(), STACK)
}

/// The plan's steps as `create StatefulSet quorum-dev/quorum`.
fn ops(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .map(|s| format!("{} {}", s.op.as_str(), s.id))
        .collect()
}

fn id(api_version: &str, kind: &str, name: &str) -> ResourceId {
    ResourceId::new(api_version, kind, Some(NAMESPACE), name)
}

#[test]
fn the_namespace_comes_first_and_the_members_after_what_they_read() {
    let desired = objects(&Settings::default(), PASSWORD);
    let order: Vec<String> = desired.iter().map(|d| d.id.to_string()).collect();
    assert_eq!(order[0], format!("Namespace {NAMESPACE}"));
    let at = |kind: &str, name: &str| {
        order
            .iter()
            .position(|o| *o == format!("{kind} {NAMESPACE}/{name}"))
            .unwrap_or_else(|| panic!("{kind} {name} is declared: {order:?}"))
    };
    let members = at("StatefulSet", NAME);
    assert!(at("Service", NAME) < members);
    assert!(at("ConfigMap", &format!("{NAME}-config")) < members);
    assert!(at("Secret", &format!("{NAME}-auth")) < members);
}

#[tokio::test]
async fn a_new_stack_plans_a_create_for_every_object() {
    let stack = stack();
    let desired = objects(&Settings::default(), PASSWORD);
    let plan = stack.plan(&desired).await.unwrap();
    assert_eq!(plan.steps.len(), 6, "{:?}", ops(&plan));
    assert!(
        plan.steps.iter().all(|s| s.op == Op::Create),
        "{:?}",
        ops(&plan)
    );
    assert!(plan.blocked().next().is_none());
}

#[tokio::test]
async fn a_second_up_plans_no_change() {
    let stack = stack();
    let desired = objects(&Settings::default(), PASSWORD);
    stack.up(&desired).await.unwrap();
    let members = stack
        .get(&id("apps/v1", "StatefulSet", NAME))
        .expect("the members are applied");
    assert_eq!(members["spec"]["replicas"], 3);

    let plan = stack.plan(&desired).await.unwrap();
    assert!(!plan.has_changes(), "{:?}", ops(&plan));
    let writes = stack.fake().mutations().len();
    stack.up(&desired).await.unwrap();
    assert_eq!(
        stack.fake().mutations().len(),
        writes,
        "an unchanged stack is not written to"
    );
}

#[tokio::test]
async fn more_replicas_update_the_members_and_their_disruption_budget() {
    let stack = stack();
    stack
        .up(&objects(&Settings::default(), PASSWORD))
        .await
        .unwrap();
    let five = Settings {
        replicas: 5,
        ..Settings::default()
    };
    let plan = stack.plan(&objects(&five, PASSWORD)).await.unwrap();
    let changed: Vec<String> = plan
        .steps
        .iter()
        .filter(|s| s.is_change())
        .flat_map(|s| {
            s.changes.iter().map(move |c| {
                format!(
                    "{} {} {}: {:?} -> {:?}",
                    s.op.as_str(),
                    s.id.kind,
                    c.path,
                    c.old,
                    c.new
                )
            })
        })
        .collect();
    assert_eq!(
        changed,
        [
            "update PodDisruptionBudget spec.minAvailable: Some(Number(2)) -> Some(Number(3))",
            "update StatefulSet spec.replicas: Some(Number(3)) -> Some(Number(5))",
        ]
    );
}

/// Every way the plan is shown: its JSON, the unified diffs of `--diff`,
/// and the copies of the objects it carries.
fn shown(plan: &Plan) -> String {
    let mut text = serde_json::to_string(plan).unwrap();
    text.push_str(&format!("{plan:?}"));
    for step in &plan.steps {
        text.push_str(&unified_yaml(
            step.live.as_ref(),
            step.planned.as_ref(),
            &step.id.to_string(),
        ));
    }
    text
}

#[tokio::test]
async fn the_password_never_appears_in_a_plan_or_the_state() {
    let stack = stack();
    let settings = Settings::default();
    let first = stack.up(&objects(&settings, PASSWORD)).await.unwrap();
    assert!(!shown(&first).contains(PASSWORD));

    let changed = "another-long-password";
    let plan = stack.plan(&objects(&settings, changed)).await.unwrap();
    let secret = plan
        .steps
        .iter()
        .find(|s| s.id.kind == "Secret")
        .expect("the Secret is planned");
    assert_eq!(secret.op, Op::Update, "a new password is a change");
    assert!(secret.changes.iter().all(|c| c.sensitive));
    let text = shown(&plan);
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(!text.contains(changed), "{text}");

    let state = serde_json::to_string(&stack.state().await.unwrap()).unwrap();
    assert!(!state.contains(PASSWORD));
}

/// The changes a plan makes to the members, as `path: old -> new`.
fn member_changes(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .filter(|s| s.id.kind == "StatefulSet" && s.is_change())
        .flat_map(|s| {
            s.changes.iter().map(move |c| {
                format!(
                    "{} {}: {} -> {}",
                    s.op.as_str(),
                    c.path,
                    c.old.is_some(),
                    c.new.is_some()
                )
            })
        })
        .collect()
}

#[tokio::test]
async fn a_new_greeting_rolls_the_members_through_their_pod_template() {
    let stack = stack();
    stack
        .up(&objects(&Settings::default(), PASSWORD))
        .await
        .unwrap();
    let hash_key = identity().config_hash_annotation();
    let hash_path = format!("spec.template.metadata.annotations[\"{hash_key}\"]");
    let members = stack.get(&id("apps/v1", "StatefulSet", NAME)).unwrap();
    let before = members["spec"]["template"]["metadata"]["annotations"][hash_key.as_str()].clone();
    assert_eq!(before.as_str().map(str::len), Some(16), "{members}");

    let greeting = Settings {
        greeting: "good evening".into(),
        ..Settings::default()
    };
    let plan = stack.plan(&objects(&greeting, PASSWORD)).await.unwrap();
    assert_eq!(
        member_changes(&plan),
        [format!("update {hash_path}: true -> true")],
        "{:?}",
        ops(&plan)
    );
    let step = plan
        .steps
        .iter()
        .find(|s| s.id.kind == "StatefulSet")
        .unwrap();
    let change = &step.changes[0];
    assert_eq!(change.old.as_ref(), Some(&before));
    assert_ne!(change.new.as_ref(), Some(&before));
    assert!(!shown(&plan).contains(PASSWORD));
}

#[tokio::test]
async fn a_new_password_rolls_the_members_without_showing_either_password() {
    let stack = stack();
    stack
        .up(&objects(&Settings::default(), PASSWORD))
        .await
        .unwrap();
    let changed = "another-long-password";
    let plan = stack
        .plan(&objects(&Settings::default(), changed))
        .await
        .unwrap();
    let hash_key = identity().config_hash_annotation();
    assert_eq!(
        member_changes(&plan),
        [format!(
            "update spec.template.metadata.annotations[\"{hash_key}\"]: true -> true"
        )]
    );
    let text = shown(&plan);
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(!text.contains(changed), "{text}");

    // The same password again is no change: the hash is the same on every run.
    let again = stack
        .plan(&objects(&Settings::default(), PASSWORD))
        .await
        .unwrap();
    assert!(!again.has_changes(), "{:?}", ops(&again));
}
