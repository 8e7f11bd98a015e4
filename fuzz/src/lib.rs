//! What the fuzz targets check, shared by them: each target turns its
//! input into what its decoder reads and calls one of these.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use echo_iac_engine::Identity;
use echo_iac_engine::saved_plan::SavedPlan;
use echo_iac_engine::state::{StateError, decode_head, encode_document, parse_document};
use echo_iac_runner::ProgramConfig;
use echo_iac_runner::stack::testing::{FILE, HOME, parse_as};

/// What separates the documents one input stands for: bytes no UTF-8 text
/// holds and a gzip stream holds only by rare chance (a single 0xFF would
/// not do: gzip headers carry one).
pub const SEPARATOR: &[u8] = &[0xFF, 0x00, 0xFF, 0x00];

/// Splits an input at each [`SEPARATOR`] into its documents.
pub fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut documents = Vec::new();
    let mut rest = data;
    while let Some(at) = rest
        .windows(SEPARATOR.len())
        .position(|window| window == SEPARATOR)
    {
        documents.push(&rest[..at]);
        rest = &rest[at + SEPARATOR.len()..];
    }
    documents.push(rest);
    documents
}

/// A stack file read by program `C`: every error names the file, line and
/// column of the offending text, inside the text.
pub fn stack_file<C: ProgramConfig>(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Err(err) = parse_as::<C>("dev", text, Some(Path::new(HOME))) else {
        return;
    };
    let shown = err.to_string();
    let _ = err.hint();
    let Some((line, column)) = err.position() else {
        panic!("a stack error with no line and column: {shown}");
    };
    assert!(
        shown.starts_with(&format!("{FILE}:{line}:{column}: ")),
        "a stack error that does not start with its place: {shown}"
    );
    // A place past the end of the text would point at nothing. Lines
    // break as YAML breaks them: at a line feed, a carriage return and
    // line feed, or a carriage return alone.
    let lines = text.replace("\r\n", "\n").split(['\n', '\r']).count();
    assert!(
        line >= 1 && line <= lines && column >= 1,
        "{line}:{column} is outside the {lines} lines of the file: {shown}"
    );
}

/// Where the state document targets say the document is stored.
const STATE_FILE: &str = "state/dev.json";

/// A state document as the file backend reads it: every error names the
/// file, and a document that reads is written back the same way twice.
pub fn state_document(data: &[u8]) {
    match parse_document(STATE_FILE, data, "dev") {
        Err(err) => assert_located(&err, STATE_FILE),
        Ok(state) => {
            let encoded = encode_document(&state).expect("a state read encodes");
            state_round_trip(STATE_FILE, &encoded, "dev");
        }
    }
}

/// `encoded`, what the encoder wrote, reads back and encodes to itself.
fn state_round_trip(location: &str, encoded: &[u8], stack: &str) {
    let again = parse_document(location, encoded, stack).unwrap_or_else(|e| {
        panic!(
            "a written state does not read back: {e}\n{}",
            String::from_utf8_lossy(encoded)
        )
    });
    let encoded_again = encode_document(&again).expect("a state read encodes");
    assert!(
        encoded == encoded_again.as_slice(),
        "the state changes on a second round trip:\n{}\n---\n{}",
        String::from_utf8_lossy(encoded),
        String::from_utf8_lossy(&encoded_again)
    );
}

fn assert_located(err: &StateError, location: &str) {
    let shown = err.to_string();
    assert!(
        shown.contains(location),
        "a state error that does not name {location}: {shown}"
    );
}

/// The namespace and stack the head targets read.
const NAMESPACE: &str = "ops";

/// The head Secret of the Kubernetes backend, with its inline revisions
/// and part Secrets: `documents[0]` is `index.json`; the others are, in
/// order, the inline revisions (`state.<serial>.gz`) and then the parts
/// the index names. Every error names the Secret (and the revision), and
/// an index that reads is written back the same way twice.
pub fn kube_state_head(documents: &[&[u8]]) {
    let Some((index, rest)) = documents.split_first() else {
        return;
    };
    let mut head = BTreeMap::from([("index.json".to_string(), index.to_vec())]);
    let mut parts = BTreeMap::new();
    let mut rest = rest.iter();
    // The keys follow what the index names, read loosely, so that an
    // input can hold the data a valid index points at.
    let listed: serde_json::Value = serde_json::from_slice(index).unwrap_or_default();
    for revision in listed["revisions"].as_array().into_iter().flatten() {
        match (revision["serial"].as_u64(), revision["parts"].as_array()) {
            (Some(serial), None) => {
                if let Some(bytes) = rest.next() {
                    head.insert(format!("state.{serial}.gz"), bytes.to_vec());
                }
            }
            (_, Some(names)) => {
                for name in names.iter().filter_map(|n| n.as_str()) {
                    if let Some(bytes) = rest.next() {
                        parts.insert(name.to_string(), bytes.to_vec());
                    }
                }
            }
            _ => {}
        }
    }
    let identity = Identity::new("echo-iac");
    let secret = format!("Secret {NAMESPACE}/echo-iac-state-dev");
    match decode_head(&identity, NAMESPACE, "dev", &head, &parts) {
        Err(err) => assert_located(&err, &secret),
        Ok(decoded) => {
            for (serial, state) in &decoded.revisions {
                let location = format!("revision {serial} in {secret}");
                match state {
                    Err(err) => assert_located(err, &location),
                    Ok(state) => {
                        let encoded = encode_document(state).expect("a state read encodes");
                        state_round_trip(&location, &encoded, "dev");
                    }
                }
            }
            let mut again = head.clone();
            again.insert("index.json".into(), decoded.index.clone());
            let reread = decode_head(&identity, NAMESPACE, "dev", &again, &parts)
                .expect("a written index reads back");
            assert_eq!(
                String::from_utf8_lossy(&decoded.index),
                String::from_utf8_lossy(&reread.index),
                "the index changes on a second round trip"
            );
        }
    }
}

/// A folder of this process's own for the kubeconfig files it writes.
fn scratch() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("echo-iac-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the temporary folder is writable");
        dir
    })
}

/// A kubeconfig list (`KUBECONFIG=a:b:c`, the last one missing) merged
/// as a connection does: every error names the files.
pub fn kubeconfig_merge(documents: &[&[u8]]) {
    let dir = scratch();
    let mut paths: Vec<PathBuf> = documents
        .iter()
        .take(3)
        .enumerate()
        .map(|(i, text)| {
            let path = dir.join(format!("config-{i}"));
            std::fs::write(&path, text).expect("the temporary folder is writable");
            path
        })
        .collect();
    if paths.len() > 1 {
        paths.push(dir.join("missing"));
    }
    if let Err(err) = echo_iac_engine::cluster::read_kubeconfigs(&paths) {
        let shown = err.to_string();
        assert!(
            shown.contains(&dir.display().to_string()),
            "a kubeconfig error that names no file: {shown}"
        );
    }
}

/// A saved plan: every error says where (line and column) or why the file
/// is no plan of this format, and a plan that reads is written back the
/// same way twice.
pub fn saved_plan(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match SavedPlan::parse(text) {
        Err(reason) => assert!(
            reason.contains(" line ") || reason.contains("format"),
            "a saved plan error with no place: {reason}"
        ),
        Ok(plan) => {
            let written = plan.to_text();
            let again = SavedPlan::parse(&written)
                .unwrap_or_else(|e| panic!("a written plan does not read back: {e}\n{written}"));
            assert_eq!(again, plan);
            assert_eq!(again.to_text(), written);
        }
    }
}
