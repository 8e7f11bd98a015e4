//! What a preview found: one step per object, and the changes each makes.

use serde::Serialize;
use serde_json::Value;

use super::resource::ResourceId;

/// What happens to one object. Names and marks follow Pulumi's vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// Nothing to do: the object is as declared.
    Same,
    /// The object is applied for the first time.
    Create,
    /// The object is applied over the one in the cluster.
    Update,
    /// The object is deleted and created again, for a field that cannot
    /// change in place.
    Replace,
    /// The object is deleted.
    Delete,
    /// The object would be deleted, but is retained (see
    /// [`crate::protect`]): it stays in the cluster without this stack's
    /// ownership labels, and is dropped from the state.
    Retain,
}

impl Op {
    /// The mark shown before the object in a preview: `+`, `~`, `+-`, `-`.
    pub fn mark(self) -> &'static str {
        match self {
            Op::Same => " ",
            Op::Create => "+",
            Op::Update => "~",
            Op::Replace => "+-",
            Op::Delete | Op::Retain => "-",
        }
    }

    /// The operation's name, as `--json` and the state write it: `same`,
    /// `create`, `update`, `replace`, `delete`, `retain`.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Same => "same",
            Op::Create => "create",
            Op::Update => "update",
            Op::Replace => "replace",
            Op::Delete => "delete",
            Op::Retain => "retain",
        }
    }

    /// Whether the step ends the stack's hold on the object: a delete, or
    /// a retain (which leaves the object running).
    pub fn is_removal(self) -> bool {
        matches!(self, Op::Delete | Op::Retain)
    }
}

/// One changed field. Paths read like `spec.replicas`,
/// `spec.template.spec.containers[0].image` or `data["default.conf"]`.
/// `old` is absent for an added field, `new` for a removed one.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    /// Where the field is.
    pub path: String,
    /// The value before.
    pub old: Option<Value>,
    /// The value after.
    pub new: Option<Value>,
    /// A sensitive value (a Secret's data): `old` and `new` hold only
    /// [`crate::sensitive::MARKER`], so the change says that the value
    /// changed (or was added, or removed), never what it was.
    #[serde(skip_serializing_if = "is_false")]
    pub sensitive: bool,
}

fn is_false(value: &bool) -> bool {
    !value
}

/// Another field manager owns a field this stack sets to a different value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Conflict {
    /// The field, in the same path syntax as [`Change::path`].
    pub path: String,
    /// The field manager that owns it (e.g. `kubectl`).
    pub manager: String,
}

/// Why a step cannot be carried out as it stands.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Blocker {
    /// Fields are owned by other managers; `up --force-conflicts` takes them.
    Conflicts {
        /// The fields and who owns them.
        conflicts: Vec<Conflict>,
    },
    /// The object exists but this stack does not manage it; never taken over
    /// silently.
    Unmanaged {
        /// Who made or manages the object, when its fields say.
        owner: Option<String>,
    },
    /// The API server rejected the object; `message` is its own reason.
    Rejected {
        /// The server's own reason.
        message: String,
        /// The fields it names, in the plan's path syntax.
        fields: Vec<String>,
    },
    /// Refused before it reaches the API server, by a check the server
    /// cannot make yet or does not make: a custom resource invalid against
    /// the schema of a definition that does not exist yet, or a definition
    /// change that would strand what objects of its kind hold.
    Refused {
        /// What is wrong, and what to do.
        message: String,
        /// The fields it names, in the plan's path syntax.
        fields: Vec<String>,
    },
    /// The object is protected (see [`crate::protect`]): the step would
    /// delete or replace it.
    Protected {
        /// Who protects it: `the program`, or the stack file and pattern.
        by: String,
    },
}

/// A step that cannot be carried out, as [`crate::EngineError::Blocked`]
/// names it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BlockedStep {
    /// The object the step is for.
    pub id: ResourceId,
    /// What stops it.
    pub blocker: Blocker,
}

/// What a plan does to one object.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    /// What happens to it.
    pub op: Op,
    /// The object.
    pub id: ResourceId,
    /// The fields that change, for updates and replaces.
    pub changes: Vec<Change>,
    /// Why the step is what it is, when that is not obvious (the field that
    /// forces a replace, an object deleted out of band, a pruned object).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why the step cannot be carried out, if it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocker: Option<Blocker>,
    /// The live object, normalized (absent for creates); sensitive values
    /// are masked (see [`crate::sensitive`]).
    #[serde(skip)]
    pub live: Option<Value>,
    /// What the cluster would hold afterwards, normalized and masked
    /// (absent for deletes).
    #[serde(skip)]
    pub planned: Option<Value>,
}

impl Step {
    /// A step with nothing planned but its operation: an object proven
    /// unchanged, or a test's.
    pub(crate) fn bare(op: Op, id: &ResourceId) -> Step {
        Step {
            op,
            id: id.clone(),
            changes: Vec::new(),
            reason: None,
            blocker: None,
            live: None,
            planned: None,
        }
    }

    /// Whether the step changes the cluster.
    pub fn is_change(&self) -> bool {
        self.op != Op::Same
    }
}

/// Counts of steps by operation. A blocked step counts as blocked only,
/// not also under its operation, so the counts add up to the steps.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// Objects left as they are.
    pub same: usize,
    /// Objects created.
    pub create: usize,
    /// Objects updated in place.
    pub update: usize,
    /// Objects deleted and created again.
    pub replace: usize,
    /// Objects deleted.
    pub delete: usize,
    /// Objects retained: left in the cluster, no longer the stack's.
    pub retain: usize,
    /// Steps that cannot be carried out.
    pub blocked: usize,
    /// Objects of the stack the plan leaves out, as its targets ask: they
    /// are neither changed nor deleted.
    #[serde(rename = "leftOut")]
    pub left_out: usize,
}

/// What `up` or `destroy` would do to a stack, one step per object, in
/// the order the steps are applied.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    /// The stack planned.
    pub stack: String,
    /// One step per object.
    pub steps: Vec<Step>,
    /// Operations an earlier run started and did not finish.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub interrupted: Vec<String>,
    /// Objects in the cluster that carry this stack's labels but that its
    /// state does not record (a state lost, or written on another machine).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub untracked: Vec<Untracked>,
    /// Objects of the stack that a targeted plan leaves as they are, in
    /// the cluster and in the state; empty for a plan without targets.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub left_out: Vec<ResourceId>,
}

/// An object labelled as this stack's that the state does not list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Untracked {
    /// The object.
    pub id: ResourceId,
    /// Its uid in the cluster.
    pub uid: String,
    /// Whether the program still declares it: then `up` records it again
    /// as it applies; otherwise only `refresh` (or `destroy`) takes it back.
    pub declared: bool,
}

impl Plan {
    /// How many steps of each operation the plan holds.
    #[must_use]
    pub fn summary(&self) -> Summary {
        let mut s = Summary {
            left_out: self.left_out.len(),
            ..Summary::default()
        };
        for step in &self.steps {
            if step.blocker.is_some() {
                s.blocked += 1;
                continue;
            }
            match step.op {
                Op::Same => s.same += 1,
                Op::Create => s.create += 1,
                Op::Update => s.update += 1,
                Op::Replace => s.replace += 1,
                Op::Delete => s.delete += 1,
                Op::Retain => s.retain += 1,
            }
        }
        s
    }

    /// Whether any step changes the cluster.
    #[must_use]
    pub fn has_changes(&self) -> bool {
        self.steps.iter().any(Step::is_change)
    }

    /// Drops the live and planned copies of every object, once the plan has
    /// been shown: applying works from the desired objects, and at a few
    /// thousand objects the copies are most of the memory.
    pub fn drop_objects(&mut self) {
        for step in &mut self.steps {
            step.live = None;
            step.planned = None;
        }
    }

    /// [`Plan::drop_objects`], and the field changes of creates too (every
    /// field of the new object), once nothing will print the plan again:
    /// what an `up` of thousands of new objects holds while it applies and
    /// waits.
    pub fn drop_details(&mut self) {
        self.drop_objects();
        for step in self.steps.iter_mut().filter(|s| s.op == Op::Create) {
            step.changes = Vec::new();
        }
    }

    /// Whether the plan leaves the object `id` out, as its targets ask.
    #[must_use]
    pub fn leaves_out(&self, id: &ResourceId) -> bool {
        self.left_out.contains(id)
    }

    /// The steps that cannot be carried out.
    pub fn blocked(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter(|s| s.blocker.is_some())
    }

    /// The blocked steps, or nothing when every step can be carried out.
    #[must_use]
    pub fn blocked_steps(&self) -> Vec<BlockedStep> {
        self.steps
            .iter()
            .filter_map(|s| {
                s.blocker.clone().map(|blocker| BlockedStep {
                    id: s.id.clone(),
                    blocker,
                })
            })
            .collect()
    }
}
