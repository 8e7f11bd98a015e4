//! `echo-iac output`: the outputs recorded by the last `up`.

use serde_json::Value;

use crate::cli::{GlobalArgs, OutputArgs};
use crate::error::Error;

use super::{Session, print};

pub async fn run(global: &GlobalArgs, args: OutputArgs) -> Result<(), Error> {
    let session = Session::open(global)?;
    let state = session.store().await?.load().await?;
    let outputs = &state.outputs;
    match args.name {
        Some(name) => {
            let value = outputs.get(&name).ok_or_else(|| {
                let known: Vec<&str> = outputs.keys().map(String::as_str).collect();
                Error::refused(
                    format!("stack {} has no output `{name}`", session.stack.name),
                    if known.is_empty() {
                        "the stack has no outputs yet: run `echo-iac up` first".to_string()
                    } else {
                        format!("outputs are: {}", known.join(", "))
                    },
                )
            })?;
            print(&match (value, args.json) {
                (Value::String(s), false) => s.clone(),
                (Value::Object(services), false) if name == SERVICES => {
                    services_table(services).trim_end().to_string()
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

/// The output that holds each service's outputs, by name, when a stack has
/// several.
const SERVICES: &str = "services";

/// Above this many services, the outputs name how many there are and the
/// command that lists them, rather than a row each.
const SERVICE_ROWS: usize = 20;

/// Outputs as aligned `name  value` lines; several services as a table
/// (or, for many, a count), never as one long JSON line.
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
            Value::Object(services) if name == SERVICES && services.len() > SERVICE_ROWS => {
                format!(
                    "{} echo services: `echo-iac output {SERVICES}` lists them, \
                     `echo-iac output --json` gives every output",
                    services.len()
                )
            }
            Value::Object(services) if name == SERVICES => {
                let table: String = services_table(services)
                    .lines()
                    .map(|line| format!("\n      {line}"))
                    .collect();
                format!("{} echo services:{table}", services.len())
            }
            other => other.to_string(),
        };
        text.push_str(&format!("    {name:<width$}  {shown}\n"));
    }
    text
}

/// One row per service: its name, type, node port, ready replicas and the
/// URL to try first (the load balancer's, else the first node's, else the
/// in-cluster one).
fn services_table(services: &serde_json::Map<String, Value>) -> String {
    let text = |value: &Value| match value {
        Value::String(s) => s.clone(),
        Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    let mut rows = vec![[
        "NAME".to_string(),
        "TYPE".to_string(),
        "NODE PORT".to_string(),
        "READY".to_string(),
        "URL".to_string(),
    ]];
    for (name, service) in services {
        let url = [
            &service["loadBalancerUrl"],
            &service["urls"][0],
            &service["clusterUrl"],
        ]
        .into_iter()
        .find(|url| url.is_string())
        .unwrap_or(&Value::Null);
        rows.push([
            name.clone(),
            text(&service["serviceType"]),
            text(&service["nodePort"]),
            text(&service["readyReplicas"]),
            text(url),
        ]);
    }
    let widths: Vec<usize> = (0..4)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        for (cell, width) in row.iter().zip(&widths) {
            out.push_str(&format!("{cell:<width$}  "));
        }
        out.push_str(&row[4]);
        out.push('\n');
    }
    out
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
    fn several_services_are_a_table_not_a_json_line() {
        insta::assert_snapshot!(format_outputs(&services(2)), @r"
        Outputs:
            namespace  echo-dev
            services   2 echo services:
              NAME            TYPE      NODE PORT  READY  URL
              echo-0-service  NodePort  30100      1      http://127.0.10.1:30100
              echo-1-service  NodePort  30101      1      http://127.0.10.1:30101
        ");
    }

    #[test]
    fn many_services_are_counted_with_the_command_that_lists_them() {
        let text = format_outputs(&services(1000));
        assert!(text.lines().all(|l| l.len() < 120), "{text}");
        assert!(
            text.contains(
                "services   1000 echo services: `echo-iac output services` lists them, \
                 `echo-iac output --json` gives every output"
            ),
            "{text}"
        );
        let table = services_table(services(1000)["services"].as_object().unwrap());
        assert_eq!(table.lines().count(), 1001);
    }
}
