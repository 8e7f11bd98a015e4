//! The backups program's objects and plans, against the engine's fake API
//! server, which serves no BackupSchedule kind: every plan here is one made
//! before the definition exists, so the schedules are checked locally
//! against it. No cluster needed.

use echo_iac_engine::testing::FakeStack;
use echo_iac_engine::{Blocker, DesiredResource, Identity, Op, Plan, ResourceId};
use echo_iac_runner::{Program, StackInfo, WaitRule};

use crate::program::{
    Backups, FAILED, KIND, READY, RETAIN_RULE, Schedule, Settings, declare, definition_name,
};

const STACK: &str = "dev";
const NAMESPACE: &str = "backups-dev";
const GROUP: &str = "backups.example.com";

fn identity() -> Identity {
    Identity::new(Backups::NAME)
}

fn info() -> StackInfo {
    StackInfo::new(STACK, NAMESPACE, true, identity())
}

fn schedule(name: &str, target: &str, schedule: &str) -> Schedule {
    Schedule {
        name: name.to_string(),
        target: target.to_string(),
        schedule: schedule.to_string(),
        ..Schedule::default()
    }
}

/// The two schedules of the shipped stack file.
fn two_schedules() -> Settings {
    Settings {
        schedules: vec![
            Schedule {
                retain: Some(14),
                ..schedule("orders-nightly", "postgres/orders", "0 2 * * *")
            },
            schedule("media-weekly", "s3/media", "@weekly"),
        ],
        ..Settings::default()
    }
}

/// The shipped settings with the first schedule changed by `change`.
fn with_first(change: impl FnOnce(&mut Schedule)) -> Settings {
    let mut settings = two_schedules();
    change(&mut settings.schedules[0]);
    settings
}

fn objects(settings: &Settings) -> Vec<DesiredResource> {
    declare(&info(), settings)
        .finish()
        .expect("the backups' objects fit together")
}

fn stack() -> FakeStack {
    FakeStack::new(identity(), STACK)
}

fn crd_id() -> ResourceId {
    ResourceId::new(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
        &definition_name(GROUP),
    )
}

fn schedule_id(name: &str) -> ResourceId {
    ResourceId::new(&format!("{GROUP}/v1"), KIND, Some(NAMESPACE), name)
}

/// The plan's steps as `create BackupSchedule backups-dev/media-weekly`.
fn ops(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .map(|s| format!("{} {}", s.op.as_str(), s.id))
        .collect()
}

/// What refuses the step for `id`, as its message and the fields it names.
fn refusal(plan: &Plan, id: &ResourceId) -> (String, Vec<String>) {
    let step = plan
        .steps
        .iter()
        .find(|s| s.id == *id)
        .unwrap_or_else(|| panic!("{id} is planned: {:?}", ops(plan)));
    match &step.blocker {
        Some(Blocker::Refused { message, fields }) => (message.clone(), fields.clone()),
        other => panic!("{id} is not refused but {other:?}"),
    }
}

#[test]
fn the_definition_comes_before_the_schedules_which_wait_for_ready() {
    let desired = objects(&two_schedules());
    let order: Vec<String> = desired.iter().map(|d| d.id.to_string()).collect();
    assert_eq!(
        order,
        [
            format!("Namespace {NAMESPACE}"),
            format!("CustomResourceDefinition {}", definition_name(GROUP)),
            format!("BackupSchedule {NAMESPACE}/orders-nightly"),
            format!("BackupSchedule {NAMESPACE}/media-weekly"),
        ]
    );
    let rule = WaitRule::new(READY).unwrap().failing_on(FAILED).unwrap();
    for d in &desired[2..] {
        assert!(d.depends_on.contains(&crd_id()), "{:?}", d.depends_on);
        assert_eq!(d.options.wait.as_ref(), Some(&rule), "{}", d.id);
    }
    // The definition is ready by its kind's rule, Established.
    assert_eq!(desired[1].options.wait, None);
}

#[test]
fn the_group_setting_names_the_definition_and_the_schedules_kind() {
    let settings = Settings {
        group: "t42.example.com".into(),
        ..two_schedules()
    };
    let desired = objects(&settings);
    let crd = &desired[1].object;
    assert_eq!(crd["metadata"]["name"], "backupschedules.t42.example.com");
    assert_eq!(crd["spec"]["group"], "t42.example.com");
    assert_eq!(desired[2].id.api_version, "t42.example.com/v1");
    assert!(desired[2].options.wait.is_some());
}

#[tokio::test]
async fn a_new_stack_plans_the_schedules_checked_locally_with_their_defaults() {
    let stack = stack();
    let plan = stack.plan(&objects(&two_schedules())).await.unwrap();
    assert!(
        plan.steps.iter().all(|s| s.op == Op::Create),
        "{:?}",
        ops(&plan)
    );
    assert!(plan.blocked().next().is_none(), "{plan:?}");
    for name in ["orders-nightly", "media-weekly"] {
        let step = plan
            .steps
            .iter()
            .find(|s| s.id == schedule_id(name))
            .unwrap();
        let reason = step.reason.as_deref().unwrap_or_default();
        assert!(reason.contains("validated locally"), "{reason}");
        assert!(!reason.contains("checked only when applied"), "{reason}");
    }
    // The definition's defaults, as the server would store them.
    let weekly = plan
        .steps
        .iter()
        .find(|s| s.id == schedule_id("media-weekly"))
        .and_then(|s| s.planned.as_ref())
        .unwrap();
    assert_eq!(weekly["spec"]["retain"], 7);
    assert_eq!(weekly["spec"]["minimumRetain"], 1);
    assert_eq!(weekly["spec"]["suspend"], false);
    // Nothing was written.
    assert!(stack.fake().mutations().is_empty());
}

#[tokio::test]
async fn a_retain_below_its_minimum_is_refused_by_the_cel_rule_naming_field_and_rule() {
    let settings = with_first(|s| {
        s.retain = Some(3);
        s.minimum_retain = Some(5);
    });
    let plan = stack().plan(&objects(&settings)).await.unwrap();
    let (message, fields) = refusal(&plan, &schedule_id("orders-nightly"));
    assert_eq!(fields, ["spec.retain"]);
    assert!(
        message.contains(&format!(
            "spec.retain: retain must not be below minimumRetain (rule: {RETAIN_RULE})"
        )),
        "{message}"
    );
    // The other schedule is fine, and only the bad one is blocked.
    assert_eq!(plan.blocked().count(), 1, "{:?}", ops(&plan));
}

#[tokio::test]
async fn a_retain_above_ninety_is_refused_by_the_schema() {
    let plan = stack()
        .plan(&objects(&with_first(|s| s.retain = Some(365))))
        .await
        .unwrap();
    let (message, fields) = refusal(&plan, &schedule_id("orders-nightly"));
    assert_eq!(fields, ["spec.retain"]);
    assert!(message.contains("spec.retain: 365"), "{message}");
    assert!(message.contains("(schema rule: maximum)"), "{message}");
}

#[tokio::test]
async fn a_schedule_that_is_no_cron_expression_is_refused_by_its_pattern() {
    let plan = stack()
        .plan(&objects(&with_first(|s| s.schedule = "nightly".into())))
        .await
        .unwrap();
    let (message, fields) = refusal(&plan, &schedule_id("orders-nightly"));
    assert_eq!(fields, ["spec.schedule"]);
    assert!(message.contains("(schema rule: pattern)"), "{message}");
}

#[tokio::test]
async fn an_empty_target_is_refused_by_the_schema() {
    let plan = stack()
        .plan(&objects(&with_first(|s| s.target = String::new())))
        .await
        .unwrap();
    let (message, fields) = refusal(&plan, &schedule_id("orders-nightly"));
    assert_eq!(fields, ["spec.target"]);
    assert!(message.contains("(schema rule: minLength)"), "{message}");
}
