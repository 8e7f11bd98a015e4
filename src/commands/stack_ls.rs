//! `echo-iac stack ls`: the project's stacks and when each last changed.

use crate::cli::GlobalArgs;
use crate::error::Error;
use crate::state::{LocalStore, StateStore};

use super::{open_project, print};

pub fn run(global: &GlobalArgs) -> Result<(), Error> {
    let project = open_project(global)?;
    let names = project.stack_names()?;
    let width = names.iter().map(String::len).max().unwrap_or(4).max(4);
    let mut text = format!("{:<width$}  {:<25}  RESOURCES\n", "NAME", "LAST UPDATE");
    for name in names {
        let store = LocalStore::new(project.state_dir(), &name);
        let (updated, resources) = match store.load() {
            Ok(state) => (
                state.updated.unwrap_or_else(|| "never".to_string()),
                state.resources.len().to_string(),
            ),
            Err(_) => ("state unreadable".to_string(), "?".to_string()),
        };
        text.push_str(&format!("{name:<width$}  {updated:<25}  {resources}\n"));
    }
    print(&text);
    Ok(())
}
