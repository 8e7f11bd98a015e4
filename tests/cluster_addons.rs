//! The real node's add-ons (tests/cluster/node-addons.sh), with plain
//! manifests: cluster DNS (CoreDNS behind kube-system/kube-dns), which pods
//! with the default dnsPolicy ask, and MetalLB in layer 2 mode, whose
//! addresses this machine reaches over the node's veth.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::real_node::{curl_image, http_get, place_on_real_node, real_node};
use crate::util::{self, TestNamespace};

/// node-lib.sh's kube-dns address and MetalLB pool.
const CLUSTER_DNS_IP: &str = "10.96.0.10";
const POOL_FIRST: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 200);
const POOL_LAST: Ipv4Addr = Ipv4Addr::new(10, 213, 0, 220);
/// The body of the nginx image's index page (tests/cluster/node-image.sh).
const NGINX_WELCOME: &str = "<h1>Welcome to nginx!</h1>";

/// An nginx Deployment `web` (on the real node, through the namespace's
/// annotations) behind a Service `name` of `service_type`.
fn nginx_behind(ns: &TestNamespace, name: &str, service_type: &str, replicas: u32) {
    util::apply_yaml(
        ns,
        &format!(
            "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: nginx
        image: docker.io/library/nginx:alpine
        imagePullPolicy: Never
        ports: [{{containerPort: 80}}]
        readinessProbe:
          httpGet: {{path: /, port: 80}}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata:
  name: {name}
spec:
  type: {service_type}
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 80}}]
"
        ),
    );
    util::kubectl_ok(&[
        "rollout",
        "status",
        "deployment/web",
        "-n",
        ns.name(),
        "--timeout=90s",
    ]);
}

#[test]
fn a_pod_on_the_real_node_curls_a_service_by_short_name_and_fqdn_through_cluster_dns() {
    let (node, _) = real_node();
    let ns = TestNamespace::new("cluster-dns");
    place_on_real_node(ns.name());
    nginx_behind(&ns, "echo-nodeport-service", "ClusterIP", 1);
    let cluster_ip = util::kubectl_ok(&[
        "get",
        "service",
        "echo-nodeport-service",
        "-n",
        ns.name(),
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);

    // curl prints each answer, then the address it connected to: the
    // Service's cluster IP, which only cluster DNS can have given it; and
    // last the pod's resolv.conf. kube-proxy programs a new Service's rules
    // a moment after its endpoints are ready, and until then the cluster IP
    // refuses or is unreachable: every error is retried for a while.
    let fqdn = format!("echo-nodeport-service.{}.svc.cluster.local", ns.name());
    util::apply_yaml(
        &ns,
        &format!(
            "apiVersion: v1
kind: Pod
metadata:
  name: curl
spec:
  restartPolicy: Never
  containers:
  - name: curl
    image: {image}
    imagePullPolicy: Never
    args: [-sS, --max-time, '5', --retry, '15', --retry-all-errors, --retry-delay, '1',
      -w, 'connected to %{{remote_ip}}\\n',
      'http://echo-nodeport-service/', 'http://{fqdn}/', 'file:///etc/resolv.conf']
",
            image = curl_image(&node)
        ),
    );
    let phase = util::wait_for(Duration::from_secs(60), "the curl pod to finish", || {
        let pod = util::kubectl_json(&["get", "pod", "curl", "-n", ns.name()]);
        match pod["status"]["phase"].as_str() {
            Some(phase @ ("Succeeded" | "Failed")) => Ok(phase.to_string()),
            other => Err(format!("phase {other:?}")),
        }
    });
    let logs = util::kubectl_ok(&["logs", "curl", "-n", ns.name()]);
    assert_eq!(phase, "Succeeded", "curl failed; its output:\n{logs}");
    assert_eq!(
        logs.matches(NGINX_WELCOME).count(),
        2,
        "curl did not get nginx's page for both names:\n{logs}"
    );
    assert_eq!(
        logs.matches(&format!("connected to {cluster_ip}\n"))
            .count(),
        2,
        "curl did not connect to the Service's cluster IP {cluster_ip} for both names:\n{logs}"
    );
    let pod = util::kubectl_json(&["get", "pod", "curl", "-n", ns.name()]);
    assert_eq!(pod["spec"]["nodeName"], node.as_str(), "{pod:#}");

    // The pod's resolver is the kube-dns Service, with the cluster's search
    // path (the kubelet writes both from its clusterDNS and clusterDomain).
    let dns = util::kubectl_json(&["get", "service", "kube-dns", "-n", "kube-system"]);
    assert_eq!(dns["spec"]["clusterIP"], CLUSTER_DNS_IP, "{dns:#}");
    for line in [
        format!("nameserver {CLUSTER_DNS_IP}"),
        format!(
            "search {}.svc.cluster.local svc.cluster.local cluster.local",
            ns.name()
        ),
    ] {
        assert!(
            logs.lines().any(|l| l.trim() == line),
            "the pod's resolv.conf lacks {line:?}:\n{logs}"
        );
    }
}

#[test]
fn load_balancer_services_get_pool_addresses_that_answer_on_this_machine() {
    real_node();
    let ns = TestNamespace::new("load-balancer");
    place_on_real_node(ns.name());
    nginx_behind(&ns, "web-lb-0", "ClusterIP", 2);
    // Several Services: MetalLB picks the announcing node per address, and
    // an address that went to a node without a speaker would never answer.
    let names = ["web-lb-0", "web-lb-1", "web-lb-2"];
    let start = Instant::now();
    for name in names {
        util::apply_yaml(
            &ns,
            &format!(
                "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n  type: LoadBalancer\n  \
                 selector: {{app: web}}\n  ports: [{{port: 80, targetPort: 80}}]\n"
            ),
        );
    }

    let mut addresses = Vec::new();
    for name in names {
        let ip: Ipv4Addr = util::wait_for(
            Duration::from_secs(60),
            &format!("an address for the LoadBalancer Service {name}"),
            || {
                let service = util::kubectl_json(&["get", "service", name, "-n", ns.name()]);
                service["status"]["loadBalancer"]["ingress"][0]["ip"]
                    .as_str()
                    .ok_or_else(|| format!("status {:#}", service["status"]))?
                    .parse::<Ipv4Addr>()
                    .map_err(|e| e.to_string())
            },
        );
        assert!(
            (POOL_FIRST..=POOL_LAST).contains(&ip),
            "{name} got {ip}, which is not in MetalLB's pool {POOL_FIRST}-{POOL_LAST}"
        );
        assert!(
            !addresses.contains(&ip),
            "{name} got {ip}, which another Service has: {addresses:?}"
        );
        addresses.push(ip);
    }
    let assigned = start.elapsed();

    for ip in &addresses {
        let addr = SocketAddr::new(IpAddr::V4(*ip), 80);
        let (status, body) = util::wait_for(
            Duration::from_secs(60),
            &format!("an answer from http://{addr}/"),
            || http_get(addr),
        );
        assert_eq!(status, 200, "http://{addr}/ answered {status}: {body:?}");
        assert!(
            body.contains(NGINX_WELCOME),
            "http://{addr}/ did not answer nginx's page: {body:?}"
        );
    }
    eprintln!(
        "load balancer: {addresses:?} assigned within {:.1}s, all answering {:.1}s after the apply",
        assigned.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );

    // Deleting a Service releases its address: it stops answering.
    util::kubectl_ok(&["delete", "service", names[0], "-n", ns.name()]);
    let addr = SocketAddr::new(IpAddr::V4(addresses[0]), 80);
    util::wait_for(
        Duration::from_secs(30),
        &format!("http://{addr}/ to stop answering"),
        || match http_get(addr) {
            Err(_) => Ok(()),
            Ok(answer) => Err(format!("it still answers {answer:?}")),
        },
    );
}
