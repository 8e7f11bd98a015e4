//! The other objects an object refers to by name: its namespace, what its
//! pods mount or read (ConfigMaps, Secrets, claims, a service account), a
//! StatefulSet's governing Service, an Ingress's backends, a binding's role
//! and a custom resource's definition. A declared object it refers to must
//! exist first, so it becomes a dependency.

use std::collections::HashMap;

use serde_json::Value;

use crate::resource::ResourceId;

/// Declared objects by API group, kind, namespace and name, for finding
/// references without a scan per reference.
pub(crate) struct Declared<'a> {
    by_name: HashMap<(&'a str, &'a str, Option<&'a str>, &'a str), Vec<&'a ResourceId>>,
    definitions: Vec<&'a ResourceId>,
}

impl<'a> Declared<'a> {
    pub(crate) fn new(ids: &'a [ResourceId]) -> Self {
        let mut by_name: HashMap<_, Vec<&ResourceId>> = HashMap::new();
        for id in ids {
            by_name
                .entry((
                    group_of(&id.api_version),
                    id.kind.as_str(),
                    id.namespace.as_deref(),
                    id.name.as_str(),
                ))
                .or_default()
                .push(id);
        }
        Declared {
            by_name,
            definitions: ids
                .iter()
                .filter(|id| id.kind == "CustomResourceDefinition")
                .collect(),
        }
    }
}

fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(group, _)| group)
}

/// Those of `declared` that `object` refers to, in the order found.
pub(crate) fn references(object: &Value, declared: &Declared<'_>) -> Vec<ResourceId> {
    let namespace = object["metadata"]["namespace"].as_str();
    let mut wanted: Vec<Wanted> = Vec::new();
    if let Some(ns) = namespace {
        wanted.push(Wanted::named("", "Namespace", None, ns));
    }
    let kind = object["kind"].as_str().unwrap_or_default();
    let spec = &object["spec"];
    let pod_spec = match kind {
        "Pod" => Some(spec),
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
            Some(&spec["template"]["spec"])
        }
        "CronJob" => Some(&spec["jobTemplate"]["spec"]["template"]["spec"]),
        _ => None,
    };
    if let Some(pod) = pod_spec {
        pod_references(pod, namespace, &mut wanted);
    }
    match kind {
        "StatefulSet" => {
            if let Some(name) = spec["serviceName"].as_str() {
                wanted.push(Wanted::named("", "Service", namespace, name));
            }
            for template in items(&spec["volumeClaimTemplates"]) {
                if let Some(class) = template["spec"]["storageClassName"].as_str() {
                    wanted.push(Wanted::named("storage.k8s.io", "StorageClass", None, class));
                }
            }
        }
        "PersistentVolumeClaim" => {
            if let Some(class) = spec["storageClassName"].as_str() {
                wanted.push(Wanted::named("storage.k8s.io", "StorageClass", None, class));
            }
        }
        "Ingress" => {
            let mut backends = vec![&spec["defaultBackend"]];
            for rule in items(&spec["rules"]) {
                backends.extend(items(&rule["http"]["paths"]).map(|p| &p["backend"]));
            }
            for backend in backends {
                if let Some(name) = backend["service"]["name"].as_str() {
                    wanted.push(Wanted::named("", "Service", namespace, name));
                }
            }
            for tls in items(&spec["tls"]) {
                if let Some(name) = tls["secretName"].as_str() {
                    wanted.push(Wanted::named("", "Secret", namespace, name));
                }
            }
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            let role = &object["roleRef"];
            if let (Some(role_kind), Some(name)) = (role["kind"].as_str(), role["name"].as_str()) {
                let role_namespace = (role_kind == "Role").then_some(namespace).flatten();
                wanted.push(Wanted::named(
                    "rbac.authorization.k8s.io",
                    role_kind,
                    role_namespace,
                    name,
                ));
            }
            for subject in items(&object["subjects"]) {
                if subject["kind"] == "ServiceAccount"
                    && let Some(name) = subject["name"].as_str()
                {
                    let ns = subject["namespace"].as_str().or(namespace);
                    wanted.push(Wanted::named("", "ServiceAccount", ns, name));
                }
            }
        }
        "HorizontalPodAutoscaler" | "VerticalPodAutoscaler" => {
            let target = &spec["scaleTargetRef"];
            if let (Some(target_kind), Some(name)) =
                (target["kind"].as_str(), target["name"].as_str())
            {
                let group = target["apiVersion"]
                    .as_str()
                    .and_then(|v| v.split_once('/'))
                    .map_or("", |(group, _)| group);
                wanted.push(Wanted::named(group, target_kind, namespace, name));
            }
        }
        _ => {}
    }

    let mut found = resolve(&wanted, declared);
    // A custom resource needs its definition: the declared CRD whose group
    // and kind it is.
    if let Some((group, _)) = object["apiVersion"]
        .as_str()
        .and_then(|v| v.split_once('/'))
    {
        let definition_suffix = format!(".{group}");
        for id in &declared.definitions {
            if id.name.ends_with(&definition_suffix)
                && !found.contains(id)
                && crd_names_kind(&id.name, group, kind)
            {
                found.push((*id).clone());
            }
        }
    }
    found
}

/// A CRD is named `<plural>.<group>`; without its body the plural is
/// guessed the way Kubernetes' own tooling usually forms it.
fn crd_names_kind(name: &str, group: &str, kind: &str) -> bool {
    let plural = name.trim_end_matches(group).trim_end_matches('.');
    let lower = kind.to_lowercase();
    plural == lower || plural == format!("{lower}s") || plural == format!("{lower}es")
}

/// Those of `declared` that the pods of `object` read their configuration
/// from: the ConfigMaps and Secrets they mount (directly or projected) or
/// take environment variables from, when `object` is a Deployment,
/// StatefulSet or DaemonSet (the kinds that roll their pods when the pod
/// template changes). An image pull secret is left out: the containers
/// never see it.
pub(crate) fn mounted_config(object: &Value, declared: &Declared<'_>) -> Vec<ResourceId> {
    let rolls = object["apiVersion"]
        .as_str()
        .is_some_and(|v| v.starts_with("apps/"))
        && matches!(
            object["kind"].as_str(),
            Some("Deployment" | "StatefulSet" | "DaemonSet")
        );
    if !rolls {
        return Vec::new();
    }
    let mut wanted = Vec::new();
    pod_config(
        &object["spec"]["template"]["spec"],
        object["metadata"]["namespace"].as_str(),
        &mut wanted,
    );
    let mut found = resolve(&wanted, declared);
    found.retain(|id| id.kind == "ConfigMap" || id.kind == "Secret");
    found
}

/// The declared objects among `wanted`, each once, in the order wanted.
fn resolve(wanted: &[Wanted<'_>], declared: &Declared<'_>) -> Vec<ResourceId> {
    let mut found: Vec<ResourceId> = Vec::new();
    for want in wanted {
        let key = (want.group, want.kind, want.namespace, want.name);
        for id in declared.by_name.get(&key).into_iter().flatten() {
            if !found.contains(id) {
                found.push((*id).clone());
            }
        }
    }
    found
}

fn pod_references<'a>(pod: &'a Value, namespace: Option<&'a str>, wanted: &mut Vec<Wanted<'a>>) {
    pod_config(pod, namespace, wanted);
    if let Some(name) = pod["serviceAccountName"].as_str() {
        wanted.push(Wanted::named("", "ServiceAccount", namespace, name));
    }
    for secret in items(&pod["imagePullSecrets"]) {
        if let Some(name) = secret["name"].as_str() {
            wanted.push(Wanted::named("", "Secret", namespace, name));
        }
    }
}

/// What a pod's containers read: volumes (claims too) and environment.
fn pod_config<'a>(pod: &'a Value, namespace: Option<&'a str>, wanted: &mut Vec<Wanted<'a>>) {
    for volume in items(&pod["volumes"]) {
        if let Some(name) = volume["configMap"]["name"].as_str() {
            wanted.push(Wanted::named("", "ConfigMap", namespace, name));
        }
        if let Some(name) = volume["secret"]["secretName"].as_str() {
            wanted.push(Wanted::named("", "Secret", namespace, name));
        }
        if let Some(name) = volume["persistentVolumeClaim"]["claimName"].as_str() {
            wanted.push(Wanted::named("", "PersistentVolumeClaim", namespace, name));
        }
        for source in items(&volume["projected"]["sources"]) {
            if let Some(name) = source["configMap"]["name"].as_str() {
                wanted.push(Wanted::named("", "ConfigMap", namespace, name));
            }
            if let Some(name) = source["secret"]["name"].as_str() {
                wanted.push(Wanted::named("", "Secret", namespace, name));
            }
        }
    }
    let containers = items(&pod["containers"]).chain(items(&pod["initContainers"]));
    for container in containers {
        for env in items(&container["env"]) {
            let from = &env["valueFrom"];
            if let Some(name) = from["configMapKeyRef"]["name"].as_str() {
                wanted.push(Wanted::named("", "ConfigMap", namespace, name));
            }
            if let Some(name) = from["secretKeyRef"]["name"].as_str() {
                wanted.push(Wanted::named("", "Secret", namespace, name));
            }
        }
        for from in items(&container["envFrom"]) {
            if let Some(name) = from["configMapRef"]["name"].as_str() {
                wanted.push(Wanted::named("", "ConfigMap", namespace, name));
            }
            if let Some(name) = from["secretRef"]["name"].as_str() {
                wanted.push(Wanted::named("", "Secret", namespace, name));
            }
        }
    }
}

fn items(value: &Value) -> impl Iterator<Item = &Value> {
    value.as_array().into_iter().flatten()
}

/// An object looked for by API group, kind, namespace and name.
struct Wanted<'a> {
    group: &'a str,
    kind: &'a str,
    namespace: Option<&'a str>,
    name: &'a str,
}

impl<'a> Wanted<'a> {
    fn named(group: &'a str, kind: &'a str, namespace: Option<&'a str>, name: &'a str) -> Self {
        Wanted {
            group,
            kind,
            namespace,
            name,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn id(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> ResourceId {
        ResourceId::new(api_version, kind, namespace, name)
    }

    #[test]
    fn a_statefulset_needs_its_namespace_service_config_and_secrets() {
        let declared = [
            id("v1", "Namespace", None, "db"),
            id("v1", "Service", Some("db"), "pg"),
            id("v1", "ConfigMap", Some("db"), "pg-conf"),
            id("v1", "Secret", Some("db"), "pg-password"),
            id("v1", "ServiceAccount", Some("db"), "pg"),
            id("v1", "ConfigMap", Some("other"), "pg-conf"),
            id("policy/v1", "PodDisruptionBudget", Some("db"), "pg"),
        ];
        let statefulset = json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "pg", "namespace": "db"},
            "spec": {"serviceName": "pg", "template": {"spec": {
                "serviceAccountName": "pg",
                "volumes": [{"name": "conf", "configMap": {"name": "pg-conf"}}],
                "containers": [{"name": "pg", "env": [{"name": "PW",
                    "valueFrom": {"secretKeyRef": {"name": "pg-password", "key": "pw"}}}]}]}}}});
        let found = references(&statefulset, &Declared::new(&declared));
        let expected = [0, 2, 3, 4, 1].map(|i| declared[i].clone());
        assert_eq!(found, expected);
    }

    #[test]
    fn a_deployment_reads_the_config_it_mounts_and_takes_env_from_but_not_its_pull_secret() {
        let declared = [
            id("v1", "ConfigMap", Some("a"), "settings"),
            id("v1", "Secret", Some("a"), "tls"),
            id("v1", "ConfigMap", Some("a"), "flags"),
            id("v1", "Secret", Some("a"), "registry"),
            id("v1", "PersistentVolumeClaim", Some("a"), "data"),
            id("v1", "Secret", Some("a"), "token"),
        ];
        let template = json!({"spec": {
            "imagePullSecrets": [{"name": "registry"}],
            "volumes": [
                {"name": "s", "configMap": {"name": "settings"}},
                {"name": "d", "persistentVolumeClaim": {"claimName": "data"}},
                {"name": "p", "projected": {"sources": [{"secret": {"name": "tls"}}]}}],
            "containers": [{"name": "c",
                "envFrom": [{"configMapRef": {"name": "flags"}}],
                "env": [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "token", "key": "t"}}}]}]}});
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "a"}, "spec": {"template": template}});
        let expected = [0, 1, 5, 2].map(|i| declared[i].clone());
        assert_eq!(
            mounted_config(&deployment, &Declared::new(&declared)),
            expected
        );
        // A Job's pods run once: a new template does not restart them.
        let job = json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "web", "namespace": "a"}, "spec": {"template": template}});
        assert!(mounted_config(&job, &Declared::new(&declared)).is_empty());
    }

    #[test]
    fn bindings_ingresses_and_custom_resources_find_what_they_name() {
        let declared = [
            id("rbac.authorization.k8s.io/v1", "Role", Some("a"), "reader"),
            id("v1", "ServiceAccount", Some("a"), "bot"),
            id("v1", "Service", Some("a"), "web"),
            id(
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                None,
                "widgets.example.com",
            ),
        ];
        let binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "b", "namespace": "a"},
            "roleRef": {"kind": "Role", "name": "reader", "apiGroup": "rbac.authorization.k8s.io"},
            "subjects": [{"kind": "ServiceAccount", "name": "bot"}]});
        assert_eq!(
            references(&binding, &Declared::new(&declared)),
            declared[..2].to_vec()
        );
        let ingress = json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": "i", "namespace": "a"},
            "spec": {"rules": [{"http": {"paths": [{"backend": {"service": {"name": "web"}}}]}}]}});
        assert_eq!(
            references(&ingress, &Declared::new(&declared)),
            [declared[2].clone()]
        );
        let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "namespace": "a"}});
        assert_eq!(
            references(&widget, &Declared::new(&declared)),
            [declared[3].clone()]
        );
    }
}
