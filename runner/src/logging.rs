//! Diagnostics on stderr through `tracing`: off unless asked for with `-v`
//! (debug; `-vv` trace) or `ECHO_IAC_LOG`, which takes a level (`debug`)
//! for echo-iac's own events or a full filter (`echo_iac=debug,kube=trace`).
//! The flag wins over the variable.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::error::Error;

pub const ENV: &str = "ECHO_IAC_LOG";

pub fn init(verbose: u8) -> Result<(), Error> {
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
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_timer(tracing_subscriber::fmt::time::uptime())
        .try_init();
    Ok(())
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
    use super::*;

    #[test]
    fn a_bare_level_is_for_echo_iac_and_a_filter_is_kept() {
        assert_eq!(expand("debug"), "echo_iac=debug");
        assert_eq!(expand("kube=trace"), "kube=trace");
    }
}
