#!/usr/bin/env bash
# suite.sh [cargo test options]...: the whole test suite, against the control
# plane in ECHO_IAC_TEST_KUBECONFIG (with-cluster.sh sets it). The options,
# e.g. --locked or a test name filter, go to every `cargo test` below.
#   1. the engine crate's own tests, which need no cluster;
#   2. unit tests and the integration test binary `tests`, in parallel, then
#      the example programs' (examples/quorum, examples/hello, examples/seed,
#      examples/backups) against the same cluster;
#   3. doc tests;
#   4. the `disruptive` binary, one test at a time: its tests stop the API
#      server for a while, which the others would not survive.
# Every step runs even when an earlier one fails; exits non-zero if any did.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit
cargo=${CARGO:-cargo}

# Commands the tests run besides the binary -> Debian package. Installed
# when missing and this is root with apt (as on CI); otherwise the tests
# that need them fail, saying which package to install.
declare -A package_of=([tmux]=tmux [man]=man-db)
missing=()
for cmd in "${!package_of[@]}"; do
  command -v "$cmd" >/dev/null || missing+=("${package_of[$cmd]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "suite: installing ${missing[*]}" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 ||
      { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; }
  else
    echo "suite: missing ${missing[*]} (apt-get install ${missing[*]}); the tests that need them will fail" >&2
  fi
fi

status=0
step() {
  echo "=== cargo test $*" >&2
  "$cargo" test "$@" || status=1
}
step "$@" -p echo-iac-engine
step "$@" -p echo-iac-runner --lib
step "$@" -p echo-iac --lib --bins --test tests
step "$@" -p quorum-iac
step "$@" -p hello-iac
step "$@" -p seed-iac
step "$@" -p backups-iac
step "$@" --workspace --doc
if grep -q '^name = "disruptive"' Cargo.toml; then
  step "$@" -p echo-iac --test disruptive -- --test-threads=1
fi
exit "$status"
