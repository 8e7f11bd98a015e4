//! The kept revisions of a stack's state, as `echo-iac stack history` lists
//! them, and the one-line summary of what each changed.

use std::collections::HashMap;

use serde::Serialize;

use super::{OperationMark, State, Writer};

/// One kept revision.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    /// The revision's serial, one more than the revision before it.
    pub serial: u64,
    /// RFC 3339, when it was written.
    pub updated: Option<String>,
    /// Who wrote it, when the revision says.
    pub written_by: Option<Writer>,
    /// What it changed from the revision before it, when that one is kept.
    pub summary: String,
    /// Objects recorded in it.
    pub resources: usize,
    /// The run that wrote it; `None` for revisions written before runs
    /// were marked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<OperationMark>,
}

impl Revision {
    /// `newer` described against `older` (the revision it replaced), if kept.
    pub fn of(newer: &State, older: Option<&State>) -> Self {
        Revision {
            serial: newer.serial,
            updated: newer.updated.clone(),
            written_by: newer.written_by.clone(),
            summary: change_summary(older, newer),
            resources: newer.resources.len(),
            operation: newer.operation.clone(),
        }
    }

    /// Whether the run that wrote it ended as asked; `None` for a
    /// revision written before runs were marked, which does not say.
    pub fn finished(&self) -> Option<bool> {
        self.operation.as_ref().map(|mark| mark.finished)
    }
}

/// `2 added, 1 changed, 3 pending`: what `newer` records differently from
/// `older`, or `first kept revision: …` when there is nothing to compare.
pub(crate) fn change_summary(older: Option<&State>, newer: &State) -> String {
    let Some(older) = older else {
        return format!(
            "first kept revision: {} object(s){}",
            newer.resources.len(),
            pending_note(newer)
        );
    };
    let before: HashMap<_, _> = older.resources.iter().map(|r| (&r.id, r)).collect();
    let (mut added, mut changed) = (0, 0);
    for resource in &newer.resources {
        match before.get(&resource.id) {
            None => added += 1,
            Some(old) if *old != resource => changed += 1,
            Some(_) => {}
        }
    }
    let after: std::collections::HashSet<_> = newer.resources.iter().map(|r| &r.id).collect();
    let removed = older
        .resources
        .iter()
        .filter(|r| !after.contains(&r.id))
        .count();
    let mut parts = Vec::new();
    for (count, word) in [(added, "added"), (changed, "changed"), (removed, "removed")] {
        if count > 0 {
            parts.push(format!("{count} {word}"));
        }
    }
    if older.outputs != newer.outputs {
        parts.push("outputs".to_string());
    }
    if parts.is_empty() {
        parts.push("no object changes".to_string());
    }
    format!("{}{}", parts.join(", "), pending_note(newer))
}

fn pending_note(state: &State) -> String {
    match state.pending.len() {
        0 => String::new(),
        n => format!("; {n} pending"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ResourceId;
    use crate::state::ResourceState;

    fn with(names: &[(&str, &str)]) -> State {
        let mut state = State::empty("dev");
        for (name, uid) in names {
            state.upsert_resource(ResourceState {
                id: ResourceId::new("v1", "ConfigMap", Some("ns"), name),
                uid: uid.to_string(),
                depends_on: Vec::new(),
                applied: json!({}).into(),
                protect: false,
                retain: false,
                proof: None,
            });
        }
        state
    }

    #[test]
    fn summary_counts_added_changed_and_removed_objects() {
        let older = with(&[("a", "1"), ("b", "2"), ("c", "3")]);
        let mut newer = with(&[("a", "1"), ("b", "9"), ("d", "4")]);
        newer.begin("wait", ResourceId::new("v1", "ConfigMap", Some("ns"), "d"));
        assert_eq!(
            change_summary(Some(&older), &newer),
            "1 added, 1 changed, 1 removed; 1 pending"
        );
    }

    #[test]
    fn summary_of_an_unchanged_revision_and_of_the_oldest_kept_one() {
        let state = with(&[("a", "1")]);
        assert_eq!(change_summary(Some(&state), &state), "no object changes");
        assert_eq!(
            change_summary(None, &state),
            "first kept revision: 1 object(s)"
        );
        let mut outputs = state.clone();
        outputs.outputs.insert("url".into(), json!("x"));
        assert_eq!(change_summary(Some(&state), &outputs), "outputs");
    }
}
