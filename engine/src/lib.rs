//! echo-iac-engine: desired Kubernetes objects in, a plan out, then apply,
//! wait and record. It knows no program, no stack file and no command line:
//! a program hands it typed objects with their dependencies, and the caller
//! decides how to show plans and errors.
//!
//! The way through it, one verb at a time:
//!
//! - [`declare::Resources`]: typed k8s-openapi objects in, each labelled as
//!   the stack's, with the dependencies their references imply (and, on
//!   request, a pod template hash that rolls pods when their config changes);
//! - [`cluster::Cluster`]: the connection, applying as an [`Identity`];
//! - [`planner::plan_up`] and [`planner::plan_destroy`]: a [`Plan`], one
//!   [`Step`] per object, from the server's own dry runs, for every object
//!   or only those [`target::Targets`] name (the rest are left as they are,
//!   in the cluster and in the state);
//! - [`protect`]: objects no plan deletes or replaces, and objects a delete
//!   leaves running outside the stack, marked by the program
//!   ([`declare::Resources::protect`], [`declare::Resources::retain`]) or
//!   by id patterns the caller passes in the plan options
//!   ([`protect::Protections`]);
//! - [`operation::up`] and [`operation::destroy`]: carry a plan out through
//!   the state's journal, refusing one with blocked steps; `up` then waits
//!   until what it applied is ready ([`ready::Readiness`]);
//! - [`rollback::prepare`]: a kept revision's objects as desired objects
//!   again, for `plan_up` and `up` (the revision's mark is set by
//!   [`state::Locked::begin_rollback`]);
//! - [`state`]: where a stack's state lives ([`state::LocalStore`],
//!   [`state::KubeStore`]), and its lock: [`state::Locked`] holds it, and
//!   only through it is a state written;
//! - `testing` (with the `testing` feature): a fake API server, for tests
//!   without a cluster.
//!
//! Each verb takes an options type whose `Default` is what the command line
//! uses. Errors are [`EngineError`], which carries what a caller needs to say
//! how to go on as data.
//!
//! ```no_run
//! use echo_iac_engine::cluster::{Cluster, Target};
//! use echo_iac_engine::declare::Resources;
//! use echo_iac_engine::operation::{self, Silent, UpOptions};
//! use echo_iac_engine::planner::{self, PlanOptions};
//! use echo_iac_engine::state::{LocalStore, Locked};
//! use echo_iac_engine::Identity;
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let identity = Identity::new("shop-iac");
//! let mut resources = Resources::new(&identity, "dev");
//! resources.add(ConfigMap {
//!     metadata: ObjectMeta {
//!         name: Some("settings".into()),
//!         namespace: Some("default".into()),
//!         ..ObjectMeta::default()
//!     },
//!     data: Some([("greeting".to_string(), "hello".to_string())].into()),
//!     ..ConfigMap::default()
//! });
//! let desired = resources.finish()?;
//!
//! let cluster = Cluster::connect(&Target::default(), identity.clone()).await?;
//! let store = LocalStore::new("state".into(), "dev", &identity);
//! // The guard is what lets `up` write the state.
//! let locked = Locked::acquire(&store, "shop-iac up", None).await?;
//! let state = locked.load().await?;
//! let plan = planner::plan_up(&cluster, "dev", &desired, &state, &PlanOptions::default()).await?;
//! for step in &plan.steps {
//!     println!("{} {}", step.op.mark(), step.id);
//! }
//! let applied = operation::up(
//!     &cluster,
//!     &locked,
//!     state,
//!     &plan,
//!     &desired,
//!     &UpOptions::default(),
//!     &Silent,
//! )
//! .await?;
//! applied.finish(Default::default()).await?;
//! locked.release().await;
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]

mod apply;
mod cancel;
pub mod cluster;
mod config_hash;
mod crds;
pub mod declare;
pub mod diff;
mod error;
mod fault;
mod field_path;
mod gone;
mod identity;
pub mod live;
mod nodeports;
pub mod operation;
mod plan;
pub mod planner;
pub mod proof;
pub mod protect;
pub mod ready;
mod reasons;
mod references;
pub mod refresh;
mod resource;
pub mod rollback;
pub mod saved_plan;
pub mod sensitive;
pub mod state;
pub mod target;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod untracked;

pub use cancel::Cancel;
pub use error::EngineError;
pub use plan::{BlockedStep, Blocker, Change, Conflict, Op, Plan, Step, Summary, Untracked};
pub use protect::{Protections, ResourceOptions};
pub use resource::{DesiredResource, ResourceId};

pub use identity::{Identity, MANAGED_BY_LABEL};
