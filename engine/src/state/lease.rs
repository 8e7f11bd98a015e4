//! The stack's lock in the cluster: a `coordination.k8s.io/v1` Lease
//! `echo-iac-lock-<stack>` that the holder renews every 5 s for 15 s.
//!
//! A holder that dies simply stops renewing, and the lease runs out: no
//! unlock command exists or is needed. A holder that is frozen (SIGSTOP, a
//! suspended laptop, a network cut) may wake up after someone else took the
//! lease over, so it fences itself: [`LeaseLock::check`] fails once the
//! lease may have run out, measured on both the monotonic and the wall
//! clock (the monotonic one stops while a machine sleeps), and every
//! mutating request and state write calls it first. The state write's own
//! resourceVersion precondition catches what slips between the check and
//! the write.
//!
//! Every takeover and renewal is a write conditional on the resourceVersion
//! last seen, so two runs can never both believe they hold the lease.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{DeleteParams, PostParams, Preconditions};

use super::{LockHolder, StateError};
use crate::ResourceId;
use crate::cluster::{Cluster, ClusterError};
use crate::identity::Identity;

/// How long a lease lasts without renewal.
pub(crate) const LEASE_DURATION: Duration = Duration::from_secs(15);
/// How often the holder renews it.
pub(crate) const RENEW_EVERY: Duration = Duration::from_secs(5);
/// The holder counts its lease as lost this long before it runs out, so a
/// request it starts just before then still lands while the lease is its.
const SAFETY_MARGIN: Duration = Duration::from_secs(2);
/// How long one renewal may take before it counts as failed.
const RENEW_TIMEOUT: Duration = Duration::from_secs(4);
/// The annotation holding the holder's details as JSON.
fn holder_annotation(identity: &Identity) -> String {
    identity.key("holder")
}

pub(crate) fn lease_name(identity: &Identity, stack: &str) -> String {
    format!("{}-lock-{stack}", identity.name())
}

/// What the holder and its renewal task share.
#[derive(Debug)]
struct Shared {
    /// Set once the lease is known to be someone else's, with why.
    lost: Mutex<Option<String>>,
    /// Until when the lease is surely this run's, by both clocks.
    valid_until: Mutex<(Instant, SystemTime)>,
    /// The lease as last written by this run.
    lease: Mutex<Lease>,
}

/// The fence a store checks before writing: a handle on the holder's
/// lease that stays valid after the lock itself moved elsewhere.
#[derive(Clone, Debug)]
pub(crate) struct Fence {
    shared: Arc<Shared>,
    stack: String,
    location: String,
}

impl Fence {
    pub fn check(&self) -> Result<(), StateError> {
        let lost = |reason: String| StateError::LockLost {
            stack: self.stack.clone(),
            location: self.location.clone(),
            reason,
        };
        if let Some(reason) = self.shared.lost.lock().expect("never poisoned").clone() {
            return Err(lost(reason));
        }
        let (mono, wall) = *self.shared.valid_until.lock().expect("never poisoned");
        if Instant::now() >= mono || SystemTime::now() >= wall {
            return Err(lost(format!(
                "its lease was not renewed within {}s (the process was paused or the API server unreachable)",
                LEASE_DURATION.as_secs()
            )));
        }
        Ok(())
    }
}

/// A held Lease. Dropping it stops the renewals, and the lease runs out;
/// [`LeaseLock::release`] gives it back at once.
pub(crate) struct LeaseLock {
    holder: LockHolder,
    fence: Fence,
    cluster: Cluster,
    namespace: String,
    renewer: Option<tokio::task::JoinHandle<()>>,
}

/// What a look at the Lease found.
pub(crate) enum Observed {
    /// Nobody holds it (absent, released or run out): here is how to take it.
    Free(Option<Box<Lease>>),
    Held(Option<Box<LockHolder>>),
}

impl LeaseLock {
    pub fn holder(&self) -> &LockHolder {
        &self.holder
    }

    pub(crate) fn fence(&self) -> Fence {
        self.fence.clone()
    }

    pub fn check(&self) -> Result<(), StateError> {
        self.fence.check()
    }

    /// Reads the Lease and judges it. `stale` says whether this caller has
    /// itself seen the lease unchanged for a whole lease duration, which
    /// proves it ran out whatever the clocks of other machines say.
    pub(crate) async fn observe(
        cluster: &Cluster,
        namespace: &str,
        stack: &str,
        stale: impl FnOnce(&str) -> bool,
    ) -> Result<(Observed, Option<String>), StateError> {
        let name = lease_name(cluster.identity(), stack);
        let id = ResourceId::new("coordination.k8s.io/v1", "Lease", Some(namespace), &name);
        let api = cluster.typed::<Lease>(namespace);
        let found = cluster
            .call("read", &id, || async { api.get_opt(&name).await })
            .await
            .map_err(|e| StateError::cluster("read the lock", &id.to_string(), e))?;
        let Some(lease) = found else {
            return Ok((Observed::Free(None), None));
        };
        let version = lease.metadata.resource_version.clone();
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.as_deref().unwrap_or_default();
        let expired = match (&spec.renew_time, spec.lease_duration_seconds) {
            (Some(MicroTime(renewed)), Some(seconds)) => {
                let age = Timestamp::now().duration_since(*renewed);
                age.as_secs_f64() > f64::from(seconds)
            }
            _ => true,
        };
        let stale = version.as_deref().is_some_and(stale);
        if holder.is_empty() || expired || stale {
            return Ok((Observed::Free(Some(Box::new(lease))), version));
        }
        let details = lease
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(&holder_annotation(cluster.identity())))
            .and_then(|text| serde_json::from_str(text).ok())
            .map(Box::new);
        Ok((Observed::Held(details), version))
    }

    /// Takes the lease found free by [`LeaseLock::observe`]: creates it, or
    /// takes it over on the condition that nobody changed it since. `None`
    /// when another run was faster.
    pub async fn take(
        cluster: &Cluster,
        namespace: &str,
        stack: &str,
        found: Option<Box<Lease>>,
        holder: LockHolder,
    ) -> Result<Option<LeaseLock>, StateError> {
        let name = lease_name(cluster.identity(), stack);
        let id = ResourceId::new("coordination.k8s.io/v1", "Lease", Some(namespace), &name);
        let api = cluster.typed::<Lease>(namespace);
        let now = Timestamp::now();
        let holder_json = serde_json::to_string(&holder).expect("lock holders serialize");
        let transitions = found
            .as_ref()
            .and_then(|l| l.spec.as_ref())
            .and_then(|s| s.lease_transitions)
            .unwrap_or(0);
        let mut lease = found.clone().map(|l| *l).unwrap_or_else(|| Lease {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(namespace.to_string()),
                ..ObjectMeta::default()
            },
            spec: None,
        });
        let labels = lease.metadata.labels.get_or_insert_with(Default::default);
        labels.extend(cluster.identity().ownership_labels(stack));
        lease
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(holder_annotation(cluster.identity()), holder_json);
        lease.spec = Some(LeaseSpec {
            holder_identity: Some(format!(
                "{}@{} pid {}",
                holder.user, holder.host, holder.pid
            )),
            lease_duration_seconds: Some(LEASE_DURATION.as_secs() as i32),
            acquire_time: Some(MicroTime(now)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(if found.is_some() { transitions + 1 } else { 0 }),
            ..LeaseSpec::default()
        });

        let sent = (Instant::now(), SystemTime::now());
        let params = PostParams::default();
        let result = if found.is_some() {
            cluster
                .call("take over", &id, || async {
                    api.replace(&name, &params, &lease).await
                })
                .await
        } else {
            cluster
                .call("create", &id, || async {
                    api.create(&params, &lease).await
                })
                .await
        };
        let written = match result {
            Ok(written) => written,
            // Someone else created or changed it first.
            Err(ClusterError::Api { status, .. }) if status.code == 409 => return Ok(None),
            Err(ClusterError::Api { status, .. })
                if status.code == 404 && status.message.contains("namespaces") =>
            {
                return Err(StateError::BackendNamespaceMissing {
                    namespace: namespace.to_string(),
                });
            }
            Err(e) => return Err(StateError::cluster("take the lock", &id.to_string(), e)),
        };

        let shared = Arc::new(Shared {
            lost: Mutex::new(None),
            valid_until: Mutex::new(valid_until(sent)),
            lease: Mutex::new(written),
        });
        let fence = Fence {
            shared: shared.clone(),
            stack: stack.to_string(),
            location: format!("Lease {namespace}/{name}"),
        };
        let renewer = tokio::spawn(renew(cluster.clone(), namespace.to_string(), shared));
        Ok(Some(LeaseLock {
            holder,
            fence,
            cluster: cluster.clone(),
            namespace: namespace.to_string(),
            renewer: Some(renewer),
        }))
    }

    /// Stops renewing and deletes the lease, on the condition that it is
    /// still the one this run wrote; credentials that may not delete it
    /// clear its holder instead. Failing both, it runs out by itself.
    pub async fn release(mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
            let _ = renewer.await;
        }
        if self.fence.check().is_err() {
            return;
        }
        let mut lease = self
            .fence
            .shared
            .lease
            .lock()
            .expect("never poisoned")
            .clone();
        let Some(name) = lease.metadata.name.clone() else {
            return;
        };
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: lease.metadata.uid.clone(),
                resource_version: lease.metadata.resource_version.clone(),
            }),
            ..DeleteParams::default()
        };
        let api = self.cluster.typed::<Lease>(&self.namespace);
        self.cluster.count_request();
        let deleted = tokio::time::timeout(RENEW_TIMEOUT, api.delete(&name, &params)).await;
        if let Ok(Err(kube::Error::Api(status))) = deleted
            && status.code == 403
        {
            if let Some(spec) = lease.spec.as_mut() {
                spec.holder_identity = None;
            }
            self.cluster.count_request();
            let _ = tokio::time::timeout(
                RENEW_TIMEOUT,
                api.replace(&name, &PostParams::default(), &lease),
            )
            .await;
        }
    }
}

impl LeaseLock {
    /// Stops renewing and deletes the lease for good, on the condition that
    /// it is still the one this run wrote, for `stack rm`. Unlike
    /// [`release`](Self::release), a lease that cannot be deleted is an
    /// error. Returns the lease as messages name it.
    pub async fn delete(mut self) -> Result<String, StateError> {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
            let _ = renewer.await;
        }
        self.fence.check()?;
        let lease = self
            .fence
            .shared
            .lease
            .lock()
            .expect("never poisoned")
            .clone();
        let name = lease.metadata.name.clone().unwrap_or_default();
        let id = ResourceId::new(
            "coordination.k8s.io/v1",
            "Lease",
            Some(&self.namespace),
            &name,
        );
        let params = DeleteParams {
            preconditions: Some(Preconditions {
                uid: lease.metadata.uid.clone(),
                resource_version: lease.metadata.resource_version.clone(),
            }),
            ..DeleteParams::default()
        };
        let api = self.cluster.typed::<Lease>(&self.namespace);
        match self
            .cluster
            .call("delete", &id, || async { api.delete(&name, &params).await })
            .await
        {
            Ok(_) => Ok(self.fence.location.clone()),
            Err(ClusterError::Api { status, .. }) if status.code == 404 => {
                Ok(self.fence.location.clone())
            }
            Err(e) => Err(StateError::cluster("delete the lock", &id.to_string(), e)),
        }
    }
}

impl std::fmt::Debug for LeaseLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeaseLock")
            .field("holder", &self.holder)
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Drop for LeaseLock {
    fn drop(&mut self) {
        if let Some(renewer) = self.renewer.take() {
            renewer.abort();
        }
    }
}

fn valid_until(sent: (Instant, SystemTime)) -> (Instant, SystemTime) {
    let left = LEASE_DURATION - SAFETY_MARGIN;
    (sent.0 + left, sent.1 + left)
}

/// Renews the lease every [`RENEW_EVERY`] until aborted or lost. A renewal
/// that fails is tried again a second later, for as long as the lease may
/// still be ours; a conflict means someone else took it over.
async fn renew(cluster: Cluster, namespace: String, shared: Arc<Shared>) {
    let api = cluster.typed::<Lease>(&namespace);
    let mut pause = RENEW_EVERY;
    loop {
        tokio::time::sleep(pause).await;
        let mut lease = shared.lease.lock().expect("never poisoned").clone();
        let Some(name) = lease.metadata.name.clone() else {
            return;
        };
        if let Some(spec) = lease.spec.as_mut() {
            spec.renew_time = Some(MicroTime(Timestamp::now()));
        }
        // A renewal sent after the lease ran out could steal it back from
        // a run that took it over in the meantime.
        let expired = {
            let (mono, wall) = *shared.valid_until.lock().expect("never poisoned");
            Instant::now() >= mono || SystemTime::now() >= wall
        };
        if expired {
            *shared.lost.lock().expect("never poisoned") = Some(format!(
                "its lease was not renewed within {}s (the process was paused or the API server unreachable)",
                LEASE_DURATION.as_secs()
            ));
            return;
        }
        let sent = (Instant::now(), SystemTime::now());
        cluster.count_request();
        let result = tokio::time::timeout(
            RENEW_TIMEOUT,
            api.replace(&name, &PostParams::default(), &lease),
        )
        .await;
        match result {
            Ok(Ok(written)) => {
                *shared.valid_until.lock().expect("never poisoned") = valid_until(sent);
                *shared.lease.lock().expect("never poisoned") = written;
                pause = RENEW_EVERY;
            }
            Ok(Err(kube::Error::Api(status))) if status.code == 409 || status.code == 404 => {
                *shared.lost.lock().expect("never poisoned") =
                    Some("another run took its lease over".to_string());
                return;
            }
            _ => pause = Duration::from_secs(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fence(valid_for: Duration, expired_by: Duration) -> Fence {
        let now = (Instant::now(), SystemTime::now());
        Fence {
            shared: Arc::new(Shared {
                lost: Mutex::new(None),
                valid_until: Mutex::new((
                    now.0 + valid_for - expired_by.min(valid_for),
                    now.1 + valid_for - expired_by.min(valid_for),
                )),
                lease: Mutex::new(Lease::default()),
            }),
            stack: "dev".into(),
            location: "Lease ns/echo-iac-lock-dev".into(),
        }
    }

    #[test]
    fn a_fresh_lease_passes_the_fence() {
        fence(Duration::from_secs(10), Duration::ZERO)
            .check()
            .unwrap();
    }

    #[test]
    fn a_lease_past_its_renewal_deadline_fails_the_fence_saying_why() {
        let err = fence(Duration::from_secs(1), Duration::from_secs(1))
            .check()
            .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("lost the lock on stack dev"), "{message}");
        assert!(message.contains("not renewed within 15s"), "{message}");
        assert!(message.contains("Lease ns/echo-iac-lock-dev"), "{message}");
    }

    #[test]
    fn a_lease_taken_over_fails_the_fence_even_before_it_runs_out() {
        let fence = fence(Duration::from_secs(10), Duration::ZERO);
        *fence.shared.lost.lock().unwrap() = Some("another run took its lease over".into());
        assert!(
            fence
                .check()
                .unwrap_err()
                .to_string()
                .contains("another run took its lease over")
        );
    }

    #[test]
    fn validity_ends_a_safety_margin_before_the_lease() {
        let sent = (Instant::now(), SystemTime::now());
        let (mono, wall) = valid_until(sent);
        assert_eq!(mono - sent.0, LEASE_DURATION - SAFETY_MARGIN);
        assert_eq!(
            wall.duration_since(sent.1).unwrap(),
            LEASE_DURATION - SAFETY_MARGIN
        );
        assert!(RENEW_EVERY * 2 < LEASE_DURATION - SAFETY_MARGIN);
    }
}
