//! `echo-iac render`: the stack's objects as YAML, with no cluster contact.

use serde_json::Value;

use crate::error::Error;
use crate::program::Program;
use echo_iac_engine::DesiredResource;

use super::{Session, print};

pub(crate) fn run<P: Program>(session: &Session<P>) -> Result<(), Error> {
    print(&to_yaml(&session.desired_offline()?));
    Ok(())
}

/// The desired objects as one YAML stream, for review or other tools.
pub(crate) fn to_yaml(resources: &[DesiredResource]) -> String {
    let mut out = String::new();
    for resource in resources {
        out.push_str("---\n");
        out.push_str(&yaml(&resource.object));
    }
    out
}

fn yaml(object: &Value) -> String {
    serde_saphyr::to_string(object).expect("JSON values serialize to YAML")
}
