#!/usr/bin/env bash
# bench/run.sh: benchmarks echo-iac against kubectl on the local control
# plane and writes bench/RESULTS.md, bench/scaling.png and bench/results.json.
# The target of `make bench`. Starts nothing: the control plane must be up
# (`make cluster`). Settings (environment): BENCH_SIZES, BENCH_RUNS,
# BENCH_PORTS, BENCH_TIMEOUT, BENCH_KEEP; see bench/README.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/echo-iac/cluster
k8s_version=$(sed -n 's/^K8S_VERSION=//p' "$repo/tests/cluster/versions.env")
kubectl=${ECHO_IAC_KUBECTL:-$cache/kubernetes-$k8s_version/kubectl}
kubeconfig=$repo/.cluster/kubeconfig
python=${PYTHON:-python3}

if [ ! -x "$kubectl" ]; then
  echo "bench: no kubectl at $kubectl: run make cluster (it builds one)" >&2
  exit 1
fi
if [ ! -f "$kubeconfig" ] ||
  ! "$kubectl" --kubeconfig "$kubeconfig" --context echo-iac-local \
    get --raw /readyz --request-timeout=5s >/dev/null 2>&1; then
  echo "bench: the local control plane is not running: run make cluster" >&2
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

# CARGO_FLAGS may hold several flags (e.g. `--locked --offline`): split on purpose.
# shellcheck disable=SC2086
(cd "$repo" && ${CARGO:-cargo} build --release --quiet ${CARGO_FLAGS:-})

export ECHO_IAC_KUBECTL=$kubectl
export BENCH_KUBECONFIG=$kubeconfig
export BENCH_ECHO_IAC=$repo/target/release/echo-iac
exec "$python" "$here/bench.py"
