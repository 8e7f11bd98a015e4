//! echo's stack as the runner's `graph` draws it, which must be the seed's
//! picture: per echo service, the ConfigMap mounted into the Deployment,
//! the Deployment's pods, the Service selecting them, and the test pod's
//! path to the Service. Nothing here is echo's own code: the runner draws
//! the picture from generic rules (references, selectors, smoke tests);
//! these tests hold it to the seed's.

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use crate::program::echo::config::{EchoConfig, EchoSection, ServiceType};
    use crate::program::echo::{Echo, desired_resources};
    use echo_iac_engine::DesiredResource;
    use echo_iac_runner::graph::{Graph, LiveObjects};
    use echo_iac_runner::{Program, StackInfo};

    /// What the cluster holds, given the declared objects.
    type ReadLive<'a> = dyn Fn(&[DesiredResource]) -> LiveObjects + 'a;

    fn stack(echoes: Vec<EchoConfig>) -> crate::program::echo::StackConfig {
        crate::program::echo::StackConfig {
            name: "dev".into(),
            file: "stacks/dev.yaml".into(),
            kubeconfig: Vec::new(),
            context: None,
            namespace: "echo-dev".into(),
            create_namespace: false,
            backend: echo_iac_engine::state::Backend::File("state".into()),
            history_limit: 10,
            protections: echo_iac_engine::Protections::default(),
            manifests: Vec::new(),
            program: EchoSection { echoes },
        }
    }

    /// The drawing of `echoes` in namespace `namespace`: live when `live`
    /// says what the cluster holds, given the declared objects.
    fn graph(namespace: &str, echoes: Vec<EchoConfig>, live: Option<&ReadLive>) -> Graph {
        let mut stack = stack(echoes);
        stack.namespace = namespace.into();
        let desired = desired_resources(&stack);
        let info = StackInfo::new(
            "dev",
            namespace,
            false,
            echo_iac_engine::Identity::new(Echo::NAME),
        );
        let tests = Echo.smoke_tests(&info, &stack.program);
        let live = live.map(|read| read(&desired));
        Graph::new("echo", namespace, &desired, &tests, live.as_ref())
    }

    fn pod(name: &str, ip: Option<&str>, ready: bool) -> Value {
        json!({
            "metadata": {"name": name},
            "status": {
                "podIP": ip,
                "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}],
            },
        })
    }

    /// The declared objects as the cluster holds them, with `status` added
    /// by kind and name, leaving out `missing`.
    fn held(
        desired: &[DesiredResource],
        status: &[(&str, &str, Value)],
        missing: &[&str],
        pods: &[(&str, Vec<Value>)],
    ) -> LiveObjects {
        let mut live = LiveObjects::new();
        for resource in desired {
            if missing.contains(&resource.id.name.as_str()) {
                continue;
            }
            let mut object = resource.object.clone();
            for (kind, name, value) in status {
                if resource.id.kind == *kind && resource.id.name == *name {
                    object["status"] = value.clone();
                }
            }
            for (name, list) in pods {
                if resource.id.kind == "Deployment" && resource.id.name == *name {
                    live = live.pods(&resource.id, list.clone());
                }
            }
            live = live.object(object);
        }
        live
    }

    /// The seed's stack, live: three pods (one not ready yet), a NodePort.
    fn live_seed() -> Graph {
        let echo = crate::program::echo::seed_echo();
        let pods = vec![
            pod("nginx-echo-nodeport-7d9c-b2", Some("10.214.0.6"), true),
            pod("nginx-echo-nodeport-7d9c-a1", Some("10.214.0.5"), true),
            pod("nginx-echo-nodeport-7d9c-c3", None, false),
        ];
        graph(
            "echo-dev",
            vec![echo],
            Some(&|desired| {
                held(
                    desired,
                    &[(
                        "Deployment",
                        "nginx-echo-nodeport",
                        json!({"readyReplicas": 2}),
                    )],
                    &[],
                    &[("nginx-echo-nodeport", pods.clone())],
                )
            }),
        )
    }

    /// Two services: a LoadBalancer with an address, and a ClusterIP whose
    /// Deployment is missing.
    fn live_two() -> Graph {
        let mut web = crate::program::echo::seed_echo();
        web.config_map_name = "web-config".into();
        web.deployment_name = "web".into();
        web.service_name = "web-service".into();
        web.app_label = "web".into();
        web.replicas = 1;
        web.service_type = ServiceType::LoadBalancer;
        web.node_port = Some(31000);
        let mut api = web.clone();
        api.config_map_name = "api-config".into();
        api.deployment_name = "api".into();
        api.service_name = "api-service".into();
        api.app_label = "api".into();
        api.service_type = ServiceType::ClusterIp;
        api.node_port = None;
        graph(
            "echo-prod",
            vec![web, api],
            Some(&|desired| {
                held(
                    desired,
                    &[
                        ("Deployment", "web", json!({"readyReplicas": 1})),
                        (
                            "Service",
                            "web-service",
                            json!({"loadBalancer": {"ingress": [{"ip": "10.213.0.200"}]}}),
                        ),
                    ],
                    &["api"],
                    &[("web", vec![pod("web-1", Some("10.214.0.9"), true)])],
                )
            }),
        )
    }

    fn offline_seed() -> Graph {
        graph("echo-dev", vec![crate::program::echo::seed_echo()], None)
    }

    #[test]
    fn live_pods_are_sorted_with_ip_and_readiness() {
        let mermaid = live_seed().mermaid();
        let pods: Vec<&str> = mermaid
            .lines()
            .filter(|l| l.trim_start().starts_with("Pod0_"))
            .collect();
        assert_eq!(
            pods,
            [
                "            Pod0_0[\"Pod: nginx-echo-nodeport-7d9c-a1<br/>10.214.0.5, ready\"]",
                "            Pod0_1[\"Pod: nginx-echo-nodeport-7d9c-b2<br/>10.214.0.6, ready\"]",
                "            Pod0_2[\"Pod: nginx-echo-nodeport-7d9c-c3<br/>no IP yet, not ready\"]",
            ]
        );
    }

    #[test]
    fn mermaid_of_the_live_seed_stack() {
        insta::assert_snapshot!(live_seed().mermaid());
    }

    #[test]
    fn dot_of_the_live_seed_stack() {
        insta::assert_snapshot!(live_seed().dot());
    }

    #[test]
    fn mermaid_of_two_services_with_a_load_balancer_and_a_missing_deployment() {
        insta::assert_snapshot!(live_two().mermaid());
    }

    #[test]
    fn dot_of_two_services_with_a_load_balancer_and_a_missing_deployment() {
        insta::assert_snapshot!(live_two().dot());
    }

    #[test]
    fn mermaid_offline_draws_the_declared_replicas() {
        insta::assert_snapshot!(offline_seed().mermaid());
    }

    #[test]
    fn dot_offline_draws_the_declared_replicas() {
        insta::assert_snapshot!(offline_seed().dot());
    }
}
