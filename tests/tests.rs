//! Integration tests, run against the local control plane (`make cluster`,
//! or `make test` to start and stop it around the suite). One test binary,
//! one module per area.

mod bad_input;
mod cluster_addons;
mod connection;
mod control_plane;
mod crash;
mod crd_versions;
mod crds;
mod destroy_requests;
mod exit_codes;
mod foreign_files;
mod graph;
mod harness;
mod interrupt;
mod kubeconfig_exec;
mod lifecycle;
mod locking;
mod manifests;
mod node_ports;
mod progress;
mod project_files;
mod proof;
mod protect;
mod rbac;
mod readiness;
mod real_node;
mod rollback;
mod saved_plan;
mod secrets;
mod shell;
mod stack_errors;
mod stack_test;
mod stack_verbs;
mod targets;
mod team_state;
mod untracked;
mod util;
mod wait_rules;
mod waits;
