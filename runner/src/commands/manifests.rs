//! The stack's manifests joined to the program's objects. They go through
//! the program's own `Resources`, so they get the same ownership labels and
//! the same dependencies from references; here they also get the stack's
//! namespace when their kind lives in namespaces and they name none, as
//! `kubectl apply -n` gives it.
//!
//! Whether a kind lives in namespaces is known without a cluster for the
//! built-in kinds and for kinds whose CustomResourceDefinition the stack
//! declares; any other kind is looked up by discovery, once per run.

use std::collections::HashMap;

use serde_json::Value;

use crate::error::Error;
use crate::stack::ManifestObject;
use echo_iac_engine::ResourceId;
use echo_iac_engine::cluster::{Cluster, ClusterError, built_in_kind};
use echo_iac_engine::declare::Resources;

/// Whether each kind (apiVersion, kind) lives in namespaces, where known.
pub(crate) type Scopes = HashMap<(String, String), bool>;

fn key(object: &Value) -> (String, String) {
    (
        object["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        object["kind"].as_str().unwrap_or_default().to_string(),
    )
}

/// The scopes of the kinds the stack's CustomResourceDefinitions define,
/// one entry per served version.
pub(crate) fn declared_scopes(resources: &Resources, manifests: &[ManifestObject]) -> Scopes {
    let mut scopes = Scopes::new();
    let objects = resources
        .declared()
        .iter()
        .map(|d| &d.object)
        .chain(manifests.iter().map(|m| &m.object));
    for object in objects {
        if object["kind"] != "CustomResourceDefinition" {
            continue;
        }
        let spec = &object["spec"];
        let (Some(group), Some(kind)) = (spec["group"].as_str(), spec["names"]["kind"].as_str())
        else {
            continue;
        };
        let namespaced = spec["scope"] != "Cluster";
        for version in spec["versions"].as_array().into_iter().flatten() {
            if let Some(version) = version["name"].as_str() {
                scopes.insert((format!("{group}/{version}"), kind.to_string()), namespaced);
            }
        }
    }
    scopes
}

fn scope_of(object: &Value, scopes: &Scopes) -> Option<bool> {
    let (api_version, kind) = key(object);
    built_in_kind(&api_version, &kind)
        .map(|found| found.namespaced)
        .or_else(|| scopes.get(&(api_version, kind)).copied())
}

/// Whether some manifest object's kind is neither built in nor defined by
/// the stack, so that only discovery can tell where it lives.
pub(crate) fn needs_discovery(manifests: &[ManifestObject], scopes: &Scopes) -> bool {
    manifests
        .iter()
        .any(|m| scope_of(&m.object, scopes).is_none())
}

/// Looks up by discovery each kind that is neither built in nor defined by
/// the stack; a kind the cluster does not serve is an error at the first
/// document that uses it.
pub(crate) async fn discover(
    cluster: &Cluster,
    manifests: &[ManifestObject],
    scopes: &mut Scopes,
) -> Result<(), Error> {
    for manifest in manifests {
        if scope_of(&manifest.object, scopes).is_some() {
            continue;
        }
        let (api_version, kind) = key(&manifest.object);
        match cluster.kind(&api_version, &kind).await {
            Ok(found) => {
                scopes.insert((api_version, kind), found.namespaced);
            }
            Err(ClusterError::UnknownKind { .. }) => {
                return Err(Error::UnknownManifestKind(manifest.error(
                    format!("the cluster serves no kind {kind} in {api_version}"),
                    "install the API that serves it (for a custom resource, its \
                         CustomResourceDefinition, which the stack may declare), or fix the \
                         document's apiVersion and kind",
                )));
            }
            Err(other) => return Err(other.into()),
        }
    }
    Ok(())
}

/// Adds the manifests' objects to `resources`: in `namespace` when their
/// kind lives in namespaces and they name none (left as written when that
/// is not known), none the same as another declared object.
pub(crate) fn join(
    resources: &mut Resources,
    manifests: Vec<ManifestObject>,
    namespace: &str,
    scopes: &Scopes,
) -> Result<(), Error> {
    let mut seen: HashMap<ResourceId, Option<String>> = resources
        .declared()
        .iter()
        .map(|d| (d.id.clone(), None))
        .collect();
    for mut manifest in manifests {
        let named = manifest.object["metadata"]["namespace"]
            .as_str()
            .is_some_and(|ns| !ns.is_empty());
        if !named && scope_of(&manifest.object, scopes) == Some(true) {
            manifest.object["metadata"]["namespace"] = Value::String(namespace.to_string());
        }
        let id = ResourceId::of(&manifest.object).expect("checked when read");
        if let Some(first) = seen.get(&id) {
            let first = match first {
                None if id.kind == "Namespace" && id.name == namespace => {
                    "the stack creates its namespace (`createNamespace: true`)".to_string()
                }
                None => "the program declares it too".to_string(),
                Some(place) => format!("it is also at {place}"),
            };
            return Err(manifest
                .error(
                    format!("{id} is declared twice: {first}"),
                    "keep one of the two: remove it from the manifest, or from the program's settings",
                )
                .into());
        }
        seen.insert(id, Some(manifest.place()));
        resources.add(manifest.object);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::stack::manifests::parse;
    use echo_iac_engine::Identity;

    fn manifests(text: &str) -> Vec<ManifestObject> {
        parse(Path::new("/p/manifests/m.yaml"), text).unwrap()
    }

    #[test]
    fn namespaced_objects_without_a_namespace_get_the_stacks() {
        let mut resources = Resources::new(&Identity::new("seed-iac"), "dev");
        let read = manifests(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: other}\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: c}\n---\n\
             apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: widgets.example.com}\n\
             spec: {group: example.com, scope: Namespaced, names: {kind: Widget, plural: widgets}, versions: [{name: v1}]}\n---\n\
             apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n",
        );
        let scopes = declared_scopes(&resources, &read);
        assert!(!needs_discovery(&read, &scopes));
        join(&mut resources, read, "dev-ns", &scopes).unwrap();
        let desired = resources.finish().unwrap();
        let namespaces: Vec<(String, Option<String>)> = desired
            .iter()
            .map(|d| (d.id.name.clone(), d.id.namespace.clone()))
            .collect();
        assert!(
            namespaces.contains(&("a".into(), Some("dev-ns".into()))),
            "{namespaces:?}"
        );
        assert!(
            namespaces.contains(&("b".into(), Some("other".into()))),
            "{namespaces:?}"
        );
        assert!(namespaces.contains(&("c".into(), None)), "{namespaces:?}");
        assert!(
            namespaces.contains(&("w".into(), Some("dev-ns".into()))),
            "{namespaces:?}"
        );
        let a = desired.iter().find(|d| d.id.name == "a").unwrap();
        assert_eq!(a.object["metadata"]["labels"]["seed-iac.io/stack"], "dev");
        // The custom resource depends on its definition, as a typed one would.
        let w = desired.iter().find(|d| d.id.name == "w").unwrap();
        assert!(
            w.depends_on
                .iter()
                .any(|d| d.kind == "CustomResourceDefinition"),
            "{:?}",
            w.depends_on
        );
    }

    #[test]
    fn manifests_depend_on_what_they_refer_to_as_typed_objects_do() {
        // The program's ConfigMap, mounted by a Deployment from a manifest.
        let mut resources = Resources::new(&Identity::new("x"), "dev");
        resources.add(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": "ns"}
        }));
        let read = manifests(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  template:\n    spec:\n      \
             containers: [{name: web, image: nginx}]\n      volumes: [{name: s, configMap: {name: settings}}]\n",
        );
        let scopes = declared_scopes(&resources, &read);
        join(&mut resources, read, "ns", &scopes).unwrap();
        let desired = resources.finish().unwrap();
        let web = desired.iter().find(|d| d.id.kind == "Deployment").unwrap();
        assert_eq!(
            web.depends_on,
            [ResourceId::new("v1", "ConfigMap", Some("ns"), "settings")]
        );
    }

    #[test]
    fn a_kind_only_discovery_knows_needs_it() {
        let resources = Resources::new(&Identity::new("x"), "dev");
        let read = manifests("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n");
        assert!(needs_discovery(&read, &declared_scopes(&resources, &read)));
    }

    #[test]
    fn a_duplicate_of_a_declared_object_names_the_file_and_document() {
        let mut resources = Resources::new(&Identity::new("x"), "dev");
        resources.add(json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "ns"}
        }));
        let read = manifests(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
        );
        let scopes = declared_scopes(&resources, &read);
        let err = join(&mut resources, read, "ns", &scopes).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with("/p/manifests/m.yaml:5:1: document 2: ConfigMap ns/a is declared twice: the program declares it too"),
            "{text}"
        );

        let mut resources = Resources::new(&Identity::new("x"), "dev");
        resources.add(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}));
        let read = manifests("apiVersion: v1\nkind: Namespace\nmetadata: {name: ns}\n");
        let err = join(&mut resources, read, "ns", &Scopes::new()).unwrap_err();
        assert!(err.to_string().contains("`createNamespace: true`"), "{err}");

        let mut resources = Resources::new(&Identity::new("x"), "dev");
        let read = manifests(
            "apiVersion: v1\nkind: Secret\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: a}\n",
        );
        let err = join(&mut resources, read, "ns", &Scopes::new()).unwrap_err();
        assert!(
            err.to_string()
                .contains("it is also at /p/manifests/m.yaml:1 (document 1)"),
            "{err}"
        );
    }
}
