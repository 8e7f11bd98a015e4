//! backups-iac: the backups program (`program.rs`) on the echo-iac runner,
//! which gives it every command: preview, up, destroy, refresh, output,
//! stack history, export and import, with both state backends.

mod program;
#[cfg(test)]
mod tests;

fn main() -> std::process::ExitCode {
    echo_iac_runner::Runner::new(program::Backups)
        .version(env!("CARGO_PKG_VERSION"))
        .run()
}
