//! A stack's store with its lock held: the one way to write a state.
//!
//! [`StateStore::save`] and [`StateStore::restore`] take a [`WritePermit`],
//! which only this module hands out, and only while the lock is held; so a
//! program cannot write a state, or run `up` or `destroy` (which take a
//! [`Locked`]), without first taking the stack's lock, as jj writes only
//! inside a transaction.

use std::time::Duration;

use super::{LockHolder, State, StateError, StateLock, StateStore};

/// Proof that the stack's lock is held. Only [`Locked`] makes one, so
/// outside the engine a state is written only through it:
///
/// ```compile_fail
/// use echo_iac_engine::state::WritePermit;
/// let forged = WritePermit(());
/// ```
#[derive(Clone, Copy, Debug)]
pub struct WritePermit(());

impl WritePermit {
    /// Inside the engine: the caller holds the lock (or is a test of the
    /// store itself).
    pub(crate) const HELD: WritePermit = WritePermit(());
}

/// `store` with the stack's lock held, until [`Locked::release`] (or drop,
/// which releases a file lock at once and lets a Lease run out).
#[must_use = "the lock is released as soon as it is dropped"]
pub struct Locked<'s> {
    store: &'s dyn StateStore,
    lock: StateLock,
}

impl<'s> Locked<'s> {
    /// Takes the lock of `store`'s stack for `command` (the words shown to
    /// a run that finds it held), failing at once with
    /// [`StateError::Locked`] if another run holds it, or waiting up to
    /// `wait` for it.
    pub async fn acquire(
        store: &'s dyn StateStore,
        command: &str,
        wait: Option<Duration>,
    ) -> Result<Locked<'s>, StateError> {
        let lock = store.lock(command, wait).await?;
        Ok(Locked { store, lock })
    }

    /// The store, for reads.
    pub fn store(&self) -> &'s dyn StateStore {
        self.store
    }

    /// Who holds the lock: this run.
    pub fn holder(&self) -> &LockHolder {
        self.lock.holder()
    }

    /// The stored state.
    pub async fn load(&self) -> Result<State, StateError> {
        self.store.load().await
    }

    /// Fails once the lock may be someone else's (a Lease this run could
    /// not renew in time): a run that lost it changes nothing more.
    pub fn check(&self) -> Result<(), StateError> {
        self.lock.check()?;
        self.store.check_lock()
    }

    /// Writes `state` as the next serial; see [`StateStore::save`].
    pub async fn save(&self, state: &mut State) -> Result<(), StateError> {
        self.check()?;
        self.store.save(state, WritePermit::HELD).await
    }

    /// Writes `state` over whatever is stored; see [`StateStore::restore`].
    pub async fn restore(&self, state: &mut State) -> Result<(), StateError> {
        self.check()?;
        self.store.restore(state, WritePermit::HELD).await
    }

    /// Deletes the state, its kept revisions and the lock; see
    /// [`StateStore::remove`].
    pub async fn remove(self) -> Result<Vec<String>, StateError> {
        self.store.remove(self.lock).await
    }

    /// Releases the lock, telling the cluster at once for a Lease.
    pub async fn release(self) {
        self.lock.release().await;
    }
}
