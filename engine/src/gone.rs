//! Waiting until deleted objects are gone, for every delete of a run at
//! once: each poll lists each kind and namespace that holds an object
//! waited for once, however many objects wait there, so that a wait costs
//! a few requests per poll whatever the size of the stack, where a read of
//! each object by name would cost one request per object per poll. A kind
//! these credentials may not list is read by name instead.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::convert::Infallible;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use futures::{StreamExt, stream};
use serde_json::Value;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use crate::Cancel;
use crate::cluster::{Cluster, ClusterError};
use crate::error::EngineError;
use crate::ready::Poll;
use crate::resource::ResourceId;

/// Polls come no closer together than this, so that objects deleted
/// moments apart share one list rather than each starting a poll.
const ROUND_GAP: Duration = Duration::from_millis(50);
/// Lists sent at once in one poll.
const LISTS_AT_ONCE: usize = 8;
/// Reads by name sent at once in one poll, for kinds that may not be
/// listed.
const READS_AT_ONCE: usize = 16;

/// What one list reads: apiVersion, kind and namespace.
type Group = (String, String, Option<String>);

/// The objects one list found, by name: their uid and finalizers.
type ByName = HashMap<String, Value>;

/// The objects a run has deleted and waits for, polled together. Waits
/// ([`GoneWatcher::wait_gone`]) are answered only while
/// [`GoneWatcher::run`] is polled beside them.
pub(crate) struct GoneWatcher<'a> {
    cluster: &'a Cluster,
    /// How long each object is waited for, from its delete.
    timeout: Duration,
    cancel: &'a Cancel,
    waiting: Mutex<Waiting>,
    /// Wakes the poll loop when a wait begins: it may be due sooner than
    /// the next poll planned.
    registered: Notify,
}

#[derive(Default)]
struct Waiting {
    next_key: u64,
    waiters: BTreeMap<u64, Waiter>,
}

struct Waiter {
    id: ResourceId,
    /// The deleted object's uid: an object of the same name with another
    /// uid was created since, and the deleted one is gone.
    uid: String,
    deadline: Instant,
    /// When it wants to be looked at next.
    due: Instant,
    poll: Poll,
    answer: oneshot::Sender<Result<(), EngineError>>,
}

impl Waiter {
    fn group(&self) -> Group {
        (
            self.id.api_version.clone(),
            self.id.kind.clone(),
            self.id.namespace.clone(),
        )
    }
}

/// What one poll found of one object.
enum Seen {
    Gone,
    /// Still there, with these finalizers.
    There(Value),
}

impl Seen {
    fn of(live: Option<&Value>, uid: &str) -> Seen {
        match live {
            Some(live) if live["metadata"]["uid"].as_str() == Some(uid) => {
                Seen::There(live["metadata"]["finalizers"].clone())
            }
            _ => Seen::Gone,
        }
    }
}

impl<'a> GoneWatcher<'a> {
    pub(crate) fn new(cluster: &'a Cluster, timeout: Duration, cancel: &'a Cancel) -> Self {
        GoneWatcher {
            cluster,
            timeout,
            cancel,
            waiting: Mutex::new(Waiting::default()),
            registered: Notify::new(),
        }
    }

    /// Waits until the object `id` with `uid`, whose delete was just sent,
    /// is gone: not found, or replaced by an object with another uid.
    /// Fails with [`EngineError::NotGone`], naming its finalizers, once the
    /// timeout runs out, and with [`EngineError::Interrupted`] when the run
    /// is cancelled while it is still there (the delete is journaled as
    /// pending, so the next run waits for the rest; a namespace can take
    /// minutes, too long to hold an interrupted run for).
    pub(crate) async fn wait_gone(&self, id: &ResourceId, uid: &str) -> Result<(), EngineError> {
        let (answer, answered) = oneshot::channel();
        let now = Instant::now();
        let mut poll = Poll::new();
        let waiter = Waiter {
            id: id.clone(),
            uid: uid.to_string(),
            deadline: now + self.timeout,
            due: now + poll.next_interval(),
            poll,
            answer,
        };
        {
            let mut waiting = self.lock();
            let key = waiting.next_key;
            waiting.next_key += 1;
            waiting.waiters.insert(key, waiter);
        }
        self.registered.notify_one();
        answered
            .await
            .expect("the watcher answers every wait before it is dropped")
    }

    /// Polls for as long as it is polled itself: whenever a waiting object
    /// is due, one round reads every object due and answers those gone.
    /// At once, and then for every wait that begins, once the run is
    /// cancelled.
    pub(crate) async fn run(&self) -> Infallible {
        let mut unlisted: HashSet<Group> = HashSet::new();
        let mut last_round: Option<Instant> = None;
        loop {
            let next_due = self.lock().waiters.values().map(|w| w.due).min();
            let Some(due) = next_due else {
                self.registered.notified().await;
                continue;
            };
            if !self.cancel.is_cancelled() {
                let at = last_round.map_or(due, |last| due.max(last + ROUND_GAP));
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = self.cancel.cancelled() => {}
                    _ = self.registered.notified() => continue,
                }
            }
            last_round = Some(Instant::now());
            self.round(&mut unlisted).await;
        }
    }

    /// Reads what is due: each group with an object due is listed once
    /// (which looks at every object waited for in it), unless it is in
    /// `unlisted`, whose due objects are read by name. A group whose list
    /// is refused joins `unlisted`.
    async fn round(&self, unlisted: &mut HashSet<Group>) {
        let cancelled = self.cancel.is_cancelled();
        let now = Instant::now();
        // Waiter keys and what to look for, taken out of the lock.
        let mut lists: BTreeMap<Group, Vec<(u64, String, String)>> = BTreeMap::new();
        let mut reads: Vec<(u64, ResourceId, String)> = Vec::new();
        {
            let waiting = self.lock();
            let due: BTreeSet<Group> = waiting
                .waiters
                .values()
                .filter(|w| cancelled || w.due <= now)
                .map(Waiter::group)
                .collect();
            for (key, waiter) in &waiting.waiters {
                let group = waiter.group();
                if !due.contains(&group) {
                    continue;
                }
                if !unlisted.contains(&group) {
                    lists.entry(group).or_default().push((
                        *key,
                        waiter.id.name.clone(),
                        waiter.uid.clone(),
                    ));
                } else if cancelled || waiter.due <= now {
                    reads.push((*key, waiter.id.clone(), waiter.uid.clone()));
                }
            }
        }

        // Of each listed object only its metadata is sent, and only its
        // name, uid and finalizers are kept: a poll of a thousand
        // Deployments being deleted reads a thousand of them.
        let listed: Vec<(Group, Result<ByName, ClusterError>)> =
            stream::iter(lists.keys().map(|group| async move {
                let (api_version, kind, namespace) = group;
                let mut objects = HashMap::new();
                let listed = self
                    .cluster
                    .list_metadata_each(api_version, kind, namespace.as_deref(), None, |mut o| {
                        let metadata = &mut o["metadata"];
                        if let Some(name) = metadata["name"].as_str().map(str::to_string) {
                            let kept = serde_json::json!({"metadata": {
                                "uid": metadata["uid"].take(),
                                "finalizers": metadata["finalizers"].take(),
                            }});
                            objects.insert(name, kept);
                        }
                    })
                    .await;
                (group.clone(), listed.map(|()| objects))
            }))
            .buffer_unordered(LISTS_AT_ONCE)
            .collect()
            .await;
        let mut found: Vec<(u64, Result<Seen, ClusterError>)> = Vec::new();
        for (group, objects) in listed {
            let waiters = lists.remove(&group).unwrap_or_default();
            match objects {
                Ok(by_name) => {
                    for (key, name, uid) in waiters {
                        found.push((key, Ok(Seen::of(by_name.get(&name), &uid))));
                    }
                }
                Err(error) => {
                    // Credentials that may read objects by name but not
                    // list them: by name from now on. Any other failure
                    // is told by each object's own read, as it would be
                    // without the list.
                    if matches!(error, ClusterError::Forbidden { .. }) {
                        unlisted.insert(group.clone());
                    }
                    let (api_version, kind, namespace) = group;
                    for (key, name, uid) in waiters {
                        let id = ResourceId::new(&api_version, &kind, namespace.as_deref(), &name);
                        reads.push((key, id, uid));
                    }
                }
            }
        }
        let read: Vec<(u64, Result<Seen, ClusterError>)> =
            stream::iter(reads.into_iter().map(|(key, id, uid)| async move {
                let seen = self
                    .cluster
                    .get(&id)
                    .await
                    .map(|live| Seen::of(live.as_ref(), &uid));
                (key, seen)
            }))
            .buffer_unordered(READS_AT_ONCE)
            .collect()
            .await;
        found.extend(read);

        let now = Instant::now();
        let mut waiting = self.lock();
        for (key, seen) in found {
            let result = match seen {
                Ok(Seen::Gone) => Ok(()),
                Err(error) => Err(error.into()),
                Ok(Seen::There(_)) if cancelled => Err(EngineError::Interrupted),
                Ok(Seen::There(finalizers)) => {
                    let waiter = waiting
                        .waiters
                        .get_mut(&key)
                        .expect("only the poll loop takes waiters out");
                    if now < waiter.deadline {
                        waiter.due = now + waiter.poll.next_interval();
                        continue;
                    }
                    Err(EngineError::NotGone {
                        id: waiter.id.to_string(),
                        timeout: humantime::format_duration(self.timeout).to_string(),
                        finalizers: finalizers.to_string(),
                    })
                }
            };
            let waiter = waiting
                .waiters
                .remove(&key)
                .expect("only the poll loop takes waiters out");
            // A wait whose step was dropped has nobody to tell.
            let _ = waiter.answer.send(result);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().expect("never poisoned")
    }
}
