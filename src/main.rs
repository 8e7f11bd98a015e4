use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use echo_iac::cli::Cli;
use echo_iac::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match commands::run(cli) {
        Ok(()) => 0,
        Err(error) => {
            if let Some(report) = error.report() {
                let _ = writeln!(std::io::stderr(), "{report}");
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
