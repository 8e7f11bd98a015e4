//! [`Runner`]: parses the command line for a [`Program`] and runs the
//! command, then turns the outcome into a report and an exit code.

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{FromArgMatches, Subcommand};

use crate::cli::{self, Command, GlobalArgs};
use crate::commands::{self, Invocation};
use crate::error::exit;
use crate::program::Program;

/// The command line of one program: every command the runner has, plus the
/// program's own.
///
/// ```no_run
/// # use echo_iac_runner::{Program, Runner};
/// # fn main_of<P: Program>(program: P) -> std::process::ExitCode {
/// Runner::new(program).version(env!("CARGO_PKG_VERSION")).run()
/// # }
/// ```
pub struct Runner<P: Program> {
    program: Arc<P>,
    version: &'static str,
}

impl<P: Program> Runner<P> {
    /// A runner for `program`, with the runner's version until
    /// [`version`](Self::version) says otherwise.
    pub fn new(program: P) -> Self {
        Runner {
            program: Arc::new(program),
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    /// The version `--version` prints: usually the program's
    /// `env!("CARGO_PKG_VERSION")`.
    pub fn version(mut self, version: &'static str) -> Self {
        self.version = version;
        self
    }

    /// The command line as clap sees it: the runner's commands with the
    /// program's name, description, version and commands.
    pub fn command(&self) -> clap::Command {
        cli::command::<P>(self.version)
    }

    /// Runs the command given on the process's command line.
    pub fn run(self) -> ExitCode {
        self.run_from(std::env::args_os())
    }

    /// Runs the command given by `args`, the first being the binary's name.
    pub fn run_from<I, T>(self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        crate::name::set(P::NAME);
        crate::name::set_version(self.version);
        let command = self.command();
        let args: Vec<OsString> = args.into_iter().map(Into::into).collect();
        let matches = match command.clone().try_get_matches_from(&args) {
            Ok(matches) => matches,
            Err(error) => return ExitCode::from(usage_error(&error, &args)),
        };
        let json = wants_json(&matches);
        let parsed = GlobalArgs::from_arg_matches(&matches).and_then(|global| {
            let name = matches.subcommand_name().unwrap_or_default();
            let invocation = if P::Command::has_subcommand(name) {
                Invocation::Program(P::Command::from_arg_matches(&matches)?)
            } else {
                let command = Command::from_arg_matches(&matches)?;
                command.check()?;
                Invocation::Runner(command)
            };
            Ok((global, invocation))
        });
        let (global, invocation) = match parsed {
            Ok(parsed) => parsed,
            Err(error) => {
                return ExitCode::from(usage_error(&error.format(&mut command.clone()), &args));
            }
        };

        let code = match commands::run(self.program, command, global, invocation) {
            Ok(()) => 0,
            Err(error) => {
                if let Some(report) = error.report() {
                    let _ = writeln!(std::io::stderr(), "{report}");
                }
                if json && !commands::document_printed() {
                    commands::print_document(&error.json());
                }
                error.exit_code()
            }
        };
        if std::env::var_os("ECHO_IAC_STATS").is_some() {
            let _ = writeln!(
                std::io::stderr(),
                "{} stats: {} API requests",
                P::NAME,
                commands::requests_sent()
            );
        }
        ExitCode::from(u8::try_from(code).unwrap_or(1))
    }
}

/// Whether the command run, the runner's or the program's, was given
/// `--json` (or `--format json`): then a failure is told on stdout as a
/// JSON document too.
fn wants_json(matches: &clap::ArgMatches) -> bool {
    let mut leaf = matches;
    while let Some((_, sub)) = leaf.subcommand() {
        leaf = sub;
    }
    matches!(leaf.try_get_one::<bool>("json"), Ok(Some(true)))
        || matches!(
            leaf.try_get_one::<cli::PlanFormat>("format"),
            Ok(Some(cli::PlanFormat::Json))
        )
}

/// Prints what clap found (help and version on stdout, exit 0) and returns
/// the exit code: a command line the program does not understand exits
/// 64, never clap's 2, which means "changes found" here. With `--json`
/// anywhere on the line, stdout gets the usual JSON error document too.
fn usage_error(error: &clap::Error, args: &[OsString]) -> u8 {
    let _ = error.print();
    if !error.use_stderr() {
        return 0;
    }
    if args.iter().skip(1).any(|arg| arg == "--json") {
        let rendered = error.render().to_string();
        let message = rendered
            .lines()
            .next()
            .unwrap_or_default()
            .trim_start_matches("error: ");
        let hint = rendered
            .lines()
            .find_map(|line| line.trim().strip_prefix("tip: "))
            .map_or_else(
                || {
                    format!(
                        "run `{} --help` for the commands and their flags",
                        crate::name::bin()
                    )
                },
                str::to_string,
            );
        commands::print_document(&serde_json::json!({
            "error": {
                "kind": "usage",
                "message": message,
                "hint": hint,
                "objects": [],
                "exitCode": exit::USAGE,
            }
        }));
    }
    exit::USAGE as u8
}
