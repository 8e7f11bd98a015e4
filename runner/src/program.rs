//! What a program gives the runner: its name, its section of the stack
//! files, the objects it declares, and optionally its outputs and commands
//! of its own. Everything else (every command, both state backends,
//! locking, progress, confirmation, signals, hints and exit codes) the
//! runner gives every program alike.

use std::collections::BTreeMap;
use std::future::Future;

use serde::Serialize;
use serde_json::Value;

use echo_iac_engine::cluster::{Cluster, ClusterError};
use echo_iac_engine::declare::Resources;
use echo_iac_engine::{DesiredResource, EngineError, Identity, ResourceId};

use crate::commands::Session;
use crate::error::Error;
use crate::smoke::SmokeTest;
use crate::stack::ProgramConfig;

/// A program: a set of Kubernetes objects declared from a stack file.
///
/// `main` is then one line, `Runner::new(MyProgram).run()`. See the crate
/// documentation for a whole program.
pub trait Program: Send + Sync + Sized + 'static {
    /// The program's name: the binary's name in help and hints, and the
    /// identity its objects are applied as (field manager, ownership
    /// labels, state Secret and Lease names). Changing it orphans every
    /// object a released version applied.
    const NAME: &'static str;

    /// One line for `--help`.
    const ABOUT: &'static str;

    /// The program's section of the stack files. [`Section`] reads a plain
    /// `#[derive(Deserialize)]` struct under one key; a program that wants
    /// more (several keys, checks with positions) implements
    /// [`ProgramConfig`] itself.
    ///
    /// [`Section`]: crate::Section
    type Config: ProgramConfig;

    /// Commands of the program's own, beside the runner's; [`NoCommands`]
    /// for none.
    type Command: clap::Subcommand + Send;

    /// The objects of one stack, built from its settings. An error here
    /// (a setting the program cannot use, a file it cannot read) stops the
    /// command before the cluster is contacted; build one with
    /// [`Error::refused`], saying what to do.
    fn declare(&self, stack: &StackInfo, config: &ConfigOf<Self>) -> Result<Resources, Error>;

    /// The stack's outputs once it is up, read from the live objects
    /// through `live`. The default has none.
    fn outputs(
        &self,
        stack: &StackInfo,
        config: &ConfigOf<Self>,
        live: &LiveView<'_>,
    ) -> impl Future<Output = Result<Outputs, EngineError>> + Send {
        let _ = (stack, config, live);
        async { Ok(Outputs::new()) }
    }

    /// The checks `test` runs once the stack is up: HTTP requests from a
    /// curl Pod to the stack's Services, with what each answer must be.
    /// `graph` also draws each one's path to its Service. The default has
    /// none, and `test` says so and succeeds.
    fn smoke_tests(&self, stack: &StackInfo, config: &ConfigOf<Self>) -> Vec<SmokeTest> {
        let _ = (stack, config);
        Vec::new()
    }

    /// The program's section of a new stack file, as `stack init` writes it
    /// below the keys every stack has: YAML text with the program's keys at
    /// their defaults, each with a comment saying what it does. Leave a key
    /// a new stack should not set commented out, and never write a secret
    /// here: a stack file lives in version control.
    ///
    /// `stack init` refuses to write a file that does not load back with
    /// [`Program::Config`]; a test that calls [`new_stack_file`] with the
    /// program keeps the section honest. The default has none, and a new
    /// stack file then holds only the keys every stack has.
    ///
    /// [`new_stack_file`]: crate::new_stack_file
    fn stack_file_section(&self) -> Option<String> {
        None
    }

    /// Runs one of the program's own commands, on the stack the command line
    /// selected.
    fn run_command(
        &self,
        command: Self::Command,
        session: &Session<Self>,
    ) -> impl Future<Output = Result<(), Error>> {
        let _ = (command, session);
        async {
            Err(Error::refused(
                "this program declares no commands of its own",
                "see --help for the commands",
            ))
        }
    }
}

/// Who program `P` applies as.
pub(crate) fn identity<P: Program>() -> Identity {
    Identity::new(P::NAME)
}

/// The validated settings of a program's stack-file section.
pub type ConfigOf<P> = <<P as Program>::Config as ProgramConfig>::Validated;

/// A program's outputs: named JSON values, shown by `up` and `output`.
pub type Outputs = BTreeMap<String, Value>;

/// Turns a serializable struct into [`Outputs`], for a program whose outputs
/// are typed. A struct serializes to a map of its fields.
pub fn outputs_of<T: Serialize>(value: &T) -> Outputs {
    match serde_json::to_value(value) {
        Ok(Value::Object(map)) => map.into_iter().collect(),
        Ok(Value::Null) | Err(_) => Outputs::new(),
        Ok(other) => Outputs::from([("value".to_string(), other)]),
    }
}

/// What a program is told about the stack it declares: the generic
/// settings of the stack file.
#[derive(Clone, Debug)]
pub struct StackInfo {
    name: String,
    namespace: String,
    create_namespace: bool,
    identity: Identity,
    project: std::path::PathBuf,
}

impl StackInfo {
    /// The settings of stack `name`, for a program's own tests and tools.
    pub fn new(name: &str, namespace: &str, create_namespace: bool, identity: Identity) -> Self {
        StackInfo {
            name: name.to_string(),
            namespace: namespace.to_string(),
            create_namespace,
            identity,
            project: std::path::PathBuf::from("."),
        }
    }

    /// The same stack, in the project folder `dir`.
    pub fn in_project(mut self, dir: &std::path::Path) -> Self {
        self.project = dir.to_path_buf();
        self
    }

    /// The project folder (the one holding `stacks/`): paths a program
    /// reads from its settings are relative to it, as the stack file's are.
    pub fn project_dir(&self) -> &std::path::Path {
        &self.project
    }

    /// The stack's name (its file's name without `.yaml`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace the stack's objects go in (`namespace:`).
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Whether the stack creates its namespace (`createNamespace:`).
    pub fn creates_namespace(&self) -> bool {
        self.create_namespace
    }

    /// Who the program applies as.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// An empty set of resources for this stack, with the stack's namespace
    /// first when the stack creates it: every object added gets the
    /// ownership labels, and dependencies from its references.
    pub fn resources(&self) -> Resources {
        let mut resources = Resources::new(&self.identity, &self.name);
        if self.create_namespace {
            resources.add(k8s_openapi::api::core::v1::Namespace {
                metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                    name: Some(self.namespace.clone()),
                    ..Default::default()
                },
                ..Default::default()
            });
        }
        resources
    }
}

/// Read-only access to the cluster, for a program's outputs: it may look,
/// not change.
pub struct LiveView<'a> {
    cluster: &'a Cluster,
    desired: &'a [DesiredResource],
}

impl<'a> LiveView<'a> {
    pub(crate) fn new(cluster: &'a Cluster, desired: &'a [DesiredResource]) -> Self {
        LiveView { cluster, desired }
    }

    /// The objects the program declared for this run.
    pub fn desired(&self) -> &'a [DesiredResource] {
        self.desired
    }

    /// One object as the cluster holds it, or `None` if it does not exist.
    pub async fn get(&self, id: &ResourceId) -> Result<Option<Value>, ClusterError> {
        self.cluster.get(id).await
    }

    /// The objects of a kind, in `namespace` (or every namespace, or a
    /// cluster-scoped kind, for `None`), matching a label selector.
    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        selector: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError> {
        self.cluster
            .list(api_version, kind, namespace, selector)
            .await
    }

    /// The live objects among `ids`, read concurrently; missing ones are
    /// left out. An object read once is best taken with
    /// [`Live::parsed`](echo_iac_engine::live::Live::parsed): `Live::get`
    /// keeps what it parses, which a stack of thousands notices.
    pub async fn read<'i>(
        &self,
        ids: impl IntoIterator<Item = &'i ResourceId>,
    ) -> Result<echo_iac_engine::live::Live, EngineError> {
        echo_iac_engine::live::Live::read(self.cluster, ids).await
    }
}

/// The [`Program::Command`] of a program with no commands of its own.
#[derive(Clone, Copy, Debug)]
pub enum NoCommands {}

impl clap::FromArgMatches for NoCommands {
    fn from_arg_matches(_: &clap::ArgMatches) -> Result<Self, clap::Error> {
        Err(clap::Error::new(clap::error::ErrorKind::InvalidSubcommand))
    }

    fn update_from_arg_matches(&mut self, _: &clap::ArgMatches) -> Result<(), clap::Error> {
        match *self {}
    }
}

impl clap::Subcommand for NoCommands {
    fn augment_subcommands(cmd: clap::Command) -> clap::Command {
        cmd
    }

    fn augment_subcommands_for_update(cmd: clap::Command) -> clap::Command {
        cmd
    }

    fn has_subcommand(_: &str) -> bool {
        false
    }
}
