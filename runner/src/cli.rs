//! The command-line surface. Parsing only validates arguments into these
//! structs; the work happens in `commands`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};
use echo_iac_engine::cluster::ALLOW_PLUGINS_ENV;
use echo_iac_engine::target::Targets;
use echo_iac_engine::untracked::{DeleteUntracked, Selector};

use crate::program::Program;

/// The command line of program `P`: the runner's commands and the
/// program's own, under the program's name.
pub(crate) fn command<P: Program>(version: &'static str) -> clap::Command {
    // The program's commands first: a derived `Subcommand` sets the
    // command's description from its own doc comment.
    P::Command::augment_subcommands(Cli::command())
        .name(P::NAME)
        .bin_name(P::NAME)
        .about(P::ABOUT)
        .version(version)
}

/// The runner's command line; [`command`] gives it a program's name,
/// description, version and commands.
#[derive(Debug, Parser)]
#[command(name = "echo-iac", version, max_term_width = 100)]
#[command(
    after_help = "Exit codes: 0 success, 1 error, 2 `preview --expect-no-changes` found changes, 64 usage error (the command line itself), 130 interrupted."
)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct GlobalArgs {
    /// Run as if started in DIR (the project folder holding `stacks/`).
    #[arg(short = 'C', global = true, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// The stack to use (a file `stacks/NAME.yaml`); default: the only stack.
    #[arg(
        long,
        short = 's',
        global = true,
        env = "ECHO_IAC_STACK",
        value_name = "NAME"
    )]
    pub stack: Option<String>,
    /// Kubeconfig file; overrides the stack file's `kubeconfig`.
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// Let a kubeconfig from inside the project (the stack file's
    /// `kubeconfig:`) run its credential plugin (`exec:` or
    /// `auth-provider:`), which is named on stderr before it runs. Without
    /// this, such a kubeconfig is refused: a checkout could run any command.
    #[arg(long, global = true, env = ALLOW_PLUGINS_ENV,
          value_parser = clap::builder::FalseyValueParser::new())]
    pub allow_kubeconfig_exec: bool,
    /// Kubeconfig context; overrides the stack file's `context`.
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// When to color output.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Log each API request (method, path, status, latency) on stderr;
    /// twice for more. `ECHO_IAC_LOG=debug` does the same.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// How long one API request may take before it is given up, as
    /// kubectl's flag: a duration (`30s`, `1m`), a number of seconds, or
    /// `0` for no limit. Default: 10s until the server first answers,
    /// then 60s without a byte of the response.
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_request_timeout)]
    pub request_timeout: Option<Duration>,
    /// How many objects are previewed or applied at once.
    #[arg(long, global = true, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub concurrency: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Show what `up` would change, field by field, without changing anything.
    Preview(PreviewArgs),
    /// Preview, confirm, apply in dependency order and wait until ready.
    Up(UpArgs),
    /// Delete everything the stack manages, and nothing else.
    Destroy(DestroyArgs),
    /// Go back to the objects of a kept revision (default: the one before
    /// the current): preview, confirm, apply and wait, as `up` does.
    Rollback(RollbackArgs),
    /// Read the live cluster into the stack's state: forget objects deleted
    /// outside echo-iac and record new uids.
    Refresh(RefreshArgs),
    /// Print the stack's objects as YAML without contacting the cluster.
    Render,
    /// Print the stack's outputs (URLs, node port, load-balancer address, namespace).
    Output(OutputArgs),
    /// Check the running stack from inside the cluster, as `helm test` does.
    ///
    /// For each smoke test the program declares, a curl pod requests a
    /// Service by name through cluster DNS, and every answer must be what
    /// the test expects (for echo: an answer from a live pod of the
    /// Service's Deployment). The pod is deleted however the command ends.
    /// A program that declares no smoke tests has nothing to test.
    Test(TestArgs),
    /// Draw the stack as a Mermaid flowchart or a dot graph.
    ///
    /// Each object the stack declares, joined by its dependencies (a
    /// ConfigMap to the workload that mounts it); each Deployment,
    /// StatefulSet and DaemonSet with its live pods; each Service with the
    /// workloads it selects; and each smoke test's path to its Service.
    Graph(GraphArgs),
    /// Work with the stacks of this project.
    #[command(subcommand)]
    Stack(StackCommand),
    /// Print a shell completion script (see the README for where to put it).
    Completions(CompletionsArgs),
    /// Print the manual page (roff), e.g. `echo-iac man | man -l -`.
    Man,
}

impl Command {
    /// Checks what clap's attributes cannot say: flags that contradict each
    /// other only for some values (`--json --format markdown`).
    pub(crate) fn check(&self) -> Result<(), clap::Error> {
        match self {
            Command::Preview(args) => args.check(),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct PlanArgs {
    /// Take over fields that other field managers own (preview: plan as if).
    #[arg(long)]
    pub force_conflicts: bool,
    /// Take over objects that exist but that this stack does not manage
    /// (preview: plan as if).
    #[arg(long)]
    pub adopt: bool,
    /// Dry-run every object, even those the state proves unchanged since
    /// this stack applied them (see `docs/commands.md`, "Proof of no
    /// change"); `ECHO_IAC_FULL=1` makes it the default.
    #[arg(long, env = "ECHO_IAC_FULL", value_parser = clap::builder::BoolishValueParser::new(), num_args = 0, default_missing_value = "true")]
    pub full: bool,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// `--target` and `--target-dependencies`, shared by preview, up and
/// destroy.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct TargetArgs {
    /// Change only this object (repeatable): KIND/NAMESPACE/NAME, or
    /// KIND/NAME for a cluster-scoped kind or one in the stack's
    /// namespace; `*` in the name matches any run of characters. Every
    /// other object is left as it is, in the cluster and in the state.
    #[arg(long, value_name = "KIND/NAME", value_parser = clap::value_parser!(Selector))]
    pub target: Vec<Selector>,
    /// Also change what the targets depend on, transitively.
    #[arg(long, requires = "target")]
    pub target_dependencies: bool,
}

impl TargetArgs {
    /// The engine's targets, or `None` to plan every object; `namespace`
    /// is the stack's.
    pub(crate) fn targets(&self, namespace: &str) -> Option<Targets> {
        if self.target.is_empty() {
            return None;
        }
        let mut targets = Targets::new(self.target.clone(), Some(namespace.to_string()));
        targets.dependencies = self.target_dependencies;
        Some(targets)
    }
}

#[derive(Debug, Args)]
pub(crate) struct PreviewArgs {
    /// Also show a unified YAML diff of each changed object.
    #[arg(long)]
    pub diff: bool,
    /// Print the plan as one JSON document (the same as `--format json`).
    #[arg(long)]
    pub json: bool,
    /// How to print the plan: text for a terminal, one JSON document, or
    /// Markdown for a pull-request comment.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: Option<PlanFormat>,
    /// Exit with code 2 if anything would change.
    #[arg(long)]
    pub expect_no_changes: bool,
    /// Also save the plan to FILE for review, for `up --plan FILE` to
    /// apply exactly that; it holds digests, never an object or a value.
    #[arg(long, value_name = "FILE", conflicts_with = "target")]
    pub save_plan: Option<PathBuf>,
    #[command(flatten)]
    pub plan: PlanArgs,
}

impl PreviewArgs {
    /// The format asked for: `--json` is `--format json`.
    pub fn format(&self) -> PlanFormat {
        if self.json {
            PlanFormat::Json
        } else {
            self.format.unwrap_or(PlanFormat::Text)
        }
    }

    /// `--json` with another format is a command line that contradicts
    /// itself.
    fn check(&self) -> Result<(), clap::Error> {
        match self.format {
            Some(format) if self.json && format != PlanFormat::Json => Err(clap::Error::raw(
                clap::error::ErrorKind::ArgumentConflict,
                format!(
                    "the argument '--json' cannot be used with '--format {}'\n",
                    format.name()
                ),
            )),
            _ => Ok(()),
        }
    }
}

/// How `preview` prints its plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PlanFormat {
    /// Aligned text for a terminal, in color when it takes colors.
    Text,
    /// One JSON document, as `--json` prints it.
    Json,
    /// Markdown for a pull-request comment, kept under GitHub's limit.
    Markdown,
}

impl PlanFormat {
    /// The name given on the command line.
    pub fn name(self) -> &'static str {
        match self {
            PlanFormat::Text => "text",
            PlanFormat::Json => "json",
            PlanFormat::Markdown => "markdown",
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct UpArgs {
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Do not print the preview before applying (it is still computed).
    #[arg(long)]
    pub skip_preview: bool,
    /// Also show a unified YAML diff of each changed object.
    #[arg(long)]
    pub diff: bool,
    /// Print the result as one JSON document.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for the stack to become ready.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Stop waiting once every new pod of a rollout has been stuck this
    /// long on a reason that waiting does not fix (image pull errors,
    /// config errors, crash loops, no node that fits).
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub wait_grace: Duration,
    /// If another run holds the stack's lock, wait this long for it.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait_for_lock: Option<Duration>,
    /// Apply the plan `preview --save-plan FILE` saved, and only if
    /// planning again gives exactly it; otherwise change nothing and say
    /// what moved. Asks no confirmation: the plan was reviewed.
    #[arg(long = "plan", value_name = "FILE", conflicts_with_all = ["skip_preview", "target"])]
    pub saved_plan: Option<PathBuf>,
    /// Refuse a saved plan older than this.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, requires = "saved_plan")]
    pub plan_max_age: Option<Duration>,
    /// When the wait fails (a stuck or failed rollout, --timeout, a failed
    /// Job), roll back to the last revision whose run finished, and wait
    /// for it. Ctrl-C does not roll back.
    #[arg(long)]
    pub rollback_on_failure: bool,
    #[command(flatten)]
    pub plan: PlanArgs,
}

#[derive(Debug, Args)]
pub(crate) struct RollbackArgs {
    /// The revision to go back to, a serial from `stack history`; default:
    /// the one before the current state.
    #[arg(value_name = "SERIAL")]
    pub serial: Option<u64>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Do not print the preview before applying (it is still computed).
    #[arg(long)]
    pub skip_preview: bool,
    /// Also show a unified YAML diff of each changed object.
    #[arg(long)]
    pub diff: bool,
    /// Print the result as one JSON document.
    #[arg(long)]
    pub json: bool,
    /// Take over fields that other field managers own.
    #[arg(long)]
    pub force_conflicts: bool,
    /// How long to wait for the stack to become ready.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Stop waiting once every new pod of a rollout has been stuck this
    /// long on a reason that waiting does not fix.
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = parse_duration)]
    pub wait_grace: Duration,
    /// If another run holds the stack's lock, wait this long for it.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait_for_lock: Option<Duration>,
}

#[derive(Debug, Args)]
pub(crate) struct DestroyArgs {
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Print the result as one JSON document.
    #[arg(long)]
    pub json: bool,
    /// How long to wait for each object to be gone.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// If another run holds the stack's lock, wait this long for it.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait_for_lock: Option<Duration>,
    /// Also delete objects that carry the stack's labels but are neither
    /// in its state nor declared by it: all of them, or (repeated) each one
    /// named KIND/NAME or KIND/NAMESPACE/NAME. Labels do not prove an object
    /// is the stack's, so `--yes` never implies this.
    #[arg(long, value_name = "KIND/NAME", num_args = 0..=1,
          action = clap::ArgAction::Append, value_parser = clap::value_parser!(Selector))]
    pub delete_untracked: Option<Vec<Selector>>,
    /// Destroy everything but the protected objects, which keep running:
    /// their ownership labels are removed and they are dropped from the
    /// state, so the stack no longer manages them. Without it, a destroy
    /// of a stack that holds a protected object deletes nothing.
    #[arg(long)]
    pub keep_protected: bool,
    #[command(flatten)]
    pub target: TargetArgs,
}

impl DestroyArgs {
    /// `--delete-untracked` alone selects every untracked object; with
    /// names, only those.
    pub(crate) fn untracked_deletes(&self) -> DeleteUntracked {
        match &self.delete_untracked {
            None => DeleteUntracked::None,
            Some(named) if named.is_empty() => DeleteUntracked::All,
            Some(named) => DeleteUntracked::Named(named.clone()),
        }
    }
}

#[derive(Debug, Args)]
pub(crate) struct RefreshArgs {
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// If another run holds the stack's lock, wait this long for it.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait_for_lock: Option<Duration>,
}

#[derive(Debug, Args)]
pub(crate) struct OutputArgs {
    /// One output by name (e.g. `nodePort`); default: all.
    pub name: Option<String>,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct TestArgs {
    /// Print the answers and counts as one JSON document.
    #[arg(long)]
    pub json: bool,
    /// How many requests each smoke test sends.
    #[arg(long, default_value_t = 10, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=200))]
    pub requests: u16,
    /// How long the whole test may take (the pods starting, running and their logs).
    #[arg(long, default_value = "1m", value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Duration,
}

#[derive(Debug, Args)]
pub(crate) struct GraphArgs {
    /// The diagram language.
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    pub format: GraphFormat,
    /// Draw the objects the stack declares, without contacting the cluster.
    #[arg(long)]
    pub offline: bool,
}

/// The diagram languages `graph` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum GraphFormat {
    /// A Mermaid flowchart.
    Mermaid,
    /// Graphviz dot (`graph --format dot | dot -Tsvg`).
    Dot,
}

#[derive(Debug, Subcommand)]
pub(crate) enum StackCommand {
    /// List the stacks in stacks/ with their backend and last update.
    Ls,
    /// Write a new stack file, stacks/NAME.yaml, with every setting at its
    /// default and a comment saying what it does.
    ///
    /// The file holds the keys every stack has (kubeconfig, context,
    /// namespace, createNamespace, backend) and the program's own section.
    /// An existing stack file is never overwritten; `stacks/` is created if
    /// missing. Nothing is written to the cluster or the state.
    Init(InitArgs),
    /// Remove a stack's state, its kept revisions and its lock, once the
    /// stack is destroyed.
    ///
    /// Takes the stack's lock first, and refuses while the state still
    /// lists objects unless --force, which forgets them: they stay in the
    /// cluster, in no stack's state. The stack file is kept: it is the
    /// project's source, and deleting it is left to you (and your version
    /// control).
    Rm(RmArgs),
    /// List the kept revisions of the stack's state: serial, time, command,
    /// user and host, and what each changed.
    History(HistoryArgs),
    /// Write the stack's state as JSON to FILE, or to stdout.
    Export(ExportArgs),
    /// Replace the stack's state with a document written by `stack export`
    /// (to move a stack between backends).
    Import(ImportArgs),
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// The new stack's name: its file is stacks/NAME.yaml, and every object
    /// it applies carries it as a label value (up to 63 letters, digits,
    /// '-', '_' or '.', starting and ending with a letter or digit).
    #[arg(value_parser = parse_stack_name)]
    pub name: String,
    /// The namespace the stack's objects go in; default: the program's name
    /// and NAME, e.g. `echo-iac-dev`.
    #[arg(long, value_name = "NAMESPACE", value_parser = parse_namespace)]
    pub namespace: Option<String>,
    /// Where the stack keeps its state: `file://<folder>` (default
    /// `file://state`) or `kubernetes://<namespace>`.
    #[arg(long, value_name = "URL")]
    pub backend: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    /// The stack whose state to remove. Always named here: `--stack` and
    /// ECHO_IAC_STACK do not pick what is removed.
    #[arg(value_parser = parse_stack_name)]
    pub name: String,
    /// Remove the state even though it still lists objects: they stay in
    /// the cluster, in no stack's state (each is named).
    #[arg(long)]
    pub force: bool,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// If another run holds the stack's lock, wait this long for it.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait_for_lock: Option<Duration>,
}

#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArgs {
    /// Where to write the document; default: stdout.
    pub file: Option<PathBuf>,
    /// A kept revision (a serial from `stack history`) instead of the current state.
    #[arg(long, value_name = "SERIAL")]
    pub revision: Option<u64>,
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// A document written by `echo-iac stack export`.
    pub file: PathBuf,
    /// Overwrite a stored state whose serial is newer than the document's.
    #[arg(long)]
    pub force: bool,
    /// If another run holds the stack's lock, wait this long for it.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait_for_lock: Option<Duration>,
}

/// A stack name, checked as a stack file's name is: it becomes a label
/// value on every object the stack applies.
fn parse_stack_name(text: &str) -> Result<String, String> {
    match crate::stack::label_value_problem(text) {
        None => Ok(text.to_string()),
        Some(problem) => Err(format!(
            "{problem} (a stack name is up to 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit, e.g. `dev`)"
        )),
    }
}

/// A namespace name (a DNS-1123 label).
fn parse_namespace(text: &str) -> Result<String, String> {
    match crate::stack::dns_label_problem(text, crate::stack::MAX_LABEL_CHARS, false) {
        None => Ok(text.to_string()),
        Some(problem) => Err(format!(
            "{problem} (namespace names are lowercase letters, digits and '-', e.g. `echo-dev`)"
        )),
    }
}

/// kubectl's `--request-timeout`: a bare number is seconds, `0` is none.
fn parse_request_timeout(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<u64>() {
        Ok(seconds) => Ok(Duration::from_secs(seconds)),
        Err(_) => parse_duration(text.trim()),
    }
}

/// A duration such as `90s`, `5m` or `1h30m`, for duration flags.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 90s, 5m, 1h30m)"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn command_surface_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn timeout_accepts_human_durations() {
        let cli = Cli::try_parse_from(["echo-iac", "up", "--timeout", "2m30s"]).unwrap();
        let Command::Up(up) = cli.command else {
            panic!("parsed as {:?}", cli.command)
        };
        assert_eq!(up.timeout, Duration::from_secs(150));
    }

    /// A program that calls the engine without the runner gets what the
    /// command line does by default.
    #[test]
    fn defaults_are_the_engines() {
        use echo_iac_engine::operation::{DestroyOptions, UpOptions};
        use echo_iac_engine::planner::{DestroyPlanOptions, PlanOptions};

        let cli = Cli::try_parse_from(["echo-iac", "up"]).unwrap();
        let concurrency = usize::from(cli.global.concurrency);
        assert_eq!(concurrency, PlanOptions::default().concurrency);
        assert_eq!(concurrency, DestroyPlanOptions::default().concurrency);
        let Command::Up(up) = cli.command else {
            panic!("parsed as {:?}", cli.command)
        };
        let engine = UpOptions::default();
        assert_eq!(concurrency, engine.concurrency);
        assert_eq!(up.timeout, engine.timeout);
        assert_eq!(up.wait_grace, engine.wait_grace);
        assert_eq!(up.plan.force_conflicts, engine.force_conflicts);

        let engine = DestroyOptions::default();
        assert_eq!(concurrency, engine.concurrency);
        assert_eq!(destroy(&[]).unwrap().timeout, engine.timeout);
    }

    fn destroy(args: &[&str]) -> Result<DestroyArgs, clap::Error> {
        let cli = Cli::try_parse_from(["echo-iac", "destroy"].iter().chain(args))?;
        let Command::Destroy(destroy) = cli.command else {
            panic!("parsed as {:?}", cli.command)
        };
        Ok(destroy)
    }

    #[test]
    fn destroy_deletes_no_untracked_object_unless_asked() {
        let args = destroy(&["--yes"]).unwrap();
        assert_eq!(args.untracked_deletes(), DeleteUntracked::None);
        let args = destroy(&["--delete-untracked", "--yes"]).unwrap();
        assert_eq!(args.untracked_deletes(), DeleteUntracked::All);
        let args = destroy(&[
            "--delete-untracked",
            "ConfigMap/a",
            "--delete-untracked",
            "configmap/ns/b",
        ])
        .unwrap();
        let DeleteUntracked::Named(named) = args.untracked_deletes() else {
            panic!("{:?}", args.untracked_deletes())
        };
        let named: Vec<String> = named.iter().map(ToString::to_string).collect();
        assert_eq!(named, ["ConfigMap/a", "configmap/ns/b"]);
    }

    #[test]
    fn targets_are_repeatable_on_preview_up_and_destroy() {
        for verb in ["preview", "up", "destroy"] {
            let cli = Cli::try_parse_from([
                "echo-iac",
                verb,
                "--target",
                "deployment/web-*",
                "--target",
                "ConfigMap/app/web",
                "--target-dependencies",
            ])
            .unwrap();
            let target = match cli.command {
                Command::Preview(args) => args.plan.target,
                Command::Up(args) => args.plan.target,
                Command::Destroy(args) => args.target,
                other => panic!("parsed as {other:?}"),
            };
            let targets = target.targets("app").expect("targets");
            let named: Vec<String> = targets.selectors.iter().map(ToString::to_string).collect();
            assert_eq!(named, ["deployment/web-*", "ConfigMap/app/web"], "{verb}");
            assert!(targets.dependencies);
            assert_eq!(targets.namespace.as_deref(), Some("app"));
        }
        let cli = Cli::try_parse_from(["echo-iac", "up"]).unwrap();
        let Command::Up(up) = cli.command else {
            panic!("parsed as {:?}", cli.command)
        };
        assert!(up.plan.target.targets("app").is_none());
    }

    #[test]
    fn target_dependencies_without_a_target_and_malformed_targets_are_usage_errors() {
        assert!(Cli::try_parse_from(["echo-iac", "up", "--target-dependencies"]).is_err());
        let err = Cli::try_parse_from(["echo-iac", "preview", "--target", "web"]).unwrap_err();
        assert!(err.to_string().contains("KIND/NAME"), "{err}");
    }

    #[test]
    fn a_malformed_untracked_name_is_rejected_with_examples() {
        let err = destroy(&["--delete-untracked", "stray"]).unwrap_err();
        assert!(err.to_string().contains("KIND/NAME"), "{err}");
    }

    #[test]
    fn request_timeout_reads_as_kubectl_reads_it() {
        let parse = |value: &str| {
            Cli::try_parse_from(["echo-iac", "--request-timeout", value, "render"])
                .map(|cli| cli.global.request_timeout)
        };
        assert_eq!(parse("30s").unwrap(), Some(Duration::from_secs(30)));
        assert_eq!(parse("1m").unwrap(), Some(Duration::from_secs(60)));
        assert_eq!(parse("5").unwrap(), Some(Duration::from_secs(5)));
        assert_eq!(parse("0").unwrap(), Some(Duration::ZERO));
        assert!(parse("soon").is_err());
        let cli = Cli::try_parse_from(["echo-iac", "render"]).unwrap();
        assert_eq!(cli.global.request_timeout, None);
    }

    #[test]
    fn bad_timeout_is_rejected_with_examples() {
        let err = Cli::try_parse_from(["echo-iac", "up", "--timeout", "soon"]).unwrap_err();
        assert!(err.to_string().contains("examples"), "{err}");
    }
}
