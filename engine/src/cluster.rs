//! The Kubernetes API as echo-iac uses it: connect from a kubeconfig, then
//! get, list, dry-run apply, apply and delete objects as JSON.
//!
//! Any kind works: built-in kinds' API paths come from k8s-openapi, others
//! from discovery, cached for the run (see `kinds`).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, Preconditions,
};
use kube::config::KubeConfigOptions;
use kube::core::GroupVersion;
use kube::core::Status;
use kube::discovery::Scope;
use kube::{Client, Config};
use serde_json::Value;

use crate::ResourceId;
use crate::identity::Identity;
use crate::sensitive;

mod kinds;
mod kubeconfig;
mod list_page;
mod notice;
mod plugins;
mod trace;
mod transport;

pub use kinds::Kind;

pub use notice::{Notice, Notices};
pub use plugins::{ALLOW_ENV as ALLOW_PLUGINS_ENV, PluginGuard};
pub use transport::Transport;
use transport::{Failure, Limits};

/// Where a built-in kind lives in the API, known without a cluster;
/// `None` for a kind only discovery can tell (a custom resource, an
/// aggregated API).
pub fn built_in_kind(api_version: &str, kind: &str) -> Option<Kind> {
    kinds::built_in(api_version, kind)
}

/// Reads and merges the kubeconfig files `paths` as a connection does,
/// without connecting: the seam by which the fuzz targets reach the
/// merge.
#[doc(hidden)]
pub fn read_kubeconfigs(paths: &[PathBuf]) -> Result<kube::config::Kubeconfig, ClusterError> {
    kubeconfig::load(paths).map(|loaded| loaded.config)
}

/// How long a TCP connection to the API server may take before the server
/// counts as unreachable. Short, because a blackholed address otherwise hangs.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the connection may sit with no byte of a response coming,
/// unless `--request-timeout` says otherwise.
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one request may take until the server has answered once in
/// this run, unless `--request-timeout` says otherwise: a server that
/// accepts connections and never answers is reported this soon, rather
/// than after the read timeout.
pub(crate) const FIRST_CONTACT_TIMEOUT: Duration = Duration::from_secs(10);
/// Until the server has answered once, connection failures are retried
/// for this long only: a server never reached in this run is most likely a
/// wrong address or a cluster that is down, which a person wants to hear
/// about at once, as kubectl tells it.
pub(crate) const FIRST_CONTACT_BUDGET: Duration = Duration::from_secs(2);
/// Once the server has answered, transient failures (connection refused
/// or closed, 429, 5xx) are retried with backoff for this long in all
/// before the error is reported.
const RETRY_BUDGET: Duration = Duration::from_secs(20);
/// The longest pause between two tries of one request.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(4);

/// The API requests a [`Cluster`] and its clones have sent, retries
/// included. A handle stays readable once the cluster is dropped, so that
/// a caller can report the count at the end of a run; benchmarks read it
/// (through the runner's `ECHO_IAC_STATS`) to compare tools.
#[derive(Clone, Debug, Default)]
pub struct RequestCounter(Arc<AtomicU64>);

impl RequestCounter {
    /// The requests counted so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// Why the cluster could not be reached, or refused a request. Variants
/// carry the kubeconfig, server and object involved, for the caller's hint.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No kubeconfig file where one was looked for.
    #[error("no kubeconfig found at {}", path.display())]
    KubeconfigMissing {
        /// Where it was looked for.
        path: PathBuf,
    },
    /// The kubeconfig does not read.
    #[error("cannot read kubeconfig {}: {reason}", path.display())]
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// Why it does not read.
        reason: String,
    },
    /// No context was named, and the kubeconfig sets no current one.
    #[error(
        "kubeconfig {} sets no current context{}",
        path.display(),
        if known.is_empty() { " and has no contexts".to_string() } else { format!(" (it has: {})", known.join(", ")) }
    )]
    NoCurrentContext {
        /// The kubeconfig.
        path: PathBuf,
        /// The contexts it has.
        known: Vec<String>,
    },
    /// The credential plugin of the context's user failed.
    #[error(
        "the credential plugin `{command}` that kubeconfig {} runs for its user {reason}",
        path.display()
    )]
    CredentialPlugin {
        /// The plugin's command.
        command: String,
        /// The kubeconfig that names it.
        path: PathBuf,
        /// What went wrong.
        reason: String,
        /// The command is not installed (not found on PATH).
        missing: bool,
    },
    /// A kubeconfig file the caller guards (one a checkout brought) names
    /// a credential plugin for the context's user; it was not run.
    #[error(
        "kubeconfig {} comes from inside the project, and its user `{user}` runs a credential plugin, which was not run: {plugin}",
        path.display()
    )]
    PluginRefused {
        /// The kubeconfig.
        path: PathBuf,
        /// The user whose plugin it is.
        user: String,
        /// The plugin's command line.
        plugin: String,
    },
    /// The context asked for is not in the kubeconfig.
    #[error("context `{context}` is not in kubeconfig {} (it has: {known})", path.display())]
    UnknownContext {
        /// The context asked for.
        context: String,
        /// The kubeconfig.
        path: PathBuf,
        /// The contexts it has, comma-separated.
        known: String,
    },
    /// No connection to the API server.
    #[error(
        "cannot reach the Kubernetes API server at {server}{}: {cause}",
        in_context(context)
    )]
    Unreachable {
        /// The server's address.
        server: String,
        /// The kubeconfig context.
        context: String,
        /// What failed on the way.
        cause: Transport,
    },
    /// The server's certificate is not one the kubeconfig trusts.
    #[error(
        "the API server at {server}{} presented a certificate that the kubeconfig does not trust: {reason}",
        in_context(context)
    )]
    Tls {
        /// The server's address.
        server: String,
        /// The kubeconfig context.
        context: String,
        /// The TLS library's reason.
        reason: String,
    },
    /// The TLS handshake failed for another reason than trust.
    #[error(
        "the TLS handshake with the API server at {server}{} failed: {reason}",
        in_context(context)
    )]
    TlsHandshake {
        /// The server's address.
        server: String,
        /// The kubeconfig context.
        context: String,
        /// The TLS library's reason.
        reason: String,
    },
    /// The server did not accept the credentials (401).
    #[error(
        "the API server at {server} rejected the credentials of context `{context}` (401 Unauthorized)"
    )]
    Unauthorized {
        /// The server's address.
        server: String,
        /// The kubeconfig context.
        context: String,
    },
    /// The credentials may not do this (403).
    #[error("not allowed to {action} {target}: {message}")]
    Forbidden {
        /// What was asked (`apply`).
        action: String,
        /// The object or collection (`ConfigMap ns/name`).
        target: String,
        /// The server's words.
        message: String,
    },
    /// The server answered with another error `Status`.
    #[error("{action} {target} failed: {}", api_message(status))]
    Api {
        /// What was asked (`apply`).
        action: String,
        /// The object or collection (`ConfigMap ns/name`).
        target: String,
        /// The server's answer, with its code, reason and causes.
        status: Box<Status>,
    },
    /// The server does not serve the kind.
    #[error("the cluster serves no kind {kind} in {api_version}")]
    UnknownKind {
        /// The apiVersion asked for.
        api_version: String,
        /// The kind asked for.
        kind: String,
    },
    /// A namespaced object was declared without a namespace.
    #[error("{target} has no namespace, but its kind lives in namespaces")]
    NamespaceRequired {
        /// The object.
        target: String,
    },
    /// Anything else that stopped a request.
    #[error("{action} {target} failed: {reason}")]
    Other {
        /// What was asked (`apply`).
        action: String,
        /// The object or collection (`ConfigMap ns/name`).
        target: String,
        /// What went wrong.
        reason: String,
    },
}

/// The server's words, or what little an answer without any says.
fn api_message(status: &Status) -> String {
    if status.message.trim().is_empty() {
        format!(
            "the server answered {} with no message (is the address an API server's?)",
            status.code
        )
    } else {
        status.message.clone()
    }
}

/// ` (context `x`)`, or nothing for a kubeconfig without a context name.
fn in_context(context: &str) -> String {
    if context.is_empty() {
        String::new()
    } else {
        format!(" (context `{context}`)")
    }
}

impl ClusterError {
    /// The API server's status, when the server answered with an error.
    pub fn status(&self) -> Option<&Status> {
        match self {
            ClusterError::Api { status, .. } => Some(status),
            _ => None,
        }
    }
}

/// What a delete did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deletion {
    /// The object is gone: the server deleted it at once.
    Done,
    /// The object is being deleted: finalizers, or what it owns, hold it
    /// for now.
    Started,
    /// There was no such object.
    NotFound,
}

/// A connected client plus the facts about the connection that messages need.
#[derive(Clone)]
pub struct Cluster {
    client: Client,
    server: String,
    context: String,
    identity: Arc<Identity>,
    /// Kinds found by discovery in this run.
    discovered: Arc<kinds::Discovered>,
    /// How long to retry once the server has answered in this run; see
    /// [`Cluster::with_outage_budget`].
    outage_budget: Duration,
    /// Set by the first answer from the server, error answers included.
    answered: Arc<AtomicBool>,
    /// Set while requests wait for a server that went away, so that the
    /// wait is told once, and its end too.
    waiting: Arc<AtomicBool>,
    /// `--request-timeout`: the longest one request may take; zero for no
    /// limit; `None` for the defaults ([`FIRST_CONTACT_TIMEOUT`], then
    /// only the read timeout).
    request_timeout: Option<Duration>,
    /// The client's own timeouts, for messages.
    limits: Limits,
    requests: RequestCounter,
    notices: Notices,
}

/// Where to find the cluster: explicit values win over the stack file's,
/// which win over $KUBECONFIG and ~/.kube/config.
#[derive(Clone, Debug, Default)]
pub struct Target {
    /// Kubeconfig files, merged as kubectl merges `KUBECONFIG`; empty means
    /// $KUBECONFIG, then ~/.kube/config.
    pub kubeconfig: Vec<PathBuf>,
    /// The kubeconfig context; `None` for its current one.
    pub context: Option<String>,
    /// The longest one request may take, as kubectl's `--request-timeout`:
    /// zero for no limit; `None` for the defaults (see
    /// `FIRST_CONTACT_TIMEOUT`, 10 s).
    pub request_timeout: Option<Duration>,
    /// Which files' credential plugins need to be allowed to run.
    pub plugins: PluginGuard,
    /// Where the connection's [`Notice`]s go.
    pub notices: Notices,
}

impl Cluster {
    /// Connects as `identity`, which names the field manager of every apply.
    pub async fn connect(target: &Target, identity: Identity) -> Result<Cluster, ClusterError> {
        let loaded = kubeconfig::load(&target.kubeconfig)?;
        let known: Vec<String> = loaded
            .config
            .contexts
            .iter()
            .map(|c| c.name.clone())
            .collect();
        let context = match &target.context {
            Some(context) => context.clone(),
            None => match loaded.config.current_context.as_deref() {
                Some(current) if !current.is_empty() => current.to_string(),
                _ => {
                    return Err(ClusterError::NoCurrentContext {
                        path: loaded.source.clone(),
                        known,
                    });
                }
            },
        };
        if !known.contains(&context) {
            return Err(ClusterError::UnknownContext {
                context,
                path: loaded.source.clone(),
                known: if known.is_empty() {
                    "no contexts".into()
                } else {
                    known.join(", ")
                },
            });
        }
        // Before kube builds its client, which runs the plugin.
        target.plugins.check(&loaded, &context, &target.notices)?;
        let kubeconfig::Loaded {
            config: kubeconfig,
            source: path,
            ..
        } = loaded;
        let options = KubeConfigOptions {
            context: Some(context.clone()),
            ..KubeConfigOptions::default()
        };
        let mut config = Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .map_err(|e| ClusterError::Kubeconfig {
                path: path.clone(),
                reason: without_userinfo(&kubeconfig::reason(&e)),
            })?;
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        // A limit asked for replaces the read timeout, which would
        // otherwise cut a longer one short; zero asks for none.
        config.read_timeout = match target.request_timeout {
            None => Some(READ_TIMEOUT),
            Some(limit) if limit.is_zero() => None,
            Some(limit) => Some(limit),
        };
        let server = without_userinfo(&config.cluster_url.to_string());
        let plugin = config
            .auth_info
            .exec
            .as_ref()
            .and_then(|exec| exec.command.clone());
        let client = client(&config).map_err(|e| match (e, plugin) {
            // The plugin runs as the client is built.
            (kube::Error::Auth(auth), Some(command)) => {
                let (reason, missing) = kubeconfig::plugin_failure(&auth);
                ClusterError::CredentialPlugin {
                    command,
                    path,
                    reason,
                    missing,
                }
            }
            (e, _) => ClusterError::Kubeconfig {
                path,
                reason: without_userinfo(&without_values(&error_chain(&e))),
            },
        })?;
        let mut cluster = Cluster::from_client(client, &server, &context, identity);
        cluster.request_timeout = target.request_timeout;
        cluster.limits.read = config.read_timeout;
        cluster.notices = target.notices.clone();
        Ok(cluster)
    }

    /// A cluster reached through `client`, which may wrap any tower
    /// service (kube's `Client::new`): the tests' in-process API server,
    /// or a client built elsewhere. `server` and `context` name the
    /// connection in messages. Requests get the same retries, error
    /// mapping and discovery as through [`Cluster::connect`]. Credentials
    /// written into the server's address (`https://TOKEN@host`) are never
    /// kept for messages.
    pub fn from_client(client: Client, server: &str, context: &str, identity: Identity) -> Cluster {
        Cluster {
            client,
            server: without_userinfo(server),
            context: context.to_string(),
            identity: Arc::new(identity),
            discovered: Arc::default(),
            outage_budget: RETRY_BUDGET,
            answered: Arc::new(AtomicBool::new(false)),
            waiting: Arc::new(AtomicBool::new(false)),
            request_timeout: None,
            requests: RequestCounter::default(),
            notices: Notices::default(),
            limits: Limits {
                connect: CONNECT_TIMEOUT,
                read: Some(READ_TIMEOUT),
            },
        }
    }

    /// Retries transient failures for up to `budget` (at least the usual
    /// 20 s) once the server has answered in this run. A server that
    /// answered and then went away is most likely restarting, and a run
    /// halfway through its changes is better off waiting for it than
    /// stopping; a server that never answered is more likely a wrong
    /// address, which is reported within `FIRST_CONTACT_BUDGET` (2 s).
    pub fn with_outage_budget(mut self, budget: Duration) -> Self {
        self.outage_budget = budget.max(RETRY_BUDGET);
        self
    }

    /// Sends this cluster's [`Notice`]s to `notices` (a cluster from
    /// [`Cluster::connect`] takes them from its [`Target`]).
    pub fn with_notices(mut self, notices: Notices) -> Self {
        self.notices = notices;
        self
    }

    /// The API requests this cluster and its clones have sent so far.
    pub fn requests_sent(&self) -> u64 {
        self.requests.get()
    }

    /// A handle on this cluster's request count that outlives it.
    pub fn request_counter(&self) -> RequestCounter {
        self.requests.clone()
    }

    /// Counts a request sent without [`Cluster::call`] (lease renewals,
    /// which must not wait out an outage).
    pub(crate) fn count_request(&self) {
        self.requests.add();
    }

    /// The API server's address, without any credentials written into it.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// The kubeconfig context the cluster was reached through.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// Who this client applies as, and whose labels mark what it owns.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The live object, or `None` if it does not exist.
    pub async fn get(&self, id: &ResourceId) -> Result<Option<Value>, ClusterError> {
        let api = self.api(id).await?;
        let found = self
            .retry("read", id, || async { api.get_opt(&id.name).await })
            .await?;
        Ok(found.map(to_json))
    }

    /// The API server's version (`gitVersion`, e.g. `v1.36.3`).
    pub async fn server_version(&self) -> Result<String, ClusterError> {
        let target = ResourceId::new("v1", "Version", None, "");
        let info = self
            .retry("read the version of", &target, || async {
                self.client.apiserver_version().await
            })
            .await?;
        Ok(info.git_version)
    }

    /// Server-side apply as the identity's field manager. With `dry_run` the
    /// server runs every admission and validation step and returns what it
    /// would store, without storing it.
    pub async fn apply(
        &self,
        object: &Value,
        dry_run: bool,
        force: bool,
    ) -> Result<Value, ClusterError> {
        let id = ResourceId::of(object).expect("applied objects carry their identity");
        let api = self.api(&id).await?;
        let mut params = PatchParams::apply(self.identity.field_manager());
        params.dry_run = dry_run;
        params.force = force;
        let patch = Patch::Apply(object);
        let action = if dry_run { "dry-run apply" } else { "apply" };
        let applied = self
            .retry(action, &id, || async {
                api.patch(&id.name, &params, &patch).await
            })
            .await
            .map_err(|e| scrub_error(e, object))?;
        Ok(to_json(applied))
    }

    /// Validates a new object without writing it, in a namespace other than
    /// its own: for objects whose namespace does not exist yet, so cannot
    /// hold a dry-run apply. Returns the server's error, if it has one;
    /// "already exists" is not one, since the object is only a stand-in.
    pub(crate) async fn validate_create_in(
        &self,
        object: &Value,
        namespace: &str,
    ) -> Result<(), ClusterError> {
        let mut stand_in = object.clone();
        stand_in["metadata"]["namespace"] = Value::String(namespace.to_string());
        let mut id = ResourceId::of(&stand_in).expect("applied objects carry their identity");
        let api = self.api(&id).await?;
        let dynamic: DynamicObject =
            serde_json::from_value(stand_in).expect("program objects are valid objects");
        let params = PostParams {
            dry_run: true,
            field_manager: Some(self.identity.field_manager().to_string()),
        };
        let result = self
            .retry("validate", &id, || async {
                api.create(&params, &dynamic).await
            })
            .await;
        id.namespace = Some(namespace.to_string());
        match result {
            Ok(_) => Ok(()),
            Err(ClusterError::Api { status, .. }) if status.code == 409 => Ok(()),
            Err(e) => Err(scrub_error(e, object)),
        }
    }

    /// Deletes the object, and only if it still has `uid`: a same-named
    /// object created by someone else since is never deleted. What it owns
    /// goes first (foreground propagation), but for the built-in kinds that
    /// own only what the server makes for them (`kinds::owns_no_work`),
    /// which go at once and leave that to the garbage collector, as
    /// `kubectl delete` does.
    pub async fn delete(&self, id: &ResourceId, uid: &str) -> Result<Deletion, ClusterError> {
        let api = self.api(id).await?;
        let params = if kinds::owns_no_work(&id.api_version, &id.kind) {
            DeleteParams::background()
        } else {
            DeleteParams::foreground()
        }
        .preconditions(Preconditions {
            uid: Some(uid.to_string()),
            resource_version: None,
        });
        let result = self
            .retry("delete", id, || async {
                api.delete(&id.name, &params).await
            })
            .await;
        match result {
            // The server answers with the object, marked for deletion,
            // while something still holds it; once it is gone, with a
            // `Status`, or for some kinds (Services, Pods) the object as
            // it was, unmarked.
            Ok(answer) => Ok(match answer.left() {
                Some(object) if object.metadata.deletion_timestamp.is_some() => Deletion::Started,
                _ => Deletion::Done,
            }),
            Err(ClusterError::Api { status, .. }) if status.code == 404 => Ok(Deletion::NotFound),
            Err(e) => Err(e),
        }
    }

    /// Removes `labels` from the object with `resource_version` (read just
    /// before), and nothing else: a JSON merge patch whose only fields are
    /// the labels, set to null, and the resourceVersion, which makes the
    /// server refuse (409) if the object changed since it was read. (A
    /// server-side apply would also drop every field this field manager
    /// owns and the body leaves out.) Returns false if the object is gone.
    pub async fn remove_labels(
        &self,
        id: &ResourceId,
        resource_version: &str,
        labels: &[String],
    ) -> Result<bool, ClusterError> {
        let api = self.api(id).await?;
        let nulls: serde_json::Map<String, Value> =
            labels.iter().map(|l| (l.clone(), Value::Null)).collect();
        let body = serde_json::json!({
            "metadata": {"resourceVersion": resource_version, "labels": nulls}
        });
        let patch = Patch::Merge(&body);
        let params = PatchParams {
            field_manager: Some(self.identity.field_manager().to_string()),
            ..PatchParams::default()
        };
        let result = self
            .retry("remove labels", id, || async {
                api.patch(&id.name, &params, &patch).await
            })
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(ClusterError::Api { status, .. }) if status.code == 404 => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Lists objects of one kind in a namespace (or cluster-wide for
    /// cluster-scoped kinds), optionally filtered by a label selector.
    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError> {
        self.collect(api_version, kind, namespace, label_selector, |_| {})
            .await
    }

    /// [`Cluster::list`] without each object's `metadata.managedFields`,
    /// for the waits: they read objects' status, never who wrote what, and
    /// the field sets are the largest part of a listed pod.
    pub async fn list_without_managed_fields(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError> {
        self.collect(
            api_version,
            kind,
            namespace,
            label_selector,
            drop_managed_fields,
        )
        .await
    }

    /// The objects of a list, each changed by `edit` as it is parsed.
    async fn collect(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
        edit: impl Fn(&mut Value),
    ) -> Result<Vec<Value>, ClusterError> {
        let mut objects = Vec::new();
        self.list_each(
            api_version,
            kind,
            namespace,
            label_selector,
            |mut object| {
                edit(&mut object);
                objects.push(object)
            },
        )
        .await?;
        Ok(objects)
    }

    /// [`Cluster::list`], handing each object to `each` as its page is
    /// read, so that a caller can slim it before the next page arrives.
    pub async fn list_each(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
        each: impl FnMut(Value),
    ) -> Result<(), ClusterError> {
        self.list_pages(api_version, kind, namespace, label_selector, false, each)
            .await
    }

    /// [`Cluster::list_each`] of the objects' metadata alone (the server
    /// sends neither spec nor status), for a reader that needs only names,
    /// labels, annotations and owners: a fraction of the bytes for kinds
    /// with a pod template.
    pub async fn list_metadata_each(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
        each: impl FnMut(Value),
    ) -> Result<(), ClusterError> {
        self.list_pages(api_version, kind, namespace, label_selector, true, each)
            .await
    }

    async fn list_pages(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        label_selector: Option<&str>,
        metadata_only: bool,
        mut each: impl FnMut(Value),
    ) -> Result<(), ClusterError> {
        let probe = ResourceId::new(api_version, kind, namespace, "");
        let api = self.api(&probe).await?;
        let mut params = ListParams::default().limit(LIST_PAGE);
        if let Some(selector) = label_selector {
            params = params.labels(selector);
        }
        let target = ResourceId::new(api_version, kind, namespace, "*");
        // In pages, so that neither the server nor this process holds a
        // kind's thousands of objects as one response; and each object is
        // handed on as it is parsed (see `list_page`), so that its reader
        // can slim it before the next is parsed.
        loop {
            let text = self
                .retry("list", &target, || async {
                    let request = kube::core::Request::new(api.resource_url());
                    let request = if metadata_only {
                        request.list_metadata(&params)
                    } else {
                        request.list(&params)
                    }
                    .map_err(kube::Error::BuildRequest)?;
                    self.client.request_text(request).await
                })
                .await?;
            // List items come without apiVersion and kind; put them back so
            // a listed object compares equal to the same object read by name.
            let next = list_page::read_page(&text, &mut |mut object| {
                object["apiVersion"] = Value::String(api_version.to_string());
                object["kind"] = Value::String(kind.to_string());
                slim_managed_fields(&mut object, self.identity.field_manager());
                each(object);
            })
            .map_err(|e| self.classify("list", &target, kube::Error::SerdeError(e), None))?;
            match next {
                Some(token) => params = params.continue_token(&token),
                None => return Ok(()),
            }
        }
    }

    /// The last `lines` lines of a container's log; with `previous`, of its
    /// last run (a container that crashed). `None` when the API has none to
    /// give (not yet written, or not allowed): a log is a detail, never
    /// worth failing over.
    pub async fn pod_log(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        previous: bool,
        lines: i64,
    ) -> Option<String> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let params = kube::api::LogParams {
            container: Some(container.to_string()),
            previous,
            tail_lines: Some(lines),
            limit_bytes: Some(16 * 1024),
            ..Default::default()
        };
        self.requests.add();
        let text = api.logs(pod, &params).await.ok()?;
        // The kubelet answers 200 with this text for a run whose log it no
        // longer has.
        let gone = text.starts_with("unable to retrieve container logs");
        (!text.trim().is_empty() && !gone).then_some(text)
    }

    /// A typed API in `namespace`, for the state backend's Secrets and
    /// Lease; its requests go through [`Cluster::call`].
    pub(crate) fn typed<K>(&self, namespace: &str) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
        <K as kube::Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), namespace)
    }

    /// One request with the retries and error mapping of every other
    /// request; `id` names its target in messages.
    pub(crate) async fn call<T, F, Fut>(
        &self,
        action: &str,
        id: &ResourceId,
        request: F,
    ) -> Result<T, ClusterError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        self.retry(action, id, request).await
    }

    /// Where `kind` of `api_version` lives in the API: built-in kinds
    /// without a request, others from the discovery document of their group
    /// version, once per run.
    pub async fn kind(&self, api_version: &str, kind: &str) -> Result<Kind, ClusterError> {
        if let Some(found) = kinds::built_in(api_version, kind) {
            return Ok(found);
        }
        if let Some(found) = self.discovered.get(api_version, kind) {
            return Ok(found);
        }
        let unknown = || ClusterError::UnknownKind {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        };
        let asked = std::time::Instant::now();
        let round = self.discovered.round(api_version);
        let mut finished = round.lock().await;
        if let Some(found) = self.discovered.get(api_version, kind) {
            return Ok(found);
        }
        if finished.is_some_and(|at| at >= asked) {
            return Err(unknown());
        }
        let (group, version) = match api_version.split_once('/') {
            Some((group, version)) => (group, version),
            None => ("", api_version),
        };
        let gv = GroupVersion::gv(group, version);
        let target = ResourceId::new(api_version, kind, None, "*");
        let found = self
            .retry("discover", &target, || async {
                kube::discovery::pinned_group(&self.client, &gv).await
            })
            .await;
        let group = match found {
            Ok(group) => Some(group),
            Err(ClusterError::Api { status, .. }) if status.code == 404 => None,
            Err(e) => return Err(e),
        };
        *finished = Some(std::time::Instant::now());
        let served = group
            .map(|g| g.versioned_resources(version))
            .unwrap_or_default();
        self.discovered.insert(
            api_version,
            served.into_iter().map(|(resource, capabilities)| Kind {
                resource,
                namespaced: capabilities.scope == Scope::Namespaced,
            }),
        );
        self.discovered.get(api_version, kind).ok_or_else(unknown)
    }

    async fn api(&self, id: &ResourceId) -> Result<Api<DynamicObject>, ClusterError> {
        let kind = self.kind(&id.api_version, &id.kind).await?;
        Ok(match (&id.namespace, kind.namespaced) {
            (Some(ns), true) => Api::namespaced_with(self.client.clone(), ns, &kind.resource),
            (None, true) if id.name.is_empty() || id.name == "*" => {
                Api::all_with(self.client.clone(), &kind.resource)
            }
            (None, true) => {
                return Err(ClusterError::NamespaceRequired {
                    target: id.to_string(),
                });
            }
            (_, false) => Api::all_with(self.client.clone(), &kind.resource),
        })
    }

    /// Runs one request, retrying transient failures with exponential
    /// backoff, and turns the final failure into a ClusterError.
    async fn retry<T, F, Fut>(
        &self,
        action: &str,
        id: &ResourceId,
        mut request: F,
    ) -> Result<T, ClusterError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, kube::Error>>,
    {
        let start = tokio::time::Instant::now();
        let mut delay = Duration::from_millis(200);
        loop {
            self.requests.add();
            let result = match self.attempt_limit() {
                Some(limit) => tokio::time::timeout(limit, request())
                    .await
                    .unwrap_or(Err(kube::Error::Service(Box::new(NoResponse(limit))))),
                None => request().await,
            };
            if matches!(result, Ok(_) | Err(kube::Error::Api(_))) {
                self.answered.store(true, Ordering::Relaxed);
                if self.waiting.swap(false, Ordering::Relaxed) {
                    self.notices.tell(Notice::ServerAnswersAgain {
                        server: self.server.clone(),
                    });
                }
            }
            let answered = self.answered.load(Ordering::Relaxed);
            let budget = if answered {
                self.outage_budget
            } else {
                FIRST_CONTACT_BUDGET
            };
            let error = match result {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let failure = self.failure(&error);
            let transient = match (&error, &failure) {
                (kube::Error::Api(status), _) => {
                    matches!(status.code, 429 | 500 | 502 | 503 | 504)
                        && !is_typing_failure(&status.message)
                }
                (_, Some(failure)) => failure.is_transient(),
                (_, None) => false,
            };
            if !transient || start.elapsed() + delay >= budget {
                return Err(self.classify(action, id, error, failure));
            }
            // Told once per outage, not per request: many requests wait
            // on the same server. A short blip costs no line at all.
            if answered
                && delay >= Duration::from_millis(800)
                && !self.waiting.swap(true, Ordering::Relaxed)
            {
                let cause = without_userinfo(&match &failure {
                    Some(Failure::Transport(cause)) => cause.to_string(),
                    _ => format!("{action} {}: {}", describe_target(id), error_chain(&error)),
                });
                self.notices.tell(Notice::WaitingForServer {
                    server: self.server.clone(),
                    cause,
                    retrying_for: budget.saturating_sub(start.elapsed()),
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_RETRY_DELAY);
        }
    }

    /// The longest one try of a request may take: `--request-timeout`
    /// when given, else a bound until the server has first answered.
    fn attempt_limit(&self) -> Option<Duration> {
        match self.request_timeout {
            Some(limit) if limit.is_zero() => None,
            Some(limit) => Some(limit),
            None if self.answered.load(Ordering::Relaxed) => None,
            None => Some(FIRST_CONTACT_TIMEOUT),
        }
    }

    /// Why a request got no HTTP answer; `None` when it got one, or failed
    /// before it was sent.
    fn failure(&self, error: &kube::Error) -> Option<Failure> {
        match error {
            kube::Error::Service(inner) => {
                if let Some(NoResponse(limit)) = inner.downcast_ref::<NoResponse>() {
                    return Some(Failure::Transport(Transport::NoResponse(*limit)));
                }
                Some(transport::diagnose(error, &self.host(), self.limits))
            }
            kube::Error::HyperError(_) | kube::Error::HttpError(_) | kube::Error::RustlsTls(_) => {
                Some(transport::diagnose(error, &self.host(), self.limits))
            }
            _ => None,
        }
    }

    /// The server's host name, for messages.
    fn host(&self) -> String {
        self.server
            .parse::<http::Uri>()
            .ok()
            .and_then(|uri| uri.host().map(str::to_string))
            .unwrap_or_else(|| self.server.clone())
    }

    fn classify(
        &self,
        action: &str,
        id: &ResourceId,
        error: kube::Error,
        failure: Option<Failure>,
    ) -> ClusterError {
        let target = describe_target(id);
        let server = self.server.clone();
        let context = self.context.clone();
        match (error, failure) {
            (kube::Error::Api(status), _) if status.code == 401 => {
                ClusterError::Unauthorized { server, context }
            }
            (kube::Error::Api(status), _) if status.code == 403 => ClusterError::Forbidden {
                action: action.to_string(),
                target,
                message: status.message.clone(),
            },
            (kube::Error::Api(status), _) => ClusterError::Api {
                action: action.to_string(),
                target,
                status,
            },
            (_, Some(Failure::Transport(cause))) => ClusterError::Unreachable {
                server,
                context,
                cause: match cause {
                    Transport::Other(reason) => Transport::Other(without_userinfo(&reason)),
                    cause => cause,
                },
            },
            (_, Some(Failure::NotTrusted(reason))) => ClusterError::Tls {
                server,
                context,
                reason: without_userinfo(&reason),
            },
            (_, Some(Failure::Handshake(reason))) => ClusterError::TlsHandshake {
                server,
                context,
                reason: without_userinfo(&reason),
            },
            (e, None) => ClusterError::Other {
                action: action.to_string(),
                target,
                reason: without_userinfo(&error_chain(&e)),
            },
        }
    }
}

/// A try that took longer than its limit.
#[derive(Debug, thiserror::Error)]
#[error("no response within {}", humantime::format_duration(*.0))]
struct NoResponse(Duration);

/// `ConfigMap ns/name` for one object, `ConfigMaps in namespace ns` for a
/// list.
fn describe_target(id: &ResourceId) -> String {
    if id.name.is_empty() || id.name == "*" {
        match &id.namespace {
            Some(ns) => format!("{} in namespace {ns}", plural_kind(&id.kind)),
            None => plural_kind(&id.kind),
        }
    } else {
        id.to_string()
    }
}

/// kube's default client, but with TCP_NODELAY: without it the first request
/// on each connection waits about 40 ms for the server's delayed ACK (the
/// request goes out as two segments), which is most of a small preview.
/// Connect (TCP and TLS) and read timeouts are kept, as in kube's own.
fn client(config: &Config) -> Result<Client, kube::Error> {
    use hyper_util::client::legacy::connect::HttpConnector;
    use hyper_util::rt::TokioExecutor;
    use kube::client::ConfigExt;
    use tower::ServiceBuilder;

    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let https = config.rustls_https_connector_with_connector(http)?;
    let mut connector = hyper_timeout::TimeoutConnector::new(https);
    connector.set_connect_timeout(config.connect_timeout);
    connector.set_read_timeout(config.read_timeout);
    connector.set_write_timeout(config.write_timeout);
    let http_client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build::<_, kube::client::Body>(connector);
    let service = ServiceBuilder::new()
        .layer(trace::TraceLayer)
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer()?)
        .layer(config.extra_headers_layer()?)
        .map_err(tower::BoxError::from)
        .service(http_client);
    Ok(Client::new(service, config.default_namespace.clone()))
}

fn plural_kind(kind: &str) -> String {
    format!("{kind}s")
}

/// Keeps only who manages a listed object, not which fields: the field sets
/// are most of a listed object's size, and only the names are ever shown
/// (a large stack's lists would otherwise dominate its memory).
fn slim_managed_fields(object: &mut Value, field_manager: &str) {
    if let Some(entries) = object["metadata"]["managedFields"].as_array_mut() {
        for entry in entries {
            // This stack's own field set is what proves an object unchanged
            // (see `proof`); the others' are only ever asked who they are.
            if entry["manager"] == field_manager && entry["operation"] == "Apply" {
                continue;
            }
            if let Some(entry) = entry.as_object_mut() {
                entry.retain(|key, _| matches!(key.as_str(), "manager" | "operation"));
            }
        }
    }
}

/// Drops who wrote which fields of `object`, for readers that never ask.
pub(crate) fn drop_managed_fields(object: &mut Value) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
}

fn to_json(object: DynamicObject) -> Value {
    serde_json::to_value(object).expect("objects from the API server serialize to JSON")
}

/// An error and its sources on one line: kube's top-level messages alone
/// ("ServiceError: client error (Connect)") do not say what went wrong.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = e.source();
    }
    parts.join(": ")
}

/// A kubeconfig error without the file's contents: the YAML parser quotes
/// the offending lines below its first line, and serde quotes values, and a
/// kubeconfig's values include tokens and private keys. The position on the
/// first line is enough to find the problem.
fn without_values(message: &str) -> String {
    let first = message.lines().next().unwrap_or_default();
    let mut text = String::with_capacity(first.len());
    let mut quoted = false;
    for c in first.chars() {
        if c == '"' {
            quoted = !quoted;
            text.push_str(if quoted { "\"…" } else { "\"" });
        } else if !quoted {
            text.push(c);
        }
    }
    text
}

/// `text` with the user-info of every URL in it removed:
/// `https://TOKEN@host:6443/api` becomes `https://host:6443/api`. A
/// kubeconfig may carry a token or a password in its server's address,
/// and kube sends it; no message shows it.
pub(crate) fn without_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'' | '`') || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(user_end) => out.push_str(&authority[user_end + 1..]),
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

fn home_dir() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

/// An error from sending `object`, with its sensitive values scrubbed
/// from every message the server wrote (see [`sensitive::scrub`]).
fn scrub_error(error: ClusterError, object: &Value) -> ClusterError {
    match error {
        ClusterError::Api {
            action,
            target,
            mut status,
        } => {
            status.message = sensitive::scrub(&status.message, object);
            if let Some(details) = status.details.as_mut() {
                for cause in &mut details.causes {
                    cause.message = sensitive::scrub(&cause.message, object);
                }
            }
            ClusterError::Api {
                action,
                target,
                status,
            }
        }
        ClusterError::Forbidden {
            action,
            target,
            message,
        } => ClusterError::Forbidden {
            action,
            target,
            message: sensitive::scrub(&message, object),
        },
        ClusterError::Other {
            action,
            target,
            reason,
        } => ClusterError::Other {
            action,
            target,
            reason: sensitive::scrub(&reason, object),
        },
        other => other,
    }
}

/// Objects per list page: one request for most kinds of most stacks, and
/// bounded responses for the largest.
const LIST_PAGE: u32 = 500;

/// Whether a 500 is the server's answer about the object rather than an
/// outage: server-side apply reports an object it cannot type against the
/// schema (a field the schema does not declare, a wrong type) as an
/// internal error, and the same object gets the same answer every time.
fn is_typing_failure(message: &str) -> bool {
    message.contains("failed to create typed patch object")
        || message.contains("field not declared in schema")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_the_schema_cannot_type_is_an_answer_not_an_outage() {
        assert!(is_typing_failure(
            "failed to create typed patch object (ns/w; example.com/v1, Kind=Widget): .spec.shape: field not declared in schema"
        ));
        assert!(!is_typing_failure("etcdserver: request timed out"));
        assert!(!is_typing_failure(
            "Internal error occurred: resource quota evaluation timed out"
        ));
    }

    #[test]
    fn user_info_is_removed_from_every_url_in_a_message() {
        assert_eq!(
            without_userinfo("https://s3cr3t-token@10.0.0.1:6443"),
            "https://10.0.0.1:6443"
        );
        assert_eq!(
            without_userinfo(
                "cannot reach http://admin:hunter2@api.example:8080/api?x=1 or https://b@c, nor https://plain"
            ),
            "cannot reach http://api.example:8080/api?x=1 or https://c, nor https://plain"
        );
        // An @ after the host is the path's, not a user's.
        assert_eq!(
            without_userinfo("https://host/a@b user@example"),
            "https://host/a@b user@example"
        );
    }

    #[tokio::test]
    async fn a_server_address_with_credentials_is_shown_without_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
             clusters:\n- name: c\n  cluster: {server: \"https://admin:hunter2@127.0.0.1:1\"}\n\
             users:\n- name: c\n  user: {token: t}\n\
             contexts:\n- name: c\n  context: {cluster: c, user: c}\n",
        )
        .unwrap();
        let target = Target {
            kubeconfig: vec![path],
            context: None,
            plugins: Default::default(),
            request_timeout: None,
            notices: Default::default(),
        };
        let cluster = Cluster::connect(&target, Identity::new("echo-iac"))
            .await
            .unwrap();
        assert_eq!(cluster.server(), "https://127.0.0.1:1/");
        let error = ClusterError::Unauthorized {
            server: cluster.server().to_string(),
            context: cluster.context().to_string(),
        };
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn kubeconfig_errors_keep_the_position_and_drop_quoted_lines_and_values() {
        let parse = "failed to parse kubeconfig YAML: error: line 7 column 4: did not find expected key\n --> <input>:7:4\n6 |     token: s3cr3t\n";
        assert_eq!(
            without_values(parse),
            "failed to parse kubeconfig YAML: error: line 7 column 4: did not find expected key"
        );
        assert_eq!(
            without_values(r#"users[0].user.token: invalid value: string "s3cr3t", expected x"#),
            r#"users[0].user.token: invalid value: string "…", expected x"#
        );
    }
}
