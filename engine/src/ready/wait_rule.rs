//! Wait rules a program declares: what makes one object ready, and what
//! makes it failed, when the rules of its kind cannot tell (a custom
//! resource without kstatus conditions is ready once it exists).
//!
//! A check is written as `kubectl wait --for` takes it:
//!
//! - `condition=TYPE` or `condition=TYPE=STATUS`: the condition of that type
//!   has that status (`True` when none is given; compared ignoring case).
//!   A condition that reports an `observedGeneration` behind the object's
//!   `metadata.generation` speaks of an older spec and does not count yet.
//! - `jsonpath={PATH}=VALUE`: a value found at `PATH` is `VALUE` (strings as
//!   they are, other values as JSON: `true`, `3`); `jsonpath={PATH}`: some
//!   value other than null is found there.
//!
//! `PATH` is JSONPath as RFC 9535 has it, written relative to the object
//! as kubectl writes it: dot fields (`.status.phase`), indexes
//! (`.status.conditions[0].type`), and filters
//! (`.status.conditions[?(@.type=="Ready")].status`).
//!
//! Pure functions of JSON, so each rule is tested from fixtures.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;
use serde_json_path::JsonPath;

use super::rules::{self, Endpoints, Status, Verdict};

/// What one object waits for: a check that makes it ready (else the rules
/// of its kind), and a check that makes it failed, so the wait stops at
/// once with the object's reason and message.
///
/// ```
/// use echo_iac_engine::ready::WaitRule;
///
/// let rule: WaitRule = "condition=Synced=True".parse()?;
/// let rule = rule.failing_on("condition=Ready=False")?;
/// assert_eq!(rule.to_string(), "condition Synced=True, failed on condition Ready=False");
/// let phase = WaitRule::default().failing_on("jsonpath={.status.phase}=Failed")?;
/// assert_eq!(phase.to_string(), "failed on {.status.phase}=Failed");
/// # Ok::<(), echo_iac_engine::ready::WaitRuleError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WaitRule {
    ready: Option<Check>,
    failed: Option<Check>,
}

/// A condition or a JSONPath with a value, as parsed from its text.
#[derive(Clone, Debug)]
pub struct Check {
    test: Test,
}

#[derive(Clone, Debug)]
enum Test {
    Condition {
        kind: String,
        status: String,
    },
    Field {
        /// As written, braces and all: `{.status.phase}`.
        text: String,
        path: JsonPath,
        value: Option<String>,
    },
}

/// A wait rule that cannot be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "wait rule `{rule}` is malformed: {why} (a rule is condition=TYPE[=STATUS] or jsonpath={{PATH}}[=VALUE])"
)]
pub struct WaitRuleError {
    /// The rule as written.
    pub rule: String,
    /// What is wrong with it.
    pub why: String,
}

impl WaitRule {
    /// The rule `text` (`condition=Ready`, `jsonpath={.status.phase}=Running`)
    /// makes the object ready.
    pub fn new(text: &str) -> Result<Self, WaitRuleError> {
        Ok(WaitRule {
            ready: Some(text.parse()?),
            failed: None,
        })
    }

    /// The object has failed once `text` holds (`condition=Ready=False`,
    /// `jsonpath={.status.phase}=Failed`): the wait stops at once.
    pub fn failing_on(mut self, text: &str) -> Result<Self, WaitRuleError> {
        self.failed = Some(text.parse()?);
        Ok(self)
    }

    /// The verdict on `live`: failed when the failure check holds, ready
    /// when the ready check does, or by the rules of its kind when the rule
    /// has no ready check (`endpoints` matters only for a Service).
    pub fn assess(&self, live: &Value, endpoints: Endpoints) -> Verdict {
        if !live["metadata"]["deletionTimestamp"].is_null() {
            return verdict(Status::InProgress, "being deleted", None);
        }
        let observed = live["status"]["observedGeneration"].as_i64();
        if observed.is_some_and(|o| o < generation(live)) {
            return verdict(
                Status::InProgress,
                "waiting for the controller to see the new spec",
                None,
            );
        }
        if let Some(failed) = &self.failed
            && let Found::Holds(why) = failed.find(live)
        {
            let mut reason = format!("{failed}");
            if let Some(why) = why.or_else(|| status_reason(live)) {
                reason.push_str(&format!(": {why}"));
            }
            return verdict(Status::Failed, format!("failed: {failed}"), Some(reason));
        }
        let Some(ready) = &self.ready else {
            return rules::assess(live, endpoints);
        };
        match ready.find(live) {
            Found::Holds(_) => verdict(Status::Ready, ready.to_string(), None),
            Found::Other { now, why } => verdict(
                Status::InProgress,
                format!("waiting for {ready}: {now}"),
                why,
            ),
        }
    }
}

impl FromStr for WaitRule {
    type Err = WaitRuleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        WaitRule::new(text)
    }
}

impl fmt::Display for WaitRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.ready, &self.failed) {
            (Some(ready), Some(failed)) => write!(f, "{ready}, failed on {failed}"),
            (Some(ready), None) => write!(f, "{ready}"),
            (None, Some(failed)) => write!(f, "failed on {failed}"),
            (None, None) => write!(f, "the rules of its kind"),
        }
    }
}

/// What a check found in an object.
enum Found {
    /// It holds; for a condition, its reason and message.
    Holds(Option<String>),
    /// It does not: what is there now, and why when the object says.
    Other { now: String, why: Option<String> },
}

impl Check {
    fn find(&self, live: &Value) -> Found {
        match &self.test {
            Test::Condition { kind, status } => {
                let Some(c) = rules::conditions(live).find(|c| c["type"] == kind.as_str()) else {
                    return Found::Other {
                        now: format!("no {kind} condition yet"),
                        why: None,
                    };
                };
                let now = c["status"].as_str().unwrap_or("unknown");
                let stale = c["observedGeneration"]
                    .as_i64()
                    .is_some_and(|o| o < generation(live));
                let why = described(c);
                if stale {
                    Found::Other {
                        now: format!("currently {now}, for an older generation"),
                        why,
                    }
                } else if now.eq_ignore_ascii_case(status) {
                    Found::Holds(why)
                } else {
                    Found::Other {
                        now: format!("currently {now}"),
                        why,
                    }
                }
            }
            Test::Field { text, path, value } => {
                let found: Vec<&Value> = path
                    .query(live)
                    .all()
                    .into_iter()
                    .filter(|v| !v.is_null())
                    .collect();
                let holds = match value {
                    Some(value) => found.iter().any(|v| plain(v) == *value),
                    None => !found.is_empty(),
                };
                if holds {
                    return Found::Holds(None);
                }
                let now = match found.as_slice() {
                    [] => format!("{text} not set yet"),
                    [one] => format!("currently {}", plain(one)),
                    many => format!(
                        "currently {}",
                        many.iter().map(|v| plain(v)).collect::<Vec<_>>().join(", ")
                    ),
                };
                Found::Other { now, why: None }
            }
        }
    }
}

impl FromStr for Check {
    type Err = WaitRuleError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let malformed = |why: String| WaitRuleError {
            rule: text.to_string(),
            why,
        };
        let test = if let Some(rest) = text.strip_prefix("condition=") {
            let (kind, status) = rest.split_once('=').unwrap_or((rest, "True"));
            if kind.is_empty() || kind.contains(char::is_whitespace) {
                return Err(malformed(
                    "a condition needs a type, as in condition=Ready".into(),
                ));
            }
            if status.is_empty() || status.contains(['=', ' ']) {
                return Err(malformed(format!(
                    "`{status}` is not a condition status (True, False or Unknown)"
                )));
            }
            Test::Condition {
                kind: kind.to_string(),
                status: status.to_string(),
            }
        } else if let Some(rest) = text.strip_prefix("jsonpath=") {
            let Some(end) = closing_brace(rest) else {
                return Err(malformed(
                    "the path goes in braces, as in jsonpath={.status.phase}=Running".into(),
                ));
            };
            let (braced, after) = rest.split_at(end + 1);
            let inner = &braced[1..braced.len() - 1];
            let query = match inner.strip_prefix('$') {
                Some(_) => inner.to_string(),
                None if inner.starts_with(['.', '[']) => format!("${inner}"),
                None => {
                    return Err(malformed(format!(
                        "the path `{inner}` starts with a dot, as in {{.status.phase}}"
                    )));
                }
            };
            let path = JsonPath::parse(&query).map_err(|e| malformed(e.to_string()))?;
            let value = match after.strip_prefix('=') {
                Some("") => {
                    return Err(malformed("a value goes after the `=`".into()));
                }
                Some(value) => Some(value.to_string()),
                None if after.is_empty() => None,
                None => {
                    return Err(malformed(format!(
                        "`{after}` after the path is not `=VALUE`"
                    )));
                }
            };
            Test::Field {
                text: braced.to_string(),
                path,
                value,
            }
        } else {
            return Err(malformed(
                "it starts with neither condition= nor jsonpath=".into(),
            ));
        };
        Ok(Check { test })
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.test {
            Test::Condition { kind, status } => write!(f, "condition {kind}={status}"),
            Test::Field {
                text,
                value: Some(value),
                ..
            } => write!(f, "{text}={value}"),
            Test::Field {
                text, value: None, ..
            } => write!(f, "{text} set"),
        }
    }
}

impl PartialEq for Check {
    fn eq(&self, other: &Self) -> bool {
        self.to_string() == other.to_string()
    }
}

/// Where the brace that opens `text` closes, outside quotes and brackets.
fn closing_brace(text: &str) -> Option<usize> {
    if !text.starts_with('{') {
        return None;
    }
    let mut quote: Option<char> = None;
    let mut depth = 0usize;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if let Some(q) = quote {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                _ if c == q => quote = None,
                _ => {}
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '{' | '[' | '(' => depth += 1,
            '}' | ']' | ')' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return (c == '}').then_some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn verdict(status: Status, progress: impl Into<String>, reason: Option<String>) -> Verdict {
    Verdict {
        status,
        progress: progress.into(),
        reason,
    }
}

fn generation(live: &Value) -> i64 {
    live["metadata"]["generation"].as_i64().unwrap_or(0)
}

/// A condition's `reason: message`, or what there is of them.
fn described(condition: &Value) -> Option<String> {
    let said: Vec<&str> = ["reason", "message"]
        .iter()
        .filter_map(|field| condition[*field].as_str())
        .filter(|s| !s.is_empty())
        .collect();
    (!said.is_empty()).then(|| said.join(": "))
}

/// What an object's status says of itself beyond its conditions, for a
/// failure found by a field: its `reason` and `message`, when it has them.
fn status_reason(live: &Value) -> Option<String> {
    described(&live["status"])
}

/// A found value as a rule compares it: a string as it is, anything else
/// as JSON.
fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn widget(status: Value) -> Value {
        json!({"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": "w", "namespace": "ns", "generation": 2},
            "status": status})
    }

    fn assess(rule: &WaitRule, live: &Value) -> Verdict {
        rule.assess(live, Endpoints::default())
    }

    fn malformed(text: &str) -> String {
        WaitRule::new(text).unwrap_err().why
    }

    #[test]
    fn conditions_and_paths_parse_and_say_what_they_wait_for() {
        let shown = |text: &str| WaitRule::new(text).unwrap().to_string();
        assert_eq!(shown("condition=Ready"), "condition Ready=True");
        assert_eq!(shown("condition=Synced=False"), "condition Synced=False");
        assert_eq!(
            shown("jsonpath={.status.phase}=Running"),
            "{.status.phase}=Running"
        );
        assert_eq!(shown("jsonpath={.status.url}"), "{.status.url} set");
        assert_eq!(
            shown(r#"jsonpath={.status.conditions[?(@.type=="A}")].status}=True"#),
            r#"{.status.conditions[?(@.type=="A}")].status}=True"#
        );
        assert_eq!(shown("jsonpath={$.status.a[0]}=x=y"), "{$.status.a[0]}=x=y");
    }

    #[test]
    fn a_malformed_rule_says_what_is_wrong() {
        assert!(malformed("ready").contains("neither condition= nor jsonpath="));
        assert!(malformed("condition=").contains("needs a type"));
        assert!(malformed("condition=Ready=").contains("not a condition status"));
        assert!(malformed("jsonpath=.status.phase=Running").contains("in braces"));
        assert!(malformed("jsonpath={.status.phase=Running").contains("in braces"));
        assert!(malformed("jsonpath={status.phase}=Running").contains("starts with a dot"));
        assert!(malformed("jsonpath={.status.phase}=").contains("a value goes after"));
        assert!(malformed("jsonpath={.status.phase}Running").contains("is not `=VALUE`"));
        // The JSONPath parser's own word on a path it cannot read.
        assert!(!malformed("jsonpath={.status[?(@.a==]}=x").is_empty());
        let error = WaitRule::new("condition=").unwrap_err().to_string();
        assert!(
            error.starts_with("wait rule `condition=` is malformed"),
            "{error}"
        );
    }

    #[test]
    fn a_condition_rule_waits_for_its_status_and_says_what_it_is_now() {
        let rule = WaitRule::new("condition=Synced=True").unwrap();
        let none = assess(&rule, &widget(json!({})));
        assert_eq!(none.status, Status::InProgress);
        assert_eq!(
            none.progress,
            "waiting for condition Synced=True: no Synced condition yet"
        );
        let false_ = assess(
            &rule,
            &widget(json!({"conditions": [{"type": "Synced", "status": "False",
                "reason": "Pending", "message": "talking to the provider"}]})),
        );
        assert_eq!(
            false_.progress,
            "waiting for condition Synced=True: currently False"
        );
        assert_eq!(
            false_.reason.as_deref(),
            Some("Pending: talking to the provider")
        );
        let true_ = assess(
            &rule,
            &widget(json!({"conditions": [{"type": "Synced", "status": "true"}]})),
        );
        assert_eq!(true_.status, Status::Ready);
        assert_eq!(true_.progress, "condition Synced=True");
    }

    #[test]
    fn a_condition_of_an_older_generation_does_not_count() {
        let rule = WaitRule::new("condition=Ready").unwrap();
        let stale = widget(json!({"conditions": [{"type": "Ready", "status": "True",
            "observedGeneration": 1}]}));
        let verdict = assess(&rule, &stale);
        assert_eq!(verdict.status, Status::InProgress);
        assert!(verdict.progress.contains("older generation"), "{verdict:?}");
        let behind = widget(json!({"observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "True"}]}));
        assert_eq!(assess(&rule, &behind).status, Status::InProgress);
    }

    #[test]
    fn a_path_rule_compares_the_values_found() {
        let rule = WaitRule::new("jsonpath={.status.phase}=Running").unwrap();
        let pending = assess(&rule, &widget(json!({"phase": "Pending"})));
        assert_eq!(
            pending.progress,
            "waiting for {.status.phase}=Running: currently Pending"
        );
        let unset = assess(&rule, &widget(json!({})));
        assert_eq!(
            unset.progress,
            "waiting for {.status.phase}=Running: {.status.phase} not set yet"
        );
        assert_eq!(
            assess(&rule, &widget(json!({"phase": "Running"}))).status,
            Status::Ready
        );
        let count = WaitRule::new("jsonpath={.status.replicas[1]}=3").unwrap();
        assert_eq!(
            assess(&count, &widget(json!({"replicas": [1, 3]}))).status,
            Status::Ready
        );
        let filtered =
            WaitRule::new(r#"jsonpath={.status.conditions[?(@.type=="Ready")].status}=True"#)
                .unwrap();
        let ready = widget(json!({"conditions": [{"type": "Other", "status": "False"},
            {"type": "Ready", "status": "True"}]}));
        assert_eq!(assess(&filtered, &ready).status, Status::Ready);
        let set = WaitRule::new("jsonpath={.status.url}").unwrap();
        assert_eq!(
            assess(&set, &widget(json!({"url": null}))).status,
            Status::InProgress
        );
        assert_eq!(
            assess(&set, &widget(json!({"url": "http://x"}))).status,
            Status::Ready
        );
    }

    #[test]
    fn a_failure_check_fails_with_the_objects_reason_and_message() {
        let rule = WaitRule::new("condition=Ready")
            .unwrap()
            .failing_on("condition=Ready=False")
            .unwrap();
        let failed = assess(
            &rule,
            &widget(json!({"conditions": [{"type": "Ready", "status": "False",
                "reason": "BadConfig", "message": "port 99999 is out of range"}]})),
        );
        assert_eq!(failed.status, Status::Failed);
        assert_eq!(
            failed.reason.as_deref(),
            Some("condition Ready=False: BadConfig: port 99999 is out of range")
        );
        let phase = WaitRule::default()
            .failing_on("jsonpath={.status.phase}=Failed")
            .unwrap();
        let failed = assess(
            &phase,
            &widget(json!({"phase": "Failed", "message": "disk full"})),
        );
        assert_eq!(failed.status, Status::Failed);
        assert_eq!(
            failed.reason.as_deref(),
            Some("{.status.phase}=Failed: disk full")
        );
    }

    #[test]
    fn without_a_ready_check_the_rules_of_the_kind_apply() {
        let rule = WaitRule::default()
            .failing_on("jsonpath={.status.phase}=Failed")
            .unwrap();
        let not_ready = widget(json!({"conditions": [{"type": "Ready", "status": "False"}]}));
        assert_eq!(assess(&rule, &not_ready).status, Status::InProgress);
        assert_eq!(
            assess(&rule, &widget(json!({}))).status,
            Status::Ready,
            "a kind without conditions is ready once it exists"
        );
    }
}
