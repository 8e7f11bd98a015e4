use std::process::ExitCode;

fn main() -> ExitCode {
    echo_iac_runner::Runner::new(echo_iac::Echo)
        .version(env!("CARGO_PKG_VERSION"))
        .run()
}
