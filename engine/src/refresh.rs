//! Refresh: how a stack's state differs from the cluster, for objects
//! deleted, recreated or taken over outside the tool, and what the state
//! becomes once that is recorded. No object is changed.

use std::collections::HashSet;

use crate::cluster::Cluster;
use crate::live::Live;
use crate::planner;
use crate::state::{ResourceState, State};
use crate::{DesiredResource, EngineError, ResourceId};

/// How the state and the cluster differ for one object.
#[derive(Clone, Debug, PartialEq)]
pub enum Drift {
    /// The state lists it; the cluster no longer has it. Dropped.
    Gone(ResourceId),
    /// Deleted and created again with this stack's labels: the same
    /// object under a new uid, which is recorded.
    Recreated {
        /// The object.
        id: ResourceId,
        /// Its new uid.
        uid: String,
    },
    /// Replaced by an object without this stack's labels, which the stack
    /// must not take over. Dropped.
    Foreign(ResourceId),
    /// Carries the stack's labels, is not in the state, and the program
    /// declares it (a run that stopped before it could record it): recorded
    /// as the program declares it.
    Untracked(ResourceState),
}

impl Drift {
    /// The object this drift is about.
    pub fn id(&self) -> &ResourceId {
        match self {
            Drift::Gone(id) | Drift::Foreign(id) | Drift::Recreated { id, .. } => id,
            Drift::Untracked(resource) => &resource.id,
        }
    }
}

/// What a refresh found: the drift it records and the objects it leaves
/// out of the state.
#[derive(Clone, Debug, Default, PartialEq)]
#[must_use = "a refresh records nothing until it is applied to the state"]
pub struct Refresh {
    /// What the state gets wrong, in the state's order, then the untracked.
    pub drift: Vec<Drift>,
    /// Objects with the stack's labels that the program does not declare:
    /// labels alone do not make an object the stack's, so refresh never
    /// records them (the next `up` would delete them as no longer
    /// declared); only an explicit teardown deletes them.
    pub left_alone: Vec<ResourceId>,
}

impl Refresh {
    /// Whether the state matches the cluster.
    pub fn is_empty(&self) -> bool {
        self.drift.is_empty()
    }

    /// Writes the drift into `state` (which the caller then saves, holding
    /// the stack's lock).
    pub fn apply_to(self, state: &mut State) {
        for drift in self.drift {
            match drift {
                Drift::Gone(id) | Drift::Foreign(id) => {
                    state.remove_resource(&id);
                }
                Drift::Recreated { id, uid } => {
                    if let Some(mut resource) = state.resource(&id).cloned() {
                        resource.uid = uid;
                        state.upsert_resource(resource);
                    }
                }
                Drift::Untracked(resource) => state.upsert_resource(resource),
            }
        }
    }
}

/// Reads what `state` lists and what `desired` declares from the cluster,
/// and says how the state of `stack` differs from it.
pub async fn plan_refresh(
    cluster: &Cluster,
    stack: &str,
    desired: &[DesiredResource],
    state: &State,
) -> Result<Refresh, EngineError> {
    let live = Live::read(
        cluster,
        state
            .resources
            .iter()
            .map(|r| &r.id)
            .chain(desired.iter().map(|d| &d.id)),
    )
    .await?;
    Ok(compare(&live, cluster, stack, desired, state))
}

fn compare(
    live: &Live,
    cluster: &Cluster,
    stack: &str,
    desired: &[DesiredResource],
    state: &State,
) -> Refresh {
    let mut refresh = Refresh::default();
    for resource in &state.resources {
        match live.head(&resource.id) {
            None => refresh.drift.push(Drift::Gone(resource.id.clone())),
            Some(object) => {
                let uid = object["metadata"]["uid"].as_str().unwrap_or_default();
                if uid == resource.uid {
                    continue;
                }
                refresh
                    .drift
                    .push(if cluster.identity().owned_by(object, stack) {
                        Drift::Recreated {
                            id: resource.id.clone(),
                            uid: uid.to_string(),
                        }
                    } else {
                        Drift::Foreign(resource.id.clone())
                    });
            }
        }
    }
    let declared: HashSet<&ResourceId> = desired.iter().map(|d| &d.id).collect();
    for found in planner::untracked(live, cluster.identity(), stack, state, &declared) {
        match desired.iter().find(|d| d.id == found.id) {
            Some(d) => refresh.drift.push(Drift::Untracked(ResourceState {
                id: d.id.clone(),
                uid: found.uid,
                depends_on: d.depends_on.clone(),
                applied: (&d.object).into(),
                protect: d.options.protect,
                retain: d.options.retain,
                proof: None,
            })),
            None => refresh.left_alone.push(found.id),
        }
    }
    refresh
}
