#!/usr/bin/env bash
# bench/run.sh: benchmarks echo-iac against kubectl and Pulumi on the local
# control plane, with a minimal client as the floor, and writes
# bench/RESULTS.md, bench/scaling.png and bench/results.json. The target of
# `make bench`. Starts no cluster: the control plane must be up (`make
# cluster`, in ECHO_IAC_CLUSTER_DIR if set). Builds what it measures: the
# release binary, bench/floor and (once, cached) the Pulumi toolchain.
# Settings (environment): BENCH_SIZES, BENCH_RUNS, BENCH_TOOLS, BENCH_PORTS,
# BENCH_TIMEOUT, BENCH_KEEP, BENCH_OUT, BENCH_NOTE; see bench/README.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${ECHO_IAC_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/echo-iac/cluster}
k8s_version=$(sed -n 's/^K8S_VERSION=//p' "$repo/tests/cluster/versions.env")
kubectl=${ECHO_IAC_KUBECTL:-$cache/kubernetes-$k8s_version/kubectl}
cluster_dir=${ECHO_IAC_CLUSTER_DIR:-$repo/.cluster}
kubeconfig=$cluster_dir/kubeconfig
python=${PYTHON:-python3}
# A python3 of its own (pyenv, a venv) may lack Debian's python3-matplotlib.
if [ -z "${PYTHON:-}" ] && ! "$python" -c 'import matplotlib' 2>/dev/null &&
  /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  python=/usr/bin/python3
fi
tools=" ${BENCH_TOOLS:-kubectl pulumi floor} "

if [ ! -x "$kubectl" ]; then
  echo "bench: no kubectl at $kubectl: run make cluster (it builds one)" >&2
  exit 1
fi
if [ ! -f "$kubeconfig" ] ||
  ! "$kubectl" --kubeconfig "$kubeconfig" --context echo-iac-local \
    get --raw /readyz --request-timeout=5s >/dev/null 2>&1; then
  echo "bench: the local control plane in $cluster_dir is not running: run make cluster" >&2
  exit 1
fi
if [ ! -x /usr/bin/time ]; then
  echo "bench: /usr/bin/time (GNU time) is missing: apt-get install time" >&2
  exit 1
fi
if ! "$python" -c 'import matplotlib' 2>/dev/null; then
  echo "bench: $python has no matplotlib (for bench/scaling.png):" \
    "run \`$python -m pip install matplotlib\` or \`apt-get install python3-matplotlib\`" >&2
  exit 1
fi
if [[ $tools == *" pulumi "* ]] && ! "$python" -c 'import yaml' 2>/dev/null; then
  echo "bench: $python has no yaml module (to write the Pulumi program):" \
    "run \`apt-get install python3-yaml\` or \`$python -m pip install pyyaml\`" >&2
  exit 1
fi
audit=$cluster_dir/logs/audit.log
if [ ! -f "$audit" ]; then
  echo "bench: the control plane keeps no audit log, so API requests are counted by the tools" \
    "themselves and not at all for Pulumi; for the audit log, restart it with" \
    "ECHO_IAC_CLUSTER_AUDIT=1 make cluster" >&2
fi

# CARGO_FLAGS may hold several flags (e.g. `--locked --offline`): split on purpose.
# shellcheck disable=SC2086
(cd "$repo" && ${CARGO:-cargo} build --release --quiet ${CARGO_FLAGS:-})

# The floor: a small client-go program, built like the control plane's
# binaries and rebuilt only when its sources change.
floor=
if [[ $tools == *" floor "* ]]; then
  floor=$repo/target/bench/floor
  if [ ! -x "$floor" ] || [ -n "$(find "$here/floor" -newer "$floor" -type f)" ]; then
    echo "bench: building bench/floor" >&2
    mkdir -p "$(dirname "$floor")"
    (cd "$here/floor" && GOTOOLCHAIN=local GOFLAGS="-mod=readonly -trimpath" CGO_ENABLED=0 \
      go build -ldflags "-s -w" -o "$floor.tmp" . && mv "$floor.tmp" "$floor")
  fi
fi

pulumi_bin=
if [[ $tools == *" pulumi "* ]]; then
  # Cached after the first time; a cold build takes about 12.5 minutes on two
  # cores (build.sh says so before it starts). BENCH_TOOLS=kubectl skips it.
  pulumi_bin=$(ECHO_IAC_CLUSTER_CACHE=$cache "$here/pulumi/build.sh" | sed -n 's/^PULUMI_BIN=//p')
fi

export ECHO_IAC_KUBECTL=$kubectl
export BENCH_KUBECONFIG=$kubeconfig
export BENCH_ECHO_IAC=$repo/target/release/echo-iac
export BENCH_AUDIT_LOG=$audit BENCH_FLOOR=$floor BENCH_PULUMI_BIN=$pulumi_bin
exec "$python" "$here/bench.py"
