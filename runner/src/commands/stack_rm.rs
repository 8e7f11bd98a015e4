//! `echo-iac stack rm NAME`: removes a destroyed stack's state, its kept
//! revisions and its lock, holding the lock while it does; the stack file
//! stays, since it is the project's source.

use std::sync::Arc;

use crate::cli::{GlobalArgs, RmArgs};
use crate::error::Error;
use crate::program::Program;
use crate::stack;
use echo_iac_engine::ResourceId;
use echo_iac_engine::state::{Locked, State, StateError, StateStore};

use super::teardown::{Skipped, Unreadable};
use super::{Session, confirm, note, open_project, print};

/// How many objects a refusal names before it counts the rest: the error
/// stays on one screen.
const NAMED_IN_REFUSAL: usize = 10;

pub(crate) async fn run<P: Program>(global: &GlobalArgs, args: RmArgs) -> Result<(), Error> {
    let project = open_project(global)?;
    // Removing state needs only where the cluster and the state are: the
    // program's section is skipped, so one that no longer reads (an edit,
    // another version of the program) does not keep a stack's state.
    let stack = stack::load::<Skipped<P::Config>>(&project, &args.name)?;
    let program = Arc::new(Unreadable::<P>::new(String::new()));
    let session = Session::with(&program, project, stack, global);
    let store = session.store().await?;
    let locked = Locked::acquire(
        &*store,
        &format!("{} stack rm", P::NAME),
        args.wait_for_lock,
    )
    .await?;
    let forgotten = match check::<P>(&*store, &args).await {
        Ok(forgotten) => forgotten,
        Err(e) => {
            locked.release().await;
            return Err(e);
        }
    };
    let removed = locked.remove().await?;

    let bin = crate::name::bin();
    let mut text = format!("Removed the state of stack {}:\n", args.name);
    for item in &removed {
        text.push_str(&format!("  {item}\n"));
    }
    match forgotten {
        Forgotten::Nothing => {}
        Forgotten::Objects(ids) => text.push_str(&format!(
            "Forgot the {} object(s) listed above: they stay in the cluster, in no stack's state.\n",
            ids.len()
        )),
        Forgotten::Unknown => text.push_str(
            "Whatever the unreadable state listed stays in the cluster, in no stack's state.\n",
        ),
    }
    text.push_str(&format!(
        "The stack file {} was kept: delete it yourself if the stack is gone for good; `{bin} --stack {} up` starts it afresh.",
        session.stack.file.display(),
        args.name,
    ));
    print(&text);
    Ok(())
}

/// What removing the state makes the tool forget.
enum Forgotten {
    Nothing,
    /// Objects the state lists, or that an interrupted run may have made.
    Objects(Vec<ResourceId>),
    /// The state does not read, so what it lists cannot be told.
    Unknown,
}

/// With the lock held: refuses a state that still lists objects unless
/// `--force`, names what is forgotten, and asks before anything goes.
async fn check<P: Program>(store: &dyn StateStore, args: &RmArgs) -> Result<Forgotten, Error> {
    let name = &args.name;
    let bin = crate::name::bin();
    let location = store.location();
    let forgotten = match store.load().await {
        Ok(state) => match listed(&state) {
            ids if ids.is_empty() => Forgotten::Nothing,
            ids => Forgotten::Objects(ids),
        },
        Err(e @ StateError::Corrupt { .. }) if !args.force => {
            let error = Error::from(e);
            let restore = error.hint().map(|h| format!("{h}. ")).unwrap_or_default();
            return Err(Error::refused(
                error.message(),
                format!(
                    "{restore}If the stack's objects are gone, or you will find them by their labels, pass --force to remove the state anyway"
                ),
            ));
        }
        Err(StateError::Corrupt { reason, .. }) => {
            note(&format!(
                "The state in {location} does not read ({reason}), so what it lists cannot be named."
            ));
            Forgotten::Unknown
        }
        Err(e) => return Err(e.into()),
    };
    match &forgotten {
        Forgotten::Objects(ids) if !args.force => {
            let mut named: Vec<String> = ids
                .iter()
                .take(NAMED_IN_REFUSAL)
                .map(ToString::to_string)
                .collect();
            if ids.len() > NAMED_IN_REFUSAL {
                named.push(format!("and {} more", ids.len() - NAMED_IN_REFUSAL));
            }
            return Err(Error::refused(
                format!(
                    "stack {name} still manages {} object(s), so its state in {location} was kept: {}",
                    ids.len(),
                    named.join(", ")
                ),
                format!(
                    "run `{bin} --stack {name} destroy` first to delete them, then `{bin} stack rm {name}`; or pass --force to forget them, leaving them in the cluster"
                ),
            ));
        }
        Forgotten::Objects(ids) => {
            let label = crate::program::identity::<P>().stack_selector(name);
            let mut text = format!(
                "Stack {name}'s state lists {} object(s). Removing it forgets them: they stay in the cluster, in no stack's state. They keep the labels {label}, by which `up`, `refresh` and `destroy` of stack {name} take back those its file still declares:\n",
                ids.len()
            );
            for id in ids {
                text.push_str(&format!("  {id}\n"));
            }
            print(&text);
        }
        Forgotten::Unknown => {
            let label = crate::program::identity::<P>().stack_selector(name);
            print(&format!(
                "Removing it forgets whatever it lists: those objects stay in the cluster, in no stack's state; `kubectl get all -A -l {label}` finds most of them."
            ));
        }
        Forgotten::Nothing => {}
    }
    confirm(
        &format!(
            "Remove the state of stack {name} from {location}, with its kept revisions and its lock?"
        ),
        args.yes,
        &format!("stack rm {name}"),
    )?;
    Ok(forgotten)
}

/// The objects `state` lists, then those of interrupted operations that it
/// does not: an interrupted create may have made its object.
fn listed(state: &State) -> Vec<ResourceId> {
    let mut ids: Vec<ResourceId> = state.resources.iter().map(|r| r.id.clone()).collect();
    for pending in &state.pending {
        if !ids.contains(&pending.id) {
            ids.push(pending.id.clone());
        }
    }
    ids
}
