//! The fixture programs test with: plans, applies and destroys a stack as
//! the command line would.

use serde_json::json;

use super::*;
use crate::plan::Op;

fn config(name: &str, value: &str) -> DesiredResource {
    let mut object = config_map("default", name, json!({"k": value}));
    object["metadata"]["labels"] = json!({MANAGED_BY_LABEL: FIELD_MANAGER, STACK_LABEL: STACK});
    desired(object, &[])
}

#[tokio::test]
async fn a_fake_stack_plans_applies_and_converges() {
    let stack = FakeStack::new(identity(), STACK);
    let desired = [config("a", "1"), config("b", "1")];
    let plan = stack.up(&desired).await.unwrap();
    assert_eq!(
        ops(&plan),
        ["create ConfigMap default/a", "create ConfigMap default/b"]
    );
    assert_eq!(stack.get(&desired[0].id).unwrap()["data"]["k"], "1");
    assert_eq!(stack.state().await.unwrap().resources.len(), 2);

    let again = stack.plan(&desired).await.unwrap();
    assert!(!again.has_changes(), "{:?}", ops(&again));

    let changed = [config("a", "2"), config("b", "1")];
    let plan = stack.plan(&changed).await.unwrap();
    assert_eq!(plan.steps[0].op, Op::Update);
    assert_eq!(plan.steps[0].changes[0].path, "data.k");

    let plan = stack.destroy(&desired).await.unwrap();
    assert_eq!(plan.steps.len(), 2);
    assert!(stack.get(&desired[0].id).is_none());
    assert!(stack.state().await.unwrap().resources.is_empty());
}

#[tokio::test]
async fn a_fake_stack_refuses_a_blocked_plan_and_applies_nothing() {
    let stack = FakeStack::new(identity(), STACK);
    let mut theirs = config_map("default", "a", json!({"k": "theirs"}));
    theirs["metadata"]["labels"] = json!({});
    stack.fake().apply_as("kubectl", theirs);
    stack.fake().clear_log();
    let err = stack.up(&[config("a", "1")]).await.unwrap_err();
    assert!(matches!(err, EngineError::Blocked { .. }), "{err}");
    assert!(stack.fake().mutations().is_empty());
}
