//! A stack's store with its lock held: the one way to write a state.
//!
//! [`StateStore::save`] and [`StateStore::restore`] take a [`WritePermit`],
//! which only this module hands out, and only while the lock is held; so a
//! program cannot write a state, or run `up` or `destroy` (which take a
//! [`Locked`]), without first taking the stack's lock, as jj writes only
//! inside a transaction.

use std::time::Duration;

use std::sync::Mutex;

use super::{LockHolder, OperationMark, State, StateError, StateLock, StateStore};

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
    run: Mutex<Run>,
}

/// The run this lock's writes belong to: every write carries its mark, so
/// the history keeps one revision per run.
#[derive(Default)]
struct Run {
    /// Set by the run's first write.
    mark: Option<OperationMark>,
    rollback_to: Option<u64>,
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
        Ok(Locked {
            store,
            lock,
            run: Mutex::new(Run::default()),
        })
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

    /// Writes `state` as the next serial; see [`StateStore::save`]. The
    /// write belongs to this lock's current run, which it does not end.
    pub async fn save(&self, state: &mut State) -> Result<(), StateError> {
        self.write(state, false).await
    }

    /// Writes `state` as the last write of this lock's current run, which
    /// ended as asked; the next write starts a new run.
    pub async fn save_finished(&self, state: &mut State) -> Result<(), StateError> {
        self.write(state, true).await?;
        self.run.lock().expect("never poisoned").mark = None;
        Ok(())
    }

    /// Writes `state` over whatever is stored, as a finished run of its
    /// own; see [`StateStore::restore`].
    pub async fn restore(&self, state: &mut State) -> Result<(), StateError> {
        self.check()?;
        self.mark(state, true);
        let result = self.store.restore(state, WritePermit::HELD).await;
        self.run.lock().expect("never poisoned").mark = None;
        result
    }

    /// Makes the writes that follow a new run that rolls the stack back to
    /// revision `serial`, as its history then says.
    pub fn begin_rollback(&self, serial: u64) {
        *self.run.lock().expect("never poisoned") = Run {
            mark: None,
            rollback_to: Some(serial),
        };
    }

    /// Whether the current run rolls the stack back: its end is recorded
    /// even when nothing changed, so the history and `preview` say so.
    pub(crate) fn rolling_back(&self) -> bool {
        self.run
            .lock()
            .expect("never poisoned")
            .rollback_to
            .is_some()
    }

    /// Whether the current run has written the state.
    pub fn has_written(&self) -> bool {
        self.run.lock().expect("never poisoned").mark.is_some()
    }

    async fn write(&self, state: &mut State, finished: bool) -> Result<(), StateError> {
        self.check()?;
        let before = state.operation.clone();
        self.mark(state, finished);
        let result = self.store.save(state, WritePermit::HELD).await;
        if result.is_err() {
            state.operation = before;
        }
        result
    }

    /// Puts the current run's mark on `state`, which is about to be
    /// written as the next serial; the run's first write makes the mark.
    fn mark(&self, state: &mut State, finished: bool) {
        let mut run = self.run.lock().expect("never poisoned");
        let rollback_to = run.rollback_to;
        let mark = run.mark.get_or_insert_with(|| OperationMark {
            id: state.serial + 1,
            from: state.serial,
            rollback_to,
            finished: false,
        });
        let mut mark = mark.clone();
        mark.finished = finished;
        state.operation = Some(mark);
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
