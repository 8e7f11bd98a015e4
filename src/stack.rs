//! Stack files (`stacks/<name>.yaml`) parsed and validated into a [`StackConfig`].
//!
//! serde-saphyr does the YAML work: syntax, unknown keys (through
//! `deny_unknown_fields`) and value types, each failure with a position.
//! Values are read as [`Spanned`] so that the checks serde cannot express
//! (ranges, Kubernetes names, what nginx can embed, uniqueness across entries)
//! point at the offending value as well. All of it runs before any cluster is
//! contacted, so a bad stack file never gets as far as a half-applied change.
//!
//! Every error renders the same way whichever side found it: `file:line:column:
//! message`, then the source lines with the value underlined, so the one
//! printer at the edge needs nothing but `Display` and [`StackError::hint`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::{Location, MessageFormatter, Spanned, UserMessageFormatter};

use crate::project::{Project, ProjectError};
use echo_iac_engine::state::Backend;

/// One environment's settings, validated. Built only by parsing a stack file.
#[derive(Clone, Debug, PartialEq)]
pub struct StackConfig {
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
    pub namespace: String,
    pub create_namespace: bool,
    /// Where the stack's state and lock live (`backend:`, default
    /// `file://state`).
    pub backend: Backend,
    /// One entry for `echo:`, one per item for `echoes:`.
    pub echoes: Vec<EchoConfig>,
}

/// One echo service with the names of its three objects already resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct EchoConfig {
    pub config_map_name: String,
    pub deployment_name: String,
    pub service_name: String,
    /// Value of the `app` label that the Deployment's selector and the
    /// Service's selector use: the seed's (or the echoes name) unless the
    /// stack file sets `appLabel`. The selector is immutable, so changing it
    /// replaces the Deployment.
    pub app_label: String,
    pub replicas: i32,
    pub node_port: i32,
    pub image: String,
    pub message: String,
    /// Node labels the pods must match (`spec.template.spec.nodeSelector`).
    pub node_selector: BTreeMap<String, String>,
    /// Taints the pods tolerate (`spec.template.spec.tolerations`).
    pub tolerations: Vec<Toleration>,
}

/// A pod toleration, as Kubernetes spells it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Toleration {
    #[serde(default)]
    pub key: Option<String>,
    #[serde(default)]
    pub operator: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub effect: Option<String>,
}

pub const DEFAULT_REPLICAS: i32 = 3;
pub const DEFAULT_NODE_PORT: i32 = 30007;
pub const DEFAULT_IMAGE: &str = "nginx:alpine";
pub const DEFAULT_MESSAGE: &str = "Hello! I am Pod";

/// Kubernetes' default `--service-node-port-range`.
pub const NODE_PORT_RANGE: RangeInclusive<i64> = 30000..=32767;
/// Far above what an echo service needs; a typo like `replicas: 30007` should
/// not reach the cluster as a request for thirty thousand pods.
pub const REPLICAS_RANGE: RangeInclusive<i64> = 0..=1000;
/// The message is one line of an HTTP response body.
pub const MAX_MESSAGE_CHARS: usize = 200;

/// Longest echoes `name`: the Service `<name>-service` must stay within the
/// 63 characters of a DNS label.
const MAX_ECHO_NAME_CHARS: usize = 63 - "-service".len();
const MAX_LABEL_CHARS: usize = 63;

/// The seed's object names, used for `echo:` and for the default service.
const SEED_CONFIG_MAP: &str = "nginx-echo-config";
const SEED_DEPLOYMENT: &str = "nginx-echo-nodeport";
const SEED_SERVICE: &str = "echo-nodeport-service";
const SEED_APP_LABEL: &str = "echo-nodeport";

/// Keys of an echo service, for telling someone who put one at the top level
/// where it belongs.
const ECHO_KEYS: &[&str] = &[
    "replicas",
    "nodePort",
    "image",
    "message",
    "appLabel",
    "nodeSelector",
    "tolerations",
];

/// Reads and validates `stacks/<name>.yaml` of `project`.
pub fn load(project: &Project, name: &str) -> Result<StackConfig, StackError> {
    let file = project.stack_file(name);
    // The name becomes part of a path: check it before touching the disk.
    check_stack_name(name, &file)?;
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(StackError::NotFound {
                name: name.to_string(),
                file,
                available: project.stack_names()?,
            });
        }
        Err(source) => return Err(StackError::Read { file, source }),
    };
    parse(name, &file, &text, project.root())
}

/// Validates the text of stack `name`, read from `file`. Relative paths in it
/// are resolved against `project_root`. Touches nothing outside its arguments
/// except `$HOME`, for `~` in `kubeconfig`.
pub fn parse(
    name: &str,
    file: &Path,
    text: &str,
    project_root: &Path,
) -> Result<StackConfig, StackError> {
    parse_with_home(
        name,
        file,
        text,
        project_root,
        std::env::home_dir().as_deref(),
    )
}

fn parse_with_home(
    name: &str,
    file: &Path,
    text: &str,
    project_root: &Path,
    home: Option<&Path>,
) -> Result<StackConfig, StackError> {
    check_stack_name(name, file)?;
    let src = Source { file, text };
    let raw: Option<RawStack> = serde_saphyr::from_str(text).map_err(|err| src.yaml_error(&err))?;
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
        Some(paths) => src.resolve_kubeconfigs(paths, project_root, home)?,
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
        Some(url) => Backend::parse(&url.value, project_root).map_err(|e| {
            src.at(
                &url,
                format!("`backend` {}", e.message),
                "not a backend URL",
                &e.hint,
            )
        })?,
        None => Backend::parse(echo_iac_engine::state::backend::DEFAULT, project_root)
            .expect("the default backend parses"),
    };

    Ok(StackConfig {
        name: name.to_string(),
        file: file.to_path_buf(),
        kubeconfig,
        context,
        namespace: namespace.value,
        create_namespace: raw.create_namespace.unwrap_or(false),
        backend,
        echoes: src.echoes(raw.echo, raw.echoes)?,
    })
}

/// `kubeconfig:` as written: one path, or a list of them.
enum KubeconfigPaths {
    One(String),
    Many(Vec<Spanned<String>>),
}

// By hand rather than `#[serde(untagged)]`, which buffers the value and
// loses the positions of the list's items.
impl<'de> Deserialize<'de> for KubeconfigPaths {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = KubeconfigPaths;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a path or a list of paths")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(KubeconfigPaths::One(v.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Spanned<String>>()? {
                    items.push(item);
                }
                Ok(KubeconfigPaths::Many(items))
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

// The file as written. Two echo structs rather than one with `#[serde(flatten)]`:
// flatten loses both the positions and `deny_unknown_fields`.

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawStack {
    kubeconfig: Option<Spanned<KubeconfigPaths>>,
    context: Option<Spanned<String>>,
    namespace: Option<Spanned<String>>,
    create_namespace: Option<bool>,
    backend: Option<Spanned<String>>,
    echo: Option<Spanned<RawEcho>>,
    echoes: Option<Spanned<Vec<Spanned<RawNamedEcho>>>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawEcho {
    replicas: Option<Spanned<i64>>,
    node_port: Option<Spanned<i64>>,
    image: Option<Spanned<String>>,
    message: Option<Spanned<String>>,
    app_label: Option<Spanned<String>>,
    node_selector: Option<Spanned<BTreeMap<String, String>>>,
    tolerations: Option<Spanned<Vec<Spanned<Toleration>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawNamedEcho {
    name: Spanned<String>,
    replicas: Option<Spanned<i64>>,
    node_port: Option<Spanned<i64>>,
    image: Option<Spanned<String>>,
    message: Option<Spanned<String>>,
    app_label: Option<Spanned<String>>,
    node_selector: Option<Spanned<BTreeMap<String, String>>>,
    tolerations: Option<Spanned<Vec<Spanned<Toleration>>>>,
}

impl RawNamedEcho {
    fn split(self) -> (Spanned<String>, RawEcho) {
        let settings = RawEcho {
            replicas: self.replicas,
            node_port: self.node_port,
            image: self.image,
            message: self.message,
            app_label: self.app_label,
            node_selector: self.node_selector,
            tolerations: self.tolerations,
        };
        (self.name, settings)
    }
}

/// The stack file being validated: where errors point.
struct Source<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Source<'_> {
    fn echoes(
        &self,
        echo: Option<Spanned<RawEcho>>,
        echoes: Option<Spanned<Vec<Spanned<RawNamedEcho>>>>,
    ) -> Result<Vec<EchoConfig>, StackError> {
        let entries: Vec<(Option<Spanned<String>>, RawEcho, Location)> = match (echo, echoes) {
            (Some(echo), Some(echoes)) => {
                let second = self.key_mark(echoes.referenced, "echoes", "and here", true);
                return Err(self.error(
                    (second.line > 0).then_some((second.line, second.column)),
                    "`echo:` and `echoes:` cannot both be set".into(),
                    vec![
                        self.key_mark(echo.referenced, "echo", "`echo:` is set here", false),
                        second,
                    ],
                    Some(
                        "use `echo:` for a single service or `echoes:` for several, not both"
                            .into(),
                    ),
                ));
            }
            (Some(echo), None) => vec![(None, echo.value, echo.referenced)],
            (None, Some(echoes)) if echoes.value.is_empty() => {
                return Err(self.at(
                    &echoes,
                    "`echoes:` is empty".into(),
                    "no entries",
                    "list at least one service (`- name: web`), or remove `echoes:` to get the \
                     default one",
                ));
            }
            (None, Some(echoes)) => echoes
                .value
                .into_iter()
                .map(|entry| {
                    let (name, settings) = entry.value.split();
                    (Some(name), settings, entry.referenced)
                })
                .collect(),
            (None, None) => vec![(None, RawEcho::default(), Location::UNKNOWN)],
        };

        let mut names: HashMap<String, Location> = HashMap::new();
        // Port → where it was taken and by whom, to name both places on a clash.
        let mut ports: HashMap<i64, (Location, String)> = HashMap::new();
        let mut resolved = Vec::with_capacity(entries.len());
        for (name, settings, at) in entries {
            let (echo, who) = match &name {
                Some(name) => {
                    self.check_echo_name(name)?;
                    if let Some(first) = names.insert(name.value.clone(), name.referenced) {
                        return Err(self.error(
                            self.position(name.referenced),
                            format!(
                                "echo name `{}` is used twice (lines {} and {})",
                                name.value,
                                first.line(),
                                name.referenced.line()
                            ),
                            vec![
                                self.mark(first, "first used here", false),
                                self.mark(name.referenced, "used again here", true),
                            ],
                            Some("give each entry of `echoes:` its own name".into()),
                        ));
                    }
                    (
                        named_echo(&name.value),
                        format!("`{}` (line {})", name.value, name.referenced.line()),
                    )
                }
                None => (seed_echo(), "the echo service".to_string()),
            };
            let echo = self.settings(echo, &settings)?;

            let (port_at, port_label) = match (&settings.node_port, &name) {
                (Some(port), _) => (port.referenced, "node port".to_string()),
                (None, Some(name)) => (
                    name.referenced,
                    format!("no nodePort, so the default {DEFAULT_NODE_PORT}"),
                ),
                (None, None) => (at, format!("the default {DEFAULT_NODE_PORT}")),
            };
            let port = i64::from(echo.node_port);
            if let Some((first_at, first_who)) = ports.get(&port) {
                return Err(self.error(
                    self.position(port_at),
                    format!("node port {port} is used by both {first_who} and {who}"),
                    vec![
                        self.mark(*first_at, "first used here", false),
                        self.mark(port_at, &format!("{port_label}: used again here"), true),
                    ],
                    Some(format!(
                        "each echo service needs its own node port ({}-{}); change one of them",
                        NODE_PORT_RANGE.start(),
                        NODE_PORT_RANGE.end()
                    )),
                ));
            }
            ports.insert(port, (port_at, who));
            resolved.push(echo);
        }
        Ok(resolved)
    }

    fn check_echo_name(&self, name: &Spanned<String>) -> Result<(), StackError> {
        match dns_label_problem(&name.value, MAX_ECHO_NAME_CHARS, true) {
            None => Ok(()),
            Some(problem) => Err(self.at(
                name,
                format!(
                    "echo name `{}` is not a valid name: {problem}",
                    name.value.escape_debug()
                ),
                "not a DNS-1035 label",
                &format!(
                    "echo names are lowercase letters, digits and '-', start with a letter, end \
                     with a letter or digit, and have at most {MAX_ECHO_NAME_CHARS} characters \
                     (so that `<name>-service` fits in 63), e.g. `web`"
                ),
            )),
        }
    }

    /// Fills in `echo`'s settings from the file, checking each.
    fn settings(&self, mut echo: EchoConfig, raw: &RawEcho) -> Result<EchoConfig, StackError> {
        if let Some(replicas) = &raw.replicas {
            if !REPLICAS_RANGE.contains(&replicas.value) {
                return Err(self.at(
                    replicas,
                    format!(
                        "`replicas` is {}; it must be between {} and {}",
                        replicas.value,
                        REPLICAS_RANGE.start(),
                        REPLICAS_RANGE.end()
                    ),
                    &format!("not in {}-{}", REPLICAS_RANGE.start(), REPLICAS_RANGE.end()),
                    &format!(
                        "replicas must be between {} and {}; 0 keeps the Deployment with no pods",
                        REPLICAS_RANGE.start(),
                        REPLICAS_RANGE.end()
                    ),
                ));
            }
            echo.replicas = replicas.value as i32;
        }
        if let Some(port) = &raw.node_port {
            if !NODE_PORT_RANGE.contains(&port.value) {
                return Err(self.at(
                    port,
                    format!(
                        "node port {} is outside the allowed range {}-{}",
                        port.value,
                        NODE_PORT_RANGE.start(),
                        NODE_PORT_RANGE.end()
                    ),
                    &format!(
                        "not in {}-{}",
                        NODE_PORT_RANGE.start(),
                        NODE_PORT_RANGE.end()
                    ),
                    &format!(
                        "node ports must be between {} and {}; pick a free one, e.g. {}",
                        NODE_PORT_RANGE.start(),
                        NODE_PORT_RANGE.end(),
                        DEFAULT_NODE_PORT
                    ),
                ));
            }
            echo.node_port = port.value as i32;
        }
        if let Some(image) = &raw.image {
            let problem = if image.value.is_empty() {
                Some("`image` is empty".to_string())
            } else {
                image
                    .value
                    .chars()
                    .find(|c| c.is_whitespace() || c.is_control())
                    .map(|c| format!("`image` cannot contain {}", show_char(c)))
            };
            if let Some(problem) = problem {
                return Err(self.at(
                    image,
                    problem,
                    "not an image reference",
                    "give an image reference such as `nginx:alpine` or \
                     `registry.example.com/team/echo:1.2`",
                ));
            }
            echo.image = image.value.clone();
        }
        if let Some(message) = &raw.message {
            self.check_message(message)?;
            echo.message = message.value.clone();
        }
        if let Some(label) = &raw.app_label {
            if let Some(problem) = label_value_problem(&label.value) {
                return Err(self.at(
                    label,
                    format!(
                        "`appLabel` {:?} is not a valid label value: {problem}",
                        label.value
                    ),
                    "not a label value",
                    "use up to 63 letters, digits, '-', '_' or '.', starting and ending with a \
                     letter or digit, e.g. `appLabel: echo-v2`",
                ));
            }
            if label.value.is_empty() {
                return Err(self.at(
                    label,
                    "`appLabel` is empty".into(),
                    "empty",
                    "give the value of the pods' `app` label, e.g. `appLabel: echo-v2`",
                ));
            }
            echo.app_label = label.value.clone();
        }
        if let Some(selector) = &raw.node_selector {
            for (key, value) in &selector.value {
                let problem = label_key_problem(key)
                    .map(|p| format!("node selector key {key:?} is not a label key: {p}"))
                    .or_else(|| {
                        label_value_problem(value).map(|p| {
                            format!("node selector value {value:?} (for {key}) is not a label value: {p}")
                        })
                    });
                if let Some(problem) = problem {
                    return Err(self.at(
                        selector,
                        problem,
                        "not a node selector",
                        "write node labels as `key: value` lines, e.g. `nodeSelector: {echo-iac.io/node: real}`",
                    ));
                }
            }
            echo.node_selector = selector.value.clone();
        }
        if let Some(tolerations) = &raw.tolerations {
            for toleration in &tolerations.value {
                if let Some(problem) = toleration_problem(&toleration.value) {
                    return Err(self.at(
                        toleration,
                        problem,
                        "not a toleration",
                        "write tolerations as Kubernetes does, e.g. \
                         `- {key: echo-iac.io/node, operator: Equal, value: real, effect: NoSchedule}`",
                    ));
                }
            }
            echo.tolerations = tolerations.value.iter().map(|t| t.value.clone()).collect();
        }
        Ok(echo)
    }

    fn check_message(&self, message: &Spanned<String>) -> Result<(), StackError> {
        const HINT: &str = "keep the message to one line of plain text without \" \\ $ { } ; \
                            e.g. `message: Hello from dev! I am Pod`";
        let text = &message.value;
        if text.is_empty() {
            return Err(self.at(message, "`message` is empty".into(), "empty", HINT));
        }
        let count = text.chars().count();
        if count > MAX_MESSAGE_CHARS {
            return Err(self.at(
                message,
                format!(
                    "`message` has {count} characters; at most {MAX_MESSAGE_CHARS} are allowed"
                ),
                "too long",
                &format!("shorten the message to {MAX_MESSAGE_CHARS} characters or fewer"),
            ));
        }
        // The message is pasted into `return 200 "<message>: $server_addr\n";`
        // in nginx's config; these would end or change that string.
        for (index, c) in text.chars().enumerate() {
            let why = match c {
                '"' => "it would end the quoted string in nginx's config",
                '\\' => "nginx would read it as an escape",
                '$' => "nginx would read it as the start of a variable",
                '{' | '}' => "nginx's config uses braces for blocks",
                ';' => "nginx would read it as the end of a directive",
                '\u{2028}' | '\u{2029}' => "the message must be a single line",
                c if c.is_control() => "the message must be a single line of printable text",
                _ => continue,
            };
            let (position, mark) = match self.char_position(message, index) {
                Some((line, column)) => (
                    Some((line, column)),
                    Mark {
                        line,
                        column,
                        len: 1,
                        label: "not allowed".into(),
                        primary: true,
                    },
                ),
                None => (
                    self.position(message.referenced),
                    self.mark(message.referenced, "in this message", true),
                ),
            };
            return Err(self.error(
                position,
                format!(
                    "`message` cannot contain {} (character {}): {why}",
                    show_char(c),
                    index + 1
                ),
                vec![mark],
                Some(HINT.into()),
            ));
        }
        Ok(())
    }

    /// Where character `index` of a string value sits in the file, when the
    /// value is written literally on one line (plain or quoted without escapes);
    /// `None` when escapes or folding make the mapping ambiguous.
    fn char_position(&self, value: &Spanned<String>, index: usize) -> Option<(usize, usize)> {
        let at = value.referenced;
        let start = usize::try_from(at.span().byte_offset()?).ok()?;
        let len = usize::try_from(at.span().byte_len()?).ok()?;
        let written = self.text.get(start..start + len)?;
        let unquoted = ['"', '\'']
            .iter()
            .find_map(|q| written.strip_prefix(*q)?.strip_suffix(*q))
            .map(|inner| (inner, 1))
            .unwrap_or((written, 0));
        if unquoted.0 != value.value || written.contains('\n') {
            return None;
        }
        let (line, column) = self.position(at)?;
        Some((line, column + unquoted.1 + index))
    }

    /// One path or a list; an empty list is a mistake, not "the default".
    fn resolve_kubeconfigs(
        &self,
        paths: Spanned<KubeconfigPaths>,
        project_root: &Path,
        home: Option<&Path>,
    ) -> Result<Vec<PathBuf>, StackError> {
        let items = match paths.value {
            KubeconfigPaths::One(path) => vec![Spanned::new(path, paths.referenced, paths.defined)],
            KubeconfigPaths::Many(items) if items.is_empty() => {
                let empty = Spanned::new(String::new(), paths.referenced, paths.defined);
                return Err(self.at(
                    &empty,
                    "`kubeconfig` is an empty list".into(),
                    "empty",
                    "give one path or a list of paths, or remove the key to use $KUBECONFIG, then ~/.kube/config",
                ));
            }
            KubeconfigPaths::Many(items) => items,
        };
        items
            .iter()
            .map(|path| self.resolve_kubeconfig(path, project_root, home))
            .collect()
    }

    fn resolve_kubeconfig(
        &self,
        path: &Spanned<String>,
        project_root: &Path,
        home: Option<&Path>,
    ) -> Result<PathBuf, StackError> {
        let written = path.value.as_str();
        if written.trim().is_empty() {
            return Err(self.at(
                path,
                "`kubeconfig` is empty".into(),
                "empty",
                "give a path, or remove the key to use $KUBECONFIG, then ~/.kube/config",
            ));
        }
        let rest = if written == "~" {
            Some("")
        } else {
            written.strip_prefix("~/")
        };
        let expanded = match (rest, home) {
            (Some(rest), Some(home)) => home.join(rest),
            (Some(_), None) => {
                return Err(self.at(
                    path,
                    "`~` in `kubeconfig` cannot be expanded: no home directory is known".into(),
                    "needs $HOME",
                    "set HOME, or write the kubeconfig's full path",
                ));
            }
            (None, _) if written.starts_with('~') => {
                return Err(self.at(
                    path,
                    format!(
                        "`kubeconfig` is `{written}`; only `~` and `~/...` are expanded, not `~user`"
                    ),
                    "not expanded",
                    "write the kubeconfig's full path",
                ));
            }
            (None, _) => PathBuf::from(written),
        };
        // Relative to the project, not the working directory, so a stack means
        // the same thing wherever echo-iac is run from.
        Ok(if expanded.is_absolute() {
            expanded
        } else {
            project_root.join(expanded)
        })
    }

    /// Turns serde-saphyr's error into ours, rewording the common cases in the
    /// terms of a stack file (keys and what they take).
    fn yaml_error(&self, err: &serde_saphyr::Error) -> StackError {
        use serde_saphyr::Error as E;
        let err = err.without_snippet();
        let at = err.location().filter(|at| *at != Location::UNKNOWN);
        let key = at.and_then(|at| self.key_of(at));
        let is_type_error = matches!(
            err,
            E::InvalidScalar { .. }
                | E::Unexpected { .. }
                | E::SerdeInvalidType { .. }
                | E::SerdeInvalidValue { .. }
                | E::NullIntoString { .. }
                | E::InvalidBooleanStrict { .. }
        );
        let (message, label, hint) = match err {
            E::SerdeUnknownField {
                field, expected, ..
            } => (
                format!(
                    "unknown key `{}`; allowed here: {}",
                    field.escape_debug(),
                    expected.join(", ")
                ),
                "unknown key".to_string(),
                unknown_key_hint(field, expected),
            ),
            E::SerdeMissingField { field, .. } if *field == "name" => (
                "this entry of `echoes:` has no `name`".to_string(),
                "entry without a name".to_string(),
                "add `name: <name>` to the entry; it names the service's objects".to_string(),
            ),
            E::SerdeMissingField { field, .. } => (
                format!("`{field}` is required here"),
                format!("missing `{field}`"),
                format!("add `{field}:`"),
            ),
            E::DuplicateMappingKey { key: Some(key), .. } => (
                format!(
                    "key `{}` appears twice in the same mapping",
                    key.escape_debug()
                ),
                "repeated here".to_string(),
                "keep one of the two".to_string(),
            ),
            E::MultipleDocuments { .. } => (
                "a stack file holds one YAML document, but a second one starts here".to_string(),
                "second document".to_string(),
                "remove the `---` line and what follows, or move it to its own stack file"
                    .to_string(),
            ),
            _ if is_type_error && key.as_deref().and_then(takes).is_some() => {
                let key = key.as_deref().unwrap_or_default();
                let found = at.map(|at| self.found(at)).unwrap_or_default();
                (
                    format!("`{key}` must be {}{found}", takes(key).unwrap_or_default()),
                    "wrong type".to_string(),
                    type_hint(key),
                )
            }
            _ if is_type_error && at.is_some_and(|at| at.column() == 1) => {
                let found = at.map(|at| self.found(at)).unwrap_or_default();
                (
                    format!("a stack file must be a mapping of settings{found}"),
                    "not a mapping".to_string(),
                    "start with `namespace: echo-dev`, one `key: value` per line".to_string(),
                )
            }
            other => {
                let message: String = UserMessageFormatter
                    .format_message(other)
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                let hint = if is_type_error {
                    "replicas and nodePort take whole numbers, createNamespace takes true or \
                     false, echo a mapping, echoes a list of mappings, the rest text"
                } else {
                    "fix the YAML at that spot: check the indentation, and quote values that \
                     contain `: ` or ` #`"
                };
                (message, "here".to_string(), hint.to_string())
            }
        };
        let marks = at
            .map(|at| vec![self.mark(at, &label, true)])
            .unwrap_or_default();
        self.error(
            at.and_then(|at| self.position(at)),
            message,
            marks,
            Some(hint),
        )
    }

    /// The key a value belongs to: the `key:` before it on its line or, for
    /// a value on lines of its own, the nearest less-indented line ending in
    /// `key:`. Type errors point at the value and read better naming the key.
    fn key_of(&self, at: Location) -> Option<String> {
        let (line, column) = self.position(at)?;
        let lines: Vec<&str> = self.text.lines().collect();
        // A missing value is reported at the colon after its key.
        let text = lines.get(line - 1)?;
        let upto = column - usize::from(text.chars().nth(column - 1) != Some(':'));
        let before: String = text.chars().take(upto).collect();
        let before = before.trim();
        let before = before.strip_prefix('-').unwrap_or(before).trim();
        let key_line = if before.is_empty() {
            let indent = |text: &str| text.len() - text.trim_start().len();
            lines[..line - 1]
                .iter()
                .rev()
                .filter(|text| !text.trim().is_empty() && !text.trim_start().starts_with('#'))
                .find(|text| indent(text) < column - 1)?
                .trim()
        } else {
            before
        };
        let key = key_line.strip_prefix('-').unwrap_or(key_line).trim();
        let key = key.strip_suffix(':')?.trim_end();
        (!key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric())).then(|| key.to_string())
    }

    /// `, found ...` describing the value at `at`, for type errors.
    fn found(&self, at: Location) -> String {
        let Some((line, column)) = self.position(at) else {
            return String::new();
        };
        let rest: String = self
            .text
            .lines()
            .nth(line - 1)
            .unwrap_or_default()
            .chars()
            .skip(column - 1)
            .collect();
        let rest = rest.trim_end();
        let quoted = rest.starts_with(['"', '\'']);
        if rest.is_empty() || rest == ":" || rest.starts_with('#') {
            ", found nothing".into()
        } else if rest.starts_with('[') || rest == "-" || rest.starts_with("- ") {
            ", found a list".into()
        } else if rest.starts_with('{') || (!quoted && (rest.contains(": ") || rest.ends_with(':')))
        {
            ", found a mapping".into()
        } else {
            let written = usize::try_from(at.span().byte_offset().unwrap_or(u64::MAX))
                .ok()
                .zip(usize::try_from(at.span().byte_len().unwrap_or(0)).ok())
                .and_then(|(start, len)| self.text.get(start..start + len))
                .and_then(|written| written.lines().next())
                .filter(|written| !written.is_empty())
                .unwrap_or(rest);
            format!(", found `{}`", written.escape_debug())
        }
    }

    /// Underlines the key `key:` that owns the value at `at`, searching from
    /// the value's line upwards; the value itself when the key is not found.
    fn key_mark(&self, at: Location, key: &str, label: &str, primary: bool) -> Mark {
        let owner = format!("{key}:");
        let found = self.position(at).and_then(|(line, _)| {
            let lines: Vec<&str> = self.text.lines().take(line).collect();
            lines
                .into_iter()
                .enumerate()
                .rev()
                .find_map(|(index, text)| {
                    let trimmed = text.trim_start();
                    let trimmed = trimmed.strip_prefix("- ").unwrap_or(trimmed);
                    trimmed.starts_with(&owner).then(|| {
                        let byte = text.len() - trimmed.len();
                        (index + 1, text[..byte].chars().count() + 1)
                    })
                })
        });
        match found {
            Some((line, column)) => Mark {
                line,
                column,
                len: key.chars().count(),
                label: label.to_string(),
                primary,
            },
            None => self.mark(at, label, primary),
        }
    }

    fn at<T>(&self, value: &Spanned<T>, message: String, label: &str, hint: &str) -> StackError {
        self.error(
            self.position(value.referenced),
            message,
            vec![self.mark(value.referenced, label, true)],
            Some(hint.to_string()),
        )
    }

    fn error(
        &self,
        position: Option<(usize, usize)>,
        message: String,
        marks: Vec<Mark>,
        hint: Option<String>,
    ) -> StackError {
        StackError::Invalid(Box::new(SourceError {
            file: self.file.to_path_buf(),
            position,
            message,
            snippet: render_snippet(self.text, &marks),
            hint,
        }))
    }

    fn position(&self, at: Location) -> Option<(usize, usize)> {
        let line = usize::try_from(at.line()).ok()?;
        let column = usize::try_from(at.column()).ok()?;
        (line > 0 && column > 0).then_some((line, column))
    }

    fn mark(&self, at: Location, label: &str, primary: bool) -> Mark {
        let (line, column) = self.position(at).unwrap_or((0, 0));
        Mark {
            line,
            column,
            len: usize::try_from(at.span().len()).unwrap_or(1),
            label: label.to_string(),
            primary,
        }
    }
}

fn seed_echo() -> EchoConfig {
    EchoConfig {
        config_map_name: SEED_CONFIG_MAP.into(),
        deployment_name: SEED_DEPLOYMENT.into(),
        service_name: SEED_SERVICE.into(),
        app_label: SEED_APP_LABEL.into(),
        replicas: DEFAULT_REPLICAS,
        node_port: DEFAULT_NODE_PORT,
        image: DEFAULT_IMAGE.into(),
        message: DEFAULT_MESSAGE.into(),
        node_selector: BTreeMap::new(),
        tolerations: Vec::new(),
    }
}

/// Why a toleration would be rejected by the API server, checked here so
/// the error can point at the stack file.
fn toleration_problem(toleration: &Toleration) -> Option<String> {
    let operator = toleration.operator.as_deref().unwrap_or("Equal");
    if !matches!(operator, "Equal" | "Exists") {
        return Some(format!(
            "toleration operator {operator:?} is not one of Equal, Exists"
        ));
    }
    if operator == "Exists" && toleration.value.as_deref().is_some_and(|v| !v.is_empty()) {
        return Some("a toleration with operator Exists takes no value".into());
    }
    if toleration.key.as_deref().unwrap_or_default().is_empty() && operator != "Exists" {
        return Some("a toleration without a key must use operator Exists".into());
    }
    match toleration.effect.as_deref() {
        None | Some("" | "NoSchedule" | "PreferNoSchedule" | "NoExecute") => None,
        Some(effect) => Some(format!(
            "toleration effect {effect:?} is not one of NoSchedule, PreferNoSchedule, NoExecute"
        )),
    }
}

/// Why `key` is not a label key: an optional DNS-subdomain prefix and `/`,
/// then a name of up to 63 characters.
fn label_key_problem(key: &str) -> Option<String> {
    let (prefix, name) = match key.rsplit_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        let ok = !prefix.is_empty()
            && prefix.len() <= 253
            && prefix
                .split('.')
                .all(|part| dns_label_problem(part, 63, false).is_none());
        if !ok {
            return Some(format!("prefix {prefix:?} is not a DNS subdomain"));
        }
    }
    if name.is_empty() {
        return Some("the name part is empty".into());
    }
    label_value_problem(name)
}

fn named_echo(name: &str) -> EchoConfig {
    EchoConfig {
        config_map_name: format!("{name}-config"),
        deployment_name: name.to_string(),
        service_name: format!("{name}-service"),
        app_label: name.to_string(),
        ..seed_echo()
    }
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

fn label_value_problem(value: &str) -> Option<String> {
    let count = value.chars().count();
    if value.is_empty() {
        return Some("it is empty".into());
    }
    if count > MAX_LABEL_CHARS {
        return Some(format!(
            "it has {count} characters; at most {MAX_LABEL_CHARS} are allowed"
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Some(format!(
            "{} is not allowed; only letters, digits, '-', '_' and '.' are",
            show_char(c)
        ));
    }
    let alnum = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    if !alnum(value.chars().next()) || !alnum(value.chars().last()) {
        return Some("it must start and end with a letter or digit".into());
    }
    None
}

/// Why `value` is not a DNS label (RFC 1123, or RFC 1035 when it must start
/// with a letter) of at most `max` characters; `None` if it is one.
fn dns_label_problem(value: &str, max: usize, starts_with_letter: bool) -> Option<String> {
    let count = value.chars().count();
    if value.is_empty() {
        return Some("it is empty".into());
    }
    if count > max {
        return Some(format!(
            "it has {count} characters; at most {max} are allowed"
        ));
    }
    if let Some(c) = value
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Some(if c.is_ascii_uppercase() {
            format!("`{c}`: uppercase letters are not allowed")
        } else {
            format!(
                "{} is not allowed; only lowercase letters, digits and '-' are",
                show_char(c)
            )
        });
    }
    let first = value.chars().next().unwrap_or_default();
    if starts_with_letter && !first.is_ascii_lowercase() {
        return Some("it must start with a lowercase letter".into());
    }
    if !first.is_ascii_alphanumeric() {
        return Some("it must start with a letter or digit".into());
    }
    if !value.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        return Some("it must end with a letter or digit".into());
    }
    None
}

fn show_char(c: char) -> String {
    match c {
        ' ' => "a space".into(),
        '\n' | '\r' | '\u{2028}' | '\u{2029}' => "a line break".into(),
        '\t' => "a tab".into(),
        c if c.is_control() || c.is_whitespace() => {
            format!("the character `{}`", c.escape_unicode())
        }
        c => format!("`{c}`"),
    }
}

/// What a key takes, for type errors.
fn takes(key: &str) -> Option<&'static str> {
    Some(match key {
        "replicas" => "a whole number (0-1000)",
        "nodePort" => "a whole number (30000-32767)",
        "createNamespace" => "true or false",
        "echo" => "a mapping of settings (replicas, nodePort, image, message, appLabel)",
        "echoes" => "a list of mappings, each with a name",
        "nodeSelector" => "a mapping of node labels, e.g. {echo-iac.io/node: real}",
        "tolerations" => "a list of tolerations, each with key, operator, value, effect",
        "kubeconfig" => "a path, or a list of paths",
        "namespace" | "context" | "image" | "message" | "name" | "appLabel" => {
            "a single text value"
        }
        "backend" => "a backend URL, `file://<folder>` or `kubernetes://<namespace>`",
        _ => return None,
    })
}

fn type_hint(key: &str) -> String {
    let example = match key {
        "echo" => {
            return "put the settings on the lines below `echo:`, indented, e.g. `  replicas: 3`"
                .into();
        }
        "echoes" => {
            return "put one entry per line below `echoes:`, indented, each starting with \
                    `- name: ...`"
                .into();
        }
        "replicas" => "3",
        "nodePort" => "30007",
        "createNamespace" => "true",
        "namespace" => "echo-dev",
        "context" => "kind-dev",
        "kubeconfig" => "~/.kube/config",
        "backend" => "kubernetes://echo-state",
        "image" => "nginx:alpine",
        "message" => "Hello! I am Pod",
        "name" => "web",
        "appLabel" => "echo-v2",
        "nodeSelector" => "{echo-iac.io/node: real}",
        _ => "...",
    };
    format!("write it like `{key}: {example}`")
}

fn unknown_key_hint(field: &str, expected: &[&str]) -> String {
    if let Some(close) = closest(field, expected.iter().copied()) {
        return format!("did you mean `{close}`? Keys are camelCase");
    }
    if expected.contains(&"namespace") && ECHO_KEYS.contains(&field) {
        return format!("`{field}` is an echo setting: indent it under `echo:`");
    }
    if field == "name" {
        return "only entries of `echoes:` have a name; use `echoes:` with `- name: ...` to name \
                the service"
            .into();
    }
    format!("remove it, or use one of: {}", expected.join(", "))
}

/// The candidate `word` most likely meant: the same ignoring case and `_`/`-`,
/// or within two edits.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    let fold = |s: &str| -> String {
        s.chars()
            .filter(|c| !matches!(c, '_' | '-'))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let folded = fold(word);
    candidates
        .map(|candidate| (edit_distance(&folded, &fold(candidate)), candidate))
        .filter(|(distance, candidate)| *distance <= 2 && *distance < candidate.len())
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// A place in the file to underline: `^` for the error itself, `-` for a
/// related place such as the first of two clashing values.
struct Mark {
    line: usize,
    column: usize,
    len: usize,
    label: String,
    primary: bool,
}

/// The marked lines, each with the line before it for context, in the style
/// of rustc (and of serde-saphyr's own snippets).
fn render_snippet(text: &str, marks: &[Mark]) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let marks: Vec<&Mark> = marks
        .iter()
        .filter(|mark| mark.line >= 1 && mark.line <= lines.len())
        .collect();
    let mut shown: Vec<usize> = marks
        .iter()
        .flat_map(|mark| [mark.line - 1, mark.line])
        .filter(|line| *line >= 1)
        .collect();
    shown.sort_unstable();
    shown.dedup();
    let Some(last) = shown.last() else {
        return String::new();
    };
    let width = last.to_string().len();
    let mut out = format!("{:width$} |", "");
    let mut previous = None;
    for line in shown {
        if previous.is_some_and(|previous| line > previous + 1) {
            out.push_str(&format!("\n{:width$} ...", ""));
        }
        // Control characters would break the layout; each still takes one
        // column, so the underline stays aligned.
        let text: String = lines[line - 1]
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        out.push_str(&format!("\n{line:>width$} | {}", text.trim_end()));
        for mark in marks.iter().filter(|mark| mark.line == line) {
            let room = text.chars().count().saturating_sub(mark.column - 1);
            let len = mark.len.clamp(1, room.max(1));
            let underline = if mark.primary { "^" } else { "-" }.repeat(len);
            out.push_str(&format!(
                "\n{:width$} | {}{underline} {}",
                "",
                " ".repeat(mark.column - 1),
                mark.label
            ));
        }
        previous = Some(line);
    }
    out
}

/// A stack file that is not valid, with the place and the source around it.
#[derive(Debug)]
pub struct SourceError {
    file: PathBuf,
    position: Option<(usize, usize)>,
    message: String,
    snippet: String,
    hint: Option<String>,
}

impl SourceError {
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Line and column (1-based, in characters) of the offending value.
    pub fn position(&self) -> Option<(usize, usize)> {
        self.position
    }

    /// The message without the location and snippet.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = display_path(&self.file);
        match self.position {
            Some((line, column)) => write!(f, "{}:{line}:{column}: ", file.display())?,
            None => write!(f, "{}: ", file.display())?,
        }
        f.write_str(&self.message)?;
        if !self.snippet.is_empty() {
            write!(f, "\n{}", self.snippet)?;
        }
        Ok(())
    }
}

impl std::error::Error for SourceError {}

#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(
        "no stack named `{name}`: {} does not exist; stacks in this project: {}",
        display_path(file).display(),
        list(available)
    )]
    NotFound {
        name: String,
        file: PathBuf,
        available: Vec<String>,
    },
    #[error("cannot read {}: {source}", display_path(file).display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{}: `{}` cannot be a stack name: {reason}",
        display_path(file).display(),
        name.escape_debug()
    )]
    InvalidName {
        name: String,
        file: PathBuf,
        reason: String,
    },
    #[error(transparent)]
    Invalid(Box<SourceError>),
    #[error(transparent)]
    Project(#[from] ProjectError),
}

impl StackError {
    /// What to do next, for the line after the error.
    pub fn hint(&self) -> Option<String> {
        match self {
            StackError::NotFound {
                name,
                file,
                available,
            } => Some(match closest(name, available.iter().map(String::as_str)) {
                Some(close) => format!("did you mean `--stack {close}`?"),
                None if available.is_empty() => {
                    format!("create {}", display_path(file).display())
                }
                None => format!(
                    "pick one of {} with --stack NAME, or create {}",
                    list(available),
                    display_path(file).display()
                ),
            }),
            StackError::Read { .. } => Some("check that the file exists and is readable".into()),
            StackError::InvalidName { .. } => Some(
                "rename the stack file: the stack name is a label value, up to 63 letters, \
                 digits, '-', '_' or '.', starting and ending with a letter or digit"
                    .into(),
            ),
            StackError::Invalid(err) => err.hint.clone(),
            StackError::Project(err) => err.hint(),
        }
    }

    /// Line and column of the offending value, when the error has one.
    pub fn position(&self) -> Option<(usize, usize)> {
        match self {
            StackError::Invalid(err) => err.position(),
            _ => None,
        }
    }
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".into()
    } else {
        names.join(", ")
    }
}

/// `file` relative to the working directory when it lies below it: shorter to
/// read, and what the user would type.
fn display_path(file: &Path) -> PathBuf {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| file.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| file.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "stacks/dev.yaml";
    const ROOT: &str = "/projects/echo";
    const HOME: &str = "/home/dev";

    fn parse_ok(text: &str) -> StackConfig {
        match parse_with_home(
            "dev",
            Path::new(FILE),
            text,
            Path::new(ROOT),
            Some(Path::new(HOME)),
        ) {
            Ok(config) => config,
            Err(err) => panic!("expected {text:?} to parse, got:\n{err}"),
        }
    }

    fn parse_err(text: &str) -> StackError {
        match parse_with_home(
            "dev",
            Path::new(FILE),
            text,
            Path::new(ROOT),
            Some(Path::new(HOME)),
        ) {
            Ok(config) => panic!("expected {text:?} to fail, got {config:?}"),
            Err(err) => err,
        }
    }

    /// Asserts the error points at `line:column` and its message and hint
    /// mention each of `words`.
    fn assert_error(err: &StackError, line: usize, column: usize, words: &[&str]) {
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

    fn seed_with(f: impl FnOnce(&mut EchoConfig)) -> EchoConfig {
        let mut echo = seed_echo();
        f(&mut echo);
        echo
    }

    #[test]
    fn node_selector_and_tolerations_place_the_pods() {
        let config = parse_ok(
            "namespace: a\necho:\n  nodeSelector:\n    echo-iac.io/node: real\n  tolerations:\n    - {key: echo-iac.io/node, operator: Equal, value: real, effect: NoSchedule}\n",
        );
        assert_eq!(
            config.echoes[0].node_selector,
            BTreeMap::from([("echo-iac.io/node".to_string(), "real".to_string())])
        );
        assert_eq!(
            config.echoes[0].tolerations,
            [Toleration {
                key: Some("echo-iac.io/node".into()),
                operator: Some("Equal".into()),
                value: Some("real".into()),
                effect: Some("NoSchedule".into()),
            }]
        );
    }

    #[test]
    fn bad_toleration_effect_is_rejected_at_its_position() {
        let err = parse_err(
            "namespace: a\necho:\n  tolerations:\n    - {key: k, value: v, effect: Never}\n",
        );
        assert_error(&err, 4, 7, &["effect", "NoSchedule"]);
    }

    #[test]
    fn bad_node_selector_key_is_rejected() {
        let err = parse_err("namespace: a\necho:\n  nodeSelector:\n    bad key!: x\n");
        assert!(err.to_string().contains("label key"), "{err}");
    }

    #[test]
    fn app_label_overrides_the_selector_label_only() {
        let config = parse_ok("namespace: echo-dev\necho:\n  appLabel: echo-v2\n");
        assert_eq!(
            config.echoes,
            [seed_with(|echo| echo.app_label = "echo-v2".into())]
        );
    }

    #[test]
    fn invalid_app_label_is_rejected_at_its_position() {
        let err = parse_err("namespace: echo-dev\necho:\n  appLabel: no spaces\n");
        assert_error(&err, 3, 13, &["appLabel", "label value"]);
    }

    #[test]
    fn full_file_parses_to_expected_config() {
        let config = parse_ok(
            "kubeconfig: /etc/kube/config\n\
             context: kind-dev\n\
             namespace: echo-dev\n\
             createNamespace: true\n\
             echo:\n  \
               replicas: 1\n  \
               nodePort: 30008\n  \
               image: nginx:1.27-alpine\n  \
               message: Hello from dev! I am Pod\n",
        );
        assert_eq!(
            config,
            StackConfig {
                name: "dev".into(),
                file: PathBuf::from(FILE),
                kubeconfig: vec![PathBuf::from("/etc/kube/config")],
                context: Some("kind-dev".into()),
                namespace: "echo-dev".into(),
                create_namespace: true,
                backend: Backend::File(PathBuf::from("/projects/echo/state")),
                echoes: vec![seed_with(|echo| {
                    echo.replicas = 1;
                    echo.node_port = 30008;
                    echo.image = "nginx:1.27-alpine".into();
                    echo.message = "Hello from dev! I am Pod".into();
                })],
            }
        );
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
    fn bad_backend_is_rejected_at_its_position_with_what_is_allowed() {
        let err = parse_err("namespace: a\nbackend: s3://bucket\n");
        assert_error(&err, 2, 10, &["unknown backend scheme `s3://`"]);
        assert!(err.hint().unwrap().contains("kubernetes://<namespace>"));
        let err = parse_err("namespace: a\nbackend: kubernetes://Not_A_Namespace\n");
        assert_error(&err, 2, 10, &["does not name a namespace"]);
    }

    #[test]
    fn namespace_alone_gives_the_seed_service_with_defaults() {
        let config = parse_ok("namespace: echo-dev\n");
        assert!(config.kubeconfig.is_empty());
        assert_eq!(config.context, None);
        assert!(!config.create_namespace);
        assert_eq!(
            config.echoes,
            vec![EchoConfig {
                config_map_name: "nginx-echo-config".into(),
                deployment_name: "nginx-echo-nodeport".into(),
                service_name: "echo-nodeport-service".into(),
                app_label: "echo-nodeport".into(),
                replicas: 3,
                node_port: 30007,
                image: "nginx:alpine".into(),
                message: "Hello! I am Pod".into(),
                node_selector: BTreeMap::new(),
                tolerations: Vec::new(),
            }]
        );
    }

    #[test]
    fn empty_echo_mapping_gets_the_defaults() {
        for text in ["namespace: a\necho: {}\n", "namespace: a\necho:\n"] {
            assert_eq!(parse_ok(text).echoes, vec![seed_echo()], "{text:?}");
        }
    }

    #[test]
    fn echo_with_some_settings_defaults_the_rest() {
        let config = parse_ok("namespace: a\necho:\n  replicas: 0\n");
        assert_eq!(config.echoes, vec![seed_with(|echo| echo.replicas = 0)]);
    }

    #[test]
    fn echoes_resolve_names_per_entry_and_default_each_setting() {
        let config = parse_ok(
            "namespace: echo-dev\n\
             echoes:\n  \
               - name: web\n    \
                 nodePort: 30008\n  \
               - name: api\n    \
                 replicas: 2\n    \
                 nodePort: 30009\n    \
                 message: API here\n",
        );
        let web = EchoConfig {
            config_map_name: "web-config".into(),
            deployment_name: "web".into(),
            service_name: "web-service".into(),
            app_label: "web".into(),
            replicas: 3,
            node_port: 30008,
            image: "nginx:alpine".into(),
            message: "Hello! I am Pod".into(),
            node_selector: BTreeMap::new(),
            tolerations: Vec::new(),
        };
        let api = EchoConfig {
            config_map_name: "api-config".into(),
            deployment_name: "api".into(),
            service_name: "api-service".into(),
            app_label: "api".into(),
            replicas: 2,
            node_port: 30009,
            message: "API here".into(),
            ..web.clone()
        };
        assert_eq!(config.echoes, vec![web, api]);
    }

    #[test]
    fn kubeconfig_tilde_expands_to_home() {
        let config = parse_ok("kubeconfig: ~/.kube/config\nnamespace: a\n");
        assert_eq!(
            config.kubeconfig,
            vec![PathBuf::from("/home/dev/.kube/config")]
        );
    }

    #[test]
    fn kubeconfig_relative_path_resolves_against_the_project_folder() {
        let config = parse_ok("kubeconfig: .cluster/kubeconfig\nnamespace: a\n");
        assert_eq!(
            config.kubeconfig,
            vec![PathBuf::from("/projects/echo/.cluster/kubeconfig")]
        );
    }

    #[test]
    fn kubeconfig_absolute_path_is_kept() {
        let config = parse_ok("kubeconfig: /etc/kubeconfig\nnamespace: a\n");
        assert_eq!(config.kubeconfig, vec![PathBuf::from("/etc/kubeconfig")]);
    }

    #[test]
    fn kubeconfig_may_be_a_list_resolved_item_by_item() {
        let config =
            parse_ok("kubeconfig:\n  - ~/.kube/config\n  - .cluster/kubeconfig\nnamespace: a\n");
        assert_eq!(
            config.kubeconfig,
            vec![
                PathBuf::from("/home/dev/.kube/config"),
                PathBuf::from("/projects/echo/.cluster/kubeconfig")
            ]
        );
    }

    #[test]
    fn kubeconfig_list_item_errors_point_at_the_item() {
        let err = parse_err("namespace: a\nkubeconfig:\n  - /etc/k\n  - ~bob/config\n");
        assert_error(&err, 4, 5, &["only `~` and `~/...`"]);
    }

    #[test]
    fn kubeconfig_empty_list_is_rejected() {
        let err = parse_err("namespace: a\nkubeconfig: []\n");
        assert!(err.to_string().contains("empty list"), "{err}");
    }

    #[test]
    fn kubeconfig_tilde_user_is_rejected() {
        let err = parse_err("namespace: a\nkubeconfig: ~bob/config\n");
        assert_error(&err, 2, 13, &["only `~` and `~/...`", "full path"]);
    }

    #[test]
    fn kubeconfig_tilde_without_home_is_rejected() {
        let err = parse_with_home(
            "dev",
            Path::new(FILE),
            "namespace: a\nkubeconfig: ~/.kube/config\n",
            Path::new(ROOT),
            None,
        )
        .unwrap_err();
        assert_error(&err, 2, 13, &["cannot be expanded", "HOME"]);
    }

    #[test]
    fn empty_context_is_rejected() {
        let err = parse_err("namespace: a\ncontext: ''\n");
        assert_error(&err, 2, 10, &["`context` is empty", "current context"]);
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
    fn unknown_key_names_position_and_allowed_keys() {
        let err = parse_err("namespace: a\necho:\n  replicaz: 3\n");
        assert_error(
            &err,
            3,
            3,
            &[
                "unknown key `replicaz`",
                "replicas, nodePort, image, message",
                "did you mean `replicas`?",
            ],
        );
        assert!(
            err.to_string()
                .contains("3 |   replicaz: 3\n  |   ^^^^^^^^ unknown key")
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
    fn echo_setting_at_the_top_level_says_where_it_belongs() {
        let err = parse_err("namespace: a\nnodePort: 30008\n");
        assert_error(&err, 2, 1, &["unknown key `nodePort`", "under `echo:`"]);
    }

    #[test]
    fn name_under_echo_is_an_unknown_key() {
        let err = parse_err("namespace: a\necho:\n  name: web\n");
        assert_error(&err, 3, 3, &["unknown key `name`", "echoes:"]);
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
    fn wrong_type_for_replicas_names_the_key_and_value() {
        let err = parse_err("namespace: a\necho:\n  replicas: three\n");
        assert_error(
            &err,
            3,
            13,
            &[
                "`replicas` must be a whole number (0-1000), found `three`",
                "replicas: 3",
            ],
        );
    }

    #[test]
    fn wrong_type_for_create_namespace_names_the_key() {
        let err = parse_err("namespace: a\ncreateNamespace: maybe\n");
        assert_error(&err, 2, 18, &["`createNamespace` must be true or false"]);
    }

    #[test]
    fn scalar_where_echo_mapping_belongs_is_an_error() {
        let err = parse_err("namespace: a\necho: 5\n");
        assert_error(&err, 2, 7, &["`echo` must be a mapping"]);
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
    fn node_port_outside_the_range_is_rejected_with_the_range() {
        for port in ["80", "29999", "32768", "-1"] {
            let err = parse_err(&format!("namespace: a\necho:\n  nodePort: {port}\n"));
            assert_error(
                &err,
                3,
                13,
                &[
                    &format!("node port {port} is outside the allowed range 30000-32767"),
                    "node ports must be between 30000 and 32767; pick a free one",
                ],
            );
        }
    }

    #[test]
    fn node_port_range_ends_are_accepted() {
        for port in [30000, 32767] {
            let config = parse_ok(&format!("namespace: a\necho:\n  nodePort: {port}\n"));
            assert_eq!(config.echoes[0].node_port, port);
        }
    }

    #[test]
    fn duplicate_node_ports_name_both_places() {
        let err = parse_err(
            "namespace: a\n\
             echoes:\n  \
               - name: web\n    \
                 nodePort: 30008\n  \
               - name: api\n    \
                 nodePort: 30008\n",
        );
        assert_error(
            &err,
            6,
            15,
            &[
                "node port 30008 is used by both `web` (line 3) and `api` (line 5)",
                "first used here",
                "used again here",
                "own node port",
            ],
        );
        assert!(err.to_string().contains("4 |     nodePort: 30008"));
    }

    #[test]
    fn echoes_sharing_the_default_node_port_clash() {
        let err = parse_err("namespace: a\nechoes:\n  - name: web\n  - name: api\n");
        assert_error(
            &err,
            4,
            11,
            &["node port 30007 is used by both `web`", "default 30007"],
        );
    }

    #[test]
    fn replicas_outside_the_range_are_rejected() {
        for replicas in ["-1", "1001"] {
            let err = parse_err(&format!("namespace: a\necho:\n  replicas: {replicas}\n"));
            assert_error(
                &err,
                3,
                13,
                &[&format!("`replicas` is {replicas}"), "between 0 and 1000"],
            );
        }
    }

    #[test]
    fn echo_and_echoes_together_are_rejected() {
        let err = parse_err("namespace: a\necho:\n  replicas: 1\nechoes:\n  - name: web\n");
        assert_error(
            &err,
            4,
            1,
            &[
                "`echo:` and `echoes:` cannot both be set",
                "`echo:` is set here",
                "not both",
            ],
        );
    }

    #[test]
    fn empty_echoes_is_rejected() {
        let err = parse_err("namespace: a\nechoes: []\n");
        assert_error(&err, 2, 9, &["`echoes:` is empty", "- name: web"]);
    }

    #[test]
    fn echoes_entry_without_a_name_is_rejected() {
        let err = parse_err("namespace: a\nechoes:\n  - nodePort: 30008\n");
        let (line, _) = err.position().expect("a position");
        assert_eq!(line, 3, "{err}");
        assert!(err.to_string().contains("has no `name`"), "{err}");
        assert!(err.hint().unwrap().contains("name: <name>"));
    }

    #[test]
    fn echoes_entry_with_an_empty_name_names_the_key() {
        let err = parse_err("namespace: a\nechoes:\n  - name:\n    nodePort: 30008\n");
        assert_error(
            &err,
            3,
            9,
            &[
                "`name` must be a single text value, found nothing",
                "name: web",
            ],
        );
    }

    #[test]
    fn value_on_the_following_lines_is_checked_against_its_key() {
        let err = parse_err("namespace: a\necho:\n  image:\n    - nginx\n");
        assert_error(
            &err,
            4,
            5,
            &["`image` must be a single text value, found a list"],
        );
        let err = parse_err("namespace: a\nechoes:\n  name: web\n");
        assert_error(
            &err,
            3,
            3,
            &["`echoes` must be a list", "found a mapping", "- name:"],
        );
    }

    #[test]
    fn a_list_at_the_top_is_not_a_stack_file() {
        let err = parse_err("- namespace: a\n");
        assert_error(&err, 1, 1, &["must be a mapping of settings, found a list"]);
    }

    #[test]
    fn duplicate_echo_names_are_rejected() {
        let err = parse_err(
            "namespace: a\n\
             echoes:\n  \
               - name: web\n    \
                 nodePort: 30008\n  \
               - name: web\n    \
                 nodePort: 30009\n",
        );
        assert_error(
            &err,
            5,
            11,
            &["echo name `web` is used twice (lines 3 and 5)"],
        );
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
    fn echo_name_must_be_a_dns_1035_label_short_enough_for_its_service() {
        let long = "a".repeat(56);
        for (name, words) in [
            ("1web", "must start with a lowercase letter"),
            ("Web", "uppercase"),
            (long.as_str(), "at most 55"),
        ] {
            let err = parse_err(&format!("namespace: a\nechoes:\n  - name: {name}\n"));
            assert_error(&err, 3, 11, &["is not a valid name", words, "-service"]);
        }
        let longest = "a".repeat(55);
        let config = parse_ok(&format!("namespace: a\nechoes:\n  - name: {longest}\n"));
        assert_eq!(config.echoes[0].service_name.len(), 63);
    }

    #[test]
    fn stack_name_must_be_a_label_value() {
        for name in ["bad name", "-dev", "dev/../prod", &"d".repeat(64)] {
            let err = parse_with_home(
                name,
                Path::new(FILE),
                "namespace: a\n",
                Path::new(ROOT),
                None,
            )
            .unwrap_err();
            assert!(
                matches!(err, StackError::InvalidName { .. }),
                "{name}: {err}"
            );
            assert!(err.to_string().contains("cannot be a stack name"), "{err}");
            assert!(err.hint().unwrap().contains("label value"));
        }
        let config = parse_with_home(
            "Prod_2.eu",
            Path::new(FILE),
            "namespace: a\n",
            Path::new(ROOT),
            None,
        )
        .unwrap();
        assert_eq!(config.name, "Prod_2.eu");
    }

    #[test]
    fn message_characters_nginx_cannot_embed_are_rejected_by_name() {
        for (c, why) in [
            ('"', "end the quoted string"),
            ('\\', "escape"),
            ('$', "variable"),
            ('{', "braces"),
            ('}', "braces"),
            (';', "end of a directive"),
        ] {
            let value = format!("Hi {c} there");
            let quoted = format!("'{}'", value.replace('\'', "''"));
            let err = parse_err(&format!("namespace: a\necho:\n  message: {quoted}\n"));
            // The value starts at column 12 after its opening quote; `c` is
            // its fourth character.
            assert_error(
                &err,
                3,
                16,
                &[&format!("cannot contain `{c}` (character 4)"), why],
            );
        }
    }

    #[test]
    fn message_with_a_line_break_is_rejected() {
        // A block scalar's position is that of its first content line.
        let err = parse_err("namespace: a\necho:\n  message: |\n    one\n    two\n");
        assert_error(&err, 4, 5, &["cannot contain a line break", "single line"]);

        let err = parse_err("namespace: a\necho:\n  message: \"tab\\there\"\n");
        assert_error(&err, 3, 12, &["cannot contain a tab", "single line"]);
    }

    #[test]
    fn message_too_long_is_rejected() {
        let err = parse_err(&format!(
            "namespace: a\necho:\n  message: {}\n",
            "x".repeat(201)
        ));
        assert_error(&err, 3, 12, &["201 characters", "at most 200"]);
        let ok = parse_ok(&format!(
            "namespace: a\necho:\n  message: {}\n",
            "x".repeat(200)
        ));
        assert_eq!(ok.echoes[0].message.len(), 200);
    }

    #[test]
    fn empty_message_is_rejected() {
        let err = parse_err("namespace: a\necho:\n  message: ''\n");
        assert_error(&err, 3, 12, &["`message` is empty"]);
    }

    #[test]
    fn image_with_whitespace_or_empty_is_rejected() {
        let err = parse_err("namespace: a\necho:\n  image: 'nginx alpine'\n");
        assert_error(
            &err,
            3,
            10,
            &["`image` cannot contain a space", "nginx:alpine"],
        );
        let err = parse_err("namespace: a\necho:\n  image: ''\n");
        assert_error(&err, 3, 10, &["`image` is empty"]);
    }

    #[test]
    fn snippet_shows_the_line_before_and_underlines_the_value() {
        let err = parse_err("namespace: a\necho:\n  replicas: 1\n  nodePort: 80\n");
        let shown = err.to_string();
        let expected = "stacks/dev.yaml:4:13: node port 80 is outside the allowed range \
                        30000-32767\n  \
                        |\n\
                        3 |   replicas: 1\n\
                        4 |   nodePort: 80\n  \
                        |             ^^ not in 30000-32767";
        assert_eq!(shown, expected);
    }

    #[test]
    fn shipped_stacks_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let project = Project::at(root).unwrap();
        let names = project.stack_names().unwrap();
        for name in ["dev", "staging", "prod", "local"] {
            assert!(
                names.iter().any(|n| n == name),
                "stacks/{name}.yaml missing"
            );
        }
        let mut ports = Vec::new();
        for name in &names {
            let config = load(&project, name).unwrap_or_else(|err| panic!("{err}"));
            assert_eq!(&config.name, name);
            ports.extend(config.echoes.iter().map(|echo| echo.node_port));
        }
        let local = load(&project, "local").unwrap();
        assert_eq!(local.kubeconfig, vec![root.join(".cluster/kubeconfig")]);
        assert_eq!(local.context.as_deref(), Some("echo-iac-local"));
        assert_eq!(local.namespace, "echo-local");
        assert!(local.create_namespace);
        // The seed's stack, placed on the real node.
        assert_eq!(local.echoes.len(), 1);
        assert_eq!(
            local.echoes[0]
                .node_selector
                .get("echo-iac.io/node")
                .map(String::as_str),
            Some("real")
        );
        assert_eq!(
            EchoConfig {
                node_selector: BTreeMap::new(),
                tolerations: Vec::new(),
                ..local.echoes[0].clone()
            },
            seed_echo()
        );
        let prod = load(&project, "prod").unwrap();
        assert_eq!(prod.echoes[0].replicas, 3);
        // dev, staging and prod can share one cluster.
        let shared: Vec<i32> = ["dev", "staging", "prod"]
            .iter()
            .flat_map(|name| load(&project, name).unwrap().echoes)
            .map(|echo| echo.node_port)
            .collect();
        let mut distinct = shared.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), shared.len(), "{shared:?}");
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
        let err = load(&project, "stagin").unwrap_err();
        assert!(matches!(err, StackError::NotFound { .. }), "{err}");
        assert!(err.to_string().contains("no stack named `stagin`"), "{err}");
        assert!(err.to_string().contains("dev, prod"), "{err}");
        assert!(err.hint().unwrap().contains("dev, prod"));

        let err = load(&project, "dve").unwrap_err();
        assert_eq!(err.hint().as_deref(), Some("did you mean `--stack dev`?"));

        let config = load(&project, "prod").unwrap();
        assert_eq!(config.file, project.stack_file("prod"));
    }

    #[test]
    fn load_rejects_a_stack_name_that_is_a_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("stacks")).unwrap();
        let project = Project::at(dir.path()).unwrap();
        let err = load(&project, "../secrets").unwrap_err();
        assert!(matches!(err, StackError::InvalidName { .. }), "{err}");
    }

    #[test]
    fn closest_matches_case_and_separators_and_small_typos() {
        let keys = ["replicas", "nodePort", "image"];
        assert_eq!(closest("node_port", keys.into_iter()), Some("nodePort"));
        assert_eq!(closest("NODEPORT", keys.into_iter()), Some("nodePort"));
        assert_eq!(closest("imgae", keys.into_iter()), Some("image"));
        assert_eq!(closest("colour", keys.into_iter()), None);
    }
}
