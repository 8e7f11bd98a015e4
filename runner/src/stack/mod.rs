//! Stack files (`stacks/<name>.yaml`) parsed and validated into a [`Stack`]:
//! the settings every stack has (which cluster, which namespace, where its
//! state lives) and the section of the program it runs, which the program
//! reads and checks itself through [`ProgramConfig`]. This module knows no
//! program's keys.
//!
//! serde-saphyr does the YAML work: syntax, unknown keys and value types,
//! each failure with a position. Values are read as
//! [`Spanned`](serde_saphyr::Spanned) so that the checks serde cannot
//! express (ranges, Kubernetes names, uniqueness across entries) point at
//! the offending value as well. All of it runs before any cluster is
//! contacted, so a bad stack file never gets as far as a half-applied change.

mod error;
mod kubeconfig;
pub mod manifests;
mod names;
mod raw;
mod section;
mod snippet;
mod source;
mod surface;
mod yaml_error;

use std::path::{Path, PathBuf};

use serde::de::MapAccess;

use crate::project::Project;
use echo_iac_engine::protect::{Guard, IdPattern, Protections};
use echo_iac_engine::state::Backend;
use serde_saphyr::Spanned;

pub use error::StackError;
pub use manifests::{ManifestObject, ManifestPattern};
pub use names::{
    MAX_LABEL_CHARS, dns_label_problem, label_key_problem, label_value_problem, show_char,
};
pub use section::{NoSettings, Section, SectionConfig};
pub use snippet::Mark;
pub use source::Source;
pub use surface::decimal_spelling;
pub use yaml_error::{KeyHelp, Wording};

use raw::RawStack;

/// The most revisions `historyLimit` may keep.
const MAX_HISTORY: u64 = 1000;

/// One environment's settings, validated, with the program's section as
/// `P`. Built only by parsing a stack file.
#[derive(Clone, Debug, PartialEq)]
pub struct Stack<P> {
    /// The stack's name: the file name without `.yaml`.
    pub name: String,
    /// The stack file it was read from.
    pub file: PathBuf,
    /// Kubeconfig paths from the file (`~` expanded, relative paths resolved
    /// against the project folder), one or a list merged as kubectl merges
    /// `KUBECONFIG`; empty means $KUBECONFIG, then ~/.kube/config.
    pub kubeconfig: Vec<PathBuf>,
    /// Kubeconfig context; `None` means the kubeconfig's current context.
    pub context: Option<String>,
    /// The namespace the program's namespaced objects go in.
    pub namespace: String,
    /// `createNamespace`: whether `up` creates the namespace (and `destroy`
    /// deletes it, when nothing else lives in it); with false, it must
    /// exist already.
    pub create_namespace: bool,
    /// Where the stack's state and lock live (`backend:`, default
    /// `file://state`).
    pub backend: Backend,
    /// `historyLimit`: how many earlier runs' revisions the state keeps
    /// (default 10).
    pub history_limit: usize,
    /// The objects `protect:` and `retain:` name, each pattern with where
    /// it was set (`stacks/prod.yaml:7`).
    pub protections: Protections,
    /// `manifests:`: files, folders or globs inside the project whose
    /// objects join the program's (read when the objects are declared).
    pub manifests: Vec<ManifestPattern>,
    /// The program's own settings, validated by the program.
    pub program: P,
}

/// The section of a stack file that belongs to the program the stack runs.
///
/// The stack reads its generic keys and hands each key of [`KEYS`] to
/// [`read_key`] as it meets it in the file; once the whole file is read and
/// the generic settings are valid, [`validate`] turns what was read into the
/// program's settings. The other functions lend the program's words to the
/// YAML errors inside its section; their defaults add none.
///
/// [`KEYS`]: ProgramConfig::KEYS
/// [`read_key`]: ProgramConfig::read_key
/// [`validate`]: ProgramConfig::validate
pub trait ProgramConfig: Default {
    /// Top-level keys this program owns, in the order unknown-key errors
    /// list them (after the generic keys).
    const KEYS: &'static [&'static str];

    /// The program's settings once validated.
    type Validated;

    /// Reads the value of `key`, one of [`KEYS`](Self::KEYS), from the
    /// file's top-level mapping with `map.next_value()`. Values read as
    /// [`Spanned`](serde_saphyr::Spanned) keep their positions for
    /// [`validate`](Self::validate).
    fn read_key<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error>;

    /// Checks serde cannot express, with errors built by `source` so they
    /// name the file, line and column and show the value underlined.
    fn validate(self, source: &Source<'_>) -> Result<Self::Validated, StackError>;

    /// What the program's key `key` (at any depth of its section) takes, for
    /// a value of the wrong type.
    fn key_help(_key: &str) -> Option<KeyHelp> {
        None
    }

    /// A hint for an unknown key `field` that is not a typo of an allowed one
    /// (`top_level`: found among the generic keys and [`KEYS`](Self::KEYS)).
    fn unknown_key_hint(_field: &str, _top_level: bool) -> Option<String> {
        None
    }

    /// The error for a required key `field` missing in the program's section.
    fn missing_key(_field: &str) -> Option<Wording> {
        None
    }

    /// Which of the program's keys take numbers or booleans, and what its
    /// structured keys take, for type errors that name no known key.
    fn value_kinds() -> ValueKinds {
        ValueKinds::default()
    }
}

/// See [`ProgramConfig::value_kinds`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ValueKinds {
    /// Keys that take whole numbers.
    pub numbers: &'static [&'static str],
    /// Keys that take true or false.
    pub booleans: &'static [&'static str],
    /// Phrases such as "echo a mapping", after the numbers and booleans.
    pub others: &'static [&'static str],
}

/// Reads and validates `stacks/<name>.yaml` of `project`, with `C` reading
/// the program's section.
pub fn load<C: ProgramConfig>(
    project: &Project,
    name: &str,
) -> Result<Stack<C::Validated>, StackError> {
    let file = project.stack_file(name);
    // The name becomes part of a path: check it before touching the disk.
    check_stack_name(name, &file)?;
    let bytes = match std::fs::read(&file) {
        Ok(bytes) => bytes,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(StackError::NotFound {
                name: name.to_string(),
                file,
                available: project.stack_names()?,
            });
        }
        Err(source) => return Err(StackError::Read { file, source }),
    };
    let text = String::from_utf8(bytes)
        .map_err(|e| surface::not_utf8(&file, e.as_bytes(), e.utf8_error().valid_up_to()))?;
    parse::<C>(name, &file, &text, project.root())
}

/// Validates the text of stack `name`, read from `file`. Relative paths in it
/// are resolved against `project_root`. Touches nothing outside its arguments
/// except `$HOME`, for `~` in `kubeconfig`.
pub fn parse<C: ProgramConfig>(
    name: &str,
    file: &Path,
    text: &str,
    project_root: &Path,
) -> Result<Stack<C::Validated>, StackError> {
    parse_with_home::<C>(
        name,
        file,
        text,
        project_root,
        std::env::home_dir().as_deref(),
    )
}

fn parse_with_home<C: ProgramConfig>(
    name: &str,
    file: &Path,
    text: &str,
    project_root: &Path,
    home: Option<&Path>,
) -> Result<Stack<C::Validated>, StackError> {
    check_stack_name(name, file)?;
    let text = &lone_carriage_returns_as_line_feeds(text);
    let src = Source { file, text };
    if let Some(err) = surface::tag_error(&src) {
        return Err(err);
    }
    let raw: Option<RawStack<C>> = serde_saphyr::from_str_with_options(text, yaml_options())
        .map_err(|err| src.yaml_error::<C>(&err))?;
    let Some(raw) = raw else {
        return Err(src.error(
            Some((1, 1)),
            "the stack file has no settings; `namespace` is required".into(),
            Vec::new(),
            Some("start with `namespace: echo-dev` (the namespace the echo objects go in)".into()),
        ));
    };

    let Some(namespace) = raw.namespace else {
        return Err(src.error(
            Some((1, 1)),
            "`namespace` is required".into(),
            Vec::new(),
            Some("add `namespace: echo-dev` (the namespace the echo objects go in)".into()),
        ));
    };
    if let Some(problem) = dns_label_problem(&namespace.value, MAX_LABEL_CHARS, false) {
        return Err(src.at(
            &namespace,
            format!(
                "namespace `{}` is not a valid namespace name: {problem}",
                namespace.value.escape_debug()
            ),
            "not a DNS-1123 label",
            "namespace names are lowercase letters, digits and '-', start and end with a \
             letter or digit, and have at most 63 characters, e.g. `echo-dev`",
        ));
    }

    let kubeconfig = match raw.kubeconfig {
        Some(paths) => kubeconfig::resolve(&src, paths, project_root, home)?,
        None => Vec::new(),
    };
    let context = match raw.context {
        Some(context) if context.value.trim().is_empty() => {
            return Err(src.at(
                &context,
                "`context` is empty".into(),
                "empty",
                "name a context from the kubeconfig, or remove the key to use its current context",
            ));
        }
        Some(context) => Some(context.value),
        None => None,
    };

    let backend = match raw.backend {
        Some(url) => Backend::parse(&url.value, project_root)
            .map_err(|e| src.at(&url, format!("`backend` {}", e.message), e.label, &e.hint))?,
        None => Backend::parse(echo_iac_engine::state::backend::DEFAULT, project_root)
            .expect("the default backend parses"),
    };

    let history_limit = match raw.history_limit {
        Some(limit) if !(1..=MAX_HISTORY).contains(&limit.value) => {
            return Err(src.at(
                &limit,
                format!(
                    "`historyLimit` {} is out of range: it keeps 1 to {MAX_HISTORY} revisions",
                    limit.value
                ),
                "out of range",
                "a whole number from 1 to 1000; each kept revision is a copy of the state",
            ));
        }
        Some(limit) => usize::try_from(limit.value).expect("at most 1000"),
        None => echo_iac_engine::state::DEFAULT_HISTORY,
    };

    let manifests = match raw.manifests {
        Some(paths) => manifests::resolve(&src, paths, project_root)?,
        None => Vec::new(),
    };

    Ok(Stack {
        name: name.to_string(),
        file: file.to_path_buf(),
        kubeconfig,
        context,
        namespace: namespace.value,
        create_namespace: raw.create_namespace.unwrap_or(false),
        backend,
        history_limit,
        protections: protections(&src, project_root, raw.protect, raw.retain)?,
        manifests,
        program: raw.program.validate(&src)?,
    })
}

/// The `protect:` and `retain:` lists as the engine takes them: each
/// pattern checked, and named by the file and line that set it.
fn protections(
    src: &Source<'_>,
    project_root: &Path,
    protect: Option<Vec<Spanned<String>>>,
    retain: Option<Vec<Spanned<String>>>,
) -> Result<Protections, StackError> {
    let shown = src
        .file
        .strip_prefix(project_root)
        .unwrap_or(src.file)
        .display()
        .to_string();
    let mut protections = Protections::new();
    for (key, guard, patterns) in [
        ("protect", Guard::Protect, protect),
        ("retain", Guard::Retain, retain),
    ] {
        for pattern in patterns.unwrap_or_default() {
            let parsed: IdPattern = pattern.value.parse().map_err(|problem| {
                src.at(
                    &pattern,
                    format!("`{key}`: {problem}"),
                    "not an object id pattern",
                    "write Kind/name for a cluster-scoped object (Namespace/echo-prod) and Kind/namespace/name for a namespaced one (PersistentVolumeClaim/echo-prod/data-*); `*` in the name matches any run of characters",
                )
            })?;
            let source = match src.position(pattern.referenced) {
                Some((line, _)) => format!("{shown}:{line}"),
                None => shown.clone(),
            };
            protections.add(guard, parsed, &source);
        }
    }
    Ok(protections)
}

/// `text` with each carriage return that no line feed follows made a line
/// feed. YAML breaks lines there too, so the parser's line numbers count
/// such breaks; every message and snippet counts lines as `str::lines`
/// does, which does not. The same length, so byte offsets stay valid.
fn lone_carriage_returns_as_line_feeds(text: &str) -> std::borrow::Cow<'_, str> {
    let bytes = text.as_bytes();
    let lone = |i: usize| bytes[i] == b'\r' && bytes.get(i + 1) != Some(&b'\n');
    if !(0..bytes.len()).any(lone) {
        return text.into();
    }
    text.char_indices()
        .map(|(i, c)| if c == '\r' && lone(i) { '\n' } else { c })
        .collect::<String>()
        .into()
}

/// How stack files are read: a value YAML would read as a number or a
/// boolean is not taken as text where text is meant (`image: 42`,
/// `namespace: true`): it must be quoted.
fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.no_schema = true;
    options.reject_unsupported_tags = true;
    options
}

/// The stack name is the value of the `echo-iac.io/stack` label on every
/// object, so it must be a valid label value.
fn check_stack_name(name: &str, file: &Path) -> Result<(), StackError> {
    match label_value_problem(name) {
        None => Ok(()),
        Some(reason) => Err(StackError::InvalidName {
            name: name.to_string(),
            file: file.to_path_buf(),
            reason,
        }),
    }
}

/// Helpers for the stack module's tests and the programs' own: parsing with
/// fixed paths and home, and a tiny program to test the stack module alone.
pub mod testing {
    use std::fmt::Debug;
    use std::path::Path;

    #[cfg(test)]
    use serde::de::MapAccess;
    #[cfg(test)]
    use serde_saphyr::Spanned;

    #[cfg(test)]
    use super::{KeyHelp, Source};
    use super::{ProgramConfig, Stack, StackError, parse_with_home};

    /// The stack file every helper parses as, relative to [`ROOT`].
    pub const FILE: &str = "stacks/dev.yaml";
    /// The project folder every helper parses in.
    pub const ROOT: &str = "/projects/echo";
    /// The home folder `~` expands to, so expected paths do not depend on
    /// who runs the tests.
    pub const HOME: &str = "/home/dev";

    /// Parses `text` as stack `name` of program `C`, from [`FILE`] in [`ROOT`].
    pub fn parse_as<C: ProgramConfig>(
        name: &str,
        text: &str,
        home: Option<&Path>,
    ) -> Result<Stack<C::Validated>, StackError> {
        parse_with_home::<C>(name, Path::new(FILE), text, Path::new(ROOT), home)
    }

    /// Parses `text` as stack `dev` of program `C`, panicking with the error
    /// if it does not parse.
    pub fn parse_ok_as<C: ProgramConfig>(text: &str) -> Stack<C::Validated>
    where
        C::Validated: Debug,
    {
        match parse_as::<C>("dev", text, Some(Path::new(HOME))) {
            Ok(config) => config,
            Err(err) => panic!("expected {text:?} to parse, got:\n{err}"),
        }
    }

    /// Parses `text` as stack `dev` of program `C`, panicking with the stack
    /// if it parses.
    pub fn parse_err_as<C: ProgramConfig>(text: &str) -> StackError
    where
        C::Validated: Debug,
    {
        match parse_as::<C>("dev", text, Some(Path::new(HOME))) {
            Ok(config) => panic!("expected {text:?} to fail, got {config:?}"),
            Err(err) => err,
        }
    }

    #[cfg(test)]
    pub(crate) fn parse_ok(text: &str) -> Stack<Option<String>> {
        parse_ok_as::<Greeting>(text)
    }

    #[cfg(test)]
    pub(crate) fn parse_err(text: &str) -> StackError {
        parse_err_as::<Greeting>(text)
    }

    #[cfg(test)]
    pub(crate) fn parse_without_home(
        name: &str,
        text: &str,
    ) -> Result<Stack<Option<String>>, StackError> {
        parse_as::<Greeting>(name, text, None)
    }

    /// Asserts the error points at `line:column` and its message and hint
    /// mention each of `words`.
    pub fn assert_error(err: &StackError, line: usize, column: usize, words: &[&str]) {
        let shown = format!("{err}\nhint: {}", err.hint().unwrap_or_default());
        assert_eq!(err.position(), Some((line, column)), "{shown}");
        assert!(
            shown.starts_with(&format!("{FILE}:{line}:{column}: ")),
            "{shown}"
        );
        for word in words {
            assert!(shown.contains(word), "expected `{word}` in:\n{shown}");
        }
    }

    /// A program whose section is one key, `greeting: <text>`, which must not
    /// be empty.
    #[cfg(test)]
    #[derive(Default)]
    pub(crate) struct Greeting {
        greeting: Option<Spanned<String>>,
    }

    #[cfg(test)]
    impl ProgramConfig for Greeting {
        const KEYS: &'static [&'static str] = &["greeting"];
        type Validated = Option<String>;

        fn read_key<'de, A: MapAccess<'de>>(
            &mut self,
            key: &str,
            map: &mut A,
        ) -> Result<(), A::Error> {
            assert_eq!(key, "greeting");
            self.greeting = map.next_value()?;
            Ok(())
        }

        fn validate(self, source: &Source<'_>) -> Result<Option<String>, StackError> {
            match self.greeting {
                Some(greeting) if greeting.value.is_empty() => Err(source.at(
                    &greeting,
                    "`greeting` is empty".into(),
                    "empty",
                    "say something",
                )),
                greeting => Ok(greeting.map(|greeting| greeting.value)),
            }
        }

        fn key_help(key: &str) -> Option<KeyHelp> {
            (key == "greeting").then(|| KeyHelp::example(key, "a single text value", "hello"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{Greeting, assert_error, parse_err, parse_ok, parse_without_home};
    use super::*;

    #[test]
    fn generic_settings_and_the_programs_section_parse_together() {
        let config = parse_ok(
            "kubeconfig: /etc/kube/config\n\
             context: kind-dev\n\
             namespace: echo-dev\n\
             createNamespace: true\n\
             greeting: hello\n",
        );
        assert_eq!(
            config,
            Stack {
                name: "dev".into(),
                file: PathBuf::from(testing::FILE),
                kubeconfig: vec![PathBuf::from("/etc/kube/config")],
                context: Some("kind-dev".into()),
                namespace: "echo-dev".into(),
                create_namespace: true,
                backend: Backend::File(PathBuf::from("/projects/echo/state")),
                history_limit: 10,
                protections: Protections::new(),
                manifests: Vec::new(),
                program: Some("hello".into()),
            }
        );
        let config = parse_ok("namespace: echo-dev\n");
        assert!(config.kubeconfig.is_empty());
        assert_eq!(config.context, None);
        assert!(!config.create_namespace);
        assert_eq!(config.program, None);
    }

    #[test]
    fn programs_errors_point_into_the_file_like_the_stacks_own() {
        let err = parse_err("namespace: a\ngreeting: ''\n");
        assert_error(&err, 2, 11, &["`greeting` is empty", "say something"]);
        let err = parse_err("namespace: a\ngreeting: [hi]\n");
        assert_error(
            &err,
            2,
            11,
            &[
                "`greeting` must be a single text value, found a list",
                "greeting: hello",
            ],
        );
    }

    #[test]
    fn unknown_top_level_key_lists_the_generic_and_the_programs_keys() {
        let err = parse_err("namespace: a\ncolour: red\n");
        assert_error(
            &err,
            2,
            1,
            &[
                "unknown key `colour`; allowed here: kubeconfig, context, namespace, \
                 createNamespace, backend, historyLimit, protect, retain, manifests, greeting",
                "remove it, or use one of:",
            ],
        );
        let err = parse_err("namespace: a\ngreting: hi\n");
        assert_error(&err, 2, 1, &["did you mean `greeting`?"]);
    }

    #[test]
    fn backend_key_takes_a_file_or_kubernetes_url() {
        let config = parse_ok("namespace: a\nbackend: kubernetes://echo-state\n");
        assert_eq!(
            config.backend,
            Backend::Kubernetes {
                namespace: "echo-state".into()
            }
        );
        let config = parse_ok("namespace: a\nbackend: file://.state\n");
        assert_eq!(
            config.backend,
            Backend::File(PathBuf::from("/projects/echo/.state"))
        );
    }

    #[test]
    fn history_limit_keeps_from_one_to_a_thousand_runs() {
        assert_eq!(parse_ok("namespace: a\n").history_limit, 10);
        assert_eq!(
            parse_ok("namespace: a\nhistoryLimit: 25\n").history_limit,
            25
        );
        let err = parse_err("namespace: a\nhistoryLimit: 0\n");
        assert_error(&err, 2, 15, &["`historyLimit` 0 is out of range"]);
        let err = parse_err("namespace: a\nhistoryLimit: ten\n");
        assert_error(&err, 2, 15, &["historyLimit"]);
    }

    #[test]
    fn bad_backend_is_rejected_at_its_position_with_what_is_allowed() {
        let err = parse_err("namespace: a\nbackend: s3://bucket\n");
        assert_error(&err, 2, 10, &["unknown backend scheme `s3://`"]);
        assert!(err.hint().unwrap().contains("kubernetes://<namespace>"));
        let err = parse_err("namespace: a\nbackend: kubernetes://Not_A_Namespace\n");
        assert_error(&err, 2, 10, &["does not name a namespace"]);
        let err = parse_err("namespace: a\nbackend: file://../otherproj\n");
        assert_error(
            &err,
            2,
            10,
            &[
                "`backend` `file://../otherproj` leads out of the project folder",
                "outside the project folder",
                "write its absolute path: `file:///projects/otherproj`",
            ],
        );
    }

    #[test]
    fn protect_and_retain_take_id_patterns_named_by_file_and_line() {
        let config = parse_ok(
            "namespace: echo-prod\n\
             protect:\n\
             \x20 - Namespace/echo-prod\n\
             \x20 - PersistentVolumeClaim/echo-prod/*\n\
             retain: [ConfigMap/echo-prod/keep]\n",
        );
        let rules: Vec<String> = config
            .protections
            .rules()
            .iter()
            .map(|r| r.describe())
            .collect();
        assert_eq!(
            rules,
            [
                "stacks/dev.yaml:3 (protect: Namespace/echo-prod)",
                "stacks/dev.yaml:4 (protect: PersistentVolumeClaim/echo-prod/*)",
                "stacks/dev.yaml:5 (retain: ConfigMap/echo-prod/keep)",
            ]
        );
        assert!(parse_ok("namespace: a\n").protections.rules().is_empty());
    }

    #[test]
    fn a_bad_protect_pattern_is_an_error_at_its_line_saying_what_is_allowed() {
        let err = parse_err("namespace: a\nprotect:\n  - Namespace/a\n  - echo-prod\n");
        assert_error(
            &err,
            4,
            5,
            &[
                "`protect`: `echo-prod` is not Kind/name",
                "Kind/namespace/name",
            ],
        );
        assert!(err.to_string().contains("stacks/dev.yaml"), "{err}");
        assert!(err.hint().unwrap().contains("Namespace/echo-prod"));
        let err = parse_err("namespace: a\nretain: [ConfigMap/*/x]\n");
        assert_error(&err, 2, 10, &["`retain`", "only in the name"]);
        // A single pattern where a list belongs is a type error.
        let err = parse_err("namespace: a\nprotect: Namespace/a\n");
        assert!(err.to_string().contains("protect"), "{err}");
    }

    #[test]
    fn empty_context_is_rejected() {
        let err = parse_err("namespace: a\ncontext: ''\n");
        assert_error(&err, 2, 10, &["`context` is empty", "current context"]);
    }

    #[test]
    fn lone_carriage_returns_break_lines_for_messages_as_for_the_parser() {
        let err = parse_err("namespace: a\rcontext: ''\r");
        assert_error(&err, 2, 10, &["`context` is empty"]);
        assert!(err.to_string().contains("2 | context: ''"), "{err}");
        let err = parse_err("namespace: a\r\n\r\ncontext: ''\r\n");
        assert_error(&err, 3, 10, &["`context` is empty"]);
        let err = parse_err("# a\r\rnamespace: a\r  b: [\r");
        assert!(err.position().is_some_and(|(line, _)| line >= 3), "{err}");
        assert!(err.to_string().contains(" | "), "a snippet: {err}");
    }

    #[test]
    fn empty_file_says_namespace_is_required() {
        for text in ["", "# only a comment\n"] {
            let err = parse_err(text);
            assert_error(&err, 1, 1, &["no settings", "`namespace` is required"]);
        }
    }

    #[test]
    fn missing_namespace_is_an_error() {
        let err = parse_err("createNamespace: true\n");
        assert_error(
            &err,
            1,
            1,
            &["`namespace` is required", "namespace: echo-dev"],
        );
    }

    #[test]
    fn snake_case_key_suggests_the_camel_case_one() {
        let err = parse_err("namespace: a\ncreate_namespace: true\n");
        assert_error(
            &err,
            2,
            1,
            &["unknown key", "did you mean `createNamespace`?"],
        );
    }

    #[test]
    fn duplicate_key_is_an_error() {
        let err = parse_err("namespace: a\nnamespace: b\n");
        assert_error(&err, 2, 1, &["`namespace` appears twice"]);
    }

    #[test]
    fn yaml_syntax_error_names_the_position() {
        let err = parse_err("namespace: 'a\n");
        assert_error(&err, 1, 12, &["quote"]);
    }

    #[test]
    fn second_document_is_an_error() {
        let err = parse_err("namespace: a\n---\nnamespace: b\n");
        assert_error(&err, 3, 1, &["one YAML document"]);
    }

    #[test]
    fn wrong_type_for_create_namespace_names_the_key() {
        let err = parse_err("namespace: a\ncreateNamespace: maybe\n");
        assert_error(&err, 2, 18, &["`createNamespace` must be true or false"]);
    }

    #[test]
    fn list_where_text_belongs_is_an_error() {
        let err = parse_err("namespace: [a, b]\n");
        assert_error(
            &err,
            1,
            12,
            &["`namespace` must be a single text value, found a list"],
        );
    }

    #[test]
    fn a_list_at_the_top_is_not_a_stack_file() {
        let err = parse_err("- namespace: a\n");
        assert_error(&err, 1, 1, &["must be a mapping of settings, found a list"]);
    }

    #[test]
    fn a_value_that_is_no_path_is_reported_at_kubeconfig() {
        for (value, found) in [
            ("42", "found `42`"),
            ("true", "found `true`"),
            ("3.14", "found `3.14`"),
            ("{a: b}", "found a mapping"),
        ] {
            let err = parse_err(&format!("kubeconfig: {value}\nnamespace: a\n"));
            assert_error(
                &err,
                1,
                13,
                &[
                    "`kubeconfig` must be a path, or a list of paths",
                    found,
                    "quoted",
                ],
            );
        }
        let config = parse_ok("kubeconfig: \"2024\"\nnamespace: a\n");
        assert_eq!(
            config.kubeconfig,
            vec![PathBuf::from("/projects/echo/2024")]
        );
    }

    #[test]
    fn a_null_key_is_named_as_such() {
        let err = parse_err("~: x\nnamespace: a\n");
        assert_error(&err, 1, 1, &["a key cannot be empty or `~`", "null"]);
        assert!(!err.to_string().contains("mapping of settings"), "{err}");
    }

    #[test]
    fn text_that_yaml_reads_as_a_number_or_boolean_must_be_quoted() {
        let err = parse_err("namespace: true\n");
        assert_error(
            &err,
            1,
            12,
            &[
                "`namespace` takes text, but YAML reads `true` as a boolean",
                "namespace: \"true\"",
            ],
        );
        let err = parse_err("namespace: a\ncontext: 1.5\n");
        assert_error(
            &err,
            2,
            10,
            &["reads `1.5` as a number", "context: \"1.5\""],
        );
        assert_eq!(parse_ok("namespace: \"1\"\n").namespace, "1");
    }

    #[test]
    fn any_yaml_tag_is_rejected_at_the_tag() {
        for (text, tag, column) in [
            (
                "namespace: a\ngreeting: !!python/object:os.system ls\n",
                "!!python/object:os.system",
                11,
            ),
            ("namespace: a\ngreeting: !!binary aGk=\n", "!!binary", 11),
            ("namespace: !custom a\n", "!custom", 12),
            ("namespace: a\ngreeting: !!str hi\n", "!!str", 11),
        ] {
            let err = parse_err(text);
            let line = if text.starts_with("namespace: !") {
                1
            } else {
                2
            };
            assert_error(
                &err,
                line,
                column,
                &[&format!("`{tag}` is a YAML tag"), "stack files take none"],
            );
        }
    }

    #[test]
    fn a_line_indented_under_a_single_value_is_pointed_at() {
        let err = parse_err("namespace: a\ngreeting: hi\n  context: x\n");
        assert_error(
            &err,
            3,
            3,
            &[
                "line 3 is indented under `greeting: hi`, which holds a single value",
                "indent `context:` as far as `greeting:` (0 spaces)",
            ],
        );
        assert!(err.to_string().contains("indented too far"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_utf8_names_the_first_bad_byte() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("stacks")).unwrap();
        std::fs::write(
            dir.path().join("stacks/dev.yaml"),
            b"namespace: a\ngreeting: caf\xe9\n",
        )
        .unwrap();
        let project = Project::at(dir.path()).unwrap();
        let err = load::<Greeting>(&project, "dev").unwrap_err();
        assert_eq!(err.position(), Some((2, 14)), "{err}");
        assert!(
            err.to_string().contains("not UTF-8 text: byte 0xE9"),
            "{err}"
        );
        assert!(err.hint().unwrap().contains("save the file as UTF-8"));
    }

    #[test]
    fn a_folder_in_place_of_a_stack_file_is_not_said_to_be_missing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("stacks/dev.yaml")).unwrap();
        let project = Project::at(dir.path()).unwrap();
        let err = load::<Greeting>(&project, "dev").unwrap_err();
        assert!(matches!(err, StackError::Read { .. }), "{err}");
        assert!(!err.hint().unwrap().contains("exists"), "{:?}", err.hint());
    }

    #[test]
    fn namespace_must_be_a_dns_label() {
        let long = "a".repeat(64);
        let cases = [
            ("Echo", "uppercase"),
            ("echo_dev", "`_` is not allowed"),
            ("echo-", "must end with a letter or digit"),
            ("-echo", "must start with a letter or digit"),
            (long.as_str(), "at most 63"),
        ];
        for (namespace, words) in cases {
            let err = parse_err(&format!("namespace: {namespace}\n"));
            assert_error(&err, 1, 12, &["not a valid namespace name", words]);
        }
        assert_eq!(parse_ok("namespace: 1echo\n").namespace, "1echo");
    }

    #[test]
    fn stack_name_must_be_a_label_value() {
        for name in ["bad name", "-dev", "dev/../prod", &"d".repeat(64)] {
            let err = parse_without_home(name, "namespace: a\n").unwrap_err();
            assert!(
                matches!(err, StackError::InvalidName { .. }),
                "{name}: {err}"
            );
            assert!(err.to_string().contains("cannot be a stack name"), "{err}");
            assert!(err.hint().unwrap().contains("label value"));
        }
        let config = parse_without_home("Prod_2.eu", "namespace: a\n").unwrap();
        assert_eq!(config.name, "Prod_2.eu");
    }

    #[test]
    fn load_of_a_missing_stack_names_the_existing_ones() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("stacks")).unwrap();
        for name in ["dev", "prod"] {
            std::fs::write(
                dir.path().join("stacks").join(format!("{name}.yaml")),
                "namespace: a\n",
            )
            .unwrap();
        }
        let project = Project::at(dir.path()).unwrap();
        let err = load::<Greeting>(&project, "stagin").unwrap_err();
        assert!(matches!(err, StackError::NotFound { .. }), "{err}");
        assert!(err.to_string().contains("no stack named `stagin`"), "{err}");
        assert!(err.to_string().contains("dev, prod"), "{err}");
        assert!(err.hint().unwrap().contains("dev, prod"));

        let err = load::<Greeting>(&project, "dve").unwrap_err();
        assert_eq!(err.hint().as_deref(), Some("did you mean `--stack dev`?"));

        let config = load::<Greeting>(&project, "prod").unwrap();
        assert_eq!(config.file, project.stack_file("prod"));
    }

    #[test]
    fn load_rejects_a_stack_name_that_is_a_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("stacks")).unwrap();
        let project = Project::at(dir.path()).unwrap();
        let err = load::<Greeting>(&project, "../secrets").unwrap_err();
        assert!(matches!(err, StackError::InvalidName { .. }), "{err}");
    }
}
