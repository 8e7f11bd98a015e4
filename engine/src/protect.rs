//! Protection and retain-on-delete: which objects a plan must never delete
//! or replace, and which it leaves in the cluster when it would delete them.
//!
//! Both come from two places: the program, per object
//! ([`Resources::protect`](crate::declare::Resources::protect) and
//! [`Resources::retain`](crate::declare::Resources::retain), recorded in the
//! state so that they outlive the program's declaration), and
//! [`Protections`], id patterns the caller gives (a stack file's lists),
//! each with a human account of where it was set.
//!
//! The planner applies them to every plan it makes, `up` and `destroy`
//! alike: a protected object's delete or replace is blocked
//! ([`crate::Blocker::Protected`]), and a retained
//! object's delete becomes [`Op::Retain`]: its
//! ownership labels are removed and it is dropped from the state, while it
//! keeps running.

use std::fmt;
use std::str::FromStr;

use crate::plan::{Op, Step};
pub use crate::resource::ResourceOptions;
use crate::resource::{DesiredResource, ResourceId};
use crate::state::State;
use crate::untracked::glob_matches;

/// Names objects as `Kind/name` (cluster-scoped) or
/// `Kind/namespace/name` (namespaced), `*` in the name matching any run of
/// characters (`PersistentVolumeClaim/echo-prod/*`). The kind matches
/// without regard to case. Unlike a `--target`, a pattern without a
/// namespace matches only cluster-scoped objects: a protection must not
/// reach into namespaces it does not name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdPattern {
    kind: String,
    namespace: Option<String>,
    name: String,
}

impl IdPattern {
    /// Whether the object `id` is one this pattern names.
    pub fn matches(&self, id: &ResourceId) -> bool {
        self.kind.eq_ignore_ascii_case(&id.kind)
            && self.namespace == id.namespace
            && glob_matches(&self.name, &id.name)
    }
}

impl fmt::Display for IdPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{ns}/{}", self.kind, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

impl FromStr for IdPattern {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let shape = || {
            format!(
                "`{text}` is not Kind/name (a cluster-scoped object) or Kind/namespace/name (a namespaced one), e.g. Namespace/echo-prod or PersistentVolumeClaim/echo-prod/*"
            )
        };
        let parts: Vec<&str> = text.split('/').collect();
        if !(2..=3).contains(&parts.len())
            || parts
                .iter()
                .any(|p| p.is_empty() || p.chars().any(char::is_whitespace))
        {
            return Err(shape());
        }
        if parts[..parts.len() - 1].iter().any(|p| p.contains('*')) {
            return Err(format!(
                "`{text}`: `*` may stand only in the name, not in the kind or the namespace"
            ));
        }
        let (namespace, name) = match parts.as_slice() {
            [_, name] => (None, *name),
            [_, ns, name] => (Some((*ns).to_string()), *name),
            _ => return Err(shape()),
        };
        Ok(IdPattern {
            kind: parts[0].to_string(),
            namespace,
            name: name.to_string(),
        })
    }
}

/// What a rule asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// Never delete or replace.
    Protect,
    /// Leave in the cluster instead of deleting.
    Retain,
}

/// One pattern and where it was set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// What it asks for.
    pub guard: Guard,
    /// The objects it names.
    pub pattern: IdPattern,
    /// Where it was set, for a person: `stacks/prod.yaml`.
    pub source: String,
}

impl Rule {
    /// How a plan names the rule: `stacks/prod.yaml (protect: Namespace/echo-prod)`.
    pub fn describe(&self) -> String {
        let key = match self.guard {
            Guard::Protect => "protect",
            Guard::Retain => "retain",
        };
        format!("{} ({key}: {})", self.source, self.pattern)
    }
}

/// Id patterns that protect or retain objects, set outside the program
/// (a stack file's `protect:` and `retain:`). Empty by default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Protections {
    rules: Vec<Rule>,
}

impl Protections {
    /// No rules.
    pub fn new() -> Self {
        Protections::default()
    }

    /// Adds a rule: `guard` for the objects `pattern` names, set in `source`.
    pub fn add(&mut self, guard: Guard, pattern: IdPattern, source: &str) -> &mut Self {
        self.rules.push(Rule {
            guard,
            pattern,
            source: source.to_string(),
        });
        self
    }

    /// The rules, in the order added.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The first rule asking `guard` for `id`.
    pub fn find(&self, guard: Guard, id: &ResourceId) -> Option<&Rule> {
        self.rules
            .iter()
            .find(|r| r.guard == guard && r.pattern.matches(id))
    }
}

/// Who asks for `guard` on `id`, as a plan says it: the program (as it
/// declares the object now, or as it did when the object was last applied,
/// if it no longer declares it), or a rule of `protections`.
pub(crate) fn asked_by(
    guard: Guard,
    id: &ResourceId,
    desired: &[DesiredResource],
    state: &State,
    protections: &Protections,
) -> Option<String> {
    let pick = |options: &ResourceOptions| match guard {
        Guard::Protect => options.protect,
        Guard::Retain => options.retain,
    };
    // While the program declares the object, its word now counts; once it
    // no longer does, what it said when the object was last applied.
    let by_program = match desired.iter().find(|d| &d.id == id) {
        Some(declared) => pick(&declared.options).then(|| "the program".to_string()),
        None => state
            .resource(id)
            .filter(|r| pick(&r.options()))
            .map(|_| "the program, when the object was last applied".to_string()),
    };
    by_program.or_else(|| protections.find(guard, id).map(Rule::describe))
}

/// A namespace the plan deletes while it retains objects in it would take
/// them along: it is retained too, and says why.
pub(crate) fn keep_namespaces_of_retained(steps: &mut [Step]) {
    let retained: Vec<ResourceId> = steps
        .iter()
        .filter(|s| s.op == Op::Retain && s.id.namespace.is_some())
        .map(|s| s.id.clone())
        .collect();
    for step in steps
        .iter_mut()
        .filter(|s| s.op == Op::Delete && s.blocker.is_none() && s.id.kind == "Namespace")
    {
        let inside: Vec<String> = retained
            .iter()
            .filter(|id| id.namespace.as_deref() == Some(step.id.name.as_str()))
            .map(|id| format!("{} {}", id.kind, id.name))
            .collect();
        if inside.is_empty() {
            continue;
        }
        let what = format!(
            "holds retained objects ({}): kept running with them, without this stack's labels, and dropped from the state",
            inside.join(", ")
        );
        step.reason = Some(match step.reason.take() {
            Some(reason) => format!("{reason}; {what}"),
            None => what,
        });
        step.op = Op::Retain;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::ResourceState;

    fn pattern(text: &str) -> IdPattern {
        text.parse().unwrap()
    }

    #[test]
    fn a_pattern_with_two_parts_names_cluster_scoped_objects_only() {
        let namespace = ResourceId::new("v1", "Namespace", None, "echo-prod");
        let config = ResourceId::new("v1", "ConfigMap", Some("echo-prod"), "echo-prod");
        assert!(pattern("Namespace/echo-prod").matches(&namespace));
        assert!(pattern("namespace/echo-*").matches(&namespace));
        assert!(!pattern("Namespace/echo-dev").matches(&namespace));
        assert!(!pattern("ConfigMap/echo-prod").matches(&config));
    }

    #[test]
    fn a_pattern_with_three_parts_names_objects_in_that_namespace() {
        let claim =
            |ns: &str, name: &str| ResourceId::new("v1", "PersistentVolumeClaim", Some(ns), name);
        let all = pattern("PersistentVolumeClaim/echo-prod/*");
        assert!(all.matches(&claim("echo-prod", "data-0")));
        assert!(!all.matches(&claim("echo-dev", "data-0")));
        assert!(!all.matches(&ResourceId::new(
            "v1",
            "Secret",
            Some("echo-prod"),
            "data-0"
        )));
        let some = pattern("PersistentVolumeClaim/echo-prod/data-*");
        assert!(some.matches(&claim("echo-prod", "data-1")));
        assert!(!some.matches(&claim("echo-prod", "logs-1")));
        assert_eq!(some.to_string(), "PersistentVolumeClaim/echo-prod/data-*");
    }

    #[test]
    fn malformed_patterns_are_refused_saying_what_is_allowed() {
        for text in [
            "echo-prod",
            "Namespace/",
            "/x",
            "a/b/c/d",
            "A//b",
            "Namespace/echo prod",
        ] {
            let err = text.parse::<IdPattern>().unwrap_err();
            assert!(err.contains("Kind/namespace/name"), "{text}: {err}");
        }
        let err = "ConfigMap/*/web".parse::<IdPattern>().unwrap_err();
        assert!(err.contains("only in the name"), "{err}");
    }

    #[test]
    fn a_namespace_holding_retained_objects_is_retained_with_them() {
        let ns = ResourceId::new("v1", "Namespace", None, "shop");
        let other = ResourceId::new("v1", "Namespace", None, "other");
        let claim = ResourceId::new("v1", "PersistentVolumeClaim", Some("shop"), "data");
        let mut steps = vec![
            Step::bare(Op::Retain, &claim),
            Step::bare(Op::Delete, &ns),
            Step::bare(Op::Delete, &other),
        ];
        keep_namespaces_of_retained(&mut steps);
        assert_eq!(steps[1].op, Op::Retain);
        assert!(
            steps[1]
                .reason
                .as_deref()
                .unwrap()
                .starts_with("holds retained objects (PersistentVolumeClaim data)")
        );
        assert_eq!(steps[2].op, Op::Delete);
    }

    #[test]
    fn the_program_while_it_declares_an_object_then_its_record_then_the_rules() {
        let id = ResourceId::new("v1", "Namespace", None, "shop");
        let mut rules = Protections::new();
        rules.add(Guard::Protect, pattern("Namespace/sh*"), "stacks/prod.yaml");
        let mut state = State::empty("prod");
        let mut record = ResourceState::new(id.clone(), "u".into(), vec![], serde_json::json!({}));
        record.protect = true;
        state.upsert_resource(record);
        let declared = |protect| DesiredResource {
            id: id.clone(),
            object: serde_json::Value::Null,
            depends_on: vec![],
            options: ResourceOptions {
                protect,
                ..ResourceOptions::default()
            },
        };
        let none = Protections::new();
        assert_eq!(
            asked_by(Guard::Protect, &id, &[declared(true)], &state, &none).as_deref(),
            Some("the program")
        );
        // The program says no more: its current word counts.
        assert_eq!(
            asked_by(Guard::Protect, &id, &[declared(false)], &state, &none),
            None
        );
        assert_eq!(
            asked_by(Guard::Protect, &id, &[], &state, &none).as_deref(),
            Some("the program, when the object was last applied")
        );
        assert_eq!(
            asked_by(Guard::Protect, &id, &[declared(false)], &state, &rules).as_deref(),
            Some("stacks/prod.yaml (protect: Namespace/sh*)")
        );
        assert_eq!(asked_by(Guard::Retain, &id, &[], &state, &rules), None);
    }
}
