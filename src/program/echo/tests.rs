use std::path::PathBuf;

use serde_json::{Value, json};

use super::config::{EchoConfig, EchoSection, ServiceType, Toleration};
use super::objects::nginx_config;
use super::*;
use echo_iac_engine::DesiredResource;

fn seed_echo() -> EchoConfig {
    EchoConfig {
        config_map_name: "nginx-echo-config".into(),
        deployment_name: "nginx-echo-nodeport".into(),
        service_name: "echo-nodeport-service".into(),
        app_label: "echo-nodeport".into(),
        replicas: 3,
        service_type: ServiceType::NodePort,
        node_port: Some(30007),
        image: "nginx:alpine".into(),
        test_image: "localhost/echo-iac/curl:1".into(),
        message: "Hello! I am Pod".into(),
        node_selector: Default::default(),
        tolerations: Vec::new(),
    }
}

fn stack(create_namespace: bool, echoes: Vec<EchoConfig>) -> StackConfig {
    StackConfig {
        name: "dev".into(),
        file: PathBuf::from("stacks/dev.yaml"),
        kubeconfig: Vec::new(),
        context: None,
        namespace: "echo-dev".into(),
        create_namespace,
        backend: echo_iac_engine::state::Backend::File(PathBuf::from("state")),
        history_limit: 10,
        protections: echo_iac_engine::Protections::default(),
        manifests: Vec::new(),
        program: EchoSection { echoes },
    }
}

/// The seed's manifests, exactly as published.
const SEED: &str = include_str!("../../../tests/fixtures/seed.yaml");

/// Removes what the program adds on top of the seed: the namespace, the
/// ownership labels and the config hash.
fn strip_additions(mut object: Value) -> Value {
    let meta = object["metadata"].as_object_mut().unwrap();
    meta.remove("namespace");
    meta.remove("labels");
    if let Some(template) = object.pointer_mut("/spec/template/metadata") {
        template.as_object_mut().unwrap().remove("annotations");
    }
    object
}

fn normalize_config(object: &mut Value) {
    // The seed indents the server block by two spaces inside the YAML literal;
    // compare the directives, not the indentation.
    if let Some(conf) = object.pointer_mut("/data/default.conf") {
        let text: String = conf
            .as_str()
            .unwrap()
            .lines()
            .map(str::trim)
            .collect::<Vec<_>>()
            .join("\n");
        *conf = Value::String(text);
    }
}

#[test]
fn default_echo_matches_the_seed_manifests() {
    let seed: Vec<Value> = serde_saphyr::from_multiple(SEED).unwrap();
    let resources = desired_resources(&stack(false, vec![seed_echo()]));
    assert_eq!(resources.len(), 3);
    for (resource, expected) in resources.iter().zip(seed) {
        let mut actual = strip_additions(resource.object.clone());
        let mut expected = expected;
        normalize_config(&mut actual);
        normalize_config(&mut expected);
        assert_eq!(actual, expected, "{}", resource.id);
    }
}

#[test]
fn every_object_carries_the_ownership_labels_and_namespace() {
    let resources = desired_resources(&stack(true, vec![seed_echo()]));
    for resource in &resources {
        let labels = &resource.object["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/managed-by"], "echo-iac");
        assert_eq!(labels["echo-iac.io/stack"], "dev");
        if resource.id.kind != "Namespace" {
            assert_eq!(resource.id.namespace.as_deref(), Some("echo-dev"));
        }
    }
}

#[test]
fn dependencies_run_namespace_config_deployment_service() {
    let resources = desired_resources(&stack(true, vec![seed_echo()]));
    let kinds: Vec<&str> = resources.iter().map(|r| r.id.kind.as_str()).collect();
    assert_eq!(kinds, ["Namespace", "ConfigMap", "Deployment", "Service"]);
    let ns = &resources[0].id;
    assert!(resources[0].depends_on.is_empty());
    assert_eq!(resources[1].depends_on, std::slice::from_ref(ns));
    assert_eq!(
        resources[2].depends_on,
        [ns.clone(), resources[1].id.clone()]
    );
    assert_eq!(
        resources[3].depends_on,
        [ns.clone(), resources[2].id.clone()]
    );
}

/// The annotation and value echo has always written for the seed's
/// message: a live stack must see no change.
const CONFIG_HASH: &str = "echo-iac.io/config-hash";
const SEED_CONFIG_HASH: &str = "4d85f70aa97efed5";

#[test]
fn the_seed_config_hash_is_the_one_live_stacks_carry() {
    let resources = desired_resources(&stack(false, vec![seed_echo()]));
    assert_eq!(
        echo_iac_engine::Identity::new(Echo::NAME).config_hash_annotation(),
        CONFIG_HASH
    );
    let annotations = resources[1]
        .object
        .pointer("/spec/template/metadata/annotations")
        .unwrap();
    assert_eq!(annotations, &json!({CONFIG_HASH: SEED_CONFIG_HASH}));
}

#[test]
fn config_change_changes_only_the_pod_template_hash() {
    let before = desired_resources(&stack(false, vec![seed_echo()]));
    let mut changed = seed_echo();
    changed.message = "Hi from dev".into();
    let after = desired_resources(&stack(false, vec![changed]));
    let hash = |r: &[DesiredResource]| {
        r[1].object
            .pointer("/spec/template/metadata/annotations")
            .unwrap()[CONFIG_HASH]
            .clone()
    };
    assert_ne!(hash(&before), hash(&after));
    let mut a = before[1].object.clone();
    let mut b = after[1].object.clone();
    a["spec"]["template"]["metadata"]["annotations"] = json!(null);
    b["spec"]["template"]["metadata"]["annotations"] = json!(null);
    assert_eq!(a, b, "only the hash differs in the Deployment");
    assert_eq!(before[2].object, after[2].object);
}

#[test]
fn nginx_config_embeds_the_message() {
    let conf = nginx_config("Hi there");
    assert!(conf.contains(r#"return 200 "Hi there: $server_addr\n";"#));
}

#[test]
fn placement_goes_to_the_pod_template_only_when_set() {
    let plain = desired_resources(&stack(false, vec![seed_echo()]));
    let pod = &plain[1].object["spec"]["template"]["spec"];
    assert!(pod.get("nodeSelector").is_none() && pod.get("tolerations").is_none());

    let mut placed = seed_echo();
    placed.node_selector = [("echo-iac.io/node".to_string(), "real".to_string())].into();
    placed.tolerations = vec![Toleration {
        key: Some("echo-iac.io/node".into()),
        operator: Some("Equal".into()),
        value: Some("real".into()),
        effect: Some("NoSchedule".into()),
    }];
    let resources = desired_resources(&stack(false, vec![placed]));
    let pod = &resources[1].object["spec"]["template"]["spec"];
    assert_eq!(pod["nodeSelector"], json!({"echo-iac.io/node": "real"}));
    assert_eq!(
        pod["tolerations"],
        json!([{"key": "echo-iac.io/node", "operator": "Equal", "value": "real", "effect": "NoSchedule"}])
    );
}

#[test]
fn service_type_sets_the_spec_type_and_a_node_port_only_where_it_has_one() {
    let service = |service_type| {
        let echo = EchoConfig {
            service_type,
            node_port: service_type.has_node_port().then_some(30100),
            ..seed_echo()
        };
        desired_resources(&stack(false, vec![echo]))[2].object["spec"].clone()
    };

    let internal = service(ServiceType::ClusterIp);
    assert_eq!(internal["type"], "ClusterIP");
    assert_eq!(
        internal["ports"],
        json!([{"protocol": "TCP", "port": 80, "targetPort": 80}]),
        "a ClusterIP Service has no nodePort field at all"
    );

    let balanced = service(ServiceType::LoadBalancer);
    assert_eq!(balanced["type"], "LoadBalancer");
    assert_eq!(balanced["ports"][0]["nodePort"], 30100);

    let node_port = service(ServiceType::NodePort);
    assert_eq!(node_port["type"], "NodePort");
    assert_eq!(node_port["ports"][0]["nodePort"], 30100);
    assert_eq!(node_port["selector"], internal["selector"]);
}

#[test]
fn a_new_stack_file_loads_back_with_the_seeds_service() {
    let root = std::path::Path::new("/projects/echo");
    let text = echo_iac_runner::new_stack_file(&Echo, "dev", "echo-dev", None, root)
        .unwrap_or_else(|e| panic!("{e}"));
    let stack = echo_iac_runner::stack::parse::<RawEchoSection>(
        "dev",
        &root.join("stacks/dev.yaml"),
        &text,
        root,
    )
    .unwrap();
    assert_eq!(stack.namespace, "echo-dev");
    assert!(stack.create_namespace);
    assert_eq!(stack.program.echoes, [seed_echo()]);
    // Every setting of an echo service is there, set or commented out.
    for key in [
        "replicas:",
        "serviceType:",
        "nodePort:",
        "image:",
        "message:",
        "# testImage:",
        "# appLabel:",
        "# nodeSelector:",
        "# tolerations:",
    ] {
        assert!(text.contains(key), "{key} missing from:\n{text}");
    }
}
