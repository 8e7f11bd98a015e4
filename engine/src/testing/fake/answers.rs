//! The API server's `Status` answers, in its own words.

use serde_json::{Value, json};

use super::fields::{Seg, render_path};
use super::{Key, Logged};

/// A failed request: the status code and the `Status` body.
pub(super) struct Failure(pub(super) u16, pub(super) Value);

pub(super) type Answered = Result<(u16, Value), Failure>;

pub(super) fn status(code: u16, reason: &str, message: &str, details: Option<Value>) -> Failure {
    let mut body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    });
    if let Some(details) = details {
        body["details"] = details;
    }
    Failure(code, body)
}

pub(super) fn bad_request(message: &str) -> Failure {
    status(400, "BadRequest", message, None)
}

pub(super) fn not_found(key: &Key) -> Failure {
    status(
        404,
        "NotFound",
        &format!("{} \"{}\" not found", key.0, key.2),
        Some(json!({"name": key.2, "kind": key.0})),
    )
}

pub(super) fn modified(key: &Key) -> Failure {
    status(
        409,
        "Conflict",
        &format!(
            "Operation cannot be fulfilled on {} \"{}\": the object has been modified; please apply your changes to the latest version and try again",
            key.0, key.2
        ),
        Some(json!({"name": key.2, "kind": key.0})),
    )
}

/// A 422 naming one field, as validation words it.
pub(super) fn invalid(key: &Key, kind: &str, field: &str, message: &str) -> Failure {
    status(
        422,
        "Invalid",
        &format!("{kind} \"{}\" is invalid: {field}: {message}", key.2),
        Some(json!({
            "name": key.2,
            "kind": kind,
            "causes": [{"reason": "FieldValueInvalid", "message": message, "field": field}],
        })),
    )
}

/// The 409 of a server-side apply that would take fields from other
/// managers, in the real server's words.
pub(super) fn conflict_status(api_version: &str, conflicts: &[(String, Vec<Seg>)]) -> Failure {
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(manager, path)| {
            json!({
                "reason": "FieldManagerConflict",
                "message": format!("conflict with \"{manager}\" using {api_version}"),
                "field": render_path(path),
            })
        })
        .collect();
    let listed: Vec<String> = conflicts
        .iter()
        .map(|(manager, path)| {
            format!(
                "conflict with \"{manager}\" using {api_version}: {}",
                render_path(path)
            )
        })
        .collect();
    let message = if conflicts.len() == 1 {
        format!("Apply failed with 1 conflict: {}", listed[0])
    } else {
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            listed.join("\n")
        )
    };
    status(409, "Conflict", &message, Some(json!({ "causes": causes })))
}

/// The answer of an injected failure.
pub(super) fn injected(code: u16, request: &Logged) -> Failure {
    let target = request.plural.as_str();
    let (reason, message) = match code {
        403 => (
            "Forbidden",
            format!(
                "{target} is forbidden: User \"fake\" cannot {} resource \"{target}\"",
                format!("{:?}", request.verb).to_lowercase()
            ),
        ),
        404 => ("NotFound", format!("{target} not found")),
        409 => (
            "Conflict",
            "the object has been modified (injected)".to_string(),
        ),
        422 => ("Invalid", "invalid (injected)".to_string()),
        429 => (
            "TooManyRequests",
            "too many requests (injected)".to_string(),
        ),
        503 => (
            "ServiceUnavailable",
            "service unavailable (injected)".to_string(),
        ),
        _ => (
            "InternalError",
            "Internal error occurred: injected".to_string(),
        ),
    };
    status(code, reason, &message, None)
}
