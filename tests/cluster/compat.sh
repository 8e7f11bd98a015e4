#!/usr/bin/env bash
# compat.sh [release]...: the compatibility tests (docs/compat.md). For each
# Kubernetes release pinned in versions.env (K8S_VERSION and
# COMPAT_K8S_VERSIONS), or each one named (1.35, v1.35.4; spaces or commas
# between them), oldest first: builds its control plane (cached, see
# build.sh), starts it on a folder and ports of its own
# (${ECHO_IAC_COMPAT_DIR:-/tmp}/compat-1.<minor>, port offset 3000 + minor * 10,
# so the default .cluster/ is never touched), runs each group of integration
# tests below against it, and stops it. Prints a table of the results (a
# Markdown table, also written to ${ECHO_IAC_COMPAT_DIR:-/tmp}/compat-results.md)
# and exits non-zero when any group failed. CARGO and CARGO_FLAGS as for
# `make test`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
# shellcheck source=k8s-version.sh
. "$here/k8s-version.sh"
cargo=${CARGO:-cargo}
read -r -a cargo_flags <<<"${CARGO_FLAGS:-}"
base=${ECHO_IAC_COMPAT_DIR:-/tmp}
results=$base/compat-results.md
say() { echo "compat: $*" >&2; }

# The groups: a name for the table, then the test name filters (modules of
# the `tests` binary) that make it up, and what to --skip. Only kwok's fake
# nodes run here: a test that needs the real node (tests/real_node.rs, one
# per machine, built and started as root by node-up.sh) is skipped.
groups=(
  "life cycle|lifecycle::"
  "readiness of every kind|readiness::"
  "state backend and Lease|team_state::"
  "state lock|locking::"
  "bad input|bad_input::"
  "node ports|node_ports:: --skip node_ports::a_stack_moves_to_a_new_namespace_keeping_its_node_port"
)

# The releases, oldest first.
versions=()
for arg in "$@"; do
  for want in ${arg//,/ }; do
    version=$(k8s_resolve "$want") || exit 1
    versions+=("$version")
  done
done
if [ ${#versions[@]} -eq 0 ]; then
  mapfile -t versions < <(k8s_known_versions)
else
  mapfile -t versions < <(printf '%s\n' "${versions[@]}" | sort -u -V)
fi
say "releases: ${versions[*]}"

# One build of the test binary for every release.
cd "$repo"
"$cargo" test "${cargo_flags[@]}" -p echo-iac --test tests --no-run >&2

# cluster_env <version>: the environment that puts up.sh, down.sh and the tests
# on that release's own control plane.
cluster_env() {
  local minor
  minor=$(k8s_minor "$1")
  echo "ECHO_IAC_CLUSTER_K8S_VERSION=$1"
  echo "ECHO_IAC_CLUSTER_DIR=$base/compat-1.$minor"
  echo "ECHO_IAC_CLUSTER_PORT_OFFSET=$((3000 + minor * 10))"
}

# A control plane still running when this script is interrupted is stopped.
current=
stop_current() {
  [ -n "$current" ] || return 0
  local env
  mapfile -t env < <(cluster_env "$current")
  env "${env[@]}" "$here/down.sh" || true
  current=
}
trap stop_current EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# seconds_since <start>: whole seconds since `date +%s.%N` printed start.
seconds_since() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.0f", e - s }'; }

header="| release | server | start |"
rule="| --- | --- | --- |"
for group in "${groups[@]}"; do
  header+=" ${group%%|*} |"
  rule+=" --- |"
done
rows=()
failed=0

for version in "${versions[@]}"; do
  mapfile -t env < <(cluster_env "$version")
  dir=${env[1]#*=}
  row="| $version |"
  say "---- Kubernetes $version (folder $dir, ${env[2]})"

  if ! bins=$(env "${env[@]}" "$here/build.sh"); then
    say "$version: the build failed"
    rows+=("$row - | build failed |$(printf ' - |%.0s' "${groups[@]}")")
    failed=1
    continue
  fi
  kubectl=$(sed -n 's/^K8S_BIN=//p' <<<"$bins")/kubectl

  current=$version
  start=$(date +%s.%N)
  if ! env "${env[@]}" "$here/up.sh"; then
    say "$version: the control plane did not start (logs in $dir/logs/)"
    rows+=("$row - | failed |$(printf ' - |%.0s' "${groups[@]}")")
    failed=1
    stop_current
    continue
  fi
  started="ok, $(seconds_since "$start") s"
  server=$("$kubectl" --kubeconfig "$dir/kubeconfig" version -o json 2>/dev/null \
    | sed -n '/"serverVersion"/,/}/s/.*"gitVersion": "\([^"]*\)".*/\1/p') || true
  row+=" ${server:-?} | $started |"

  mkdir -p "$dir/compat"
  for group in "${groups[@]}"; do
    name=${group%%|*}
    read -r -a filters <<<"${group#*|}"
    log="$dir/compat/${name// /-}.log"
    say "$version: $name (${group#*|}), log $log"
    start=$(date +%s.%N)
    status=0
    env "${env[@]}" ECHO_IAC_TEST_KUBECONFIG="$dir/kubeconfig" ECHO_IAC_KUBECTL="$kubectl" \
      "$cargo" test "${cargo_flags[@]}" -p echo-iac --test tests -- "${filters[@]}" >"$log" 2>&1 || status=$?
    took=$(seconds_since "$start")
    # libtest's summary: "test result: ok. 12 passed; 0 failed; ...".
    summary=$(grep -E '^test result: ' "$log" | tail -n1) || true
    passed=$(sed -n 's/.* \([0-9]*\) passed;.*/\1/p' <<<"$summary")
    failures=$(sed -n 's/.* \([0-9]*\) failed;.*/\1/p' <<<"$summary")
    if [ "$status" = 0 ] && [ -n "$passed" ] && [ "$passed" -gt 0 ]; then
      cell="pass $passed/$passed, $took s"
    elif [ -n "$passed" ]; then
      cell="**FAIL** $passed/$((passed + failures)), $took s"
      failed=1
      grep -E '^    [a-z0-9_:]+$' "$log" | sed "s/^ */compat: $version: failed: /" >&2 || true
    else
      cell="**error** (no test ran), $took s"
      failed=1
    fi
    say "$version: $name: $cell"
    row+=" $cell |"
  done
  rows+=("$row")
  stop_current
done

{
  echo "$header"
  echo "$rule"
  printf '%s\n' "${rows[@]}"
} | tee "$results"
say "table written to $results"
exit "$failed"
