//! `echo-iac output`: the outputs recorded by the last `up`.

use serde_json::Value;

use crate::cli::OutputArgs;
use crate::error::Error;
use crate::program::Program;

use super::{Session, print};

pub async fn run<P: Program>(session: &Session<P>, args: OutputArgs) -> Result<(), Error> {
    let state = session.store().await?.load().await?;
    let outputs = &state.outputs;
    match args.name {
        Some(name) => {
            let value = outputs.get(&name).ok_or_else(|| {
                let known: Vec<&str> = outputs.keys().map(String::as_str).collect();
                Error::refused(
                    format!("stack {} has no output `{name}`", session.stack.name),
                    if known.is_empty() {
                        format!(
                            "the stack has no outputs yet: run `{} up` first",
                            crate::name::bin()
                        )
                    } else {
                        format!("outputs are: {}", known.join(", "))
                    },
                )
            })?;
            print(&match (value, args.json) {
                (Value::String(s), false) => s.clone(),
                (Value::Array(items), false) if items.iter().all(Value::is_string) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join("\n"),
                _ => serde_json::to_string_pretty(value).expect("values serialize"),
            });
        }
        None if args.json => {
            print(&serde_json::to_string_pretty(outputs).expect("outputs serialize"));
        }
        None => print(&format_outputs(outputs)),
    }
    Ok(())
}

/// Outputs as aligned `name  value` lines.
pub fn format_outputs(outputs: &std::collections::BTreeMap<String, Value>) -> String {
    if outputs.is_empty() {
        return "No outputs: the stack has not been brought up.".to_string();
    }
    let width = outputs.keys().map(String::len).max().unwrap_or(0);
    let mut text = String::from("Outputs:\n");
    for (name, value) in outputs {
        let shown = match value {
            Value::String(s) => s.clone(),
            // Lists (the URLs) one item a line, aligned under the first.
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_string) => items
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(&format!("\n    {:width$}  ", "")),
            other => other.to_string(),
        };
        text.push_str(&format!("    {name:<width$}  {shown}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;

    #[test]
    fn outputs_align_and_list_urls_one_per_line() {
        let outputs = BTreeMap::from([
            ("namespace".to_string(), json!("echo-dev")),
            ("nodePort".to_string(), json!(30007)),
            (
                "urls".to_string(),
                json!(["http://a:30007", "http://b:30007"]),
            ),
        ]);
        assert_eq!(
            format_outputs(&outputs),
            "Outputs:\n    namespace  echo-dev\n    nodePort   30007\n    urls       http://a:30007\n               http://b:30007\n"
        );
    }
}
