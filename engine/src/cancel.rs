//! Asking a running operation to stop early, as a future the engine awaits
//! beside its work (kube-runtime's `graceful_shutdown_on` is the model), so
//! that a wait between polls ends the moment it is asked to, not at its
//! next poll.

use std::fmt;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::watch;

/// A request to stop early, shared by whoever may ask and the operation
/// that obeys: no new step starts, steps in flight finish and are recorded,
/// and waits end with [`EngineError::Interrupted`](crate::EngineError).
/// Clones share one request. The default is one nobody makes.
#[derive(Clone)]
pub struct Cancel(Arc<watch::Sender<bool>>);

impl Cancel {
    /// A request nobody has made yet.
    pub fn new() -> Cancel {
        Cancel(Arc::new(watch::Sender::new(false)))
    }

    /// A request made once `signal` resolves (a Ctrl-C, a shutdown
    /// message), from a task of its own: call it inside a Tokio runtime.
    pub fn on(signal: impl Future<Output = ()> + Send + 'static) -> Cancel {
        let cancel = Cancel::new();
        let asked = cancel.clone();
        tokio::spawn(async move {
            signal.await;
            asked.cancel();
        });
        cancel
    }

    /// Asks the operation to stop early; asking again changes nothing.
    pub fn cancel(&self) {
        self.0.send_replace(true);
    }

    /// Whether stopping early was asked for.
    pub fn is_cancelled(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once stopping early is asked for (at once if it was).
    pub async fn cancelled(&self) {
        let mut asked = self.0.subscribe();
        // The sender lives in `self`, so the channel cannot close here.
        let _ = asked.wait_for(|asked| *asked).await;
    }

    /// Sleeps for `duration`, or less if stopping early is asked for
    /// meanwhile; returns whether it was.
    pub(crate) async fn sleep(&self, duration: std::time::Duration) -> bool {
        tokio::select! {
            _ = tokio::time::sleep(duration) => self.is_cancelled(),
            _ = self.cancelled() => true,
        }
    }
}

impl Default for Cancel {
    fn default() -> Self {
        Cancel::new()
    }
}

impl fmt::Debug for Cancel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Cancel").field(&self.is_cancelled()).finish()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_sleep_ends_when_cancelled_not_at_its_end() {
        let cancel = Cancel::on(tokio::time::sleep(Duration::from_secs(2)));
        let start = tokio::time::Instant::now();
        assert!(cancel.sleep(Duration::from_secs(60)).await);
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        assert!(cancel.is_cancelled());
        // Already asked: at once.
        cancel.cancelled().await;
        assert!(cancel.clone().sleep(Duration::from_secs(60)).await);
        assert_eq!(start.elapsed(), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_nobody_makes_lets_a_sleep_run_out() {
        let cancel = Cancel::default();
        assert!(!cancel.sleep(Duration::from_secs(5)).await);
        assert!(!cancel.is_cancelled());
    }
}
