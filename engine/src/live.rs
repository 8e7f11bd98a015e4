//! The live objects a run compares against, read with one list per kind and
//! namespace rather than one GET per object: for a stack of a thousand
//! objects that is three requests instead of a thousand.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use futures::{StreamExt, stream};
use serde_json::{Map, Value};

use super::error::EngineError;
use super::resource::ResourceId;
use crate::cluster::{Cluster, ClusterError};
use crate::proof::Owned;

/// Live objects by identity; an id that is absent does not exist.
///
/// The field set of this stack's own `Apply` entry in `managedFields` is
/// kept as digests ([`Live::owned`]) and dropped from the object: it is
/// what proves an object unchanged, nothing else reads it, and in a large
/// stack it would hold more memory than the rest of the objects. What no
/// plan reads of the rest is dropped too (see [`slim`]).
#[derive(Debug, Default)]
pub struct Live {
    objects: HashMap<ResourceId, Entry>,
    owned: HashMap<ResourceId, Owned>,
}

/// One live object, kept as its head (see [`Live::head`]) and its whole as
/// compact JSON, which is parsed when a plan first reads more than the
/// head. A proven object's plan reads only its head, and a parsed object
/// takes about ten times its JSON in memory, mostly in its many small maps:
/// a stack of thousands keeps a fraction of that.
#[derive(Debug)]
struct Entry {
    head: Value,
    text: Box<str>,
    whole: OnceLock<Value>,
}

/// The top-level fields a head keeps.
const HEAD: [&str; 3] = ["apiVersion", "kind", "type"];
/// The fields of `metadata` a head keeps.
const HEAD_METADATA: [&str; 6] = [
    "name",
    "namespace",
    "uid",
    "labels",
    "deletionTimestamp",
    "ownerReferences",
];

impl Entry {
    fn new(object: Value) -> Entry {
        let text = object.to_string().into_boxed_str();
        Entry {
            head: head_of(object),
            text,
            whole: OnceLock::new(),
        }
    }

    fn whole(&self) -> &Value {
        self.whole.get_or_init(|| self.parse())
    }

    fn parse(&self) -> Value {
        serde_json::from_str(&self.text).expect("a value's own JSON text parses")
    }
}

impl Live {
    /// Reads the objects named by `ids`, with one list per kind and
    /// namespace; cluster-scoped objects are read by name. The lists also
    /// bring in the kind's other objects of that namespace, which is how a
    /// preview finds objects of the stack its state does not record.
    /// Credentials that may not list fall back to reading by name.
    pub async fn read<'a>(
        cluster: &Cluster,
        ids: impl IntoIterator<Item = &'a ResourceId>,
    ) -> Result<Live, EngineError> {
        let mut groups: BTreeMap<(&str, &str, Option<&str>), Vec<&ResourceId>> = BTreeMap::new();
        for id in ids {
            groups
                .entry((&id.api_version, &id.kind, id.namespace.as_deref()))
                .or_default()
                .push(id);
        }
        // Groups are read concurrently: a stack spread over many kinds and
        // namespaces waits for its slowest list, not for their sum.
        let reads: Vec<_> = groups
            .into_values()
            .map(|members| read_group(cluster, members))
            .collect();
        let mut live = Live::default();
        let mut results = stream::iter(reads).buffer_unordered(LIST_CONCURRENCY);
        while let Some(objects) = results.next().await {
            for (id, entry, owned) in objects? {
                if let Some(owned) = owned {
                    live.owned.insert(id.clone(), owned);
                }
                live.objects.insert(id, entry);
            }
        }
        Ok(live)
    }

    /// What this stack's field manager owns of the object, as digests, when
    /// it applied the object.
    pub fn owned(&self, id: &ResourceId) -> Option<&Owned> {
        self.owned.get(id)
    }

    /// The object as read, or `None` when it does not exist (or was not read).
    pub fn get(&self, id: &ResourceId) -> Option<&Value> {
        self.objects.get(id).map(Entry::whole)
    }

    /// [`Live::get`], parsed anew and not kept: for a plan that reads each
    /// object once, so that a stack of thousands never holds them all.
    pub fn parsed(&self, id: &ResourceId) -> Option<Value> {
        let entry = self.objects.get(id)?;
        Some(match entry.whole.get() {
            Some(whole) => whole.clone(),
            None => entry.parse(),
        })
    }

    /// What says who the object is and whose: its `apiVersion`, `kind` and
    /// `type`, and of its metadata the name, namespace, uid, labels,
    /// deletion timestamp and owner references. Far cheaper than
    /// [`Live::get`] where nothing else is read.
    pub fn head(&self, id: &ResourceId) -> Option<&Value> {
        self.objects.get(id).map(|entry| &entry.head)
    }

    /// Every object read, in no particular order.
    pub fn objects(&self) -> impl Iterator<Item = (&ResourceId, &Value)> {
        self.objects.iter().map(|(id, entry)| (id, entry.whole()))
    }

    /// Every object read, as its head (see [`Live::head`]), in no
    /// particular order.
    pub fn heads(&self) -> impl Iterator<Item = (&ResourceId, &Value)> {
        self.objects.iter().map(|(id, entry)| (id, &entry.head))
    }
}

/// How many lists are read at once.
const LIST_CONCURRENCY: usize = 8;

/// The objects of one kind in one namespace (or cluster-scoped ones by
/// name), with one list where the credentials allow it; `members` are
/// never empty, and share their kind and namespace.
async fn read_group(
    cluster: &Cluster,
    members: Vec<&ResourceId>,
) -> Result<Vec<Read>, EngineError> {
    let field_manager = cluster.identity().field_manager();
    // Each object becomes an entry as it is parsed, so that a group never
    // holds its objects parsed all at once.
    let read = |mut object: Value| {
        let id = ResourceId::of(&object)?;
        let owned = Owned::take(&mut object, field_manager);
        slim(&mut object);
        Some((id, Entry::new(object), owned))
    };
    let mut found = Vec::new();
    let first = members[0];
    if first.namespace.is_some() {
        match cluster
            .list_each(
                &first.api_version,
                &first.kind,
                first.namespace.as_deref(),
                None,
                |object| found.extend(read(object)),
            )
            .await
        {
            Ok(()) => return Ok(found),
            Err(ClusterError::Forbidden { .. }) => found.clear(),
            Err(e) => return Err(e.into()),
        }
    }
    for id in members {
        if let Some(mut object) = cluster.get(id).await? {
            let owned = Owned::take(&mut object, field_manager);
            slim(&mut object);
            found.push((id.clone(), Entry::new(object), owned));
        }
    }
    Ok(found)
}

/// The head of `object`: its [`HEAD`] fields, and of its metadata the
/// [`HEAD_METADATA`] fields, moved out of it.
fn head_of(object: Value) -> Value {
    let Value::Object(mut root) = object else {
        return object;
    };
    let mut head = Map::new();
    for field in HEAD {
        if let Some(value) = root.remove(field) {
            head.insert(field.to_string(), value);
        }
    }
    if let Some(Value::Object(mut meta)) = root.remove("metadata") {
        let kept: Map<String, Value> = HEAD_METADATA
            .iter()
            .filter_map(|field| Some((field.to_string(), meta.remove(*field)?)))
            .collect();
        head.insert("metadata".to_string(), Value::Object(kept));
    }
    Value::Object(head)
}

/// Drops from a live object the field sets of other managers, of which a
/// plan only names the managers. The status stays: programs read it
/// (a Deployment's ready replicas as an output), and so do the checks of a
/// CustomResourceDefinition.
fn slim(object: &mut Value) {
    let entries = object
        .get_mut("metadata")
        .and_then(|meta| meta.get_mut("managedFields"))
        .and_then(Value::as_array_mut);
    for entry in entries.into_iter().flatten() {
        if let Some(entry) = entry.as_object_mut() {
            entry.remove("fieldsV1");
        }
    }
}

/// An object read, by id, with what this stack owns of it.
type Read = (ResourceId, Entry, Option<Owned>);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn listed() -> Value {
        json!({
            "metadata": {"name": "x", "managedFields": [
                {"manager": "kube-controller-manager", "operation": "Update",
                 "subresource": "status", "fieldsV1": {"f:status": {"f:replicas": {}}}},
            ]},
            "spec": {"replicas": 3},
            "status": {"replicas": 3, "storedVersions": ["v1"]},
        })
    }

    #[test]
    fn a_slim_object_keeps_its_status_and_the_managers_names() {
        let mut deployment = listed();
        slim(&mut deployment);
        assert_eq!(deployment["status"]["replicas"], 3);
        assert_eq!(deployment["spec"]["replicas"], 3);
        let entry = &deployment["metadata"]["managedFields"][0];
        assert_eq!(entry["manager"], "kube-controller-manager");
        assert!(entry.get("fieldsV1").is_none());
    }

    #[test]
    fn an_entry_keeps_a_head_and_gives_the_whole_object_back() {
        let object = json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "x", "namespace": "ns", "uid": "u",
                         "labels": {"a": "b"}, "resourceVersion": "7",
                         "managedFields": [{"manager": "m"}]},
            "data": {"k": "dg=="},
        });
        let entry = Entry::new(object.clone());
        assert_eq!(
            entry.head,
            json!({
                "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": "x", "namespace": "ns", "uid": "u",
                             "labels": {"a": "b"}},
            })
        );
        assert_eq!(entry.whole(), &object);
    }
}
