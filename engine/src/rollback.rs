//! Going back to a kept revision: the objects it recorded, as desired
//! objects for [`crate::planner::plan_up`] and [`crate::operation::up`].
//! A rollback is an `up` in everything else; what it cannot restore (a
//! Secret's values, which the state holds only sealed) it says.

use std::collections::{BTreeMap, HashSet};

use serde_json::Value;

use crate::cluster::Cluster;
use crate::error::EngineError;
use crate::resource::{DesiredResource, ResourceId};
use crate::sensitive;
use crate::state::State;

/// What rolling back to one revision applies.
#[derive(Clone, Debug)]
pub struct Rollback {
    /// The revision gone back to.
    pub to: u64,
    /// Its objects, as desired objects, in the order it applied them.
    pub desired: Vec<DesiredResource>,
    /// Objects whose recorded values cannot be restored.
    pub kept: Vec<Kept>,
    /// The outputs it recorded.
    pub outputs: BTreeMap<String, Value>,
}

/// An object of the revision that a rollback cannot restore as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Kept {
    /// Which object.
    pub id: ResourceId,
    /// Why, and what the rollback does instead.
    pub reason: KeptReason,
}

/// Why an object is not restored as the revision recorded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeptReason {
    /// Its sensitive values changed since the revision; it keeps the
    /// current ones.
    ValuesChanged,
    /// It no longer exists and its sensitive values were never recorded:
    /// it is not recreated.
    ValuesLost,
}

impl KeptReason {
    /// What a preview says of it.
    pub fn describe(self) -> &'static str {
        match self {
            KeptReason::ValuesChanged => {
                "its values changed since then and are kept as they are now: the state holds them only sealed"
            }
            KeptReason::ValuesLost => {
                "it no longer exists and the state holds its values only sealed: it is not recreated"
            }
        }
    }
}

/// The objects `revision` (serial `revision.serial`, a kept revision of
/// the stack) recorded, to be applied as they were. An object with
/// sensitive values takes the values it holds live; one that is gone is
/// left out. An object protected or retained by the revision or by the
/// current state (`current`) stays so. Fails when an object of it is not
/// labelled as this identity's.
pub async fn prepare(
    cluster: &Cluster,
    revision: &State,
    current: &State,
) -> Result<Rollback, EngineError> {
    let identity = cluster.identity();
    let mut desired = Vec::with_capacity(revision.resources.len());
    let mut kept = Vec::new();
    for resource in &revision.resources {
        let applied = resource.applied.value();
        if !identity.owned_by(&applied, &revision.stack) {
            return Err(EngineError::ForeignRevision {
                serial: revision.serial,
                program: identity.name().to_string(),
                stack: revision.stack.clone(),
                id: resource.id.to_string(),
            });
        }
        let object = if sensitive::has_sensitive_fields(&applied) {
            let live = cluster.get(&resource.id).await?;
            let Some(live) = live else {
                kept.push(Kept {
                    id: resource.id.clone(),
                    reason: KeptReason::ValuesLost,
                });
                continue;
            };
            let (object, changed) = sensitive::with_live_values(&applied, &live);
            if changed {
                kept.push(Kept {
                    id: resource.id.clone(),
                    reason: KeptReason::ValuesChanged,
                });
            }
            object
        } else {
            applied
        };
        let mut options = resource.options();
        if let Some(now) = current.resource(&resource.id) {
            options.protect |= now.protect;
            options.retain |= now.retain;
        }
        // The rule its annotations declare, read when it was applied; one
        // the program gave in code is not recorded.
        options.wait = crate::declare::annotated_rule(&resource.id, &object, identity)
            .ok()
            .flatten();
        desired.push(DesiredResource {
            id: resource.id.clone(),
            object,
            depends_on: resource.depends_on.clone(),
            options,
        });
    }
    let present: HashSet<ResourceId> = desired.iter().map(|d| d.id.clone()).collect();
    for resource in &mut desired {
        resource.depends_on.retain(|id| present.contains(id));
    }
    Ok(Rollback {
        to: revision.serial,
        desired,
        kept,
        outputs: revision.outputs.clone(),
    })
}
