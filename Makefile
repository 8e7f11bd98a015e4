# Entry points for developers and CI. The local control plane (a real
# Kubernetes API server on loopback with kwok fake nodes) lives in
# tests/cluster/; see docs/local-cluster.md.

SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

include tests/cluster/versions.env

CLUSTER_CACHE := $(or $(ECHO_IAC_CLUSTER_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/echo-iac/cluster)
export ECHO_IAC_TEST_KUBECONFIG := $(CURDIR)/.cluster/kubeconfig
export ECHO_IAC_KUBECTL ?= $(CLUSTER_CACHE)/kubernetes-$(K8S_VERSION)/kubectl

CARGO ?= cargo
# Extra arguments, e.g. `make test CARGO_FLAGS=--locked TEST_ARGS=control_plane`.
CARGO_FLAGS ?=
TEST_ARGS ?=

.PHONY: help cluster cluster-node cluster-build cluster-down test compat chaos demo bench fuzz fmt lint

help:
	@echo "make cluster        build (once, cached) and start the local control plane"
	@echo "make cluster-node   also start a real node (kubelet, containerd; root): node ports, cluster DNS, LoadBalancer addresses"
	@echo "make cluster-down   stop it (and the real node) and remove its data"
	@echo "make test           run the test suite against it (starts and stops it if needed)"
	@echo "make compat         run the compatibility tests on each Kubernetes release 1.33-1.37, or COMPAT_VERSIONS=1.35 (docs/compat.md)"
	@echo "make chaos          kill the API server or echo-iac at random moments of a 300-object stack's life (docs/reliability.md)"
	@echo "make demo           start both, deploy the local stack on the real node and curl it"
	@echo "make bench          compare echo-iac with kubectl and Pulumi on the local control plane (bench/README.md)"
	@echo "make fuzz           run every fuzz target FUZZ_SECONDS (default 60) each, on nightly (docs/reliability.md)"
	@echo "make fmt | lint     format | check formatting, clippy, module cycles and the cluster scripts"

cluster:
	tests/cluster/up.sh

cluster-node: cluster
	tests/cluster/node-up.sh

cluster-build:
	tests/cluster/build.sh --node

cluster-down:
	tests/cluster/down.sh

# The suite runs in steps (see tests/cluster/suite.sh); TEST_ARGS is a test
# name filter or other `cargo test` options given to every step.
test:
	CARGO=$(CARGO) tests/cluster/with-cluster.sh tests/cluster/suite.sh $(CARGO_FLAGS) $(TEST_ARGS)

# Each Kubernetes release in versions.env on a control plane of its own, or
# those COMPAT_VERSIONS names (e.g. COMPAT_VERSIONS=1.35 or "1.33 1.37"); see
# tests/cluster/compat.sh. Not part of `make test`.
COMPAT_VERSIONS ?=
compat:
	CARGO="$(CARGO)" CARGO_FLAGS="$(CARGO_FLAGS)" tests/cluster/compat.sh $(COMPAT_VERSIONS)

# Faults at random moments of a 300-object stack's life, 20 runs per
# scenario, on the kwok nodes (no real node); CHAOS_SEED=<n> replays,
# CHAOS_RUNS and CHAOS_SCENARIOS narrow (docs/reliability.md).
chaos:
	CARGO=$(CARGO) tests/cluster/with-cluster.sh --no-node $(CARGO) test $(CARGO_FLAGS) --release -p echo-iac --test chaos -- --ignored --nocapture

demo: cluster cluster-node
	tests/cluster/node-demo.sh $(CARGO) run $(CARGO_FLAGS) --release --

bench:
	CARGO="$(CARGO)" CARGO_FLAGS="$(CARGO_FLAGS)" bench/run.sh

# Each fuzz target in turn, FUZZ_SECONDS each; FUZZ_TARGETS picks some.
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) fuzz/run.sh

fmt:
	$(CARGO) fmt --all

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy $(CARGO_FLAGS) --workspace --all-targets -- -D warnings
	python3 engine/scripts/module_cycles.py
	for f in tests/cluster/*.sh bench/run.sh bench/pulumi/*.sh fuzz/run.sh .ci/run; do bash -n "$$f"; done
	if command -v shellcheck >/dev/null; then shellcheck -x -P SCRIPTDIR tests/cluster/*.sh bench/run.sh bench/pulumi/*.sh fuzz/run.sh .ci/run; fi
