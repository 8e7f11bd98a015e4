//! Diagnostics on stderr through `tracing`: off unless asked for with `-v`
//! (debug; `-vv` trace) or `ECHO_IAC_LOG`, which takes a level (`debug`)
//! for echo-iac's own events or a full filter (`echo_iac=debug,kube=trace`).
//! The flag wins over the variable.
//!
//! Whatever the filter says, kube's events that carry an API answer's body
//! stay off (see [`BODY_TARGETS`]): they are logged inside kube, before
//! echo-iac scrubs a Secret's values out of an error.

use std::io::IsTerminal;

use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::FilterFn;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

use crate::error::Error;

pub(crate) const ENV: &str = "ECHO_IAC_LOG";

pub(crate) fn init(verbose: u8) -> Result<(), Error> {
    let directives = match verbose {
        0 => match std::env::var(ENV) {
            Ok(value) if !value.trim().is_empty() => expand(value.trim()),
            _ => return Ok(()),
        },
        1 => "echo_iac=debug".to_string(),
        _ => "echo_iac=trace,kube=debug".to_string(),
    };
    let filter = EnvFilter::builder().parse(&directives).map_err(|e| {
        Error::refused(
            format!("{ENV}={directives} is not a log filter: {e}"),
            format!("set {ENV} to a level (error, warn, info, debug, trace) or to target=level pairs, e.g. echo_iac=debug"),
        )
    })?;
    let ansi = std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal();
    // A second init (tests calling `run` twice) keeps the first.
    let _ = tracing::subscriber::set_global_default(subscriber(filter, std::io::stderr, ansi));
    Ok(())
}

/// Targets whose events carry the body of an API answer: kube-client's
/// request functions log a failed request's whole `Status`
/// (`Unsuccessful: Status { message: .. }`), an error body it cannot parse,
/// and an answer that does not deserialize, at debug, trace and warn. A
/// Status about a Secret may quote its values, and these events come
/// before echo-iac scrubs them, so they are never logged. (Only the events
/// of exactly this module: the request lines echo-iac logs itself, under
/// `echo_iac::api`, say what those would about a request.)
pub(crate) const BODY_TARGETS: [&str; 1] = ["kube_client::client"];

/// Formats events on `writer`, as `filter` selects them, never those of
/// [`BODY_TARGETS`].
fn subscriber<W>(filter: EnvFilter, writer: W, ansi: bool) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .with_timer(tracing_subscriber::fmt::time::uptime())
        .finish()
        .with(FilterFn::new(|meta| !BODY_TARGETS.contains(&meta.target())))
}

/// A bare level applies to echo-iac only: the HTTP libraries' own debug
/// output is noise to a user.
fn expand(value: &str) -> String {
    let level = matches!(
        value.to_ascii_lowercase().as_str(),
        "error" | "warn" | "info" | "debug" | "trace" | "off"
    );
    if level {
        format!("echo_iac={value}")
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use k8s_openapi::api::core::v1::Secret;
    use kube::Api;

    use super::*;

    /// What was logged, shared with the subscriber.
    #[derive(Clone, Default)]
    struct Logged(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Logged {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'w> MakeWriter<'w> for Logged {
        type Writer = Logged;
        fn make_writer(&'w self) -> Logged {
            self.clone()
        }
    }

    /// A kube client whose every request is refused with a 422 Status
    /// that quotes a Secret's value, as an API server could.
    fn refusing_client() -> kube::Client {
        let service = tower::service_fn(|_request: http::Request<kube::client::Body>| async {
            let status = serde_json::json!({"apiVersion": "v1", "kind": "Status",
                "status": "Failure", "reason": "Invalid", "code": 422,
                "message": "Secret \"db\" is invalid: data[password]: Invalid value: \"hunter2-in-a-body\""});
            Ok::<_, std::convert::Infallible>(
                http::Response::builder()
                    .status(422)
                    .header("content-type", "application/json")
                    .body(kube::client::Body::from(status.to_string().into_bytes()))
                    .unwrap(),
            )
        });
        kube::Client::new(service, "default")
    }

    /// Logs a refused read of a Secret through `subscriber`; what was logged.
    async fn log_a_refused_read(subscriber: impl Subscriber + Send + Sync + 'static) -> String {
        let _default = tracing::subscriber::set_default(subscriber);
        let secrets: Api<Secret> = Api::namespaced(refusing_client(), "ns");
        let error = secrets.get("db").await.unwrap_err();
        tracing::debug!(target: "echo_iac::api", "the read failed");
        error.to_string()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn at_vv_kubes_events_that_carry_an_answers_body_are_not_logged() {
        let filter = || {
            EnvFilter::builder()
                .parse("echo_iac=trace,kube=trace")
                .unwrap()
        };

        // Without the guard kube logs the body: what the guard must stop.
        let unguarded = Logged::default();
        let plain = tracing_subscriber::fmt()
            .with_env_filter(filter())
            .with_writer(unguarded.clone())
            .finish();
        log_a_refused_read(plain).await;
        let text = String::from_utf8(unguarded.0.lock().unwrap().clone()).unwrap();
        assert!(text.contains("hunter2-in-a-body"), "{text}");

        let logged = Logged::default();
        log_a_refused_read(subscriber(filter(), logged.clone(), false)).await;
        let text = String::from_utf8(logged.0.lock().unwrap().clone()).unwrap();
        assert!(!text.contains("hunter2-in-a-body"), "{text}");
        // Everything else is still logged.
        assert!(text.contains("the read failed"), "{text}");
    }

    #[test]
    fn a_bare_level_is_for_echo_iac_and_a_filter_is_kept() {
        assert_eq!(expand("debug"), "echo_iac=debug");
        assert_eq!(expand("kube=trace"), "kube=trace");
    }
}
