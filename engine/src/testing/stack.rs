//! One stack of a program on the fake API server.

use crate::Cancel;

use serde_json::Value;

use super::FakeApi;
use crate::apply::{self, ApplyOptions, Journal};
use crate::cluster::Cluster;
use crate::error::EngineError;
use crate::identity::Identity;
use crate::operation::{self, DestroyOptions, Silent, UpOptions};
use crate::plan::Plan;
use crate::planner::{self, DestroyPlanOptions, PlanOptions};
use crate::resource::{DesiredResource, ResourceId};
use crate::state::{LocalStore, Locked, State, StateStore};

/// A stack of one program on a fresh [`FakeApi`], with its state in a
/// temporary folder that goes when the stack is dropped. It plans, applies
/// and destroys as the command line would, with the default options; the
/// server starts out holding only the namespace `default`.
///
/// Needs a tokio runtime, as kube's client does.
pub struct FakeStack {
    fake: FakeApi,
    cluster: Cluster,
    name: String,
    store: LocalStore,
    // Kept for its drop, which removes the state's folder.
    _dir: tempfile::TempDir,
}

impl FakeStack {
    /// Stack `name` of the program `identity`, on a new fake server.
    ///
    /// # Panics
    ///
    /// If no temporary folder can be made for the state.
    pub fn new(identity: Identity, name: &str) -> Self {
        let fake = FakeApi::new();
        let dir = tempfile::tempdir().expect("a temporary folder for the state");
        let store = LocalStore::new(dir.path().to_path_buf(), name, &identity);
        FakeStack {
            cluster: fake.cluster(identity),
            fake,
            name: name.to_string(),
            store,
            _dir: dir,
        }
    }

    /// The fake server, to stage what others do on it (another field
    /// manager's apply, an object's status) and to read its request log.
    pub fn fake(&self) -> &FakeApi {
        &self.fake
    }

    /// The cluster the stack is planned and applied on.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Where the stack's state is kept.
    pub fn store(&self) -> &dyn StateStore {
        &self.store
    }

    /// The stack's state as last written.
    pub async fn state(&self) -> Result<State, EngineError> {
        Ok(self.store.load().await?)
    }

    /// What the server holds as `id`, with its metadata and status.
    pub fn get(&self, id: &ResourceId) -> Option<Value> {
        self.fake.get(id)
    }

    /// Plans `up` of `desired`, as `preview` does.
    pub async fn plan(&self, desired: &[DesiredResource]) -> Result<Plan, EngineError> {
        self.plan_with(desired, &PlanOptions::default()).await
    }

    /// Plans `up` of `desired` with `options`.
    pub async fn plan_with(
        &self,
        desired: &[DesiredResource],
        options: &PlanOptions,
    ) -> Result<Plan, EngineError> {
        let state = self.state().await?;
        planner::plan_up(&self.cluster, &self.name, desired, &state, options).await
    }

    /// Plans `up` of `desired` and carries the plan out, recording each
    /// step in the state; returns the plan. Nothing is waited for, since no
    /// controller makes anything ready here. A plan with blocked steps is
    /// refused with [`EngineError::Blocked`], and nothing is applied.
    pub async fn up(&self, desired: &[DesiredResource]) -> Result<Plan, EngineError> {
        let plan = self.plan(desired).await?;
        operation::refuse_blocked(&plan)?;
        let defaults = UpOptions::default();
        let options = ApplyOptions {
            force_conflicts: defaults.force_conflicts,
            concurrency: defaults.concurrency,
            timeout: defaults.timeout,
            cancel: &Cancel::default(),
        };
        let locked = Locked::acquire(&self.store, "up", None).await?;
        let journal = Journal::new(&locked, locked.load().await?);
        let applied =
            apply::apply_plan(&self.cluster, &plan, desired, &journal, &options, &|_| {}).await;
        locked.release().await;
        applied?;
        Ok(plan)
    }

    /// Plans `destroy` (`desired` says where to look for what the state
    /// lost) and carries it out; returns the plan.
    pub async fn destroy(&self, desired: &[DesiredResource]) -> Result<Plan, EngineError> {
        let locked = Locked::acquire(&self.store, "destroy", None).await?;
        let state = locked.load().await?;
        let plan = planner::plan_destroy(
            &self.cluster,
            &self.name,
            desired,
            &state,
            &DestroyPlanOptions::default(),
        )
        .await?;
        let destroyed = operation::destroy(
            &self.cluster,
            &locked,
            state,
            &plan,
            desired,
            &DestroyOptions::default(),
            &Silent,
        )
        .await;
        locked.release().await;
        destroyed?;
        Ok(plan)
    }
}
