//! `echo-iac refresh`: brings the state in line with the cluster, for
//! objects changed or deleted outside echo-iac. It changes no object.

use crate::cli::RefreshArgs;
use std::collections::HashSet;

use crate::error::Error;
use crate::program::Program;
use echo_iac_engine::ResourceId;
use echo_iac_engine::live::Live;
use echo_iac_engine::planner;
use echo_iac_engine::state::ResourceState;
use echo_iac_engine::state::StateStore;
use echo_iac_engine::untracked::Selector;

use super::{Session, confirm, print};

/// What refresh would write for one object.
enum Drift {
    Gone(ResourceId),
    Recreated {
        id: ResourceId,
        uid: String,
    },
    Foreign(ResourceId),
    /// Carries the stack's labels, is not in the state, and the program
    /// declares it: taken back.
    Untracked(ResourceState),
}

pub(crate) async fn run<P: Program>(session: Session<P>, args: RefreshArgs) -> Result<(), Error> {
    let store = session.store().await?;
    let wait = args.wait_for_lock;
    super::locked(
        &*store,
        &format!("{} refresh", P::NAME),
        wait,
        run_locked(&session, &*store, args),
    )
    .await
}

async fn run_locked<P: Program>(
    session: &Session<P>,
    store: &dyn StateStore,
    args: RefreshArgs,
) -> Result<(), Error> {
    let mut state = store.load().await?;
    let cluster = session.connect().await?;

    let desired = session.desired()?;
    let live = Live::read(
        &cluster,
        state
            .resources
            .iter()
            .map(|r| &r.id)
            .chain(desired.iter().map(|d| &d.id)),
    )
    .await?;
    let mut drift = Vec::new();
    for resource in &state.resources {
        match live.get(&resource.id).cloned() {
            None => drift.push(Drift::Gone(resource.id.clone())),
            Some(live) => {
                let live_uid = live["metadata"]["uid"].as_str().unwrap_or_default();
                if live_uid == resource.uid {
                    continue;
                }
                if cluster.identity().owned_by(&live, &session.stack.name) {
                    drift.push(Drift::Recreated {
                        id: resource.id.clone(),
                        uid: live_uid.to_string(),
                    });
                } else {
                    drift.push(Drift::Foreign(resource.id.clone()));
                }
            }
        }
    }
    let declared: HashSet<&ResourceId> = desired.iter().map(|d| &d.id).collect();
    // Only what the program declares is recorded again: labels alone do not
    // make an object the stack's, and the next `up` would prune it.
    let mut left_alone = Vec::new();
    for found in planner::untracked(
        &live,
        cluster.identity(),
        &session.stack.name,
        &state,
        &declared,
    ) {
        match desired.iter().find(|d| d.id == found.id) {
            Some(d) => drift.push(Drift::Untracked(ResourceState {
                id: d.id.clone(),
                uid: found.uid,
                depends_on: d.depends_on.clone(),
                applied: d.object.clone(),
            })),
            None => left_alone.push(found.id),
        }
    }
    let left_alone = left_alone_text(&left_alone, &session.stack.name);
    let fresh_outputs = if state.resources.is_empty() && drift.is_empty() {
        state.outputs.clone()
    } else {
        session.outputs(&cluster, &desired).await?
    };

    if drift.is_empty() && fresh_outputs == state.outputs {
        print(&format!(
            "The state of stack {} matches the cluster ({} objects).{left_alone}",
            session.stack.name,
            state.resources.len()
        ));
        return Ok(());
    }
    let mut text = format!("Refreshing stack {}\n", session.stack.name);
    for d in &drift {
        text.push_str(&match d {
            Drift::Gone(id) => format!(" -  {id}: gone from the cluster; dropped from the state\n"),
            Drift::Recreated { id, uid } => {
                format!(" ~  {id}: recreated with this stack's labels; new uid {uid}\n")
            }
            Drift::Foreign(id) => format!(
                " -  {id}: replaced by an object this stack does not manage; dropped from the state\n"
            ),
            Drift::Untracked(r) => format!(
                " +  {}: carries this stack's labels but was not in the state; recorded (uid {})\n",
                r.id, r.uid
            ),
        });
    }
    if fresh_outputs != state.outputs {
        text.push_str(" ~  outputs updated from the cluster\n");
    }
    text.push_str(&left_alone);
    print(&text);
    confirm("Write these changes to the state?", args.yes, "refresh")?;

    for d in drift {
        match d {
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
    state.outputs = fresh_outputs;
    store.save(&mut state).await?;
    print(&format!("State of stack {} refreshed.", session.stack.name));
    Ok(())
}

/// Objects with the stack's labels that it does not declare, which refresh
/// leaves out of the state, and how to delete them if they are the stack's.
fn left_alone_text(ids: &[ResourceId], stack: &str) -> String {
    let Some(first) = ids.first() else {
        return String::new();
    };
    let mut text = format!(
        "\nLeft out of the state: {} object(s) carry the labels of stack {stack} but the stack does not declare them:\n",
        ids.len()
    );
    for id in ids {
        text.push_str(&format!("  - {id}\n"));
    }
    text.push_str(&format!(
        "  labels alone do not make an object the stack's; if these are, `{} destroy --delete-untracked` deletes them with the stack, or name each (`--delete-untracked {}`)\n",
        crate::name::bin(),
        Selector::of(first)
    ));
    text
}
