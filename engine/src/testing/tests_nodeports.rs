//! Node ports held by Services anywhere in the cluster, against the fake
//! API server, which allocates them cluster-wide as a real one does.

use serde_json::json;

use super::*;
use crate::nodeports;
use crate::plan::{Blocker, Op};

fn prod_service(ns: &str, name: &str, port: i64) -> Value {
    let mut svc = service(ns, name, Some(port));
    svc["metadata"]["labels"][STACK_LABEL] = json!("prod");
    svc
}

#[tokio::test]
async fn holders_are_found_in_every_namespace_with_their_stack() {
    let fake = FakeApi::new();
    fake.insert(namespace("a"));
    fake.insert(namespace("b"));
    fake.insert(prod_service("a", "web", 30007));
    let mut plain = service("b", "other", Some(30008));
    plain["metadata"]["labels"] = json!({});
    fake.insert(plain);
    let holders = nodeports::holders(&fake.cluster(identity()), &[30007, 30008])
        .await
        .unwrap()
        .expect("may list");
    let named: Vec<String> = holders
        .iter()
        .map(|h| format!("{} {}", h.port, h.describe()))
        .collect();
    assert_eq!(
        named,
        [
            "30007 Service a/web (shop-iac stack `prod`)",
            "30008 Service b/other"
        ]
    );
    let list = &fake.requests()[0];
    assert_eq!(list.to_string(), "GET services");
    assert_eq!(list.verb, Verb::List);
}

#[tokio::test]
async fn holders_are_unknown_when_services_may_not_be_listed_cluster_wide() {
    let fake = FakeApi::new();
    fake.inject(Fault::on(Verb::List).resource("services").status(403));
    let holders = nodeports::holders(&fake.cluster(identity()), &[30007])
        .await
        .unwrap();
    assert_eq!(holders, None);
}

#[tokio::test]
async fn a_create_refused_for_a_taken_port_names_the_holder() {
    let stack = Stack::new();
    stack.fake.insert(namespace("other"));
    stack.fake.insert(prod_service("other", "web", 30007));
    let plan = stack
        .plan(&[desired(service("ns", "web", Some(30007)), &[])])
        .await;
    let step = &plan.steps[0];
    assert_eq!(step.op, Op::Create);
    let Some(Blocker::Rejected { message, fields }) = &step.blocker else {
        panic!("{step:?}");
    };
    assert!(
        message.ends_with(
            "provided port is already allocated; node port 30007 is held by Service other/web (shop-iac stack `prod`)"
        ),
        "{message}"
    );
    assert_eq!(fields, &["spec.ports[0].nodePort"]);
}

#[tokio::test]
async fn an_update_refused_for_a_taken_port_names_the_other_holder_not_itself() {
    let stack = Stack::new();
    stack
        .up(&[desired(service("ns", "web", Some(30010)), &[])])
        .await;
    stack.fake.insert(namespace("other"));
    stack.fake.insert(prod_service("other", "web", 30007));
    let plan = stack
        .plan(&[desired(service("ns", "web", Some(30007)), &[])])
        .await;
    let Some(Blocker::Rejected { message, .. }) = &plan.steps[0].blocker else {
        panic!("{:?}", plan.steps[0]);
    };
    assert!(
        message.ends_with("node port 30007 is held by Service other/web (shop-iac stack `prod`)"),
        "{message}"
    );
    assert!(!message.contains("ns/web"), "{message}");
}

#[tokio::test]
async fn a_service_moving_namespace_with_its_port_deletes_the_old_one_first() {
    let stack = Stack::new();
    stack.fake.insert(namespace("new"));
    let old = service("ns", "web", Some(30007));
    stack.up(&[desired(old.clone(), &[])]).await;

    let moved = service("new", "web", Some(30007));
    let desired = [desired(moved.clone(), &[])];
    let plan = stack.plan(&desired).await;
    assert_eq!(
        ops(&plan),
        ["create Service new/web", "delete Service ns/web"]
    );
    let create = &plan.steps[0];
    assert!(create.blocker.is_none(), "{create:?}");
    assert_eq!(
        create.reason.as_deref(),
        Some("node port 30007 is held by Service ns/web, which this plan deletes first")
    );
    // The create was validated without the port, and is shown with it.
    let planned = create.planned.as_ref().unwrap();
    assert_eq!(planned["spec"]["ports"][0]["nodePort"], 30007);

    stack.fake.clear_log();
    let (_, result) = stack.apply(&plan, &desired).await;
    result.unwrap();
    assert_eq!(
        stack.fake.mutations(),
        ["DELETE services ns/web", "PATCH services new/web"]
    );
    let live = stack.fake.get(&id_of(&moved)).unwrap();
    assert_eq!(nodeports::node_ports(&live), [30007]);
}

#[tokio::test]
async fn node_ports_left_out_are_allocated_and_kept_across_applies() {
    let stack = Stack::new();
    let mut svc = service("ns", "web", None);
    svc["spec"]["type"] = json!("NodePort");
    stack.up(&[desired(svc.clone(), &[])]).await;
    let first = nodeports::node_ports(&stack.fake.get(&id_of(&svc)).unwrap());
    assert_eq!(first.len(), 1);
    let plan = stack.plan(&[desired(svc.clone(), &[])]).await;
    assert_eq!(ops(&plan), ["same Service ns/web"]);
    assert_eq!(
        nodeports::node_ports(&stack.fake.get(&id_of(&svc)).unwrap()),
        first
    );
}
