//! The echo stack as code: a stack file's `echo:` section in, the desired
//! objects out.
//!
//! Objects are built from the typed `k8s-openapi` structs, so a field name or
//! type mistake is a compile error rather than a rejected apply, and are then
//! turned into JSON for the engine, which handles every kind the same way.

pub mod config;
mod graph;
mod objects;
pub mod outputs;
mod smoke;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use echo_iac_engine::EngineError;
use echo_iac_runner::{
    Error, LiveView, NoCommands, Outputs, Program, Resources, SmokeTest, StackInfo,
};

#[cfg(test)]
pub(crate) use config::StackConfig;
#[cfg(test)]
pub(crate) use config::seed_echo;
pub use config::{EchoSection, RawEchoSection};

/// The echo program: one or more echo services per stack.
#[derive(Clone, Copy, Debug, Default)]
pub struct Echo;

impl Program for Echo {
    const NAME: &'static str = "echo-iac";
    const ABOUT: &'static str = "Keeps a Kubernetes cluster in step with the echo stack: exact previews, then server-side apply.";
    type Config = RawEchoSection;
    type Command = NoCommands;

    /// The namespace (if the stack creates it), then each echo service's
    /// ConfigMap, Deployment and Service. The namespace and the mounted
    /// ConfigMap are dependencies by reference; the Service waits for its
    /// Deployment, so that it is ready once its pods are. The engine keeps
    /// a hash of each ConfigMap in its Deployment's pod template
    /// (`echo-iac.io/config-hash`), so a new message rolls the pods.
    fn declare(&self, stack: &StackInfo, config: &EchoSection) -> Result<Resources, Error> {
        let namespace = stack.namespace();
        let mut resources = stack.resources();
        // nginx reads its config at start: a changed config must roll the
        // pods, in place, with no replace.
        resources.roll_on_config_change();
        for echo in &config.echoes {
            resources.add(objects::config_map(namespace, echo));
            let deployment = resources.add(objects::deployment(namespace, echo));
            resources.add_after(objects::service(namespace, echo), &[&deployment]);
        }
        Ok(resources)
    }

    async fn outputs(
        &self,
        stack: &StackInfo,
        _config: &EchoSection,
        live: &LiveView<'_>,
    ) -> Result<Outputs, EngineError> {
        outputs::collect(live, stack.namespace(), live.desired()).await
    }

    fn stack_file_section(&self) -> Option<String> {
        Some(config::new_stack_section())
    }

    /// One test per echo service: every answer to `http://<service>` must
    /// name a live pod of its Deployment.
    fn smoke_tests(&self, _stack: &StackInfo, config: &EchoSection) -> Vec<SmokeTest> {
        config.echoes.iter().map(smoke::smoke_test).collect()
    }
}

/// Every object stack `stack` declares, in dependency order.
#[cfg(test)]
pub(crate) fn desired_resources(stack: &StackConfig) -> Vec<echo_iac_engine::DesiredResource> {
    let info = StackInfo::new(
        &stack.name,
        &stack.namespace,
        stack.create_namespace,
        echo_iac_engine::Identity::new(Echo::NAME),
    );
    Echo.declare(&info, &stack.program)
        .ok()
        .and_then(|resources| resources.finish().ok())
        .expect("the echo program declares each object once, with no cycles")
}

/// A name and namespace; the ownership labels come from [`Resources`].
fn metadata(name: &str, namespace: Option<&str>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        ..ObjectMeta::default()
    }
}

#[cfg(test)]
mod tests;
