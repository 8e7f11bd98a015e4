//! Plans for the rendering tests, built from real-looking echo stack objects
//! so the snapshots read like what a user would see.

use serde_json::{Value, json};

use echo_iac_engine::diff::changes;
use echo_iac_engine::{Blocker, Conflict, Op, Plan, ResourceId, Step};

pub(crate) fn namespace(name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "echo-iac"}},
    })
}

pub(crate) fn config_map(message: &str) -> Value {
    let conf = format!(
        "server {{\n    listen 80;\n    location / {{\n        default_type text/plain;\n        return 200 \"{message}: $server_addr\\n\";\n    }}\n}}\n"
    );
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "nginx-echo-config", "namespace": "echo-dev"},
        "data": {"default.conf": conf},
    })
}

pub(crate) fn deployment(name: &str, replicas: u64, image: &str, app: &str) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": "echo-dev",
            "labels": {"app.kubernetes.io/managed-by": "echo-iac", "echo-iac.io/stack": "dev"},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {
                    "containers": [{
                        "name": "nginx",
                        "image": image,
                        "ports": [{"containerPort": 80}],
                        "volumeMounts": [{"name": "config", "mountPath": "/etc/nginx/conf.d"}],
                    }],
                },
            },
        },
    })
}

pub(crate) fn service(name: &str, node_port: u64) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "echo-dev"},
        "spec": {
            "type": "NodePort",
            "selector": {"app": "echo-nodeport"},
            "ports": [{"protocol": "TCP", "port": 80, "targetPort": 80, "nodePort": node_port}],
        },
    })
}

/// A step whose changes are computed from its two sides, as the planner does.
pub(crate) fn step(op: Op, live: Option<Value>, planned: Option<Value>) -> Step {
    let object = planned.as_ref().or(live.as_ref()).expect("one side");
    let id = ResourceId::of(object).expect("identity");
    let changes = match (&live, &planned) {
        (Some(live), Some(planned)) if op != Op::Same => changes(live, planned),
        (None, Some(planned)) if op == Op::Create && planned["kind"] == "Secret" => {
            changes(&json!({}), planned)
        }
        _ => Vec::new(),
    };
    Step {
        op,
        id,
        changes,
        reason: None,
        blocker: None,
        live,
        planned,
    }
}

fn with_reason(mut step: Step, reason: &str) -> Step {
    step.reason = Some(reason.to_string());
    step
}

fn with_blocker(mut step: Step, blocker: Blocker) -> Step {
    step.blocker = Some(blocker);
    step
}

fn plan(steps: Vec<Step>) -> Plan {
    Plan {
        stack: "dev".to_string(),
        steps,
        interrupted: Vec::new(),
        untracked: Vec::new(),
        left_out: Vec::new(),
    }
}

/// The seed's stack scaled down, a config edit, a selector change, a prune,
/// and an object deleted out of band.
pub(crate) fn every_op_plan() -> Plan {
    let mut scaled = deployment(
        "nginx-echo-nodeport",
        1,
        "nginx:1.27-alpine",
        "echo-nodeport",
    );
    scaled["spec"]["template"]["spec"]["containers"][0]["ports"]
        .as_array_mut()
        .expect("ports")
        .push(json!({"containerPort": 443}));
    let mut live_echo = deployment("nginx-echo-nodeport", 3, "nginx:alpine", "echo-nodeport");
    live_echo["metadata"]["labels"]["tier"] = json!("frontend");

    plan(vec![
        step(Op::Create, None, Some(namespace("echo-dev"))),
        step(
            Op::Update,
            Some(config_map("Hello! I am Pod")),
            Some(config_map("Hi from dev")),
        ),
        step(Op::Update, Some(live_echo), Some(scaled)),
        with_reason(
            step(
                Op::Replace,
                Some(deployment("web", 2, "nginx:alpine", "web")),
                Some(deployment("web", 2, "nginx:alpine", "web2")),
            ),
            "spec.selector is immutable; the object will be deleted and recreated",
        ),
        with_reason(
            step(Op::Create, None, Some(service("web-service", 30008))),
            "in the state but gone from the cluster (deleted out of band)",
        ),
        step(
            Op::Same,
            Some(service("echo-nodeport-service", 30007)),
            Some(service("echo-nodeport-service", 30007)),
        ),
        with_reason(
            step(Op::Delete, Some(service("old-service", 30009)), None),
            "no longer in the program",
        ),
    ])
}

/// Two fields someone scaled and patched with kubectl, and an interrupted
/// earlier run.
pub(crate) fn conflict_plan() -> Plan {
    let live = deployment("nginx-echo-nodeport", 5, "nginx:1.25", "echo-nodeport");
    let planned = deployment("nginx-echo-nodeport", 3, "nginx:alpine", "echo-nodeport");
    let conflicts = vec![
        Conflict {
            path: "spec.replicas".to_string(),
            manager: "kubectl".to_string(),
        },
        Conflict {
            path: "spec.template.spec.containers[0].image".to_string(),
            manager: "kubectl-edit".to_string(),
        },
    ];
    let mut plan = plan(vec![
        step(
            Op::Same,
            Some(config_map("Hello! I am Pod")),
            Some(config_map("Hello! I am Pod")),
        ),
        with_blocker(
            step(Op::Update, Some(live), Some(planned)),
            Blocker::Conflicts { conflicts },
        ),
    ]);
    plan.interrupted = vec![
        "apply Deployment echo-dev/nginx-echo-nodeport (started 2025-06-01T10:15:00Z)".to_string(),
    ];
    plan
}

/// Objects with the stack's names that something else put there; one would
/// change, the others already match but still are not this stack's.
pub(crate) fn unmanaged_plan() -> Plan {
    let echo = || deployment("nginx-echo-nodeport", 3, "nginx:alpine", "echo-nodeport");
    let echo_service = || service("echo-nodeport-service", 30007);
    plan(vec![
        step(Op::Create, None, Some(namespace("echo-dev"))),
        with_blocker(
            step(
                Op::Update,
                Some(config_map("Welcome to nginx")),
                Some(config_map("Hello! I am Pod")),
            ),
            Blocker::Unmanaged {
                owner: Some("written by helm".to_string()),
            },
        ),
        with_blocker(
            step(Op::Same, Some(echo()), Some(echo())),
            Blocker::Unmanaged {
                owner: Some("managed by echo-iac stack `prod`".to_string()),
            },
        ),
        with_blocker(
            step(Op::Same, Some(echo_service()), Some(echo_service())),
            Blocker::Unmanaged { owner: None },
        ),
    ])
}

/// A node port outside the cluster's range.
pub(crate) fn rejected_plan() -> Plan {
    plan(vec![with_blocker(
        step(Op::Create, None, Some(service("echo-nodeport-service", 40000))),
        Blocker::Rejected {
            message: "Service \"echo-nodeport-service\" is invalid: spec.ports[0].nodePort: Invalid value: 40000: provided port is not in the valid range. The range of valid ports is 30000-32767".to_string(),
            fields: vec!["spec.ports[0].nodePort".to_string()],
        },
    )])
}

/// A destroy of a stack whose namespace is protected by its stack file and
/// whose ConfigMap the program retains.
pub(crate) fn guarded_plan() -> Plan {
    let mut retained = step(Op::Retain, Some(config_map("Hello! I am Pod")), None);
    retained.reason = Some(
        "retained as the program asks: kept running, without this stack's labels, and dropped from the state"
            .to_string(),
    );
    plan(vec![
        step(
            Op::Delete,
            Some(deployment(
                "nginx-echo-nodeport",
                3,
                "nginx:alpine",
                "echo-nodeport",
            )),
            None,
        ),
        retained,
        with_blocker(
            step(Op::Delete, Some(namespace("echo-dev")), None),
            Blocker::Protected {
                by: "stacks/dev.yaml:8 (protect: Namespace/echo-dev)".to_string(),
            },
        ),
    ])
}

/// Every kind of blocker in one plan.
pub(crate) fn blocked_plan() -> Plan {
    let mut all = conflict_plan();
    all.steps.extend(unmanaged_plan().steps);
    all.steps.extend(rejected_plan().steps);
    all
}

pub(crate) fn unchanged_plan() -> Plan {
    let same = |object: Value| step(Op::Same, Some(object.clone()), Some(object));
    plan(vec![
        same(namespace("echo-dev")),
        same(config_map("Hello! I am Pod")),
        same(deployment(
            "nginx-echo-nodeport",
            3,
            "nginx:alpine",
            "echo-nodeport",
        )),
    ])
}

/// The values in [`secret_plan`], none of which may be shown.
pub(crate) const SECRET_VALUES: [&str; 4] =
    ["aHVudGVyMg==", "cm90YXRlZA==", "dG9rZW4=", "ZXh0cmE="];

fn secret(name: &str, data: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": "echo-dev", "labels": {"app.kubernetes.io/managed-by": "echo-iac"}},
        "type": "Opaque",
        "data": data,
    })
}

/// A Secret created and one whose password changes and that gains a key,
/// normalized (and so masked) as the planner hands them over.
pub(crate) fn secret_plan() -> Plan {
    let normalized = |object: Value| Some(echo_iac_engine::diff::normalize(&object));
    let [old, new, token, extra] = SECRET_VALUES;
    plan(vec![
        step(
            Op::Create,
            None,
            normalized(secret("api-token", json!({"token": token}))),
        ),
        step(
            Op::Update,
            normalized(secret("db", json!({"password": old}))),
            normalized(secret("db", json!({"password": new, "extra": extra}))),
        ),
    ])
}

/// A stack of `n` ConfigMaps, each with a long file that changes on every
/// line, so every step has a large field change and a large diff.
pub(crate) fn large_plan(n: usize) -> Plan {
    let config = |i: usize, greeting: &str| {
        let file: String = (0..40)
            .map(|line| {
                format!(
                    "{greeting} from object {i}, line {line}: {}\n",
                    "x".repeat(40)
                )
            })
            .collect();
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": format!("config-{i:04}"), "namespace": "echo-dev"},
            "data": {"app.conf": file},
        })
    };
    plan(
        (0..n)
            .map(|i| step(Op::Update, Some(config(i, "hello")), Some(config(i, "hi"))))
            .collect(),
    )
}

/// A ConfigMap whose new value holds what Markdown and HTML would read as
/// markup: a table cell's bar, backticks, a fence, a tag.
pub(crate) fn markup_plan() -> Plan {
    let mut new = config_map("Hello");
    new["data"]["notes"] = json!("a | b `code` <script>alert(1)</script>\n```\nfenced\n````\n");
    let mut step = step(Op::Update, Some(config_map("Hello")), Some(new));
    step.reason = Some("why | not `this` <b>bold</b> *now*".to_string());
    plan(vec![step])
}
