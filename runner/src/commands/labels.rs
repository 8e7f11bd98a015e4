//! Label selectors read from JSON objects: which pods a workload owns and
//! which workloads a Service (or a disruption budget) selects, as
//! Kubernetes matches them, for `graph` and `test`.

use serde_json::{Map, Value};

/// The workload kinds whose pods `graph` draws, found by their selector.
pub(crate) const WORKLOADS: [&str; 3] = ["Deployment", "StatefulSet", "DaemonSet"];

pub(crate) fn is_workload(kind: &str) -> bool {
    WORKLOADS.contains(&kind)
}

/// The labels of a workload's pod template.
pub(crate) fn template_labels(object: &Value) -> Option<&Map<String, Value>> {
    object["spec"]["template"]["metadata"]["labels"].as_object()
}

/// The pod spec an object runs: a workload's or Job's template, a CronJob's
/// job template, or a Pod's own.
pub(crate) fn pod_spec(object: &Value) -> Option<&Value> {
    let spec = &object["spec"];
    [
        &spec["template"]["spec"],
        &spec["jobTemplate"]["spec"]["template"]["spec"],
    ]
    .into_iter()
    .find(|s| s.is_object())
    .or_else(|| (object["kind"] == "Pod" && spec.is_object()).then_some(spec))
}

/// What an object selects pods by, as a `LabelSelector`-shaped value: a
/// Service's `spec.selector` map is its `matchLabels`. `None` when the
/// object selects nothing (a Service without a selector selects no pods).
pub(crate) fn selector_of(object: &Value) -> Option<Value> {
    let spec = &object["spec"];
    match object["kind"].as_str()? {
        "Service" => spec["selector"]
            .as_object()
            .filter(|m| !m.is_empty())
            .map(|m| serde_json::json!({"matchLabels": m})),
        "PodDisruptionBudget" => spec["selector"]
            .is_object()
            .then(|| spec["selector"].clone()),
        kind if is_workload(kind) => spec["selector"]
            .is_object()
            .then(|| spec["selector"].clone()),
        _ => None,
    }
}

/// Whether `selector` (a `LabelSelector`) matches `labels`. An empty
/// selector matches nothing here: nothing this command draws means "all".
pub(crate) fn matches(selector: &Value, labels: &Map<String, Value>) -> bool {
    let match_labels = selector["matchLabels"].as_object();
    let expressions = selector["matchExpressions"].as_array();
    if match_labels.is_none_or(Map::is_empty) && expressions.is_none_or(Vec::is_empty) {
        return false;
    }
    let labels_ok = match_labels
        .into_iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    let expressions_ok = expressions.into_iter().flatten().all(|e| {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let value = labels.get(key).and_then(Value::as_str);
        match e["operator"].as_str() {
            Some("In") => value.is_some_and(|v| values.contains(&v)),
            Some("NotIn") => value.is_none_or(|v| !values.contains(&v)),
            Some("Exists") => value.is_some(),
            Some("DoesNotExist") => value.is_none(),
            _ => false,
        }
    });
    labels_ok && expressions_ok
}

/// The selector in the API's query syntax (`app=web,tier in (a,b)`), to
/// list the pods it selects; `None` for a selector that selects nothing.
pub(crate) fn query(selector: &Value) -> Option<String> {
    let mut terms: Vec<String> = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    for e in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = e["key"].as_str().unwrap_or_default();
        let values = || {
            e["values"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(",")
        };
        terms.push(match e["operator"].as_str() {
            Some("In") => format!("{key} in ({})", values()),
            Some("NotIn") => format!("{key} notin ({})", values()),
            Some("Exists") => key.to_string(),
            Some("DoesNotExist") => format!("!{key}"),
            _ => continue,
        });
    }
    (!terms.is_empty()).then(|| terms.join(","))
}

/// The selector as a person reads it: `app: web, tier in (a, b)`.
pub(crate) fn describe(selector: &Value) -> String {
    let mut terms: Vec<String> = selector["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or_default()))
        .collect();
    for e in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = e["key"].as_str().unwrap_or_default();
        let values = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(", ");
        terms.push(match e["operator"].as_str() {
            Some("In") => format!("{key} in ({values})"),
            Some("NotIn") => format!("{key} not in ({values})"),
            Some("Exists") => format!("has {key}"),
            Some("DoesNotExist") => format!("no {key}"),
            _ => continue,
        });
    }
    terms.join(", ")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_service_selects_the_workloads_whose_template_labels_it_names() {
        let service = json!({"kind": "Service", "spec": {"selector": {"app": "web"}}});
        let selector = selector_of(&service).unwrap();
        let labels = |v: Value| v.as_object().unwrap().clone();
        assert!(matches(
            &selector,
            &labels(json!({"app": "web", "tier": "front"}))
        ));
        assert!(!matches(&selector, &labels(json!({"app": "api"}))));
        assert_eq!(query(&selector).as_deref(), Some("app=web"));
        assert_eq!(describe(&selector), "app: web");
    }

    #[test]
    fn expressions_match_and_query_as_the_api_spells_them() {
        let selector = json!({"matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["a", "b"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ]});
        let labels = json!({"tier": "b"}).as_object().unwrap().clone();
        assert!(matches(&selector, &labels));
        let canary = json!({"tier": "b", "canary": "1"})
            .as_object()
            .unwrap()
            .clone();
        assert!(!matches(&selector, &canary));
        assert_eq!(query(&selector).as_deref(), Some("tier in (a,b),!canary"));
    }

    #[test]
    fn a_service_without_a_selector_selects_nothing() {
        let service = json!({"kind": "Service", "spec": {"ports": [{"port": 80}]}});
        assert_eq!(selector_of(&service), None);
        assert!(!matches(&json!({}), &Map::new()));
    }
}
