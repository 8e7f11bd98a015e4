//! Which objects a targeted plan is limited to.
//!
//! A plan with targets changes only the objects they name (and, when
//! asked, what those depend on); every other object is left out: not
//! applied, not pruned, not deleted, and its entry in the state stays as
//! it was. A target that names nothing the program declares or the state
//! records is most likely a typo, and stops the plan before any request.

use std::collections::{BTreeSet, HashSet};

use crate::error::EngineError;
use crate::resource::{DesiredResource, ResourceId};
use crate::state::State;
use crate::untracked::Selector;

/// The objects a plan is limited to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Targets {
    /// What is targeted; `*` in a name matches any run of characters.
    pub selectors: Vec<Selector>,
    /// The namespace a selector without one means for a namespaced kind
    /// (the stack's); `None` matches the name in any namespace. A selector
    /// without a namespace always matches cluster-scoped objects.
    pub namespace: Option<String>,
    /// Also target what the targets depend on, transitively.
    pub dependencies: bool,
}

impl Targets {
    /// Targets the objects `selectors` name, in `namespace` when a selector
    /// names none.
    pub fn new(selectors: Vec<Selector>, namespace: Option<String>) -> Targets {
        Targets {
            selectors,
            namespace,
            dependencies: false,
        }
    }

    /// Whether `selector` names the object `id`.
    fn selects(&self, selector: &Selector, id: &ResourceId) -> bool {
        if selector.namespace.is_some() || id.namespace.is_none() {
            return selector.matches(id);
        }
        selector.matches(id)
            && self
                .namespace
                .as_ref()
                .is_none_or(|ns| id.namespace.as_ref() == Some(ns))
    }

    /// The objects targeted among those the program declares (`desired`)
    /// and the state records or has pending, with their dependencies when
    /// [`Targets::dependencies`] asks for them. Fails with
    /// [`EngineError::UnknownTarget`] for the first selector that names
    /// none of them.
    pub fn resolve(
        &self,
        desired: &[DesiredResource],
        state: &State,
    ) -> Result<HashSet<ResourceId>, EngineError> {
        let known: Vec<&ResourceId> = known_ids(desired, state);
        let mut chosen: HashSet<ResourceId> = HashSet::new();
        for selector in &self.selectors {
            let mut matched = false;
            for id in &known {
                if self.selects(selector, id) {
                    matched = true;
                    chosen.insert((*id).clone());
                }
            }
            if !matched {
                return Err(EngineError::UnknownTarget {
                    target: selector.to_string(),
                    known: known
                        .iter()
                        .map(|id| Selector::of(id).to_string())
                        .collect::<BTreeSet<_>>()
                        .into_iter()
                        .collect(),
                });
            }
        }
        if self.dependencies {
            add_dependencies(&mut chosen, desired, state);
        }
        Ok(chosen)
    }
}

/// Every object the program declares or the state knows of, once each.
fn known_ids<'a>(desired: &'a [DesiredResource], state: &'a State) -> Vec<&'a ResourceId> {
    let mut seen: HashSet<&ResourceId> = HashSet::new();
    desired
        .iter()
        .map(|d| &d.id)
        .chain(state.resources.iter().map(|r| &r.id))
        .chain(state.pending.iter().map(|p| &p.id))
        .filter(|id| seen.insert(*id))
        .collect()
}

/// Adds what the chosen objects depend on, transitively: as the program
/// declares it, or as the state recorded it for objects no longer
/// declared.
fn add_dependencies(chosen: &mut HashSet<ResourceId>, desired: &[DesiredResource], state: &State) {
    let depends_on = |id: &ResourceId| -> Vec<ResourceId> {
        match desired.iter().find(|d| &d.id == id) {
            Some(d) => d.depends_on.clone(),
            None => state
                .resource(id)
                .map(|r| r.depends_on.clone())
                .unwrap_or_default(),
        }
    };
    let mut queue: Vec<ResourceId> = chosen.iter().cloned().collect();
    while let Some(id) = queue.pop() {
        for dep in depends_on(&id) {
            if chosen.insert(dep.clone()) {
                queue.push(dep);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ResourceState;

    fn id(kind: &str, ns: Option<&str>, name: &str) -> ResourceId {
        ResourceId::new("v1", kind, ns, name)
    }

    fn declared(id: ResourceId, deps: &[&ResourceId]) -> DesiredResource {
        DesiredResource {
            id,
            object: serde_json::Value::Null,
            depends_on: deps.iter().map(|d| (*d).clone()).collect(),
            options: Default::default(),
        }
    }

    fn targets(texts: &[&str]) -> Targets {
        Targets::new(
            texts.iter().map(|t| t.parse().unwrap()).collect(),
            Some("app".into()),
        )
    }

    #[test]
    fn globs_match_any_run_of_characters() {
        use crate::untracked::glob_matches;
        assert!(glob_matches("web", "web"));
        assert!(!glob_matches("web", "webs"));
        assert!(glob_matches("web-*", "web-1"));
        assert!(glob_matches("web-*", "web-"));
        assert!(glob_matches("*", "anything"));
        assert!(glob_matches("*-config", "nginx-config"));
        assert!(glob_matches("a*b*c", "a-b-b-c"));
        assert!(!glob_matches("a*b*c", "a-c"));
        assert!(!glob_matches("ab*ba", "aba"));
    }

    #[test]
    fn a_target_without_namespace_means_the_stacks_namespace_or_a_cluster_scoped_object() {
        let in_app = id("ConfigMap", Some("app"), "web");
        let elsewhere = id("ConfigMap", Some("other"), "web");
        let namespace = id("Namespace", None, "app");
        let desired = [
            declared(in_app.clone(), &[]),
            declared(elsewhere.clone(), &[]),
            declared(namespace.clone(), &[]),
        ];
        let state = State::empty("dev");
        let chosen = targets(&["configmap/web", "namespace/app"])
            .resolve(&desired, &state)
            .unwrap();
        assert_eq!(chosen, HashSet::from([in_app, namespace]));
        let chosen = targets(&["ConfigMap/other/w*"])
            .resolve(&desired, &state)
            .unwrap();
        assert_eq!(chosen, HashSet::from([elsewhere]));
    }

    #[test]
    fn dependencies_are_added_transitively_from_the_program_and_the_state() {
        let ns = id("Namespace", None, "app");
        let config = id("ConfigMap", Some("app"), "web");
        let deploy = id("Deployment", Some("app"), "web");
        let gone = id("Service", Some("app"), "old");
        let desired = [
            declared(ns.clone(), &[]),
            declared(config.clone(), &[&ns]),
            declared(deploy.clone(), &[&config]),
        ];
        let mut state = State::empty("dev");
        state.upsert_resource(ResourceState {
            id: gone.clone(),
            uid: "u".into(),
            depends_on: vec![config.clone()],
            applied: serde_json::Value::Null.into(),
            protect: false,
            retain: false,
            proof: None,
        });
        let mut with = targets(&["Deployment/web"]);
        with.dependencies = true;
        let chosen = with.resolve(&desired, &state).unwrap();
        assert_eq!(chosen, HashSet::from([ns.clone(), config.clone(), deploy]));
        let chosen = with
            .clone()
            .with_selectors(&["Service/old"])
            .resolve(&desired, &state)
            .unwrap();
        assert_eq!(chosen, HashSet::from([ns, config, gone]));
    }

    impl Targets {
        fn with_selectors(mut self, texts: &[&str]) -> Targets {
            self.selectors = texts.iter().map(|t| t.parse().unwrap()).collect();
            self
        }
    }

    #[test]
    fn a_target_that_names_nothing_is_an_error_listing_the_known_ids() {
        let desired = [declared(id("ConfigMap", Some("app"), "web"), &[])];
        let err = targets(&["ConfigMap/wbe"])
            .resolve(&desired, &State::empty("dev"))
            .unwrap_err();
        match err {
            EngineError::UnknownTarget { target, known } => {
                assert_eq!(target, "ConfigMap/wbe");
                assert_eq!(known, ["ConfigMap/app/web"]);
            }
            other => panic!("{other:?}"),
        }
    }
}
