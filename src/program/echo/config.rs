//! The echo program's section of a stack file: `echo:` (one service with the
//! seed's names) or `echoes:` (several, each named), their defaults, their
//! limits and their checks. The stack module reads the file and hands these
//! two keys over through [`ProgramConfig`]; everything about them is here.

use std::collections::{BTreeMap, HashMap};
use std::ops::RangeInclusive;

use serde::Deserialize;
use serde::de::MapAccess;
use serde_saphyr::{Location, Spanned};

use echo_iac_runner::stack::{
    KeyHelp, MAX_LABEL_CHARS, Mark, ProgramConfig, Source, StackError, ValueKinds, Wording,
    decimal_spelling, dns_label_problem, label_key_problem, label_value_problem, show_char,
};
use echo_iac_runner::suggest::closest;

/// A stack whose program is the echo stack.
#[cfg(test)]
pub type StackConfig = echo_iac_runner::stack::Stack<EchoSection>;

/// The echo section, validated: one entry for `echo:` (or for neither key),
/// one per item of `echoes:`.
#[derive(Clone, Debug, PartialEq)]
pub struct EchoSection {
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
    /// How the Service is reached (`spec.type`).
    pub service_type: ServiceType,
    /// `Some` exactly when the service type has node ports.
    pub node_port: Option<i32>,
    pub image: String,
    /// The image of `echo-iac test`'s Pod, which runs `curl` as its
    /// entrypoint.
    pub test_image: String,
    pub message: String,
    /// Node labels the pods must match (`spec.template.spec.nodeSelector`).
    pub node_selector: BTreeMap<String, String>,
    /// Taints the pods tolerate (`spec.template.spec.tolerations`).
    pub tolerations: Vec<Toleration>,
}

/// How an echo service is reached: a Service's `spec.type`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ServiceType {
    /// Inside the cluster only, with no node port.
    ClusterIp,
    /// Also on a port of every node: the seed's.
    #[default]
    NodePort,
    /// Through an external load balancer, which forwards to a node port.
    LoadBalancer,
}

impl ServiceType {
    const ALL: [ServiceType; 3] = [
        ServiceType::ClusterIp,
        ServiceType::NodePort,
        ServiceType::LoadBalancer,
    ];

    /// The name Kubernetes and the stack file use.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIp => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }

    /// Whether the Service has a node port (`spec.ports[].nodePort`).
    pub fn has_node_port(self) -> bool {
        !matches!(self, ServiceType::ClusterIp)
    }
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
/// The curl image the local real node imports, by the name that stays when
/// Debian's curl version (its other tag) changes: tests/cluster/node-up.sh.
pub const DEFAULT_TEST_IMAGE: &str = "localhost/echo-iac/curl:1";
pub const DEFAULT_MESSAGE: &str = "Hello! I am Pod";

/// The `echo:` section `stack init` writes: the seed's service with every
/// setting at its default, the optional ones commented out.
pub fn new_stack_section() -> String {
    let (ports, replicas) = (NODE_PORT_RANGE, REPLICAS_RANGE);
    format!(
        "\
# The echo service: nginx pods that answer every request with the message
# and their own address, the ConfigMap they read it from, and a Service in
# front. For several services, write `echoes:` instead: a list of the same
# settings, each entry with a `name` that its objects are named after.
echo:
  # How many pods answer ({}-{}).
  replicas: {DEFAULT_REPLICAS}
  # How the Service is reached: ClusterIP (inside the cluster only),
  # NodePort (also on a port of every node) or LoadBalancer (through the
  # cluster's load balancer, and a node port).
  serviceType: {}
  # The port on every node ({}-{}): one port serves one Service in the
  # whole cluster, so give each stack on a cluster its own.
  nodePort: {DEFAULT_NODE_PORT}
  # The image that serves (nginx, configured by the ConfigMap).
  image: {DEFAULT_IMAGE}
  # What each pod answers, before its address (at most {MAX_MESSAGE_CHARS} characters).
  message: {DEFAULT_MESSAGE}
  # The image `echo-iac test` runs curl from, inside the cluster.
  # testImage: {DEFAULT_TEST_IMAGE}
  # The `app` label the Service selects the pods by. The Deployment's
  # selector cannot change, so changing it replaces the Deployment.
  # appLabel: {SEED_APP_LABEL}
  # Node labels the pods must be scheduled on, and the taints they tolerate.
  # nodeSelector:
  #   kubernetes.io/os: linux
  # tolerations:
  #   - key: dedicated
  #     operator: Equal
  #     value: echo
  #     effect: NoSchedule
",
        replicas.start(),
        replicas.end(),
        ServiceType::NodePort.as_str(),
        ports.start(),
        ports.end(),
    )
}

/// Kubernetes' default `--service-node-port-range`.
pub const NODE_PORT_RANGE: RangeInclusive<i64> = 30000..=32767;
/// Far above what an echo service needs; a typo like `replicas: 30007` should
/// not reach the cluster as a request for thirty thousand pods.
pub const REPLICAS_RANGE: RangeInclusive<i64> = 0..=1000;
/// The message is one line of an HTTP response body.
pub const MAX_MESSAGE_CHARS: usize = 200;

/// Longest echoes `name`: the Service `<name>-service` must stay within the
/// 63 characters of a DNS label.
const MAX_ECHO_NAME_CHARS: usize = MAX_LABEL_CHARS - "-service".len();

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
    "serviceType",
    "image",
    "testImage",
    "message",
    "appLabel",
    "nodeSelector",
    "tolerations",
];

/// `echo:` and `echoes:` as written, before validation.
#[derive(Default)]
pub struct RawEchoSection {
    echo: Option<Spanned<RawEcho>>,
    echoes: Option<Spanned<Vec<Spanned<RawNamedEcho>>>>,
}

// Two echo structs rather than one with `#[serde(flatten)]`: flatten loses
// both the positions and `deny_unknown_fields`.

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
    service_type: Option<Spanned<String>>,
    test_image: Option<Spanned<String>>,
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
    service_type: Option<Spanned<String>>,
    test_image: Option<Spanned<String>>,
}

impl RawNamedEcho {
    fn split(self) -> (Spanned<String>, RawEcho) {
        let settings = RawEcho {
            replicas: self.replicas,
            node_port: self.node_port,
            image: self.image,
            test_image: self.test_image,
            message: self.message,
            app_label: self.app_label,
            node_selector: self.node_selector,
            tolerations: self.tolerations,
            service_type: self.service_type,
        };
        (self.name, settings)
    }
}

impl ProgramConfig for RawEchoSection {
    const KEYS: &'static [&'static str] = &["echo", "echoes"];
    type Validated = EchoSection;

    fn read_key<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<(), A::Error> {
        match key {
            "echo" => self.echo = map.next_value()?,
            "echoes" => self.echoes = map.next_value()?,
            other => return Err(serde::de::Error::unknown_field(other, Self::KEYS)),
        }
        Ok(())
    }

    fn validate(self, source: &Source<'_>) -> Result<EchoSection, StackError> {
        Ok(EchoSection {
            echoes: echoes(source, self.echo, self.echoes)?,
        })
    }

    fn key_help(key: &str) -> Option<KeyHelp> {
        let range = |range: RangeInclusive<i64>| format!("{}-{}", range.start(), range.end());
        Some(match key {
            "replicas" => KeyHelp::example(
                key,
                format!("a whole number ({})", range(REPLICAS_RANGE)),
                &DEFAULT_REPLICAS.to_string(),
            ),
            "nodePort" => KeyHelp::example(
                key,
                format!("a whole number ({})", range(NODE_PORT_RANGE)),
                &DEFAULT_NODE_PORT.to_string(),
            ),
            "echo" => KeyHelp {
                takes: "a mapping of settings (replicas, nodePort, image, message, appLabel)"
                    .into(),
                hint: format!(
                    "put the settings on the lines below `echo:`, indented, e.g. \
                     `  replicas: {DEFAULT_REPLICAS}`"
                ),
            },
            "echoes" => KeyHelp {
                takes: "a list of mappings, each with a name".into(),
                hint: "put one entry per line below `echoes:`, indented, each starting with \
                       `- name: ...`"
                    .into(),
            },
            "nodeSelector" => KeyHelp::example(
                key,
                "a mapping of node labels, e.g. {echo-iac.io/node: real}",
                "{echo-iac.io/node: real}",
            ),
            "tolerations" => KeyHelp::example(
                key,
                "a list of tolerations, each with key, operator, value, effect",
                "...",
            ),
            "serviceType" => KeyHelp::example(
                key,
                "one of ClusterIP, NodePort, LoadBalancer",
                ServiceType::ClusterIp.as_str(),
            ),
            "image" => KeyHelp::example(key, "a single text value", DEFAULT_IMAGE),
            "testImage" => KeyHelp::example(key, "a single text value", DEFAULT_TEST_IMAGE),
            "message" => KeyHelp::example(key, "a single text value", DEFAULT_MESSAGE),
            "name" => KeyHelp::example(key, "a single text value", "web"),
            "appLabel" => KeyHelp::example(key, "a single text value", "echo-v2"),
            _ => return None,
        })
    }

    fn unknown_key_hint(field: &str, top_level: bool) -> Option<String> {
        if top_level && ECHO_KEYS.contains(&field) {
            return Some(format!(
                "`{field}` is an echo setting: indent it under `echo:`"
            ));
        }
        (field == "name").then(|| {
            "only entries of `echoes:` have a name; use `echoes:` with `- name: ...` to name \
             the service"
                .into()
        })
    }

    fn missing_key(field: &str) -> Option<Wording> {
        (field == "name").then(|| Wording {
            message: "this entry of `echoes:` has no `name`".into(),
            label: "entry without a name".into(),
            hint: "add `name: <name>` to the entry; it names the service's objects".into(),
        })
    }

    fn value_kinds() -> ValueKinds {
        ValueKinds {
            numbers: &["replicas", "nodePort"],
            booleans: &[],
            others: &["echo a mapping", "echoes a list of mappings"],
        }
    }
}

/// One [`EchoConfig`] per service: `echo:`'s, each of `echoes:`, or the
/// seed's when neither is set; names and node ports unique across them.
fn echoes(
    src: &Source<'_>,
    echo: Option<Spanned<RawEcho>>,
    echoes: Option<Spanned<Vec<Spanned<RawNamedEcho>>>>,
) -> Result<Vec<EchoConfig>, StackError> {
    let entries: Vec<(Option<Spanned<String>>, RawEcho, Location)> = match (echo, echoes) {
        (Some(echo), Some(echoes)) => {
            let second = src.key_mark(echoes.referenced, "echoes", "and here", true);
            return Err(src.error(
                (second.line > 0).then_some((second.line, second.column)),
                "`echo:` and `echoes:` cannot both be set".into(),
                vec![
                    src.key_mark(echo.referenced, "echo", "`echo:` is set here", false),
                    second,
                ],
                Some("use `echo:` for a single service or `echoes:` for several, not both".into()),
            ));
        }
        (Some(echo), None) => vec![(None, echo.value, echo.referenced)],
        (None, Some(echoes)) if echoes.value.is_empty() => {
            return Err(src.at(
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
                check_echo_name(src, name)?;
                if let Some(first) = names.insert(name.value.clone(), name.referenced) {
                    return Err(src.error(
                        src.position(name.referenced),
                        format!(
                            "echo name `{}` is used twice (lines {} and {})",
                            name.value,
                            first.line(),
                            name.referenced.line()
                        ),
                        vec![
                            src.mark(first, "first used here", false),
                            src.mark(name.referenced, "used again here", true),
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
        let echo = fill_in(src, echo, &settings)?;
        let Some(port) = echo.node_port.map(i64::from) else {
            resolved.push(echo);
            continue;
        };

        let (port_at, port_label) = match (&settings.node_port, &name) {
            (Some(port), _) => (port.referenced, "node port".to_string()),
            (None, Some(name)) => (
                name.referenced,
                format!("no nodePort, so the default {DEFAULT_NODE_PORT}"),
            ),
            (None, None) => (at, format!("the default {DEFAULT_NODE_PORT}")),
        };
        if let Some((first_at, first_who)) = ports.get(&port) {
            return Err(src.error(
                src.position(port_at),
                format!("node port {port} is used by both {first_who} and {who}"),
                vec![
                    src.mark(*first_at, "first used here", false),
                    src.mark(port_at, &format!("{port_label}: used again here"), true),
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

fn check_echo_name(src: &Source<'_>, name: &Spanned<String>) -> Result<(), StackError> {
    match dns_label_problem(&name.value, MAX_ECHO_NAME_CHARS, true) {
        None => Ok(()),
        Some(problem) => Err(src.at(
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
fn fill_in(
    src: &Source<'_>,
    mut echo: EchoConfig,
    raw: &RawEcho,
) -> Result<EchoConfig, StackError> {
    for (key, number) in [("replicas", &raw.replicas), ("nodePort", &raw.node_port)] {
        if let Some(number) = number {
            check_decimal(src, key, number)?;
        }
    }
    if let Some(replicas) = &raw.replicas {
        if !REPLICAS_RANGE.contains(&replicas.value) {
            return Err(src.at(
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
    if let Some(kind) = &raw.service_type {
        echo.service_type = service_type(src, kind)?;
        if !echo.service_type.has_node_port() {
            echo.node_port = None;
        }
    }
    if let Some(port) = &raw.node_port {
        if !echo.service_type.has_node_port() {
            let kind = echo.service_type.as_str();
            let marks = [
                Some(src.mark(port.referenced, &format!("not with {kind}"), true)),
                raw.service_type
                    .as_ref()
                    .map(|at| src.mark(at.referenced, "no node port", false)),
            ];
            return Err(src.error(
                src.position(port.referenced),
                format!("`nodePort` is set, but a {kind} service has no node port"),
                marks.into_iter().flatten().collect(),
                Some(
                    "remove `nodePort`, or set `serviceType: NodePort` or \
                     `serviceType: LoadBalancer` to reach the service on a node port"
                        .into(),
                ),
            ));
        }
        if !NODE_PORT_RANGE.contains(&port.value) {
            return Err(src.at(
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
        echo.node_port = Some(port.value as i32);
    }
    if let Some(image) = &raw.image {
        check_image(src, image, "image", "nginx:alpine")?;
        echo.image = image.value.clone();
    }
    if let Some(image) = &raw.test_image {
        check_image(src, image, "testImage", "curlimages/curl:8.11.1")?;
        echo.test_image = image.value.clone();
    }
    if let Some(message) = &raw.message {
        check_message(src, message)?;
        echo.message = message.value.clone();
    }
    if let Some(label) = &raw.app_label {
        if let Some(problem) = label_value_problem(&label.value) {
            return Err(src.at(
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
            return Err(src.at(
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
                        format!(
                            "node selector value {value:?} (for {key}) is not a label value: {p}"
                        )
                    })
                });
            if let Some(problem) = problem {
                return Err(src.at(
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
                return Err(src.at(
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

/// Whole numbers are written in plain decimal (see [`decimal_spelling`]):
/// YAML also reads `0x10`, `1_000` and `"3"` as numbers, and the file
/// should say what the cluster gets.
fn check_decimal(src: &Source<'_>, key: &str, number: &Spanned<i64>) -> Result<(), StackError> {
    let Some(written) = src.written(number.referenced) else {
        return Ok(());
    };
    if decimal_spelling(written).is_none() {
        return Ok(());
    }
    Err(src.at(
        number,
        format!(
            "`{key}` is written `{written}`; whole numbers in a stack file are plain decimal digits"
        ),
        "not plain decimal",
        &format!(
            "write `{key}: {}` (no quotes, prefixes, underscores, signs or leading zeros)",
            number.value
        ),
    ))
}

fn check_image(
    src: &Source<'_>,
    image: &Spanned<String>,
    key: &str,
    example: &str,
) -> Result<(), StackError> {
    let problem = if image.value.is_empty() {
        Some(format!("`{key}` is empty"))
    } else {
        image
            .value
            .chars()
            .find(|c| c.is_whitespace() || c.is_control())
            .map(|c| format!("`{key}` cannot contain {}", show_char(c)))
    };
    match problem {
        None => Ok(()),
        Some(problem) => Err(src.at(
            image,
            problem,
            "not an image reference",
            &format!(
                "give an image reference such as `{example}` or \
                 `registry.example.com/team/echo:1.2`"
            ),
        )),
    }
}

fn check_message(src: &Source<'_>, message: &Spanned<String>) -> Result<(), StackError> {
    const HINT: &str = "keep the message to one line of plain text without \" \\ $ { } ; \
                        e.g. `message: Hello from dev! I am Pod`";
    let text = &message.value;
    if text.is_empty() {
        return Err(src.at(message, "`message` is empty".into(), "empty", HINT));
    }
    let count = text.chars().count();
    if count > MAX_MESSAGE_CHARS {
        return Err(src.at(
            message,
            format!("`message` has {count} characters; at most {MAX_MESSAGE_CHARS} are allowed"),
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
        let (position, mark) = match src.char_position(message, index) {
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
                src.position(message.referenced),
                src.mark(message.referenced, "in this message", true),
            ),
        };
        return Err(src.error(
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

pub fn seed_echo() -> EchoConfig {
    EchoConfig {
        config_map_name: SEED_CONFIG_MAP.into(),
        deployment_name: SEED_DEPLOYMENT.into(),
        service_name: SEED_SERVICE.into(),
        app_label: SEED_APP_LABEL.into(),
        replicas: DEFAULT_REPLICAS,
        service_type: ServiceType::NodePort,
        node_port: Some(DEFAULT_NODE_PORT),
        image: DEFAULT_IMAGE.into(),
        test_image: DEFAULT_TEST_IMAGE.into(),
        message: DEFAULT_MESSAGE.into(),
        node_selector: BTreeMap::new(),
        tolerations: Vec::new(),
    }
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

/// `serviceType:` as one of Kubernetes' names for it, spelled exactly.
fn service_type(src: &Source<'_>, kind: &Spanned<String>) -> Result<ServiceType, StackError> {
    if let Some(found) = ServiceType::ALL
        .into_iter()
        .find(|t| t.as_str() == kind.value)
    {
        return Ok(found);
    }
    let names = ServiceType::ALL.map(ServiceType::as_str);
    let hint = match closest(&kind.value, names.into_iter()) {
        Some(close) => {
            format!("did you mean `{close}`? Service types are spelled as Kubernetes does")
        }
        None => "use ClusterIP (inside the cluster only), NodePort (also on a port of every \
                 node; the default) or LoadBalancer (through an external load balancer, with a \
                 node port)"
            .into(),
    };
    Err(src.at(
        kind,
        format!(
            "`serviceType` is `{}`; it must be one of {}",
            kind.value.escape_debug(),
            names.join(", ")
        ),
        "not a service type",
        &hint,
    ))
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
    if let Some(key) = toleration.key.as_deref().filter(|key| !key.is_empty())
        && let Some(problem) = label_key_problem(key)
    {
        return Some(format!(
            "toleration key {key:?} is not a label key: {problem}"
        ));
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

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use echo_iac_engine::state::Backend;
    use echo_iac_runner::project::Project;
    use echo_iac_runner::stack::load;
    use echo_iac_runner::stack::testing::{self, FILE, assert_error};

    fn parse_ok(text: &str) -> StackConfig {
        testing::parse_ok_as::<RawEchoSection>(text)
    }

    fn parse_err(text: &str) -> StackError {
        testing::parse_err_as::<RawEchoSection>(text)
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
            config.program.echoes[0].node_selector,
            BTreeMap::from([("echo-iac.io/node".to_string(), "real".to_string())])
        );
        assert_eq!(
            config.program.echoes[0].tolerations,
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
            config.program.echoes,
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
            echo_iac_runner::stack::Stack {
                name: "dev".into(),
                file: PathBuf::from(FILE),
                kubeconfig: vec![PathBuf::from("/etc/kube/config")],
                context: Some("kind-dev".into()),
                namespace: "echo-dev".into(),
                create_namespace: true,
                backend: Backend::File(PathBuf::from("/projects/echo/state")),
                history_limit: 10,
                protections: echo_iac_engine::Protections::default(),
                manifests: Vec::new(),
                program: EchoSection {
                    echoes: vec![seed_with(|echo| {
                        echo.replicas = 1;
                        echo.node_port = Some(30008);
                        echo.image = "nginx:1.27-alpine".into();
                        echo.message = "Hello from dev! I am Pod".into();
                    })],
                },
            }
        );
    }

    #[test]
    fn namespace_alone_gives_the_seed_service_with_defaults() {
        let config = parse_ok("namespace: echo-dev\n");
        assert!(config.kubeconfig.is_empty());
        assert_eq!(config.context, None);
        assert!(!config.create_namespace);
        assert_eq!(
            config.program.echoes,
            vec![EchoConfig {
                config_map_name: "nginx-echo-config".into(),
                deployment_name: "nginx-echo-nodeport".into(),
                service_name: "echo-nodeport-service".into(),
                app_label: "echo-nodeport".into(),
                replicas: 3,
                service_type: ServiceType::NodePort,
                node_port: Some(30007),
                image: "nginx:alpine".into(),
                test_image: DEFAULT_TEST_IMAGE.into(),
                message: "Hello! I am Pod".into(),
                node_selector: BTreeMap::new(),
                tolerations: Vec::new(),
            }]
        );
    }

    #[test]
    fn empty_echo_mapping_gets_the_defaults() {
        for text in ["namespace: a\necho: {}\n", "namespace: a\necho:\n"] {
            assert_eq!(parse_ok(text).program.echoes, vec![seed_echo()], "{text:?}");
        }
    }

    #[test]
    fn echo_with_some_settings_defaults_the_rest() {
        let config = parse_ok("namespace: a\necho:\n  replicas: 0\n");
        assert_eq!(
            config.program.echoes,
            vec![seed_with(|echo| echo.replicas = 0)]
        );
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
            service_type: ServiceType::NodePort,
            node_port: Some(30008),
            image: "nginx:alpine".into(),
            test_image: DEFAULT_TEST_IMAGE.into(),
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
            node_port: Some(30009),
            message: "API here".into(),
            ..web.clone()
        };
        assert_eq!(config.program.echoes, vec![web, api]);
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
    fn top_level_typos_are_matched_against_generic_and_echo_keys_alike() {
        let err = parse_err("namespace: a\nechos:\n  - name: web\n");
        assert_error(
            &err,
            2,
            1,
            &[
                "allowed here: kubeconfig, context, namespace, createNamespace, backend, historyLimit, protect, retain, manifests, echo, \
                 echoes",
                "did you mean `echo`?",
            ],
        );
        let err = parse_err("namespace: a\nnamespaec: b\n");
        assert_error(&err, 2, 1, &["did you mean `namespace`?"]);
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
    fn a_setting_indented_under_replicas_is_pointed_at_not_replicas() {
        let err = parse_err("namespace: a\necho:\n  replicas: 2\n    nodePort: 32650\n");
        assert_error(
            &err,
            4,
            5,
            &[
                "line 4 is indented under `replicas: 2`, which holds a single value",
                "indent `nodePort:` as far as `replicas:` (2 spaces)",
            ],
        );
        assert!(!err.to_string().contains("whole number"), "{err}");
        // The same under a text value, which YAML reports on the next line.
        let err = parse_err("namespace: a\necho:\n  image: nginx\n    nodePort: 32650\n");
        assert_error(&err, 4, 5, &["indented under `image: nginx`"]);
    }

    #[test]
    fn whole_numbers_are_plain_decimal_whatever_yaml_accepts() {
        for (written, decimal) in [("0x10", "16"), ("\"3\"", "3"), ("1_0", "10"), ("+3", "3")] {
            let err = parse_err(&format!("namespace: a\necho:\n  replicas: {written}\n"));
            assert_error(
                &err,
                3,
                13,
                &[
                    &format!("`replicas` is written `{written}`"),
                    "plain decimal digits",
                    &format!("replicas: {decimal}"),
                ],
            );
        }
        let err = parse_err("namespace: a\necho:\n  replicas: 007\n");
        assert_error(
            &err,
            3,
            13,
            &["found `007`", "without leading zeros: `replicas: 7`"],
        );
        let err = parse_err("namespace: a\necho:\n  nodePort: 0x7537\n");
        assert_error(
            &err,
            3,
            13,
            &["`nodePort` is written `0x7537`", "nodePort: 30007"],
        );
        assert_eq!(
            parse_ok("namespace: a\necho:\n  replicas: 0\n")
                .program
                .echoes[0]
                .replicas,
            0
        );
    }

    #[test]
    fn text_settings_take_no_numbers_or_booleans_and_no_tags() {
        let err = parse_err("namespace: a\necho:\n  image: 42\n");
        assert_error(
            &err,
            3,
            10,
            &[
                "`image` takes text, but YAML reads `42` as a number",
                "image: \"42\"",
            ],
        );
        let err = parse_err("namespace: a\necho:\n  image: !!python/object:os.system ls\n");
        assert_error(&err, 3, 10, &["`!!python/object:os.system` is a YAML tag"]);
        let err = parse_err("namespace: a\necho:\n  replicas: !!binary AAAA\n");
        assert_error(&err, 3, 13, &["`!!binary` is a YAML tag"]);
        assert!(!err.to_string().contains("invalid i64"), "{err}");
    }

    #[test]
    fn bad_toleration_key_is_rejected_at_its_position() {
        let err = parse_err(
            "namespace: a\necho:\n  tolerations:\n    - {key: 'bad key!', operator: Exists}\n",
        );
        assert_error(
            &err,
            4,
            7,
            &["toleration key \"bad key!\" is not a label key", "a space"],
        );
    }

    #[test]
    fn scalar_where_echo_mapping_belongs_is_an_error() {
        let err = parse_err("namespace: a\necho: 5\n");
        assert_error(&err, 2, 7, &["`echo` must be a mapping"]);
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
            assert_eq!(config.program.echoes[0].node_port, Some(port));
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
        assert_eq!(config.program.echoes[0].service_name.len(), 63);
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
        assert_eq!(ok.program.echoes[0].message.len(), 200);
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
    fn test_image_defaults_to_the_local_curl_image_and_can_be_set() {
        assert_eq!(
            parse_ok("namespace: a\n").program.echoes[0].test_image,
            DEFAULT_TEST_IMAGE
        );
        let config = parse_ok("namespace: a\necho:\n  testImage: curlimages/curl:8.11.1\n");
        assert_eq!(
            config.program.echoes,
            vec![seed_with(
                |echo| echo.test_image = "curlimages/curl:8.11.1".into()
            )]
        );
        let err = parse_err("namespace: a\necho:\n  testImage: 'curl latest'\n");
        assert_error(
            &err,
            3,
            14,
            &["`testImage` cannot contain a space", "curlimages/curl"],
        );
    }

    /// The stack files the README and docs/stack-files.md show must read
    /// as they say: each is parsed as a stack file (a `~` kubeconfig needs
    /// a home, so the test gives one).
    #[test]
    fn stack_files_in_the_readme_and_the_docs_parse() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for doc in ["README.md", "docs/stack-files.md"] {
            let text = std::fs::read_to_string(root.join(doc)).unwrap();
            let start = text.find("```yaml\n").expect("a yaml block") + "```yaml\n".len();
            let end = start + text[start..].find("```").unwrap();
            let stack = testing::parse_as::<RawEchoSection>(
                "dev",
                &text[start..end],
                Some(Path::new(testing::HOME)),
            )
            .unwrap_or_else(|err| panic!("the stack file in {doc}: {err}"));
            assert_eq!(stack.namespace, "echo-dev", "{doc}");
        }
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
            let config =
                load::<RawEchoSection>(&project, name).unwrap_or_else(|err| panic!("{err}"));
            assert_eq!(&config.name, name);
            ports.extend(
                config
                    .program
                    .echoes
                    .iter()
                    .filter_map(|echo| echo.node_port),
            );
        }
        let local = load::<RawEchoSection>(&project, "local").unwrap();
        assert_eq!(local.kubeconfig, vec![root.join(".cluster/kubeconfig")]);
        assert_eq!(local.context.as_deref(), Some("echo-iac-local"));
        assert_eq!(local.namespace, "echo-local");
        assert!(local.create_namespace);
        // The seed's stack, placed on the real node, behind a load balancer
        // (which keeps the seed's node port).
        assert_eq!(local.program.echoes.len(), 1);
        assert_eq!(
            local.program.echoes[0].service_type,
            ServiceType::LoadBalancer
        );
        assert_eq!(
            local.program.echoes[0]
                .node_selector
                .get("echo-iac.io/node")
                .map(String::as_str),
            Some("real")
        );
        assert_eq!(
            EchoConfig {
                node_selector: BTreeMap::new(),
                tolerations: Vec::new(),
                service_type: ServiceType::NodePort,
                ..local.program.echoes[0].clone()
            },
            seed_echo()
        );
        let prod = load::<RawEchoSection>(&project, "prod").unwrap();
        assert_eq!(prod.program.echoes[0].replicas, 3);
        // dev, staging and prod can share one cluster.
        let shared: Vec<i32> = ["dev", "staging", "prod"]
            .iter()
            .flat_map(|name| {
                load::<RawEchoSection>(&project, name)
                    .unwrap()
                    .program
                    .echoes
            })
            .filter_map(|echo| echo.node_port)
            .collect();
        let mut distinct = shared.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), shared.len(), "{shared:?}");
    }

    #[test]
    fn service_type_defaults_to_node_port_and_takes_each_kubernetes_type() {
        let echo = |text: &str| parse_ok(text).program.echoes.remove(0);
        let seed = echo("namespace: a\n");
        assert_eq!(
            (seed.service_type, seed.node_port),
            (ServiceType::NodePort, Some(30007))
        );
        let internal = echo("namespace: a\necho:\n  serviceType: ClusterIP\n");
        assert_eq!(
            internal,
            seed_with(|echo| {
                echo.service_type = ServiceType::ClusterIp;
                echo.node_port = None;
            })
        );
        let balanced = echo("namespace: a\necho:\n  serviceType: LoadBalancer\n");
        assert_eq!(
            (balanced.service_type, balanced.node_port),
            (ServiceType::LoadBalancer, Some(30007))
        );
        let balanced =
            echo("namespace: a\necho:\n  nodePort: 30100\n  serviceType: LoadBalancer\n");
        assert_eq!(balanced.node_port, Some(30100));
        let explicit = echo("namespace: a\necho:\n  serviceType: NodePort\n  nodePort: 30101\n");
        assert_eq!(
            (explicit.service_type, explicit.node_port),
            (ServiceType::NodePort, Some(30101))
        );
    }

    #[test]
    fn node_port_with_cluster_ip_is_rejected_at_the_node_port() {
        let err = parse_err("namespace: a\necho:\n  serviceType: ClusterIP\n  nodePort: 30007\n");
        assert_error(
            &err,
            4,
            13,
            &[
                "`nodePort` is set, but a ClusterIP service has no node port",
                "remove `nodePort`, or set `serviceType: NodePort`",
            ],
        );
        assert!(
            err.to_string().ends_with(
                "3 |   serviceType: ClusterIP\n  \
                   |                --------- no node port\n\
                 4 |   nodePort: 30007\n  \
                   |             ^^^^^ not with ClusterIP"
            ),
            "{err}"
        );
        // Whichever comes first in the file, the node port is the mistake.
        let err = parse_err(
            "namespace: a\nechoes:\n  - name: web\n    nodePort: 30008\n    serviceType: ClusterIP\n",
        );
        assert_error(&err, 4, 15, &["a ClusterIP service has no node port"]);
    }

    #[test]
    fn unknown_service_type_is_rejected_at_its_position() {
        let err = parse_err("namespace: a\necho:\n  serviceType: nodeport\n");
        assert_error(
            &err,
            3,
            16,
            &[
                "`serviceType` is `nodeport`; it must be one of ClusterIP, NodePort, LoadBalancer",
                "did you mean `NodePort`?",
            ],
        );
        let err = parse_err("namespace: a\necho:\n  serviceType: ExternalName\n");
        assert_error(
            &err,
            3,
            16,
            &["not a service type", "ClusterIP (inside the cluster only)"],
        );
        let err = parse_err("namespace: a\necho:\n  serviceType: [ClusterIP]\n");
        assert_error(
            &err,
            3,
            16,
            &[
                "`serviceType` must be one of ClusterIP, NodePort, LoadBalancer, found a list",
                "serviceType: ClusterIP",
            ],
        );
    }

    #[test]
    fn services_without_node_ports_never_clash_on_one() {
        let config = parse_ok(
            "namespace: a\n\
             echoes:\n  \
               - name: web\n    \
                 serviceType: ClusterIP\n  \
               - name: api\n    \
                 serviceType: ClusterIP\n  \
               - name: edge\n",
        );
        let ports: Vec<Option<i32>> = config.program.echoes.iter().map(|e| e.node_port).collect();
        assert_eq!(ports, [None, None, Some(30007)]);
        let err = parse_err(
            "namespace: a\n\
             echoes:\n  \
               - name: web\n    \
                 serviceType: LoadBalancer\n  \
               - name: api\n",
        );
        assert_error(
            &err,
            5,
            11,
            &["node port 30007 is used by both `web` (line 3) and `api` (line 5)"],
        );
    }

    #[test]
    fn service_type_at_the_top_level_says_where_it_belongs() {
        let err = parse_err("namespace: a\nserviceType: ClusterIP\n");
        assert_error(
            &err,
            2,
            1,
            &["unknown key `serviceType`", "indent it under `echo:`"],
        );
        let err = parse_err("namespace: a\necho:\n  servicetype: ClusterIP\n");
        assert_error(&err, 3, 3, &["did you mean `serviceType`?"]);
    }
}
