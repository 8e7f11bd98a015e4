//! An in-process Kubernetes API server for the engine's tests: a tower
//! service that kube's `Client` talks to as it would to a real one, over
//! the same paths, queries, bodies and `Status` answers.
//!
//! It is a small state machine, not a recording: objects live in memory,
//! server-side apply creates and merges them and tracks which field
//! manager owns which field (so conflicts come out as the real server
//! words them), deletes honour uid and resourceVersion preconditions and
//! finalizers, updates honour resourceVersion conditions, and node ports
//! are allocated cluster-wide, and a field a manager stops applying goes
//! unless another manager owns it. What it leaves out: watches,
//! subresources, defaulting beyond a Service's, and the merge of lists by
//! key (an applied list replaces the stored one).
//!
//! Tests stage what a controller would do (status, finalizers, another
//! manager's apply) through its methods, inject failures per request, and
//! assert on the log of requests it answered.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::{Value, json};

use crate::ResourceId;
use crate::cluster::Cluster;

mod answers;
mod faults;
mod fields;
mod kinds;
mod query;

use answers::{
    Answered, Failure, bad_request, conflict_status, injected, invalid, modified, not_found, status,
};
pub use faults::{Answer, Fault};
use fields::{Seg, at, fields_v1, merge, owned_fields, remove, render_path};
use kinds::{Kind, built_in_kinds};
use query::{parse_query, parse_selector};

/// What a request asks for, in the API server's own terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    /// A read of one object.
    Get,
    /// A read of a collection.
    List,
    /// A `POST`.
    Create,
    /// A `PUT`.
    Update,
    /// A `PATCH`, server-side apply among them.
    Patch,
    /// A `DELETE`.
    Delete,
}

/// One request the fake answered (or refused).
#[derive(Clone, Debug)]
pub struct Logged {
    /// What the request asks for.
    pub verb: Verb,
    /// Its HTTP method.
    pub method: Method,
    /// Its path, without the query.
    pub path: String,
    /// Decoded query parameters.
    pub query: BTreeMap<String, String>,
    /// Its `Content-Type`, when it has one.
    pub content_type: Option<String>,
    /// The JSON body, when the request had one.
    pub body: Option<Value>,
    /// The resource's plural (`configmaps`), empty for unknown paths.
    pub plural: String,
    /// The namespace in the path, if any.
    pub namespace: Option<String>,
    /// The object's name in the path, if any.
    pub name: Option<String>,
}

impl Logged {
    /// Whether it asked for a dry run (`dryRun=All`).
    pub fn dry_run(&self) -> bool {
        self.query.get("dryRun").is_some_and(|v| v == "All")
    }

    /// Whether it changed (or would have changed, were it no dry run)
    /// anything: dry runs and reads do not.
    pub fn is_mutation(&self) -> bool {
        !matches!(self.verb, Verb::Get | Verb::List) && !self.dry_run()
    }
}

impl fmt::Display for Logged {
    /// `PATCH configmaps ns/name`, with ` (dry run)` for dry runs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.method, self.plural)?;
        match (&self.namespace, &self.name) {
            (Some(ns), Some(name)) => write!(f, " {ns}/{name}")?,
            (Some(ns), None) => write!(f, " in {ns}")?,
            (None, Some(name)) => write!(f, " {name}")?,
            (None, None) => {}
        }
        if self.dry_run() {
            write!(f, " (dry run)")?;
        }
        Ok(())
    }
}

/// The fields one manager owns, and how it last wrote them.
#[derive(Clone, Debug, Default)]
struct Manager {
    operation: &'static str,
    fields: BTreeSet<Vec<Seg>>,
}

#[derive(Clone, Debug)]
struct Stored {
    /// The object without managedFields, which are rendered from `managers`.
    object: Value,
    managers: BTreeMap<String, Manager>,
}

#[derive(Default)]
struct Inner {
    /// The built-in kinds and those a test added (custom resources).
    kinds: Vec<&'static Kind>,
    objects: BTreeMap<Key, Stored>,
    next_version: u64,
    next_uid: u64,
    log: Vec<Logged>,
    faults: Vec<Fault>,
    /// Fields that may not change once set, by kind.
    immutable: Vec<(String, Vec<Seg>)>,
    /// The version `/version` names (`gitVersion`).
    version: String,
}

/// The version a new server answers `/version` with.
const DEFAULT_VERSION: &str = "v1.36.0";

/// Objects are keyed by kind (its `resource`), namespace and name.
type Key = (&'static str, Option<String>, String);

/// The fake API server. Clones share one store.
#[derive(Clone)]
pub struct FakeApi {
    inner: Arc<Mutex<Inner>>,
}

impl Default for FakeApi {
    fn default() -> Self {
        FakeApi::new()
    }
}

impl FakeApi {
    /// A server holding the `default` namespace, where Deployment
    /// selectors are immutable as on a real one.
    pub fn new() -> Self {
        let fake = FakeApi {
            inner: Arc::new(Mutex::new(Inner {
                kinds: built_in_kinds().to_vec(),
                next_version: 1,
                version: DEFAULT_VERSION.to_string(),
                ..Inner::default()
            })),
        };
        fake.immutable("Deployment", "spec.selector");
        fake.insert(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
        );
        fake
    }

    /// A `Cluster` whose requests this server answers, applying as the
    /// program `identity`. Needs a tokio runtime (kube's client spawns its
    /// buffer task).
    pub fn cluster(&self, identity: crate::Identity) -> Cluster {
        Cluster::from_client(self.client(), "https://fake.invalid", "fake", identity)
    }

    /// A bare kube client of this server, without the cluster's retries.
    pub fn client(&self) -> kube::Client {
        let fake = self.clone();
        let service = tower::service_fn(move |request: Request<Body>| {
            let fake = fake.clone();
            async move { fake.serve(request).await }
        });
        kube::Client::new(service, "default")
    }

    /// Serves a kind the engine must discover (a custom resource): its
    /// objects are stored like any other's, and its group version's
    /// discovery document lists it.
    pub fn add_kind(&self, api_version: &str, kind: &str, plural: &str, namespaced: bool) {
        let kind = Kind::leak(api_version, kind, plural, namespaced);
        self.lock().kinds.push(kind);
    }

    /// Makes `/version` name `git_version` (e.g. `v1.36.1`), as a server
    /// upgraded in place would.
    pub fn set_version(&self, git_version: &str) {
        self.lock().version = git_version.to_string();
    }

    /// Makes `path` (dotted, e.g. `spec.selector`) of `kind` immutable.
    pub fn immutable(&self, kind: &str, path: &str) {
        let path = path.split('.').map(|k| Seg::Key(k.to_string())).collect();
        self.lock().immutable.push((kind.to_string(), path));
    }

    /// Stores `object` as a create without a field manager would (kubectl
    /// create of old), status included (as a controller would have set
    /// it), and returns it as stored.
    pub fn insert(&self, object: Value) -> Value {
        let mut inner = self.lock();
        let key = inner
            .key_of(&object)
            .expect("fixtures are objects of a known kind");
        let status = object.get("status").cloned();
        let mut created = inner.create_object(object, None);
        if let Some(status) = status {
            created.object["status"] = status;
        }
        let version = inner.bump();
        let mut stored = created;
        stored.object["metadata"]["resourceVersion"] = json!(version);
        inner.objects.insert(key.clone(), stored);
        inner.render(&key)
    }

    /// Server-side applies `object` as `manager`, forcing conflicts: how a
    /// test stages an object another tool owns fields of.
    pub fn apply_as(&self, manager: &str, object: Value) -> Value {
        let mut inner = self.lock();
        let key = inner
            .key_of(&object)
            .expect("fixtures are objects of a known kind");
        match inner.apply(&key, object, manager, true, false) {
            Ok((_, object)) => object,
            Err(Failure(code, status)) => panic!("fixture apply failed with {code}: {status}"),
        }
    }

    /// The stored object, rendered as a GET returns it.
    pub fn get(&self, id: &ResourceId) -> Option<Value> {
        let inner = self.lock();
        let key = inner.key_of_id(id)?;
        inner.objects.contains_key(&key).then(|| inner.render(&key))
    }

    /// Changes a stored object as a controller would (status, finalizers,
    /// labels); bumps its resourceVersion. Panics if it does not exist.
    pub fn update(&self, id: &ResourceId, change: impl FnOnce(&mut Value)) {
        let mut inner = self.lock();
        let key = inner.key_of_id(id).expect("a known kind");
        let version = inner.bump();
        let stored = inner
            .objects
            .get_mut(&key)
            .unwrap_or_else(|| panic!("{id} is not stored"));
        change(&mut stored.object);
        stored.object["metadata"]["resourceVersion"] = json!(version);
    }

    /// Sets the object's `status`, as its controller would.
    pub fn set_status(&self, id: &ResourceId, status: Value) {
        self.update(id, |object| object["status"] = status);
    }

    /// Removes an object at once, as a controller finishing a deletion.
    pub fn remove(&self, id: &ResourceId) -> Option<Value> {
        let mut inner = self.lock();
        let key = inner.key_of_id(id)?;
        let value = inner.objects.contains_key(&key).then(|| inner.render(&key));
        inner.objects.remove(&key);
        value
    }

    /// Every stored object of `api_version`/`kind`.
    pub fn objects(&self, api_version: &str, kind: &str) -> Vec<Value> {
        let inner = self.lock();
        inner
            .objects
            .keys()
            .filter(|(k, _, _)| {
                inner
                    .kind_of(api_version, kind)
                    .is_some_and(|found| found.resource == *k)
            })
            .map(|key| inner.render(key))
            .collect()
    }

    /// Adds a failure for the requests it matches.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Drops every injected failure: the server answers normally again.
    pub fn clear_faults(&self) {
        self.lock().faults.clear();
    }

    /// Every request so far, in the order they arrived.
    pub fn requests(&self) -> Vec<Logged> {
        self.lock().log.clone()
    }

    /// How many requests arrived so far.
    pub fn request_count(&self) -> usize {
        self.lock().log.len()
    }

    /// The requests that changed (or would have changed) something, as
    /// `METHOD plural ns/name`, dry runs left out.
    pub fn mutations(&self) -> Vec<String> {
        self.lock()
            .log
            .iter()
            .filter(|r| r.is_mutation())
            .map(ToString::to_string)
            .collect()
    }

    /// Forgets every request answered so far.
    pub fn clear_log(&self) {
        self.lock().log.clear();
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().expect("never poisoned")
    }

    async fn serve(&self, request: Request<Body>) -> Result<Response<Body>, tower::BoxError> {
        let (parts, body) = request.into_parts();
        let bytes = body.collect().await?.to_bytes();
        let body: Option<Value> = if bytes.is_empty() {
            None
        } else {
            Some(serde_json::from_slice(&bytes).map_err(|e| format!("request body: {e}"))?)
        };
        let content_type = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let path = parts.uri.path().to_string();
        let query = parse_query(parts.uri.query().unwrap_or_default());
        let mut inner = self.lock();
        let route = inner.route(&path);
        let verb = match (&parts.method, route.as_ref().and_then(|r| r.name.as_ref())) {
            (&Method::GET, Some(_)) => Verb::Get,
            (&Method::GET, None) => Verb::List,
            (&Method::POST, _) => Verb::Create,
            (&Method::PUT, _) => Verb::Update,
            (&Method::PATCH, _) => Verb::Patch,
            (&Method::DELETE, _) => Verb::Delete,
            _ => Verb::Get,
        };
        let logged = Logged {
            verb,
            method: parts.method.clone(),
            path,
            query,
            content_type,
            body,
            plural: route.as_ref().map_or("", |r| r.kind.plural).to_string(),
            namespace: route.as_ref().and_then(|r| r.namespace.clone()),
            name: route.as_ref().and_then(|r| r.name.clone()),
        };

        inner.log.push(logged.clone());
        let struck = inner
            .faults
            .iter_mut()
            .filter(|f| f.matches(&logged))
            .find_map(|f| f.strikes().then(|| f.answer.clone()));
        let answered = match struck {
            Some(Answer::Drop) => return Err("connection reset by peer (injected)".into()),
            Some(Answer::Status(code)) => Err(injected(code, &logged)),
            Some(Answer::LoseAnswer) => {
                let _ = inner.handle(&logged, route);
                return Err(
                    "connection reset by peer (injected, after the request was carried out)".into(),
                );
            }
            None => inner.handle(&logged, route),
        };
        drop(inner);
        let (code, value) = match answered {
            Ok(answer) => answer,
            Err(Failure(code, status)) => (code, status),
        };
        let response = Response::builder()
            .status(StatusCode::from_u16(code).expect("valid codes"))
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Body::from(
                serde_json::to_vec(&value).expect("values serialize"),
            ))?;
        Ok(response)
    }
}

/// What a path names.
struct Route {
    kind: &'static Kind,
    namespace: Option<String>,
    name: Option<String>,
}

/// `/api/v1` or `/apis/apps/v1` and what follows.
fn split_group_version(path: &str) -> Option<(String, Vec<&str>)> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["api", version, rest @ ..] => Some((version.to_string(), rest.to_vec())),
        ["apis", group, version, rest @ ..] => Some((format!("{group}/{version}"), rest.to_vec())),
        _ => None,
    }
}

impl Inner {
    fn kind_of(&self, api_version: &str, name: &str) -> Option<&'static Kind> {
        self.kinds
            .iter()
            .copied()
            .find(|k| k.api_version == api_version && (k.kind == name || k.plural == name))
    }

    fn key_of(&self, object: &Value) -> Option<Key> {
        self.key_of_id(&ResourceId::of(object)?)
    }

    fn key_of_id(&self, id: &ResourceId) -> Option<Key> {
        let kind = self.kind_of(&id.api_version, &id.kind)?;
        Some((kind.resource, id.namespace.clone(), id.name.clone()))
    }

    fn kind_of_key(&self, key: &Key) -> &'static Kind {
        self.kinds
            .iter()
            .copied()
            .find(|k| k.resource == key.0)
            .expect("keys name known kinds")
    }

    /// `/api/v1/namespaces/ns/configmaps/name`, `/apis/apps/v1/deployments`, …
    fn route(&self, path: &str) -> Option<Route> {
        let (api_version, rest) = split_group_version(path)?;
        let (namespace, rest) = match rest.as_slice() {
            ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(ns.to_string()), rest),
            _ => (None, rest.as_slice()),
        };
        let (plural, name) = match rest {
            [plural] => (*plural, None),
            [plural, name] => (*plural, Some(name.to_string())),
            _ => return None,
        };
        let kind = self
            .kinds
            .iter()
            .copied()
            .find(|k| k.api_version == api_version && k.plural == plural)?;
        if namespace.is_some() && !kind.namespaced {
            return None;
        }
        Some(Route {
            kind,
            namespace,
            name,
        })
    }

    /// The discovery documents: `/api`, `/apis`, and each group
    /// version's resource list.
    fn discovery(&self, path: &str) -> Option<Value> {
        let path = path.trim_end_matches('/');
        if path == "/api" {
            return Some(json!({"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "fake:443"}]}));
        }
        if path == "/apis" {
            let mut groups: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
            for kind in &self.kinds {
                if let Some((group, version)) = kind.api_version.split_once('/') {
                    let versions = groups.entry(group).or_default();
                    if !versions.contains(&version) {
                        versions.push(version);
                    }
                }
            }
            let groups: Vec<Value> = groups
                .into_iter()
                .map(|(group, versions)| {
                    let versions: Vec<Value> = versions
                        .iter()
                        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
                        .collect();
                    json!({"name": group, "preferredVersion": versions[0], "versions": versions})
                })
                .collect();
            return Some(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}));
        }
        let (api_version, rest) = split_group_version(path)?;
        if !rest.is_empty() {
            return None;
        }
        let resources: Vec<Value> = self
            .kinds
            .iter()
            .filter(|k| k.api_version == api_version)
            .map(|k| {
                json!({"name": k.plural, "singularName": k.kind.to_lowercase(),
                    "namespaced": k.namespaced, "kind": k.kind,
                    "verbs": ["create", "delete", "get", "list", "patch", "update"]})
            })
            .collect();
        (!resources.is_empty()).then(|| {
            json!({"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": api_version, "resources": resources})
        })
    }

    /// `/version`'s answer: the build of the server, as a real one gives it.
    fn version_info(&self) -> Value {
        let mut parts = self.version.trim_start_matches('v').split('.');
        let (major, minor) = (parts.next(), parts.next());
        json!({
            "major": major.unwrap_or_default(),
            "minor": minor.unwrap_or_default(),
            "gitVersion": self.version,
            "gitCommit": "0000000000000000000000000000000000000000",
            "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z",
            "goVersion": "go1.25.0",
            "compiler": "gc",
            "platform": "linux/amd64",
        })
    }

    fn bump(&mut self) -> String {
        self.next_version += 1;
        self.next_version.to_string()
    }

    fn handle(&mut self, request: &Logged, route: Option<Route>) -> Answered {
        if request.verb == Verb::List
            && let Some(document) = self.discovery(&request.path)
        {
            return Ok((200, document));
        }
        if request.verb == Verb::List && request.path.trim_end_matches('/') == "/version" {
            return Ok((200, self.version_info()));
        }
        let Some(route) = route else {
            return Err(status(
                404,
                "NotFound",
                "the server could not find the requested resource",
                None,
            ));
        };
        let key = |name: &str| {
            (
                route.kind.resource,
                route.namespace.clone(),
                name.to_string(),
            )
        };
        let dry_run = request.dry_run();
        match (request.verb, &route.name) {
            (Verb::Get, Some(name)) => {
                let key = key(name);
                if !self.objects.contains_key(&key) {
                    return Err(not_found(&key));
                }
                Ok((200, self.render(&key)))
            }
            (Verb::List, _) => Ok((200, self.list(&route, request.query.get("labelSelector")))),
            (Verb::Patch, Some(name)) => {
                let apply = request
                    .content_type
                    .as_deref()
                    .is_some_and(|c| c.starts_with("application/apply-patch"));
                let merge = request
                    .content_type
                    .as_deref()
                    .is_some_and(|c| c.starts_with("application/merge-patch+json"));
                if merge {
                    let patch = request.body.clone().unwrap_or(Value::Null);
                    return self.merge_patch(&key(name), &patch, dry_run);
                }
                if !apply {
                    return Err(status(
                        415,
                        "UnsupportedMediaType",
                        "the fake API server only takes server-side apply and JSON merge patches",
                        None,
                    ));
                }
                let Some(manager) = request.query.get("fieldManager") else {
                    return Err(bad_request(
                        "PATCH requests of type apply must specify a fieldManager",
                    ));
                };
                let object = self.body_for(request, &route, name)?;
                let force = request.query.get("force").is_some_and(|f| f == "true");
                self.apply(&key(name), object, manager, force, dry_run)
            }
            (Verb::Create, None) => {
                let object = request.body.clone().ok_or_else(|| bad_request("no body"))?;
                let name = object["metadata"]["name"]
                    .as_str()
                    .ok_or_else(|| bad_request("metadata.name: Required value"))?
                    .to_string();
                let object = self.body_for(request, &route, &name)?;
                self.create(
                    &key(&name),
                    object,
                    request.query.get("fieldManager").map(String::as_str),
                    dry_run,
                )
            }
            (Verb::Update, Some(name)) => {
                let object = self.body_for(request, &route, name)?;
                self.replace(&key(name), object, dry_run)
            }
            (Verb::Delete, Some(name)) => self.delete(&key(name), request.body.as_ref(), dry_run),
            _ => Err(status(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
                None,
            )),
        }
    }

    /// The request's object, checked against the path and given the
    /// path's namespace.
    fn body_for(&self, request: &Logged, route: &Route, name: &str) -> Result<Value, Failure> {
        let mut object = request
            .body
            .clone()
            .filter(Value::is_object)
            .ok_or_else(|| bad_request("the body is not an object"))?;
        if object["metadata"]["name"] != name {
            return Err(bad_request(&format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                object["metadata"]["name"]
            )));
        }
        if let Some(ns) = &route.namespace {
            match object["metadata"]["namespace"].as_str() {
                None => object["metadata"]["namespace"] = json!(ns),
                Some(found) if found != ns => {
                    return Err(bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ));
                }
                Some(_) => {}
            }
        }
        if object.get("apiVersion").is_none() {
            object["apiVersion"] = json!(route.kind.api_version);
        }
        if object.get("kind").is_none() {
            object["kind"] = json!(route.kind.kind);
        }
        if object["apiVersion"] != route.kind.api_version || object["kind"] != route.kind.kind {
            return Err(bad_request(&format!(
                "the object is a {} {}, the URL names {}",
                object["apiVersion"], object["kind"], route.kind.plural
            )));
        }
        Ok(object)
    }

    fn list(&self, route: &Route, selector: Option<&String>) -> Value {
        let selector = selector.map(|s| parse_selector(s)).unwrap_or_default();
        let items: Vec<Value> = self
            .objects
            .iter()
            .filter(|((plural, ns, _), stored)| {
                *plural == route.kind.resource
                    && (route.namespace.is_none() || ns == &route.namespace)
                    && selector.iter().all(|r| r.matches(&stored.object))
            })
            .map(|(key, _)| {
                // Items of a list come without their apiVersion and kind.
                let mut item = self.render(key);
                if let Some(item) = item.as_object_mut() {
                    item.remove("apiVersion");
                    item.remove("kind");
                }
                item
            })
            .collect();
        json!({
            "apiVersion": route.kind.api_version,
            "kind": format!("{}List", route.kind.kind),
            "metadata": {"resourceVersion": self.next_version.to_string()},
            "items": items,
        })
    }

    /// A namespaced object needs its namespace; one being deleted takes
    /// nothing new.
    fn check_namespace(&self, key: &Key) -> Result<(), Failure> {
        let Some(ns) = &key.1 else {
            return Ok(());
        };
        let ns_key: Key = ("namespaces", None, ns.clone());
        match self.objects.get(&ns_key) {
            None => Err(not_found(&ns_key)),
            Some(stored) if !stored.object["metadata"]["deletionTimestamp"].is_null() => {
                Err(status(
                    403,
                    "Forbidden",
                    &format!(
                        "{} \"{}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                        key.0, key.2
                    ),
                    None,
                ))
            }
            Some(_) => Ok(()),
        }
    }

    /// A new object as the server stores it: identity, versions, defaults.
    fn create_object(
        &mut self,
        mut object: Value,
        manager: Option<(&str, &'static str)>,
    ) -> Stored {
        self.next_uid += 1;
        let uid = format!("00000000-0000-4000-8000-{:012}", self.next_uid);
        let mut managers = BTreeMap::new();
        if let Some((manager, operation)) = manager {
            managers.insert(
                manager.to_string(),
                Manager {
                    operation,
                    fields: owned_fields(&object),
                },
            );
        }
        let meta = &mut object["metadata"];
        meta["uid"] = json!(uid);
        meta["generation"] = json!(1);
        meta["creationTimestamp"] = json!(now());
        if let Some(meta) = meta.as_object_mut() {
            meta.remove("managedFields");
            meta.remove("resourceVersion");
        }
        if object["kind"] == "Namespace" {
            object["status"] = json!({"phase": "Active"});
        } else if let Some(root) = object.as_object_mut() {
            root.remove("status");
        }
        Stored { object, managers }
    }

    fn apply(
        &mut self,
        key: &Key,
        applied: Value,
        manager: &str,
        force: bool,
        dry_run: bool,
    ) -> Answered {
        let Some(stored) = self.objects.get(key).cloned() else {
            self.check_namespace(key)?;
            let mut created = self.create_object(applied, Some((manager, "Apply")));
            self.admit(key, &mut created.object, None)?;
            return Ok((201, self.commit(key, created, dry_run)));
        };
        let mut applied = applied;
        if let Some(root) = applied.as_object_mut() {
            root.remove("status");
        }
        if let Some(meta) = applied["metadata"].as_object_mut() {
            meta.remove("resourceVersion");
            meta.remove("managedFields");
        }
        self.check_immutable(key, &stored.object, &applied)?;

        let fields = owned_fields(&applied);
        let mut conflicts = Vec::new();
        for (other, owned) in &stored.managers {
            if other == manager {
                continue;
            }
            for path in owned.fields.intersection(&fields) {
                if at(&stored.object, path) != at(&applied, path) {
                    conflicts.push((other.clone(), path.clone()));
                }
            }
        }
        if !conflicts.is_empty() && !force {
            return Err(conflict_status(
                self.kind_of_key(key).api_version,
                &conflicts,
            ));
        }

        let mut next = stored.clone();
        for (other, path) in &conflicts {
            if let Some(owner) = next.managers.get_mut(other) {
                owner.fields.remove(path);
            }
        }
        next.managers.retain(|_, m| !m.fields.is_empty());
        let previous = next
            .managers
            .insert(
                manager.to_string(),
                Manager {
                    operation: "Apply",
                    fields: fields.clone(),
                },
            )
            .map(|m| m.fields)
            .unwrap_or_default();
        merge(&mut next.object, &applied);
        // A field this manager applied before and no longer applies goes,
        // unless another manager owns it too.
        for path in previous.difference(&fields) {
            let shared = next
                .managers
                .iter()
                .any(|(m, owned)| m != manager && owned.fields.contains(path));
            if !shared {
                remove(&mut next.object, path);
            }
        }
        self.admit(key, &mut next.object, Some(&stored.object))?;
        let unchanged = next.object == stored.object
            && next.managers.len() == stored.managers.len()
            && next
                .managers
                .iter()
                .all(|(m, f)| stored.managers.get(m).is_some_and(|s| s.fields == f.fields));
        if unchanged {
            return Ok((200, self.render(key)));
        }
        if next.object["spec"] != stored.object["spec"] {
            let generation = stored.object["metadata"]["generation"]
                .as_i64()
                .unwrap_or(1);
            next.object["metadata"]["generation"] = json!(generation + 1);
        }
        Ok((200, self.commit(key, next, dry_run)))
    }

    fn create(
        &mut self,
        key: &Key,
        object: Value,
        manager: Option<&str>,
        dry_run: bool,
    ) -> Answered {
        if self.objects.contains_key(key) {
            return Err(status(
                409,
                "AlreadyExists",
                &format!("{} \"{}\" already exists", key.0, key.2),
                Some(json!({"name": key.2, "kind": key.0})),
            ));
        }
        self.check_namespace(key)?;
        let mut created =
            self.create_object(object, Some((manager.unwrap_or("kube-client"), "Update")));
        self.admit(key, &mut created.object, None)?;
        Ok((201, self.commit(key, created, dry_run)))
    }

    /// A JSON merge patch (RFC 7386); a resourceVersion in it is a
    /// precondition, as on a real server.
    fn merge_patch(&mut self, key: &Key, patch: &Value, dry_run: bool) -> Answered {
        let Some(stored) = self.objects.get(key).cloned() else {
            return Err(not_found(key));
        };
        let sent = patch["metadata"]["resourceVersion"].as_str();
        if sent.is_some() && sent != stored.object["metadata"]["resourceVersion"].as_str() {
            return Err(modified(key));
        }
        let mut next = stored.clone();
        merge_patch_into(&mut next.object, patch);
        for field in ["uid", "creationTimestamp", "generation", "resourceVersion"] {
            next.object["metadata"][field] = stored.object["metadata"][field].clone();
        }
        Ok((200, self.commit(key, next, dry_run)))
    }

    fn replace(&mut self, key: &Key, object: Value, dry_run: bool) -> Answered {
        let Some(stored) = self.objects.get(key).cloned() else {
            return Err(not_found(key));
        };
        let sent = object["metadata"]["resourceVersion"].as_str();
        let current = stored.object["metadata"]["resourceVersion"].as_str();
        if sent.is_some() && sent != current {
            return Err(modified(key));
        }
        if stored.object["immutable"] == true && stored.object["data"] != object["data"] {
            return Err(status(
                422,
                "Invalid",
                &format!(
                    "{} \"{}\" is invalid: data: Forbidden: field is immutable when `immutable` is set",
                    self.kind_of_key(key).kind,
                    key.2
                ),
                None,
            ));
        }
        let mut next = stored.clone();
        next.object = object;
        let meta = &mut next.object["metadata"];
        for field in [
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
        ] {
            meta[field] = stored.object["metadata"][field].clone();
        }
        if let Some(meta) = meta.as_object_mut() {
            meta.remove("managedFields");
            meta.retain(|_, v| !v.is_null());
        }
        next.object["status"] = stored.object["status"].clone();
        if let Some(root) = next.object.as_object_mut() {
            root.retain(|_, v| !v.is_null());
        }
        self.admit(key, &mut next.object, Some(&stored.object))?;
        if next.object["spec"] != stored.object["spec"] {
            let generation = stored.object["metadata"]["generation"]
                .as_i64()
                .unwrap_or(1);
            next.object["metadata"]["generation"] = json!(generation + 1);
        }
        Ok((200, self.commit(key, next, dry_run)))
    }

    fn delete(&mut self, key: &Key, options: Option<&Value>, dry_run: bool) -> Answered {
        let Some(stored) = self.objects.get(key).cloned() else {
            return Err(not_found(key));
        };
        let preconditions = options.map(|o| &o["preconditions"]);
        for (field, label) in [("uid", "UID"), ("resourceVersion", "ResourceVersion")] {
            let wanted = preconditions.and_then(|p| p[field].as_str());
            let found = stored.object["metadata"][field]
                .as_str()
                .unwrap_or_default();
            if let Some(wanted) = wanted
                && wanted != found
            {
                return Err(status(
                    409,
                    "Conflict",
                    &format!(
                        "Operation cannot be fulfilled on {} \"{}\": Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {found}",
                        key.0, key.2
                    ),
                    Some(json!({"name": key.2, "kind": key.0})),
                ));
            }
        }
        let rendered = self.render(key);
        if dry_run {
            return Ok((200, rendered));
        }
        let finalizers = stored.object["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if finalizers {
            if stored.object["metadata"]["deletionTimestamp"].is_null() {
                let version = self.bump();
                let object = &mut self.objects.get_mut(key).expect("checked above").object;
                object["metadata"]["deletionTimestamp"] = json!(now());
                object["metadata"]["resourceVersion"] = json!(version);
            }
            return Ok((200, self.render(key)));
        }
        self.objects.remove(key);
        if key.0 == "namespaces" {
            self.objects
                .retain(|(_, ns, _), _| ns.as_deref() != Some(&key.2));
        }
        self.bump();
        // A real server holds an object deleted in the foreground until its
        // dependents are gone (this one has none to wait for), answering
        // with the object marked for deletion; one deleted at once it
        // answers with a `Status`, or for Services and pods with the
        // object as it was.
        let foreground = options.is_some_and(|o| o["propagationPolicy"] == "Foreground");
        if foreground {
            let mut marked = rendered;
            marked["metadata"]["deletionTimestamp"] = json!(now());
            marked["metadata"]["finalizers"] = json!(["foregroundDeletion"]);
            return Ok((200, marked));
        }
        if key.0 == "pods" || key.0 == "services" {
            return Ok((200, rendered));
        }
        let uid = rendered["metadata"]["uid"].clone();
        Ok((
            200,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": key.2, "kind": key.0, "uid": uid}}),
        ))
    }

    /// Checks and defaults an object about to be stored, as admission and
    /// validation would: node ports are allocated cluster-wide.
    fn admit(
        &mut self,
        key: &Key,
        object: &mut Value,
        before: Option<&Value>,
    ) -> Result<(), Failure> {
        if key.0 != "services" {
            return Ok(());
        }
        let spec = &mut object["spec"];
        if spec["clusterIP"].is_null() {
            spec["clusterIP"] = match before {
                Some(before) => before["spec"]["clusterIP"].clone(),
                None => json!(format!("10.96.0.{}", 10 + self.next_uid % 200)),
            };
        }
        if spec["type"].is_null() {
            spec["type"] = json!("ClusterIP");
        }
        if !matches!(spec["type"].as_str(), Some("NodePort" | "LoadBalancer")) {
            return Ok(());
        }
        let held: BTreeSet<i64> = self
            .objects
            .iter()
            .filter(|((plural, _, _), _)| *plural == "services")
            .filter(|(k, _)| *k != key)
            .flat_map(|(_, s)| crate::nodeports::node_ports(&s.object))
            .collect();
        let Some(ports) = spec["ports"].as_array_mut() else {
            return Ok(());
        };
        for (i, port) in ports.iter_mut().enumerate() {
            if port["nodePort"].is_null() {
                let kept = before.map(|b| b["spec"]["ports"][i]["nodePort"].clone());
                port["nodePort"] = match kept {
                    Some(kept) if kept.is_i64() => kept,
                    _ => json!(
                        (30000..=32767)
                            .find(|p| !held.contains(p))
                            .expect("a free node port")
                    ),
                };
                continue;
            }
            let wanted = port["nodePort"].as_i64().unwrap_or_default();
            let problem = if !(30000..=32767).contains(&wanted) {
                Some(
                    "provided port is not in the valid range. The range of valid ports is 30000-32767",
                )
            } else if held.contains(&wanted) {
                Some("provided port is already allocated")
            } else {
                None
            };
            if let Some(problem) = problem {
                let field = format!("spec.ports[{i}].nodePort");
                return Err(invalid(
                    key,
                    "Service",
                    &field,
                    &format!("Invalid value: {wanted}: {problem}"),
                ));
            }
        }
        Ok(())
    }

    fn check_immutable(&self, key: &Key, stored: &Value, applied: &Value) -> Result<(), Failure> {
        let kind = self.kind_of_key(key).kind;
        for (k, path) in &self.immutable {
            if k != kind {
                continue;
            }
            if let (Some(old), Some(new)) = (at(stored, path), at(applied, path))
                && old != new
            {
                let field = render_path(path).trim_start_matches('.').to_string();
                return Err(invalid(
                    key,
                    kind,
                    &field,
                    &format!("Invalid value: {new}: field is immutable"),
                ));
            }
        }
        Ok(())
    }

    /// Stores `stored` under a new resourceVersion (unless a dry run) and
    /// returns it as rendered.
    fn commit(&mut self, key: &Key, mut stored: Stored, dry_run: bool) -> Value {
        if dry_run {
            return render(&stored);
        }
        let version = self.bump();
        stored.object["metadata"]["resourceVersion"] = json!(version);
        self.objects.insert(key.clone(), stored);
        self.render(key)
    }

    fn render(&self, key: &Key) -> Value {
        render(&self.objects[key])
    }
}

/// Merges `patch` into `target` as RFC 7386 says: null removes a key.
fn merge_patch_into(target: &mut Value, patch: &Value) {
    let Some(fields) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let object = target.as_object_mut().expect("an object");
    for (key, value) in fields {
        if value.is_null() {
            object.remove(key);
        } else {
            merge_patch_into(object.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

/// The object with managedFields as the server shows them.
fn render(stored: &Stored) -> Value {
    let mut object = stored.object.clone();
    let entries: Vec<Value> = stored
        .managers
        .iter()
        .map(|(manager, m)| {
            json!({
                "manager": manager,
                "operation": m.operation,
                "apiVersion": object["apiVersion"],
                "time": object["metadata"]["creationTimestamp"],
                "fieldsType": "FieldsV1",
                "fieldsV1": fields_v1(&m.fields),
            })
        })
        .collect();
    if !entries.is_empty() {
        object["metadata"]["managedFields"] = Value::Array(entries);
    }
    object
}

fn now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}
