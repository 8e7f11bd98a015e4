//! `echo-iac refresh`: brings the state in line with the cluster, for
//! objects changed or deleted outside echo-iac. It changes no object.

use crate::cli::{GlobalArgs, RefreshArgs};
use crate::engine::planner::carries_stack_labels;
use crate::engine::{ResourceId, outputs};
use crate::error::Error;
use crate::program;
use crate::state::StateStore;

use super::{Session, confirm, lock, print};

/// What refresh would write for one recorded object.
enum Drift {
    Gone(ResourceId),
    Recreated { id: ResourceId, uid: String },
    Foreign(ResourceId),
}

pub async fn run(global: &GlobalArgs, args: RefreshArgs) -> Result<(), Error> {
    let session = Session::open(global)?;
    let store = session.store();
    let _lock = lock(&store, "echo-iac refresh", args.wait_for_lock)?;
    let mut state = store.load()?;
    let cluster = session.connect().await?;

    let mut drift = Vec::new();
    for resource in &state.resources {
        let live = cluster.get(&resource.id).await?;
        match live {
            None => drift.push(Drift::Gone(resource.id.clone())),
            Some(live) => {
                let live_uid = live["metadata"]["uid"].as_str().unwrap_or_default();
                if live_uid == resource.uid {
                    continue;
                }
                if carries_stack_labels(&live, &session.stack.name) {
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
    let desired = program::desired_resources(&session.stack);
    let fresh_outputs = if state.resources.is_empty() {
        state.outputs.clone()
    } else {
        outputs::collect(&cluster, &session.stack.namespace, &desired).await?
    };

    if drift.is_empty() && fresh_outputs == state.outputs {
        print(&format!(
            "The state of stack {} matches the cluster ({} objects).",
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
        });
    }
    if fresh_outputs != state.outputs {
        text.push_str(" ~  outputs updated from the cluster\n");
    }
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
        }
    }
    state.outputs = fresh_outputs;
    store.save(&mut state)?;
    print(&format!("State of stack {} refreshed.", session.stack.name));
    Ok(())
}
