//! A preview that skips the dry run of objects its state proves unchanged
//! gives the same verdict as one that dry-runs every object (`--full`),
//! whatever drifted in between.

use serde_json::Value;

use crate::harness::TestStack;
use crate::util;

const ECHOES: &str = "echoes:
  - name: a
    replicas: 1
    serviceType: ClusterIP
  - name: b
    replicas: 1
    serviceType: ClusterIP
  - name: c
    replicas: 1
    serviceType: ClusterIP
  - name: d
    replicas: 1
    serviceType: ClusterIP
";

/// The steps of `preview --json` (or with `--full`), as `op kind name`
/// with their changes, and the API requests the preview sent.
fn verdict(stack: &TestStack, full: bool) -> (Vec<(String, Value)>, u64) {
    let mut args = vec!["preview", "--json"];
    if full {
        args.push("--full");
    }
    let run = stack.run_env(&args, &[("ECHO_IAC_STATS", "1")]);
    let plan: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("preview --json is not JSON ({e}):\n{run}"));
    let mut steps: Vec<(String, Value)> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let name = format!(
                "{} {} {}",
                s["op"].as_str().unwrap_or_default(),
                s["kind"].as_str().unwrap_or_default(),
                s["name"].as_str().unwrap_or_default()
            );
            let mut changes = s["changes"].clone();
            if let Some(list) = changes.as_array_mut() {
                list.sort_by_key(|c| c["path"].to_string());
            }
            (name, changes)
        })
        .collect();
    steps.sort_by(|a, b| a.0.cmp(&b.0));
    (steps, run.requests())
}

fn kubectl_ok(args: &[&str]) {
    let out = util::kubectl(args);
    assert!(out.status.success(), "kubectl {args:?}: {out:?}");
}

#[test]
fn a_proven_preview_gives_the_verdict_of_a_full_one_for_every_drift() {
    let stack = TestStack::new("proof");
    stack.write(ECHOES);
    stack.ok(&["up", "--yes"]);
    let ns = stack.namespace.clone();

    let (same, proven_requests) = verdict(&stack, false);
    let (full, full_requests) = verdict(&stack, true);
    assert_eq!(same, full);
    assert!(
        same.iter().all(|(s, _)| s.starts_with("same ")),
        "{same:#?}"
    );
    assert!(
        proven_requests < full_requests,
        "proven {proven_requests} requests, full {full_requests}"
    );

    // Each drift, then the same verdict both ways; `up` puts it right
    // before the next.
    type Drift = Box<dyn Fn()>;
    let n = ns.clone();
    let drifts: Vec<(&str, Drift)> = vec![
        (
            "an owned field changed by another client",
            Box::new(move || {
                kubectl_ok(&[
                    "patch",
                    "configmap",
                    "a-config",
                    "-n",
                    &n,
                    "--type=merge",
                    "-p",
                    r#"{"data":{"default.conf":"server { listen 80; }"}}"#,
                ])
            }),
        ),
        ("kubectl scale", {
            let n = ns.clone();
            Box::new(move || kubectl_ok(&["scale", "deployment", "b", "-n", &n, "--replicas=3"]))
        }),
        ("a forced apply by another manager", {
            let n = ns.clone();
            Box::new(move || {
                let manifest = format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c-config\n  namespace: {n}\ndata:\n  default.conf: taken\n"
                );
                let out = util::kubectl_with_stdin(
                    &[
                        "apply",
                        "--server-side",
                        "--force-conflicts",
                        "--field-manager=other",
                        "-f",
                        "-",
                    ],
                    Some(&manifest),
                );
                assert!(out.status.success(), "{out:?}");
            })
        }),
        ("a label removed", {
            let n = ns.clone();
            Box::new(move || {
                kubectl_ok(&[
                    "label",
                    "service",
                    "d-service",
                    "-n",
                    &n,
                    "echo-iac.io/stack-",
                ])
            })
        }),
        ("an object deleted", {
            let n = ns.clone();
            Box::new(move || kubectl_ok(&["delete", "configmap", "b-config", "-n", &n]))
        }),
        ("an object deleted and created again", {
            let n = ns.clone();
            Box::new(move || {
                let live = util::kubectl_json(&["get", "service", "a-service", "-n", &n]);
                kubectl_ok(&["delete", "service", "a-service", "-n", &n]);
                let mut again = live.clone();
                let meta = again["metadata"].as_object_mut().unwrap();
                for key in [
                    "uid",
                    "resourceVersion",
                    "creationTimestamp",
                    "managedFields",
                ] {
                    meta.remove(key);
                }
                again["spec"].as_object_mut().unwrap().remove("clusterIP");
                again["spec"].as_object_mut().unwrap().remove("clusterIPs");
                let out =
                    util::kubectl_with_stdin(&["create", "-f", "-"], Some(&again.to_string()));
                assert!(out.status.success(), "{out:?}");
            })
        }),
        (
            "a field it does not own changed, and an annotation added",
            {
                let n = ns.clone();
                Box::new(move || {
                    kubectl_ok(&[
                        "annotate",
                        "deployment",
                        "c",
                        "-n",
                        &n,
                        "example.com/note=hello",
                    ]);
                    kubectl_ok(&[
                        "patch",
                        "deployment",
                        "c",
                        "-n",
                        &n,
                        "--type=merge",
                        "-p",
                        r#"{"spec":{"minReadySeconds":5}}"#,
                    ]);
                })
            },
        ),
        ("a mutating webhook configuration added", {
            let n = ns.clone();
            Box::new(move || {
                let webhook = format!(
                    "apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata:
  name: proof-{n}
webhooks:
- name: proof.example.com
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Ignore
  timeoutSeconds: 1
  clientConfig:
    service: {{name: nowhere, namespace: {n}, path: /mutate}}
  namespaceSelector:
    matchLabels: {{kubernetes.io/metadata.name: {n}}}
  rules:
  - operations: [CREATE, UPDATE]
    apiGroups: ['']
    apiVersions: [v1]
    resources: [configmaps]
"
                );
                let out = util::kubectl_with_stdin(&["apply", "-f", "-"], Some(&webhook));
                assert!(out.status.success(), "{out:?}");
            })
        }),
    ];
    for (what, drift) in drifts {
        drift();
        let (proven, _) = verdict(&stack, false);
        let (full, _) = verdict(&stack, true);
        assert_eq!(proven, full, "after {what}");
        stack.ok(&["up", "--yes", "--force-conflicts"]);
    }
    let webhook = format!("proof-{ns}");
    let (after_webhook, requests) = verdict(&stack, false);
    assert!(
        after_webhook.iter().all(|(s, _)| s.starts_with("same ")),
        "{after_webhook:#?}"
    );
    // Every proof holds again, the re-created object's under its new uid:
    // the preview sends its lists and nothing else, as the first one did.
    assert_eq!(
        requests, proven_requests,
        "the proofs were not all recorded again"
    );
    kubectl_ok(&["delete", "mutatingwebhookconfiguration", &webhook]);
    // The configuration it was proven under is gone: dry runs again.
    let (_, without) = verdict(&stack, false);
    assert!(without >= full_requests, "{without} < {full_requests}");

    // The stack file changed.
    stack.write(&ECHOES.replacen("replicas: 1", "replicas: 2", 1));
    let (proven, _) = verdict(&stack, false);
    let (full, _) = verdict(&stack, true);
    assert_eq!(proven, full);
    assert!(
        proven.iter().any(|(s, _)| s == "update Deployment a"),
        "{proven:#?}"
    );
    stack.ok(&["destroy", "--yes"]);
}
