//! `echo-iac refresh`: brings the state in line with the cluster, for
//! objects changed or deleted outside echo-iac. It changes no object.

use crate::cli::RefreshArgs;
use crate::error::Error;
use crate::program::Program;
use echo_iac_engine::ResourceId;
use echo_iac_engine::refresh::{self, Drift};
use echo_iac_engine::state::Locked;
use echo_iac_engine::untracked::Selector;

use super::{Session, confirm, print};

pub(crate) async fn run<P: Program>(session: Session<P>, args: RefreshArgs) -> Result<(), Error> {
    let store = session.store().await?;
    let wait = args.wait_for_lock;
    super::locked(
        &*store,
        &format!("{} refresh", P::NAME),
        wait,
        async |locked| run_locked(&session, locked, args).await,
    )
    .await
}

async fn run_locked<P: Program>(
    session: &Session<P>,
    locked: &Locked<'_>,
    args: RefreshArgs,
) -> Result<(), Error> {
    let store = locked.store();
    let mut state = store.load().await?;
    let cluster = session.connect().await?;

    let desired = session.desired().await?;
    let refresh = refresh::plan_refresh(&cluster, &session.stack.name, &desired, &state).await?;
    let left_alone = left_alone_text(&refresh.left_alone, &session.stack.name);
    let fresh_outputs = if state.resources.is_empty() && refresh.is_empty() {
        state.outputs.clone()
    } else {
        session.outputs(&cluster, &desired).await?
    };

    if refresh.is_empty() && fresh_outputs == state.outputs {
        print(&format!(
            "The state of stack {} matches the cluster ({} objects).{left_alone}",
            session.stack.name,
            state.resources.len()
        ));
        return Ok(());
    }
    let mut text = format!("Refreshing stack {}\n", session.stack.name);
    for d in &refresh.drift {
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

    refresh.apply_to(&mut state);
    state.outputs = fresh_outputs;
    locked.save_finished(&mut state).await?;
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
