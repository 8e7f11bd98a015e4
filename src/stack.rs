//! Stack files (`stacks/<name>.yaml`) parsed and validated into a StackConfig.

use std::path::PathBuf;

/// One environment's settings, validated. Built only by parsing a stack file.
#[derive(Clone, Debug, PartialEq)]
pub struct StackConfig {
    /// The stack's name: the file name without `.yaml`.
    pub name: String,
    /// The stack file it was read from.
    pub file: PathBuf,
    /// Kubeconfig path from the file (`~` expanded, relative paths resolved
    /// against the project folder); `None` means $KUBECONFIG, then ~/.kube/config.
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context; `None` means the kubeconfig's current context.
    pub context: Option<String>,
    pub namespace: String,
    pub create_namespace: bool,
    /// One entry for `echo:`, one per item for `echoes:`.
    pub echoes: Vec<EchoConfig>,
}

/// One echo service with the names of its three objects already resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct EchoConfig {
    pub config_map_name: String,
    pub deployment_name: String,
    pub service_name: String,
    /// Value of the `app` label that the Deployment's selector and the
    /// Service's selector use.
    pub app_label: String,
    pub replicas: i32,
    pub node_port: i32,
    pub image: String,
    pub message: String,
}
