use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use echo_iac::cli::Cli;
use echo_iac::commands;
use echo_iac::exit;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return ExitCode::from(usage_error(&error)),
    };
    let json = cli.json();
    let code = match commands::run(cli) {
        Ok(()) => 0,
        Err(error) => {
            if let Some(report) = error.report() {
                let _ = writeln!(std::io::stderr(), "{report}");
            }
            if json && !commands::document_printed() {
                commands::print(
                    &serde_json::to_string_pretty(&error.json()).expect("documents serialize"),
                );
            }
            error.exit_code()
        }
    };
    if std::env::var_os("ECHO_IAC_STATS").is_some() {
        let _ = writeln!(
            std::io::stderr(),
            "echo-iac stats: {} API requests",
            echo_iac_engine::cluster::requests_sent()
        );
    }
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Prints what clap found (help and version on stdout, exit 0) and returns
/// the exit code: a command line echo-iac does not understand exits 64,
/// never clap's 2, which means "changes found" here. With `--json`
/// anywhere on the line, stdout gets the usual JSON error document too.
fn usage_error(error: &clap::Error) -> u8 {
    let _ = error.print();
    if !error.use_stderr() {
        return 0;
    }
    if std::env::args_os().any(|arg| arg == "--json") {
        let rendered = error.render().to_string();
        let message = rendered
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ");
        let hint = rendered
            .lines()
            .find_map(|line| line.trim().strip_prefix("tip: "))
            .unwrap_or("run `echo-iac --help` for the commands and their flags");
        let document = serde_json::json!({
            "error": {
                "kind": "usage",
                "message": message,
                "hint": hint,
                "objects": [],
                "exitCode": exit::USAGE,
            }
        });
        commands::print(&serde_json::to_string_pretty(&document).expect("documents serialize"));
    }
    exit::USAGE as u8
}
