//! `echo-iac render`: the stack's objects as YAML, with no cluster contact.

use crate::cli::GlobalArgs;
use crate::error::Error;
use crate::program;

use super::{Session, print};

pub fn run(global: &GlobalArgs) -> Result<(), Error> {
    let session = Session::open(global)?;
    print(&program::to_yaml(&program::desired_resources(
        &session.stack,
    )));
    Ok(())
}
