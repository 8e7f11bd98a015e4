//! `echo-iac stack ls`: the project's stacks, where each keeps its state,
//! and when each last changed.

use std::sync::Arc;

use crate::cli::GlobalArgs;
use crate::error::Error;
use crate::program::Program;
use crate::stack;

use super::{Session, open_project, print};

pub(crate) async fn run<P: Program>(program: &Arc<P>, global: &GlobalArgs) -> Result<(), Error> {
    let project = open_project(global)?;
    let names = project.stack_names()?;
    let width = names.iter().map(String::len).max().unwrap_or(4).max(4);
    let mut rows = Vec::new();
    // Why a row shows `?`, printed under the table.
    let mut problems = Vec::new();
    // Stacks a rollback left behind their program, also under the table.
    let mut rolled_back = Vec::new();
    for name in names {
        // One broken stack file or unreachable cluster must not hide the
        // other stacks: its row says what is wrong.
        let (backend, updated, resources) = match stack::load::<P::Config>(&project, &name) {
            Err(e) => {
                problems.push((name.clone(), first_line(&e.to_string()).to_string()));
                (
                    "?".to_string(),
                    "stack file invalid".to_string(),
                    "?".to_string(),
                )
            }
            Ok(config) => {
                let session = Session::with(program, project.clone(), config, global);
                let backend = session
                    .backend()
                    .map(|b| b.to_string())
                    .unwrap_or_else(|_| "?".into());
                let loaded = match session.store().await {
                    Ok(store) => store.load().await.map_err(Error::from),
                    Err(e) => Err(e),
                };
                match loaded {
                    Ok(state) => {
                        if let Some(to) = state.rolled_back_to() {
                            rolled_back.push((name.clone(), to));
                        }
                        (
                            backend,
                            state.updated.unwrap_or_else(|| "never".to_string()),
                            state.resources.len().to_string(),
                        )
                    }
                    Err(e) => {
                        problems.push((name.clone(), first_line(&e.to_string()).to_string()));
                        (backend, "state unreadable".to_string(), "?".to_string())
                    }
                }
            }
        };
        rows.push((name, backend, updated, resources));
    }
    let backend_width = rows.iter().map(|r| r.1.len()).max().unwrap_or(7).max(7);
    let mut text = format!(
        "{:<width$}  {:<backend_width$}  {:<25}  RESOURCES\n",
        "NAME", "BACKEND", "LAST UPDATE"
    );
    for (name, backend, updated, resources) in rows {
        text.push_str(&format!(
            "{name:<width$}  {backend:<backend_width$}  {updated:<25}  {resources}\n"
        ));
    }
    for (name, to) in rolled_back {
        text.push_str(&format!(
            "\n{name}: rolled back to revision {to}; the next `up` re-applies the program"
        ));
    }
    for (name, problem) in problems {
        text.push_str(&format!("\n{name}: {problem}"));
    }
    print(&text);
    Ok(())
}

/// An error's first line: a stack file's error goes on with the source
/// lines it points at, which the table has no room for.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}
