//! What a connection has to say while it works: the engine writes nothing
//! to a terminal itself, so that a program, a test or a server embedding it
//! decides where these lines go.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Something a [`Cluster`](super::Cluster) tells as it happens, which is
/// no error: the run goes on.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notice {
    /// Requests wait for an API server that answered earlier in the run
    /// and then stopped: most likely a restart. Told once per outage.
    WaitingForServer {
        /// The server's address, without credentials.
        server: String,
        /// Why the last request failed.
        cause: String,
        /// How much longer requests are retried.
        retrying_for: Duration,
    },
    /// The server answers again after a [`Notice::WaitingForServer`].
    ServerAnswersAgain {
        /// The server's address, without credentials.
        server: String,
    },
    /// A credential plugin from a kubeconfig inside the project is about
    /// to run, as the caller allowed.
    RunningCredentialPlugin {
        /// The kubeconfig user whose plugin it is.
        user: String,
        /// The kubeconfig file the user comes from.
        kubeconfig: PathBuf,
        /// The command the plugin runs, shortened for display.
        command: String,
    },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::WaitingForServer {
                server,
                cause,
                retrying_for,
            } => write!(
                f,
                "waiting for the API server at {server}: {cause}; retrying for up to {}",
                humantime::format_duration(Duration::from_secs(retrying_for.as_secs().max(1)))
            ),
            Notice::ServerAnswersAgain { server } => {
                write!(f, "the API server at {server} answers again")
            }
            Notice::RunningCredentialPlugin {
                user,
                kubeconfig,
                command,
            } => write!(
                f,
                "running the credential plugin of user `{user}` in kubeconfig {}: {command}",
                kubeconfig.display()
            ),
        }
    }
}

/// Where a cluster's [`Notice`]s go. The default logs them with `tracing`
/// at level `info`; [`Notices::to`] hands them to a function instead (a
/// command line prints them, a test collects them).
#[derive(Clone, Default)]
pub struct Notices(Option<Arc<Tell>>);

type Tell = dyn Fn(&Notice) + Send + Sync;

impl Notices {
    /// Notices go to `tell`, called on whichever task has something to say.
    pub fn to(tell: impl Fn(&Notice) + Send + Sync + 'static) -> Notices {
        Notices(Some(Arc::new(tell)))
    }

    pub(crate) fn tell(&self, notice: Notice) {
        match &self.0 {
            Some(tell) => tell(&notice),
            None => tracing::info!(target: "echo_iac_engine::notice", "{notice}"),
        }
    }
}

impl fmt::Debug for Notices {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Notices(to a function)"
        } else {
            "Notices(to tracing)"
        })
    }
}
