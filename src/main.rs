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
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
