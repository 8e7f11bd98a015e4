//! One module per subcommand, and the glue they share: opening the project
//! and stack, connecting, confirming, and watching for Ctrl-C.

mod destroy;
pub mod graph;
mod labels;
mod manifests;
mod output;
mod preview;
mod progress;
mod refresh;
mod render;
mod rollback;
mod saved_plan;
mod shell;
pub(crate) mod stack_init;
mod stack_ls;
mod stack_rm;
mod stack_state;
mod teardown;
mod test;
mod up;

use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::cli::PlanFormat;
use crate::cli::{ColorChoice, Command, GlobalArgs, PlanArgs, StackCommand};
use crate::error::{Error, exit};
use crate::program::{ConfigOf, LiveView, Outputs, Program, StackInfo};
use crate::project::Project;
use crate::render::{MarkdownHeader, TextOptions, plan_json, plan_markdown, plan_text};
use crate::stack::{self, ManifestObject, Stack};
use echo_iac_engine::Plan;
use echo_iac_engine::cluster::{Cluster, Notices, PluginGuard, RequestCounter, Target};
use echo_iac_engine::declare::Resources;
use echo_iac_engine::operation;
use echo_iac_engine::planner::PlanOptions;
use echo_iac_engine::state::{Backend, KubeStore, LocalStore, Locked, StateStore};
use echo_iac_engine::{Cancel, DesiredResource};

/// Overrides the stack file's `backend:` for one run.
pub(crate) const BACKEND_ENV: &str = "ECHO_IAC_BACKEND";

/// What the command line asked for: one of the runner's commands, or one of
/// the program's own.
pub(crate) enum Invocation<P: Program> {
    Runner(Command),
    Program(P::Command),
}

pub(crate) fn run<P: Program>(
    program: Arc<P>,
    command_line: clap::Command,
    global: GlobalArgs,
    invocation: Invocation<P>,
) -> Result<(), Error> {
    crate::logging::init(global.verbose)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the async runtime starts");
    runtime.block_on(async move {
        let global = &global;
        let program = &program;
        let command = match invocation {
            Invocation::Runner(command) => command,
            Invocation::Program(command) => {
                let session = Session::open(program, global)?;
                return program.run_command(command, &session).await;
            }
        };
        match command {
            Command::Preview(args) => preview::run(Session::open(program, global)?, args).await,
            Command::Up(args) => up::run(Session::open(program, global)?, args).await,
            Command::Rollback(args) => rollback::run(Session::open(program, global)?, args).await,
            Command::Destroy(args) => match Session::open(program, global) {
                Ok(session) => destroy::run(session, args).await,
                Err(error) if teardown::skippable(&error) => {
                    let program = Arc::new(teardown::Unreadable::<P>::new(first_line(&error)));
                    // The generic keys must still read: they say where the
                    // cluster and the state are.
                    let session = Session::open(&program, global).map_err(|_| error)?;
                    destroy::run(session, args).await
                }
                Err(error) => Err(error),
            },
            Command::Refresh(args) => refresh::run(Session::open(program, global)?, args).await,
            Command::Render => render::run(&Session::open(program, global)?),
            Command::Output(args) => output::run(&Session::open(program, global)?, args).await,
            Command::Test(args) => test::run(&Session::open(program, global)?, args).await,
            Command::Graph(args) => graph::run(&Session::open(program, global)?, args).await,
            Command::Stack(StackCommand::Ls) => stack_ls::run(program, global).await,
            Command::Stack(StackCommand::Init(args)) => stack_init::run(&**program, global, args),
            Command::Stack(StackCommand::Rm(args)) => stack_rm::run::<P>(global, args).await,
            Command::Stack(StackCommand::History(args)) => {
                stack_state::history(&Session::open(program, global)?, args).await
            }
            Command::Stack(StackCommand::Export(args)) => {
                stack_state::export(&Session::open(program, global)?, args).await
            }
            Command::Stack(StackCommand::Import(args)) => {
                stack_state::import(&Session::open(program, global)?, args).await
            }
            Command::Completions(args) => shell::completions(command_line, args.shell),
            Command::Man => shell::man(command_line),
        }
    })
}

/// The project and the stack a command works on, with the program that
/// declares the stack's objects.
pub struct Session<P: Program> {
    program: Arc<P>,
    /// The project folder (the one holding `stacks/`).
    pub project: Project,
    /// The stack file, validated, with the program's settings.
    pub stack: Stack<ConfigOf<P>>,
    global: GlobalArgs,
    /// One connection per run, shared by the engine and the state backend.
    cluster: tokio::sync::OnceCell<Cluster>,
    outage_budget: Option<std::time::Duration>,
}

impl<P: Program> Session<P> {
    /// Finds the project, selects the stack (`--stack`, else the only
    /// one) and reads its stack file.
    pub(crate) fn open(program: &Arc<P>, global: &GlobalArgs) -> Result<Self, Error> {
        let project = open_project(global)?;
        let name = project.select_stack(global.stack.as_deref())?;
        let stack = stack::load::<P::Config>(&project, &name)?;
        Ok(Session::with(program, project, stack, global))
    }

    /// A session on an already loaded stack.
    pub(crate) fn with(
        program: &Arc<P>,
        project: Project,
        stack: Stack<ConfigOf<P>>,
        global: &GlobalArgs,
    ) -> Self {
        Session {
            program: Arc::clone(program),
            project,
            stack,
            global: global.clone(),
            cluster: tokio::sync::OnceCell::new(),
            outage_budget: None,
        }
    }

    /// The program that declares the stack's objects.
    pub fn program(&self) -> &P {
        &self.program
    }

    /// The generic settings of the stack, as the program sees them.
    pub fn info(&self) -> StackInfo {
        StackInfo::new(
            &self.stack.name,
            &self.stack.namespace,
            self.stack.create_namespace,
            crate::program::identity::<P>(),
        )
        .in_project(self.project.root())
    }

    /// The stack's objects, in dependency order: those the program declares
    /// and those of the stack file's `manifests:`. Connects to the cluster
    /// only when a manifest holds a kind that only discovery can place (in
    /// a namespace or not), or that the cluster may not serve.
    pub async fn desired(&self) -> Result<Vec<DesiredResource>, Error> {
        let (mut resources, read) = self.declared()?;
        let mut scopes = manifests::declared_scopes(&resources, &read);
        if manifests::needs_discovery(&read, &scopes) {
            manifests::discover(&self.connect().await?, &read, &mut scopes).await?;
        }
        manifests::join(&mut resources, read, &self.stack.namespace, &scopes)?;
        Ok(resources.finish()?)
    }

    /// [`desired`](Self::desired) without contacting the cluster: a
    /// manifest object of a kind only discovery can place, and that names
    /// no namespace, is left as written.
    pub fn desired_offline(&self) -> Result<Vec<DesiredResource>, Error> {
        let (mut resources, read) = self.declared()?;
        let scopes = manifests::declared_scopes(&resources, &read);
        manifests::join(&mut resources, read, &self.stack.namespace, &scopes)?;
        Ok(resources.finish()?)
    }

    fn declared(&self) -> Result<(Resources, Vec<ManifestObject>), Error> {
        let resources = self.program.declare(&self.info(), &self.stack.program)?;
        let read = stack::manifests::read(&self.stack.manifests, self.project.root())?;
        Ok((resources, read))
    }

    /// The program's outputs, read from the live objects.
    pub async fn outputs(
        &self,
        cluster: &Cluster,
        desired: &[DesiredResource],
    ) -> Result<Outputs, Error> {
        let live = LiveView::new(cluster, desired);
        Ok(self
            .program
            .outputs(&self.info(), &self.stack.program, &live)
            .await?)
    }

    /// Once changes are under way, an API server that restarts is waited
    /// for as long as the run may take (see [`Cluster::with_outage_budget`]).
    pub(crate) fn with_outage_budget(mut self, budget: std::time::Duration) -> Self {
        self.outage_budget = Some(budget);
        self
    }

    /// The stack's backend: `$ECHO_IAC_BACKEND` when set, else the stack
    /// file's `backend:`.
    pub fn backend(&self) -> Result<Backend, Error> {
        backend_of(&self.project, &self.stack)
    }

    /// The store holding the stack's state, connected when it lives in the
    /// cluster.
    pub async fn store(&self) -> Result<Box<dyn StateStore>, Error> {
        Ok(match self.backend()? {
            Backend::File(dir) => Box::new(
                LocalStore::new(dir, &self.stack.name, &crate::program::identity::<P>())
                    .within(self.project.root())
                    .keep_history(self.stack.history_limit),
            ),
            Backend::Kubernetes { namespace } => Box::new(
                KubeStore::new(self.connect().await?, &namespace, &self.stack.name)
                    .keep_history(self.stack.history_limit),
            ),
        })
    }

    /// The stack's cluster, connected on the first call; later calls share
    /// the connection. `--kubeconfig` and `--context` win over the stack
    /// file.
    pub async fn connect(&self) -> Result<Cluster, Error> {
        let cluster = self
            .cluster
            .get_or_try_init(|| async {
                let cluster = self.dial().await?;
                Ok::<_, Error>(match self.outage_budget {
                    Some(budget) => cluster.with_outage_budget(budget),
                    None => cluster,
                })
            })
            .await?;
        Ok(cluster.clone())
    }

    async fn dial(&self) -> Result<Cluster, Error> {
        let (kubeconfig, plugins) = match &self.global.kubeconfig {
            // The user's own choice, as with kubectl.
            Some(path) => (vec![path.clone()], PluginGuard::default()),
            // A stack file's kubeconfig inside the project came with the
            // checkout, and may not run commands unless allowed.
            None => (
                self.stack.kubeconfig.clone(),
                PluginGuard::inside(
                    self.project.root(),
                    &self.stack.kubeconfig,
                    self.global.allow_kubeconfig_exec,
                ),
            ),
        };
        let target = Target {
            kubeconfig,
            context: self
                .global
                .context
                .clone()
                .or_else(|| self.stack.context.clone()),
            request_timeout: self.global.request_timeout,
            plugins,
            // Beside progress, on stderr, so stdout stays one document.
            notices: Notices::to(|notice| note(&format!("note: {notice}"))),
        };
        let cluster = Cluster::connect(&target, crate::program::identity::<P>()).await?;
        CONNECTED
            .lock()
            .expect("never poisoned")
            .push(cluster.request_counter());
        Ok(cluster)
    }

    /// How many objects to preview or apply at once (`--concurrency`).
    pub fn concurrency(&self) -> usize {
        usize::from(self.global.concurrency)
    }

    /// Whether output to stdout is colored: `--color`, else only on a
    /// terminal and when `NO_COLOR` is unset.
    pub fn color(&self) -> bool {
        use_color(self.global.color)
    }

    /// The progress display for `up` and `destroy`; `quiet` (for `--json`)
    /// shows nothing.
    pub(crate) fn progress(&self, quiet: bool) -> progress::Progress {
        let logging = self.global.verbose > 0
            || std::env::var_os(crate::logging::ENV).is_some_and(|v| !v.is_empty());
        progress::Progress::new(
            progress::Mode::choose(quiet, logging),
            progress::stderr_color(self.global.color),
        )
    }
}

pub(crate) fn open_project(global: &GlobalArgs) -> Result<Project, Error> {
    let project = match &global.dir {
        Some(dir) => Project::at(dir)?,
        None => {
            let cwd = std::env::current_dir().map_err(|e| {
                Error::refused(
                    format!("cannot read the current folder: {e}"),
                    "run from an existing folder, or pass -C DIR",
                )
            })?;
            Project::discover(&cwd)?
        }
    };
    crate::error::note_project(&project);
    Ok(project)
}

fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal()
        }
    }
}

/// Prints a plan: as one JSON document, as a Markdown comment, or as text
/// under a header naming the stack, its namespace and the context.
pub(crate) fn show_plan<P: Program>(
    verb: &str,
    session: &Session<P>,
    cluster: &Cluster,
    plan: &Plan,
    diff: bool,
    format: PlanFormat,
) {
    let context = cluster.context();
    match format {
        PlanFormat::Json => {
            print_document(&plan_json(plan));
            return;
        }
        PlanFormat::Markdown => {
            print(&plan_markdown(
                plan,
                &MarkdownHeader {
                    stack: &session.stack.name,
                    namespace: &session.stack.namespace,
                    context,
                },
            ));
            return;
        }
        PlanFormat::Text => {}
    }
    print(&format!(
        "{verb} stack {} (namespace {}, context {})\n",
        session.stack.name,
        session.stack.namespace,
        if context.is_empty() {
            "(current)"
        } else {
            context
        }
    ));
    print(&plan_text(
        plan,
        &TextOptions {
            diff,
            color: session.color(),
        },
    ));
}

/// Writes to stdout; a closed pipe (`echo-iac preview | head`) is not an error.
pub fn print(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
    let _ = out.flush();
}

/// The request counts of the clusters this process connected to. Each
/// cluster counts its own; the process's total is a command-line matter
/// (`ECHO_IAC_STATS`).
static CONNECTED: Mutex<Vec<RequestCounter>> = Mutex::new(Vec::new());

/// The API requests sent by every cluster this process connected to.
pub(crate) fn requests_sent() -> u64 {
    CONNECTED
        .lock()
        .expect("never poisoned")
        .iter()
        .map(RequestCounter::get)
        .sum()
}

/// Set once a `--json` command has printed its document.
static DOCUMENT_PRINTED: AtomicBool = AtomicBool::new(false);

/// Prints the one JSON document of a `--json` command.
pub fn print_document(document: &impl serde::Serialize) {
    DOCUMENT_PRINTED.store(true, Ordering::SeqCst);
    print(&serde_json::to_string_pretty(document).expect("documents serialize"));
}

/// Whether this run printed its JSON document already: a command that
/// fails after that (a preview with blocked steps, a failed test) has told
/// its outcome there, and a second document would make stdout unparsable.
pub(crate) fn document_printed() -> bool {
    DOCUMENT_PRINTED.load(Ordering::SeqCst)
}

/// The first line of an error, for a note that goes on with other words.
fn first_line(error: &Error) -> String {
    error
        .to_string()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Progress and notes go to stderr, so stdout stays clean for `--json`.
pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// `$ECHO_IAC_BACKEND` when set, else the stack file's `backend:`.
pub(crate) fn backend_of<C>(project: &Project, stack: &Stack<C>) -> Result<Backend, Error> {
    match std::env::var(BACKEND_ENV) {
        Ok(url) if !url.trim().is_empty() => {
            Backend::parse(url.trim(), project.root()).map_err(|e| {
                Error::refused(
                    format!("{BACKEND_ENV}={url}: {}", e.message),
                    format!(
                        "{}; or unset {BACKEND_ENV} to use the stack file's `backend:`",
                        e.hint
                    ),
                )
            })
        }
        _ => Ok(stack.backend.clone()),
    }
}

/// Runs `body` holding the stack's lock (taken at once, or waiting up to
/// `wait` for the holder), and gives the lock back however `body` ends.
/// The guard `body` gets is what lets it write the state.
pub(crate) async fn locked<'s, T>(
    store: &'s dyn StateStore,
    command: &str,
    wait: Option<std::time::Duration>,
    body: impl AsyncFnOnce(&Locked<'s>) -> Result<T, Error>,
) -> Result<T, Error> {
    let locked = Locked::acquire(store, command, wait).await?;
    let result = body(&locked).await;
    locked.release().await;
    result
}

/// Asks on the terminal before a change. Without a terminal nobody can
/// answer, so the command refuses unless `--yes` was given.
pub(crate) fn confirm(question: &str, yes: bool, command: &str) -> Result<(), Error> {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::refused(
            format!("`{command}` needs confirmation, and there is no terminal to ask"),
            format!(
                "run `{} {command} --yes` to proceed without asking",
                crate::name::bin()
            ),
        ));
    }
    let mut err = std::io::stderr();
    let _ = write!(err, "{question} [y/N] ");
    let _ = err.flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        note("Cancelled: nothing was changed.");
        Err(Error::Cancelled)
    }
}

/// Asked by the first Ctrl-C (or SIGTERM): no new step starts, the steps in
/// flight finish and are recorded, and a wait ends at once. A second one
/// exits at once; the state is written atomically, so it still parses.
pub fn watch_interrupts() -> Cancel {
    let cancel = Cancel::new();
    let asked = cancel.clone();
    tokio::spawn(async move {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let mut count = 0;
        loop {
            let terminated = async {
                match term.as_mut() {
                    Some(signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let keyboard = tokio::select! {
                _ = tokio::signal::ctrl_c() => true,
                _ = terminated => false,
            };
            count += 1;
            if count == 1 {
                asked.cancel();
                progress::note_interrupt(
                    "Interrupted: finishing the steps in flight (interrupt again to stop at once)",
                    keyboard,
                );
            } else {
                std::process::exit(exit::INTERRUPTED);
            }
        }
    });
    cancel
}

/// `objects`: whether the plan is shown with its diffs, which need each
/// step's copies of its object.
pub(crate) fn plan_options<P: Program>(
    args: &PlanArgs,
    session: &Session<P>,
    objects: bool,
) -> PlanOptions {
    PlanOptions {
        force_conflicts: args.force_conflicts,
        adopt: args.adopt,
        concurrency: session.concurrency(),
        targets: args.target.targets(&session.stack.namespace),
        protections: session.stack.protections.clone(),
        full: args.full,
        prove_from: echo_iac_engine::planner::PROVE_FROM,
        objects,
    }
}

/// A plan with blocked steps fails the preview too, so that a preview that
/// passes is one that `up` can carry out. `up` and `destroy` refuse such a
/// plan themselves; checking it here stops before the confirmation.
pub(crate) fn check_blocked(plan: &Plan) -> Result<(), Error> {
    Ok(operation::refuse_blocked(plan)?)
}
