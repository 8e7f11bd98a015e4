//! How a program declares its objects: typed k8s-openapi objects in, the
//! engine's desired resources out, each marked as the stack's, with its
//! dependencies and in an order that applies them after what they need.
//!
//! Dependencies are explicit ([`Resources::add_after`]) or taken from the
//! references an object makes to other declared objects
//! (see the `references` module), the way a Pulumi program's resources depend
//! on the outputs they use.
//!
//! With [`Resources::roll_on_config_change`], the workloads' pod templates
//! also carry a hash of the declared ConfigMaps and Secrets their pods read,
//! so that changing those rolls the pods.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;

use crate::config_hash;
use crate::identity::Identity;
use crate::protect::Guard;
use crate::ready::{WaitRule, WaitRuleError};
use crate::references::{Declared, references};
use crate::resource::{DesiredResource, ResourceId, ResourceOptions};

/// The objects of one stack, as a program declares them.
pub struct Resources {
    identity: Identity,
    stack: String,
    declared: Vec<DesiredResource>,
    roll_on_config_change: bool,
    /// Protections and retains asked for objects, set in `finish`.
    guards: Vec<(ResourceId, Guard)>,
    /// Wait rules asked for objects, set in `finish`.
    waits: Vec<(ResourceId, WaitRule)>,
    /// Wait rules asked for every object of a kind: apiVersion, kind, rule.
    kind_waits: Vec<(String, String, WaitRule)>,
}

/// Why declared objects do not make a stack the engine can apply.
#[derive(Debug, thiserror::Error)]
pub enum DeclareError {
    /// Two objects have the same identity.
    #[error("{id} is declared twice")]
    Duplicate {
        /// The object declared twice.
        id: String,
    },
    /// An object lacks what identifies it.
    #[error("{id} has no apiVersion, kind or metadata.name")]
    Unnamed {
        /// As much of its identity as it has.
        id: String,
    },
    /// An object names a dependency that is not declared.
    #[error("{id} depends on {missing}, which is not declared")]
    MissingDependency {
        /// The dependent object.
        id: String,
        /// The dependency that is not declared.
        missing: String,
    },
    /// An object is protected or retained without being declared.
    #[error("{id} is protected or retained, but not declared")]
    NotDeclared {
        /// The object named.
        id: String,
    },
    /// An object is given a wait rule without being declared.
    #[error("{id} is given a wait rule, but not declared")]
    WaitNotDeclared {
        /// The object named.
        id: String,
    },
    /// An object's wait rule annotation cannot be read.
    #[error("{id}: annotation {annotation}: {source}")]
    WaitRule {
        /// The object.
        id: String,
        /// The annotation that holds the rule.
        annotation: String,
        /// What is wrong with the rule.
        #[source]
        source: WaitRuleError,
    },
    /// Objects depend on each other in a circle, so none can go first.
    #[error("dependency cycle: {}", cycle.join(" -> "))]
    Cycle {
        /// The objects of the circle, the first one again at the end.
        cycle: Vec<String>,
    },
}

impl Resources {
    /// An empty declaration for `stack`: every object added gets the
    /// identity's ownership labels for it.
    pub fn new(identity: &Identity, stack: &str) -> Self {
        Resources {
            identity: identity.clone(),
            stack: stack.to_string(),
            declared: Vec::new(),
            roll_on_config_change: false,
            guards: Vec::new(),
            waits: Vec::new(),
            kind_waits: Vec::new(),
        }
    }

    /// Makes [`finish`](Self::finish) roll the pods of every Deployment,
    /// StatefulSet and DaemonSet when a ConfigMap or Secret they read
    /// changes, since Kubernetes restarts no pod for that on its own.
    ///
    /// Each such workload whose pod template mounts (directly or through a
    /// projected volume) or takes environment variables from ConfigMaps or
    /// Secrets declared here gets the pod template annotation
    /// [`Identity::config_hash_annotation`] (`<name>.io/config-hash`): 16
    /// hex digits that change when those objects' `data`, `binaryData` or
    /// `stringData` do, and only then. A new annotation is a new pod
    /// template, which the workload rolls out in place. Objects declared
    /// elsewhere are left out, as their content is unknown here; a workload
    /// that reads none of those declared here is left as it is.
    ///
    /// A Secret's values cannot be read back from the annotation, nor
    /// guessed from it more cheaply than from the state: its part is
    /// Argon2id at the cost of the state's seals (see [`crate::sensitive`]),
    /// salted by the stack and the Secret's namespace and name.
    ///
    /// ```
    /// use echo_iac_engine::Identity;
    /// use echo_iac_engine::declare::Resources;
    /// use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
    /// use k8s_openapi::api::core::v1::{
    ///     ConfigMap, ConfigMapVolumeSource, PodSpec, PodTemplateSpec, Volume,
    /// };
    /// use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    ///
    /// let meta = |name: &str| ObjectMeta {
    ///     name: Some(name.into()),
    ///     namespace: Some("shop".into()),
    ///     ..ObjectMeta::default()
    /// };
    /// let identity = Identity::new("shop-iac");
    /// let mut resources = Resources::new(&identity, "dev");
    /// resources.roll_on_config_change();
    /// resources.add(ConfigMap {
    ///     metadata: meta("settings"),
    ///     data: Some([("greeting".to_string(), "hello".to_string())].into()),
    ///     ..ConfigMap::default()
    /// });
    /// resources.add(Deployment {
    ///     metadata: meta("web"),
    ///     spec: Some(DeploymentSpec {
    ///         template: PodTemplateSpec {
    ///             spec: Some(PodSpec {
    ///                 volumes: Some(vec![Volume {
    ///                     name: "settings".into(),
    ///                     config_map: Some(ConfigMapVolumeSource {
    ///                         name: "settings".into(),
    ///                         ..ConfigMapVolumeSource::default()
    ///                     }),
    ///                     ..Volume::default()
    ///                 }]),
    ///                 ..PodSpec::default()
    ///             }),
    ///             ..PodTemplateSpec::default()
    ///         },
    ///         ..DeploymentSpec::default()
    ///     }),
    ///     ..Deployment::default()
    /// });
    /// let desired = resources.finish()?;
    /// let web = desired.iter().find(|d| d.id.kind == "Deployment").unwrap();
    /// let hash = &web.object["spec"]["template"]["metadata"]["annotations"]
    ///     ["shop-iac.io/config-hash"];
    /// assert_eq!(hash.as_str().map(str::len), Some(16));
    /// # Ok::<(), echo_iac_engine::declare::DeclareError>(())
    /// ```
    pub fn roll_on_config_change(&mut self) -> &mut Self {
        self.roll_on_config_change = true;
        self
    }

    /// Declares `object`; it depends on the declared objects it refers to.
    /// Returns its id, to name it as another object's dependency.
    pub fn add<K: Serialize>(&mut self, object: K) -> ResourceId {
        self.add_after(object, &[])
    }

    /// Declares `object`, to be applied (and ready) after `depends_on` as
    /// well as after the objects it refers to.
    pub fn add_after<K: Serialize>(&mut self, object: K, depends_on: &[&ResourceId]) -> ResourceId {
        let mut object =
            serde_json::to_value(object).expect("Kubernetes objects serialize to JSON");
        let labels = &mut object["metadata"]["labels"];
        if !labels.is_object() {
            *labels = Value::Object(Default::default());
        }
        for (key, value) in self.identity.ownership_labels(&self.stack) {
            labels[key] = Value::String(value);
        }
        let id = ResourceId::of(&object).unwrap_or_else(|| ResourceId::new("", "", None, ""));
        self.declared.push(DesiredResource {
            id: id.clone(),
            object,
            depends_on: depends_on.iter().map(|id| (*id).clone()).collect(),
            options: ResourceOptions::default(),
        });
        id
    }

    /// Protects the declared object `id`: no plan deletes or replaces it,
    /// not `up`, not a prune once the program stops declaring it (the
    /// state records the protection), not `destroy`; such a step is
    /// blocked, naming the program as what protects it. To delete it,
    /// drop the call and run `up` first. Fails in [`finish`](Self::finish)
    /// if `id` is not declared here.
    pub fn protect(&mut self, id: &ResourceId) -> &mut Self {
        self.guards.push((id.clone(), Guard::Protect));
        self
    }

    /// Retains the declared object `id` on delete: when a plan would delete
    /// it (a prune, `destroy`), it stays in the cluster, its ownership
    /// labels are removed and it is dropped from the state, as Pulumi's
    /// `retainOnDelete` does. Fails in [`finish`](Self::finish) if `id` is
    /// not declared here.
    pub fn retain(&mut self, id: &ResourceId) -> &mut Self {
        self.guards.push((id.clone(), Guard::Retain));
        self
    }

    /// Makes a wait after applying the declared object `id` wait for
    /// `rule` instead of the rules of its kind: a condition or a field's
    /// value, and what means it failed, so the wait stops at once with the
    /// object's reason and message. Fails in [`finish`](Self::finish) if
    /// `id` is not declared here.
    ///
    /// An object can carry its rule itself, in the annotations
    /// `<name>.io/wait-for` and `<name>.io/wait-for-failure`
    /// ([`Identity::wait_for_annotation`]), which is how a plain manifest
    /// says it. The rule given here comes first, then the annotations,
    /// then [`wait_for_kind`](Self::wait_for_kind).
    ///
    /// ```
    /// use echo_iac_engine::Identity;
    /// use echo_iac_engine::declare::Resources;
    /// use echo_iac_engine::ready::WaitRule;
    /// use serde_json::json;
    ///
    /// let mut resources = Resources::new(&Identity::new("shop-iac"), "dev");
    /// let bucket = resources.add(json!({
    ///     "apiVersion": "storage.example.com/v1", "kind": "Bucket",
    ///     "metadata": {"name": "assets", "namespace": "shop"},
    /// }));
    /// let rule = WaitRule::new("condition=Synced=True")?
    ///     .failing_on("jsonpath={.status.phase}=Failed")?;
    /// resources.wait_for(&bucket, rule);
    /// let desired = resources.finish()?;
    /// assert!(desired[0].options.wait.is_some());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn wait_for(&mut self, id: &ResourceId, rule: WaitRule) -> &mut Self {
        self.waits.push((id.clone(), rule));
        self
    }

    /// Makes a wait after applying any declared object of `kind` in
    /// `api_version` (`example.com/v1`, `Widget`) wait for `rule`, unless
    /// it has a rule of its own ([`wait_for`](Self::wait_for) or its
    /// annotations).
    pub fn wait_for_kind(&mut self, api_version: &str, kind: &str, rule: WaitRule) -> &mut Self {
        self.kind_waits
            .push((api_version.to_string(), kind.to_string(), rule));
        self
    }

    /// The objects declared so far, as added: with their ownership labels
    /// and explicit dependencies, not yet those found from references.
    pub fn declared(&self) -> &[DesiredResource] {
        &self.declared
    }

    /// The declared objects, each with its explicit and inferred
    /// dependencies, ordered so that every object comes after those it
    /// depends on (and otherwise in declaration order).
    pub fn finish(self) -> Result<Vec<DesiredResource>, DeclareError> {
        let mut seen = HashSet::new();
        for resource in &self.declared {
            if resource.id.name.is_empty() || resource.id.kind.is_empty() {
                return Err(DeclareError::Unnamed {
                    id: resource.id.to_string(),
                });
            }
            if !seen.insert(&resource.id) {
                return Err(DeclareError::Duplicate {
                    id: resource.id.to_string(),
                });
            }
        }
        let mut resources = self.declared;
        for (id, guard) in self.guards {
            let Some(declared) = resources.iter_mut().find(|d| d.id == id) else {
                return Err(DeclareError::NotDeclared { id: id.to_string() });
            };
            match guard {
                Guard::Protect => declared.options.protect = true,
                Guard::Retain => declared.options.retain = true,
            }
        }
        for resource in &mut resources {
            resource.options.wait = annotated_rule(&resource.id, &resource.object, &self.identity)?
                .or_else(|| {
                    self.kind_waits
                        .iter()
                        .find(|(v, k, _)| *v == resource.id.api_version && *k == resource.id.kind)
                        .map(|(_, _, rule)| rule.clone())
                });
        }
        for (id, rule) in self.waits {
            let Some(declared) = resources.iter_mut().find(|d| d.id == id) else {
                return Err(DeclareError::WaitNotDeclared { id: id.to_string() });
            };
            declared.options.wait = Some(rule);
        }
        if self.roll_on_config_change {
            config_hash::annotate(&mut resources, &self.identity, &self.stack);
        }
        let ids: Vec<ResourceId> = resources.iter().map(|d| d.id.clone()).collect();
        let index = Declared::new(&ids);
        let known: HashSet<&ResourceId> = ids.iter().collect();
        for resource in &mut resources {
            if let Some(missing) = resource.depends_on.iter().find(|d| !known.contains(d)) {
                return Err(DeclareError::MissingDependency {
                    id: resource.id.to_string(),
                    missing: missing.to_string(),
                });
            }
            // What the object names first, then what the program added.
            let mut depends_on: Vec<ResourceId> = references(&resource.object, &index)
                .into_iter()
                .filter(|found| *found != resource.id)
                .collect();
            for explicit in resource.depends_on.drain(..) {
                if !depends_on.contains(&explicit) {
                    depends_on.push(explicit);
                }
            }
            resource.depends_on = depends_on;
        }
        order(resources)
    }
}

/// The wait rule the annotations of `object` (the object `id`) declare,
/// if any.
pub(crate) fn annotated_rule(
    id: &ResourceId,
    object: &Value,
    identity: &Identity,
) -> Result<Option<WaitRule>, DeclareError> {
    let annotations = &object["metadata"]["annotations"];
    let read = |key: String| -> Result<Option<(String, String)>, DeclareError> {
        match &annotations[key.as_str()] {
            Value::Null => Ok(None),
            Value::String(text) => Ok(Some((key, text.trim().to_string()))),
            other => Err(DeclareError::WaitRule {
                id: id.to_string(),
                annotation: key,
                source: WaitRuleError {
                    rule: other.to_string(),
                    why: "an annotation's value is a string".into(),
                },
            }),
        }
    };
    let ready = read(identity.wait_for_annotation())?;
    let failed = read(identity.wait_for_failure_annotation())?;
    if ready.is_none() && failed.is_none() {
        return Ok(None);
    }
    let malformed = |annotation: &str| {
        let id = id.to_string();
        let annotation = annotation.to_string();
        move |source| DeclareError::WaitRule {
            id,
            annotation,
            source,
        }
    };
    let mut rule = WaitRule::default();
    if let Some((key, text)) = &ready {
        rule = WaitRule::new(text).map_err(malformed(key))?;
    }
    if let Some((key, text)) = &failed {
        rule = rule.failing_on(text).map_err(malformed(key))?;
    }
    Ok(Some(rule))
}

/// A stable topological order: repeatedly the first object (in declaration
/// order) whose dependencies are all placed.
fn order(resources: Vec<DesiredResource>) -> Result<Vec<DesiredResource>, DeclareError> {
    let index: HashMap<ResourceId, usize> = resources
        .iter()
        .enumerate()
        .map(|(i, r)| (r.id.clone(), i))
        .collect();
    let mut placed = vec![false; resources.len()];
    let mut sequence = Vec::with_capacity(resources.len());
    while sequence.len() < resources.len() {
        let next = (0..resources.len())
            .find(|&i| !placed[i] && resources[i].depends_on.iter().all(|d| placed[index[d]]));
        match next {
            Some(i) => {
                placed[i] = true;
                sequence.push(i);
            }
            None => return Err(cycle(&resources, &placed, &index)),
        }
    }
    let mut slots: Vec<Option<DesiredResource>> = resources.into_iter().map(Some).collect();
    Ok(sequence
        .into_iter()
        .map(|i| slots[i].take().expect("each placed once"))
        .collect())
}

/// One cycle among the objects not placed, for the error.
fn cycle(
    resources: &[DesiredResource],
    placed: &[bool],
    index: &HashMap<ResourceId, usize>,
) -> DeclareError {
    let start = (0..resources.len())
        .find(|&i| !placed[i])
        .expect("an unplaced object");
    let mut path = vec![start];
    loop {
        let last = *path.last().expect("non-empty");
        let next = resources[last]
            .depends_on
            .iter()
            .map(|d| index[d])
            .find(|&i| !placed[i])
            .expect("an unplaced object has an unplaced dependency");
        if let Some(at) = path.iter().position(|&i| i == next) {
            let mut cycle: Vec<String> = path[at..]
                .iter()
                .map(|&i| resources[i].id.to_string())
                .collect();
            cycle.push(resources[next].id.to_string());
            return DeclareError::Cycle { cycle };
        }
        path.push(next);
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
    use k8s_openapi::api::core::v1::{
        ConfigMap, ConfigMapVolumeSource, Namespace, PodSpec, PodTemplateSpec, Service, Volume,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn meta(name: &str, namespace: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            namespace: namespace.map(str::to_string),
            ..ObjectMeta::default()
        }
    }

    fn deployment_mounting(config_map: &str) -> Deployment {
        Deployment {
            metadata: meta("web", Some("shop")),
            spec: Some(DeploymentSpec {
                template: PodTemplateSpec {
                    spec: Some(PodSpec {
                        volumes: Some(vec![Volume {
                            name: "config".into(),
                            config_map: Some(ConfigMapVolumeSource {
                                name: config_map.into(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }]),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn references_become_dependencies_and_order_follows_them() {
        let mut resources = Resources::new(&Identity::new("shop-iac"), "dev");
        // Declared before what it needs: the order puts it after.
        let web = resources.add(deployment_mounting("settings"));
        let settings = resources.add(ConfigMap {
            metadata: meta("settings", Some("shop")),
            ..Default::default()
        });
        let namespace = resources.add(Namespace {
            metadata: meta("shop", None),
            ..Default::default()
        });
        let service = resources.add_after(
            Service {
                metadata: meta("web", Some("shop")),
                ..Default::default()
            },
            &[&web],
        );
        let resources = resources.finish().unwrap();
        let order: Vec<&ResourceId> = resources.iter().map(|r| &r.id).collect();
        assert_eq!(order, [&namespace, &settings, &web, &service]);
        assert_eq!(
            resources[2].depends_on,
            [namespace.clone(), settings.clone()]
        );
        assert_eq!(resources[3].depends_on, [namespace.clone(), web.clone()]);
        let labels = &resources[0].object["metadata"]["labels"];
        assert_eq!(labels["app.kubernetes.io/managed-by"], "shop-iac");
        assert_eq!(labels["shop-iac.io/stack"], "dev");
    }

    #[test]
    fn a_reference_to_an_undeclared_object_is_not_a_dependency() {
        let mut resources = Resources::new(&Identity::new("x"), "dev");
        resources.add(deployment_mounting("made-elsewhere"));
        let resources = resources.finish().unwrap();
        assert!(resources[0].depends_on.is_empty());
    }

    #[test]
    fn duplicates_missing_dependencies_and_cycles_are_refused() {
        let mut twice = Resources::new(&Identity::new("x"), "dev");
        for _ in 0..2 {
            twice.add(ConfigMap {
                metadata: meta("a", Some("ns")),
                ..Default::default()
            });
        }
        assert!(matches!(
            twice.finish(),
            Err(DeclareError::Duplicate { .. })
        ));

        let mut missing = Resources::new(&Identity::new("x"), "dev");
        let ghost = ResourceId::new("v1", "ConfigMap", Some("ns"), "ghost");
        missing.add_after(
            ConfigMap {
                metadata: meta("a", Some("ns")),
                ..Default::default()
            },
            &[&ghost],
        );
        let err = missing.finish().unwrap_err();
        assert_eq!(
            err.to_string(),
            "ConfigMap ns/a depends on ConfigMap ns/ghost, which is not declared"
        );

        let mut cyclic = Resources::new(&Identity::new("x"), "dev");
        let a = ResourceId::new("v1", "ConfigMap", Some("ns"), "a");
        let b = ResourceId::new("v1", "ConfigMap", Some("ns"), "b");
        cyclic.add_after(
            ConfigMap {
                metadata: meta("a", Some("ns")),
                ..Default::default()
            },
            &[&b],
        );
        cyclic.add_after(
            ConfigMap {
                metadata: meta("b", Some("ns")),
                ..Default::default()
            },
            &[&a],
        );
        let err = cyclic.finish().unwrap_err();
        assert_eq!(
            err.to_string(),
            "dependency cycle: ConfigMap ns/a -> ConfigMap ns/b -> ConfigMap ns/a"
        );
    }

    #[test]
    fn protect_and_retain_mark_declared_objects_and_refuse_others() {
        let mut resources = Resources::new(&Identity::new("x"), "dev");
        let namespace = resources.add(Namespace {
            metadata: meta("shop", None),
            ..Default::default()
        });
        let config = resources.add(ConfigMap {
            metadata: meta("a", Some("shop")),
            ..Default::default()
        });
        resources.protect(&namespace).retain(&config);
        let declared = resources.finish().unwrap();
        let options = |id: &ResourceId| {
            declared
                .iter()
                .find(|d| &d.id == id)
                .unwrap()
                .options
                .clone()
        };
        assert!(options(&namespace).protect && !options(&namespace).retain);
        assert!(options(&config).retain && !options(&config).protect);

        let mut wrong = Resources::new(&Identity::new("x"), "dev");
        wrong.protect(&ResourceId::new("v1", "Namespace", None, "ghost"));
        assert_eq!(
            wrong.finish().unwrap_err().to_string(),
            "Namespace ghost is protected or retained, but not declared"
        );
    }

    #[test]
    fn a_wait_rule_comes_from_the_program_then_the_annotations_then_the_kind() {
        let widget = |name: &str, annotations: Value| {
            serde_json::json!({"apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": {"name": name, "namespace": "ns", "annotations": annotations}})
        };
        let mut resources = Resources::new(&Identity::new("x"), "dev");
        let plain = resources.add(widget("plain", serde_json::json!({})));
        let annotated = resources.add(widget(
            "annotated",
            serde_json::json!({"x.io/wait-for": "condition=Synced",
                "x.io/wait-for-failure": "jsonpath={.status.phase}=Failed"}),
        ));
        let chosen = resources.add(widget(
            "chosen",
            serde_json::json!({"x.io/wait-for": "condition=Synced"}),
        ));
        let other = resources.add(ConfigMap {
            metadata: meta("c", Some("ns")),
            ..Default::default()
        });
        resources
            .wait_for_kind(
                "example.com/v1",
                "Widget",
                WaitRule::new("condition=Ready").unwrap(),
            )
            .wait_for(
                &chosen,
                WaitRule::new("jsonpath={.status.phase}=Running").unwrap(),
            );
        let declared = resources.finish().unwrap();
        let rule = |id: &ResourceId| {
            let d = declared.iter().find(|d| &d.id == id).unwrap();
            d.options.wait.as_ref().map(ToString::to_string)
        };
        assert_eq!(rule(&plain).as_deref(), Some("condition Ready=True"));
        assert_eq!(
            rule(&annotated).as_deref(),
            Some("condition Synced=True, failed on {.status.phase}=Failed")
        );
        assert_eq!(rule(&chosen).as_deref(), Some("{.status.phase}=Running"));
        assert_eq!(rule(&other), None);

        let mut wrong = Resources::new(&Identity::new("x"), "dev");
        wrong.wait_for(
            &ResourceId::new("v1", "Namespace", None, "ghost"),
            WaitRule::default(),
        );
        assert_eq!(
            wrong.finish().unwrap_err().to_string(),
            "Namespace ghost is given a wait rule, but not declared"
        );
    }

    #[test]
    fn a_malformed_wait_rule_annotation_names_the_object_and_the_rule() {
        let mut resources = Resources::new(&Identity::new("x"), "dev");
        resources.add(
            serde_json::json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "namespace": "ns",
                "annotations": {"x.io/wait-for-failure": "condition="}}}),
        );
        assert_eq!(
            resources.finish().unwrap_err().to_string(),
            "Widget ns/w: annotation x.io/wait-for-failure: wait rule `condition=` is malformed: \
             a condition needs a type, as in condition=Ready \
             (a rule is condition=TYPE[=STATUS] or jsonpath={PATH}[=VALUE])"
        );
    }

    mod properties {
        use std::collections::BTreeSet;

        use proptest::prelude::*;

        use super::super::*;

        /// `n` ConfigMaps declared in order, object `i` after each `j` of
        /// `edges` that has `(i, j)`.
        fn declare(n: usize, edges: &BTreeSet<(usize, usize)>) -> Resources {
            let mut resources = Resources::new(&Identity::new("shop-iac"), "dev");
            let ids: Vec<ResourceId> = (0..n)
                .map(|i| ResourceId::new("v1", "ConfigMap", Some("ns"), &format!("c{i}")))
                .collect();
            for (i, _) in ids.iter().enumerate() {
                let after: Vec<&ResourceId> = edges
                    .iter()
                    .filter(|(from, _)| *from == i)
                    .map(|(_, to)| &ids[*to])
                    .collect();
                resources.add_after(
                    serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": format!("c{i}"), "namespace": "ns"}}),
                    &after,
                );
            }
            resources
        }

        fn has_cycle(n: usize, edges: &BTreeSet<(usize, usize)>) -> bool {
            // Kahn's algorithm: a cycle is whatever never runs out of
            // dependencies.
            let mut waiting: Vec<usize> = (0..n)
                .map(|i| edges.iter().filter(|(from, _)| *from == i).count())
                .collect();
            let mut ready: Vec<usize> = (0..n).filter(|&i| waiting[i] == 0).collect();
            let mut placed = 0;
            while let Some(done) = ready.pop() {
                placed += 1;
                for (from, _) in edges.iter().filter(|(_, to)| *to == done) {
                    waiting[*from] -= 1;
                    if waiting[*from] == 0 {
                        ready.push(*from);
                    }
                }
            }
            placed < n
        }

        /// Up to 12 objects and any dependencies among them, self
        /// dependencies included.
        fn graph() -> impl Strategy<Value = (usize, BTreeSet<(usize, usize)>)> {
            (1usize..12).prop_flat_map(|n| {
                (
                    Just(n),
                    prop::collection::btree_set((0..n, 0..n), 0..(2 * n)),
                )
            })
        }

        /// The same, acyclic: each object depends only on ones earlier in
        /// a shuffled order.
        fn acyclic() -> impl Strategy<Value = (usize, BTreeSet<(usize, usize)>)> {
            graph()
                .prop_flat_map(|(n, edges)| {
                    (
                        Just(n),
                        Just(edges),
                        Just((0..n).collect::<Vec<_>>()).prop_shuffle(),
                    )
                })
                .prop_map(|(n, edges, rank)| {
                    let edges = edges
                        .into_iter()
                        .filter(|(a, b)| rank[*a] > rank[*b])
                        .collect();
                    (n, edges)
                })
        }

        fn check(n: usize, edges: &BTreeSet<(usize, usize)>) -> Result<(), TestCaseError> {
            let name = |i: usize| format!("ConfigMap ns/c{i}");
            match declare(n, edges).finish() {
                Ok(ordered) => {
                    prop_assert!(!has_cycle(n, edges));
                    let position: Vec<usize> = (0..n)
                        .map(|i| {
                            ordered
                                .iter()
                                .position(|d| d.id.to_string() == name(i))
                                .expect("every object is in the order")
                        })
                        .collect();
                    prop_assert_eq!(ordered.len(), n);
                    for (from, to) in edges {
                        prop_assert!(position[*to] < position[*from], "c{} before c{}", to, from);
                    }
                }
                Err(DeclareError::Cycle { cycle }) => {
                    prop_assert!(has_cycle(n, edges));
                    prop_assert!(cycle.len() >= 2, "{:?}", cycle);
                    prop_assert_eq!(cycle.first(), cycle.last());
                    let index = |text: &String| (0..n).find(|&i| name(i) == *text);
                    for pair in cycle.windows(2) {
                        let (from, to) = (index(&pair[0]), index(&pair[1]));
                        prop_assert!(
                            from.zip(to).is_some_and(|edge| edges.contains(&edge)),
                            "{} does not depend on {} in {:?}",
                            pair[0],
                            pair[1],
                            cycle
                        );
                    }
                }
                Err(other) => prop_assert!(false, "{}", other),
            }
            Ok(())
        }

        proptest! {
            #![proptest_config(crate::testing::proptest_config())]

            #[test]
            fn any_acyclic_dependencies_are_ordered_dependencies_first(
                (n, edges) in acyclic()
            ) {
                check(n, &edges)?;
            }

            #[test]
            fn dependencies_are_ordered_or_a_real_cycle_is_named((n, edges) in graph()) {
                check(n, &edges)?;
            }
        }
    }
}
