//! What `destroy` costs the API server: waiting for deleted objects to go
//! lists each kind once per poll for all of them, so the requests grow with
//! the deletes themselves, not with deletes times polls.

use crate::harness::TestStack;

/// Echo services in the stack: a ConfigMap, a Deployment and a Service each.
const ECHOES: usize = 10;
/// Requests a destroy sends whatever the stack's size: reading the stack's
/// kinds for the plan, and the polls of each wave of deletes.
const FIXED: u64 = 20;

fn echoes(count: usize) -> String {
    let mut text = String::from("echoes:\n");
    for i in 0..count {
        text.push_str(&format!(
            "  - name: e{i}\n    replicas: 1\n    serviceType: ClusterIP\n"
        ));
    }
    text
}

#[test]
fn destroy_sends_little_more_than_one_request_per_object() {
    let stack = TestStack::new("destroy-requests");
    stack.write(&echoes(ECHOES));
    stack.ok(&["up", "--yes"]);
    let objects = (ECHOES * 3) as u64;

    let run = stack.run_env(&["destroy", "--yes"], &[("ECHO_IAC_STATS", "1")]);
    run.assert_code(0);
    let requests = run.requests();
    eprintln!("destroy of {objects} objects sent {requests} requests");
    assert!(
        requests * 10 <= objects * 12 + FIXED * 10,
        "{requests} requests for {objects} objects, more than 1.2 per object + {FIXED}:\n{run}"
    );
    for kind in ["configmaps", "deployments", "services"] {
        let left = crate::util::kubectl_json(&["get", kind, "-n", &stack.namespace]);
        let names: Vec<&str> = left["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|o| o["metadata"]["name"].as_str())
            .filter(|n| *n != "kube-root-ca.crt")
            .collect();
        assert!(names.is_empty(), "{kind} left after destroy: {names:?}");
    }
    assert!(
        stack
            .state()
            .is_none_or(|s| s["resources"].as_array().is_none_or(|r| r.is_empty())),
        "the state still lists objects: {:?}",
        stack.state()
    );
}
