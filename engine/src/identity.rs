//! Who the engine acts as: the field manager of every apply, the labels that
//! mark the objects a stack owns, and the names of the objects that hold a
//! stack's state and lock. A program picks its name once; everything else
//! follows from it, so two programs on one cluster never claim each other's
//! objects.

use std::collections::BTreeMap;

use serde_json::Value;

/// The well-known label naming the tool that manages an object.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

/// Who a program applies as: its name gives the field manager, the
/// ownership labels (`app.kubernetes.io/managed-by` and
/// `<name>.io/stack`) and the names of a stack's state Secret and Lease.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    name: String,
    domain: String,
}

impl Identity {
    /// An identity named `name` (a DNS label, e.g. `echo-iac`): field
    /// manager `name`, labels and annotations under `<name>.io/`.
    pub fn new(name: &str) -> Self {
        Identity {
            name: name.to_string(),
            domain: format!("{name}.io"),
        }
    }

    /// The program's name, as messages call it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The server-side apply field manager.
    pub fn field_manager(&self) -> &str {
        &self.name
    }

    /// The label naming the stack that owns an object.
    pub fn stack_label(&self) -> String {
        self.key("stack")
    }

    /// A label or annotation key under this identity's domain.
    pub fn key(&self, suffix: &str) -> String {
        format!("{}/{suffix}", self.domain)
    }

    /// The pod template annotation that
    /// [`Resources::roll_on_config_change`](crate::declare::Resources::roll_on_config_change)
    /// sets: `<name>.io/config-hash`.
    pub fn config_hash_annotation(&self) -> String {
        self.key("config-hash")
    }

    /// The annotation that says what a wait after applying an object
    /// waits for, instead of the rules of its kind: `<name>.io/wait-for`,
    /// holding a [`WaitRule`](crate::ready::WaitRule) such as
    /// `condition=Synced=True` or `jsonpath={.status.phase}=Running`.
    pub fn wait_for_annotation(&self) -> String {
        self.key("wait-for")
    }

    /// The annotation that says what means an object failed, so the wait
    /// stops at once: `<name>.io/wait-for-failure`, holding a check such as
    /// `condition=Ready=False` or `jsonpath={.status.phase}=Failed`.
    pub fn wait_for_failure_annotation(&self) -> String {
        self.key("wait-for-failure")
    }

    /// The labels that mark an object as owned by `stack`.
    pub fn ownership_labels(&self, stack: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (MANAGED_BY_LABEL.to_string(), self.name.clone()),
            (self.stack_label(), stack.to_string()),
        ])
    }

    /// A label selector for the objects `stack` owns.
    pub fn stack_selector(&self, stack: &str) -> String {
        format!(
            "{MANAGED_BY_LABEL}={},{}={stack}",
            self.name,
            self.stack_label()
        )
    }

    /// Whether `object` carries the labels of `stack`.
    pub fn owned_by(&self, object: &Value, stack: &str) -> bool {
        self.owning_stack(object).as_deref() == Some(stack)
    }

    /// The stack whose labels `object` carries, if it carries this
    /// identity's labels at all.
    pub(crate) fn owning_stack(&self, object: &Value) -> Option<String> {
        let labels = &object["metadata"]["labels"];
        if labels[MANAGED_BY_LABEL] != self.name.as_str() {
            return None;
        }
        labels[self.stack_label().as_str()]
            .as_str()
            .map(str::to_string)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_and_labels_follow_from_the_name() {
        let identity = Identity::new("shop");
        assert_eq!(identity.field_manager(), "shop");
        assert_eq!(identity.stack_label(), "shop.io/stack");
        assert_eq!(identity.config_hash_annotation(), "shop.io/config-hash");
        assert_eq!(
            identity.stack_selector("dev"),
            "app.kubernetes.io/managed-by=shop,shop.io/stack=dev"
        );
        let object = json!({"metadata": {"labels": identity.ownership_labels("dev")}});
        assert!(identity.owned_by(&object, "dev"));
        assert!(!identity.owned_by(&object, "prod"));
        assert!(!Identity::new("other").owned_by(&object, "dev"));
    }
}
