//! No value of a Secret shows in anything a run prints or keeps: the plan
//! as text (with `--diff`), JSON and Markdown, the state document, and a
//! planning error. Generated Secrets are applied and then changed on the
//! fake API server, and every output is searched for every value, as
//! written, as base64 and line by line.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Value, json};

use echo_iac_engine::declare::Resources;
use echo_iac_engine::state::encode_document;
use echo_iac_engine::testing::FakeStack;
use echo_iac_engine::{DesiredResource, Identity, Plan};

use super::{MarkdownHeader, TextOptions, plan_json, plan_markdown, plan_text};

/// A value long enough that finding it in an output is no coincidence;
/// some span lines, which the text and diff renderers split.
fn secret_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9]{12,24}",
        "[A-Za-z0-9]{8,12}\n[A-Za-z0-9]{8,12}(\n[A-Za-z0-9]{8,12})?",
        "[A-Za-z0-9]{8,12}[\"'\\\\ :#]{1,3}[A-Za-z0-9]{8,12}",
    ]
}

/// One Secret's values: under `data` (base64) or `stringData`, by key.
#[derive(Clone, Debug)]
struct SecretValues {
    data: BTreeMap<String, String>,
    string_data: BTreeMap<String, String>,
    /// Also kept in the annotation client-side `kubectl apply` writes.
    last_applied: bool,
}

fn secret_values() -> impl Strategy<Value = SecretValues> {
    let map = || {
        let keys = prop::sample::select(vec!["password", "token", "tls.key", "user-name"]);
        prop::collection::btree_map(keys.prop_map(str::to_string), secret_value(), 0..3)
    };
    (map(), map(), any::<bool>()).prop_map(|(data, string_data, last_applied)| SecretValues {
        data,
        string_data,
        last_applied,
    })
}

/// Up to three Secrets, each as first applied and as planned next.
fn secrets() -> impl Strategy<Value = Vec<(SecretValues, SecretValues)>> {
    prop::collection::vec((secret_values(), secret_values()), 1..4)
}

fn base64(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn secret(i: usize, values: &SecretValues) -> Value {
    let data: serde_json::Map<String, Value> = values
        .data
        .iter()
        .map(|(k, v)| (k.clone(), Value::from(base64(v))))
        .collect();
    let mut object = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": format!("s{i}"), "namespace": "default"},
        "type": "Opaque", "data": data, "stringData": values.string_data});
    if values.last_applied {
        object["metadata"]["annotations"] = json!({
            "kubectl.kubernetes.io/last-applied-configuration": object.to_string()
        });
    }
    object
}

fn declare(secrets: &[&SecretValues]) -> Vec<DesiredResource> {
    let mut resources = Resources::new(&Identity::new("shop-iac"), "dev");
    for (i, values) in secrets.iter().enumerate() {
        resources.add(secret(i, values));
    }
    resources.finish().expect("distinct names")
}

/// Every form a value could be shown in: as written, as base64, as a JSON
/// string's text, and each of its lines.
fn forms(values: &SecretValues) -> Vec<String> {
    let mut forms = Vec::new();
    for value in values.data.values().chain(values.string_data.values()) {
        forms.push(value.clone());
        forms.push(base64(value));
        let quoted = Value::from(value.as_str()).to_string();
        forms.push(quoted[1..quoted.len() - 1].to_string());
        forms.extend(value.lines().filter(|l| l.len() >= 8).map(str::to_string));
    }
    forms
}

/// What a person or a machine could read of `plan`.
fn rendered(plan: &Plan) -> Vec<(&'static str, String)> {
    let header = MarkdownHeader {
        stack: "dev",
        namespace: "default",
        context: "",
    };
    vec![
        (
            "text",
            plan_text(
                plan,
                &TextOptions {
                    diff: true,
                    color: false,
                },
            ),
        ),
        ("json", plan_json(plan).to_string()),
        ("markdown", plan_markdown(plan, &header)),
    ]
}

/// Applies the first values, plans the second, and returns everything
/// shown or kept on the way.
async fn outputs(secrets: &[(SecretValues, SecretValues)]) -> Vec<(&'static str, String)> {
    let stack = FakeStack::new(Identity::new("shop-iac"), "dev");
    let first = declare(&secrets.iter().map(|(a, _)| a).collect::<Vec<_>>());
    let second = declare(&secrets.iter().map(|(_, b)| b).collect::<Vec<_>>());
    let mut out = Vec::new();
    match stack.up(&first).await {
        Ok(plan) => out.extend(rendered(&plan)),
        Err(err) => out.push(("up error", err.to_string())),
    }
    match stack.plan(&second).await {
        Ok(plan) => out.extend(rendered(&plan)),
        Err(err) => out.push(("plan error", err.to_string())),
    }
    let state = stack.state().await.expect("the state reads");
    let document = encode_document(&state).expect("the state encodes");
    out.push(("state", String::from_utf8(document).expect("JSON is UTF-8")));
    out
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime")
    })
}

/// The property tests' settings: 256 cases, and with `CI` set a fixed seed
/// (unless `PROPTEST_RNG_SEED` names one), so that CI's run can be repeated.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig::with_cases(256);
    if std::env::var_os("CI").is_some() && std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = proptest::test_runner::RngSeed::Fixed(0x5eed);
    }
    config
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn no_secret_value_shows_in_a_plan_the_state_or_an_error(secrets in secrets()) {
        let shown = runtime().block_on(outputs(&secrets));
        for (first, second) in &secrets {
            for form in forms(first).iter().chain(&forms(second)) {
                for (what, text) in &shown {
                    prop_assert!(!text.contains(form.as_str()), "{:?} in the {}:\n{}", form, what, text);
                }
            }
        }
    }
}
