//! `echo-iac output`: the outputs recorded by the last `up`.

use serde_json::Value;

use crate::cli::OutputArgs;
use crate::error::Error;
use crate::program::Program;

use super::{Session, print};

pub(crate) async fn run<P: Program>(session: &Session<P>, args: OutputArgs) -> Result<(), Error> {
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
                (Value::Object(records), false) if is_records(records) => {
                    records_table(records).trim_end().to_string()
                }
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

/// Above this many records, an output that maps names to records (the
/// echo program's `services`) is shown as a count with the command that
/// lists them, rather than a row each.
const RECORD_ROWS: usize = 20;

/// Outputs as aligned `name  value` lines; an output that maps names to
/// records as a table (or, for many, a count), never as one long JSON
/// line.
pub(crate) fn format_outputs(outputs: &std::collections::BTreeMap<String, Value>) -> String {
    if outputs.is_empty() {
        return "No outputs: the stack has not been brought up.".to_string();
    }
    let bin = crate::name::bin();
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
            Value::Object(records) if is_records(records) && records.len() > RECORD_ROWS => {
                format!(
                    "{} entries: `{bin} output {name}` lists them, `{bin} output --json` gives \
                     every output",
                    records.len()
                )
            }
            Value::Object(records) if is_records(records) => {
                let table: String = records_table(records)
                    .lines()
                    .map(|line| format!("\n      {line}"))
                    .collect();
                format!("{} entries:{table}", records.len())
            }
            other => other.to_string(),
        };
        text.push_str(&format!("    {name:<width$}  {shown}\n"));
    }
    text
}

/// Whether an output maps names to records (objects), as a table shows.
fn is_records(value: &serde_json::Map<String, Value>) -> bool {
    !value.is_empty() && value.values().all(Value::is_object)
}

/// One row per record, a column per field in the order fields first
/// appear; a list shows its first item and how many more it has.
fn records_table(records: &serde_json::Map<String, Value>) -> String {
    let mut fields: Vec<&str> = Vec::new();
    for record in records.values().filter_map(Value::as_object) {
        for key in record.keys() {
            if !fields.contains(&key.as_str()) {
                fields.push(key);
            }
        }
    }
    let cell = |value: Option<&Value>| match value {
        None | Some(Value::Null) => "-".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => match items.split_first() {
            None => "-".to_string(),
            Some((first, [])) => cell_text(first),
            Some((first, rest)) => format!("{} (+{})", cell_text(first), rest.len()),
        },
        Some(other) => cell_text(other),
    };
    let mut rows = vec![
        std::iter::once("NAME".to_string())
            .chain(fields.iter().map(|f| f.to_string()))
            .collect::<Vec<_>>(),
    ];
    for (name, record) in records {
        rows.push(
            std::iter::once(name.clone())
                .chain(fields.iter().map(|f| cell(record.get(*f))))
                .collect(),
        );
    }
    let widths: Vec<usize> = (0..=fields.len())
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn cell_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Object(_) => "{…}".to_string(),
        other => other.to_string(),
    }
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

    fn services(count: usize) -> BTreeMap<String, Value> {
        let services: serde_json::Map<String, Value> = (0..count)
            .map(|i| {
                let port = 30100 + i;
                (
                    format!("echo-{i}-service"),
                    json!({
                        "serviceType": "NodePort",
                        "clusterUrl": format!("http://echo-{i}-service.echo-dev.svc.cluster.local"),
                        "nodePort": port,
                        "urls": [format!("http://127.0.10.1:{port}")],
                        "readyReplicas": 1,
                    }),
                )
            })
            .collect();
        BTreeMap::from([
            ("namespace".to_string(), json!("echo-dev")),
            ("services".to_string(), Value::Object(services)),
        ])
    }

    #[test]
    fn records_are_a_table_not_a_json_line() {
        insta::assert_snapshot!(format_outputs(&services(2)), @r"
        Outputs:
            namespace  echo-dev
            services   2 entries:
              NAME            clusterUrl                                        nodePort  readyReplicas  serviceType  urls
              echo-0-service  http://echo-0-service.echo-dev.svc.cluster.local  30100     1              NodePort     http://127.0.10.1:30100
              echo-1-service  http://echo-1-service.echo-dev.svc.cluster.local  30101     1              NodePort     http://127.0.10.1:30101
        ");
    }

    #[test]
    fn many_records_are_counted_with_the_command_that_lists_them() {
        let text = format_outputs(&services(1000));
        assert!(text.lines().all(|l| l.len() < 120), "{text}");
        assert!(
            text.contains(
                "services   1000 entries: `echo-iac output services` lists them, \
                 `echo-iac output --json` gives every output"
            ),
            "{text}"
        );
        let table = records_table(services(1000)["services"].as_object().unwrap());
        assert_eq!(table.lines().count(), 1001);
    }

    #[test]
    fn a_list_in_a_record_shows_its_first_item_and_how_many_more() {
        let records = json!({"a": {"urls": ["x", "y", "z"], "none": []}});
        assert_eq!(
            records_table(records.as_object().unwrap()),
            "NAME  none  urls\na     -     x (+2)\n"
        );
    }
}
