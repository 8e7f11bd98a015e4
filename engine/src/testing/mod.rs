//! A Kubernetes API server in the test process, for tests that must not
//! need a cluster: the engine's own, and a program's (with the engine's
//! `testing` feature).
//!
//! [`FakeApi`] answers kube's client over the paths, queries, bodies and
//! `Status` answers a real server uses, keeps objects in memory, and tracks
//! field managers as server-side apply does. [`FakeStack`] puts one stack
//! of a program on it, with its state in a temporary folder, so that a
//! test can plan and apply the program's objects and look at what the
//! server holds. No controller runs behind the fake: a Deployment's pods
//! never start, so [`FakeStack::up`] applies without waiting for readiness.
//!
//! ```no_run
//! use echo_iac_engine::declare::Resources;
//! use echo_iac_engine::testing::FakeStack;
//! use echo_iac_engine::{Identity, Op};
//! use k8s_openapi::api::core::v1::ConfigMap;
//! use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let identity = Identity::new("shop-iac");
//! let stack = FakeStack::new(identity.clone(), "dev");
//! let mut resources = Resources::new(&identity, "dev");
//! resources.add(ConfigMap {
//!     metadata: ObjectMeta {
//!         name: Some("settings".into()),
//!         namespace: Some("default".into()),
//!         ..ObjectMeta::default()
//!     },
//!     ..ConfigMap::default()
//! });
//! let desired = resources.finish()?;
//! let plan = stack.up(&desired).await?;
//! assert_eq!(plan.steps[0].op, Op::Create);
//! assert!(!stack.plan(&desired).await?.has_changes());
//! # Ok(())
//! # }
//! ```

mod fake;
mod stack;

pub use fake::{Answer, FakeApi, Fault, Logged, Verb};
pub use stack::FakeStack;

#[cfg(test)]
mod fixtures;

/// The property tests' settings: 256 cases each, and with `CI` set a fixed
/// seed (unless `PROPTEST_RNG_SEED` names one), so that a run in CI can be
/// repeated exactly.
#[cfg(test)]
pub(crate) fn proptest_config() -> proptest::test_runner::Config {
    let mut config = proptest::test_runner::Config::with_cases(256);
    if std::env::var_os("CI").is_some() && std::env::var_os("PROPTEST_RNG_SEED").is_none() {
        config.rng_seed = proptest::test_runner::RngSeed::Fixed(0x5eed);
    }
    config
}

/// Runs a property test's case to its end on a runtime of its own, whose
/// paused time steps over the waits for deleted objects.
#[cfg(test)]
pub(crate) fn block_on_paused<T>(case: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime")
        .block_on(case)
}

#[cfg(test)]
use fixtures::*;

#[cfg(test)]
mod fake_tests;
#[cfg(test)]
mod tests_apply;
#[cfg(test)]
mod tests_fake_stack;
#[cfg(test)]
mod tests_fuzz_seeds;
#[cfg(test)]
mod tests_gone;
#[cfg(test)]
mod tests_nodeports;
#[cfg(test)]
mod tests_operation;
#[cfg(test)]
mod tests_outage;
#[cfg(test)]
mod tests_planner;
#[cfg(test)]
mod tests_planner_props;
#[cfg(test)]
mod tests_proof_props;
#[cfg(test)]
mod tests_protect;
#[cfg(test)]
mod tests_ready;
#[cfg(test)]
mod tests_refresh;
#[cfg(test)]
mod tests_saved_plan;
#[cfg(test)]
mod tests_sensitive;
#[cfg(test)]
mod tests_state;
#[cfg(test)]
mod tests_targets;
