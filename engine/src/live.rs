//! The live objects a run compares against, read with one list per kind and
//! namespace rather than one GET per object: for a stack of a thousand
//! objects that is three requests instead of a thousand.

use std::collections::{BTreeMap, HashMap};

use futures::{StreamExt, stream};
use serde_json::Value;

use super::error::EngineError;
use super::resource::ResourceId;
use crate::cluster::{Cluster, ClusterError};
use crate::proof::Owned;

/// Live objects by identity; an id that is absent does not exist.
///
/// The field set of this stack's own `Apply` entry in `managedFields` is
/// kept as digests ([`Live::owned`]) and dropped from the object: it is
/// what proves an object unchanged, nothing else reads it, and in a large
/// stack it would hold more memory than the rest of the objects.
#[derive(Debug, Default)]
pub struct Live {
    objects: HashMap<ResourceId, Value>,
    owned: HashMap<ResourceId, Owned>,
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
            for (id, object, owned) in objects? {
                if let Some(owned) = owned {
                    live.owned.insert(id.clone(), owned);
                }
                live.objects.insert(id, object);
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
        self.objects.get(id)
    }

    /// Every object read, in no particular order.
    pub fn objects(&self) -> impl Iterator<Item = (&ResourceId, &Value)> {
        self.objects.iter()
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
    let read = |mut object: Value| {
        let id = ResourceId::of(&object)?;
        let owned = Owned::take(&mut object, field_manager);
        Some((id, object, owned))
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
            found.push((id.clone(), object, owned));
        }
    }
    Ok(found)
}

/// An object read, by id, with what this stack owns of it.
type Read = (ResourceId, Value, Option<Owned>);
