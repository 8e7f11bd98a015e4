#!/usr/bin/env bash
# with-cluster.sh [--no-node] <command>...: runs the command against the
# local control plane. Starts the control plane when it is not running, and
# then stops it afterwards, even when the command fails or is interrupted; a
# control plane that was already running is left running. The same for the
# real node (node-up.sh), unless --no-node says the command needs none.
# Exits with the command's status.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=node-lib.sh
. "$here/node-lib.sh"

with_node=1
if [ "${1:-}" = --no-node ]; then
  with_node=0
  shift
fi

started=0
if ! running; then
  "$here/up.sh"
  started=1
fi
# The real node as well (node-up.sh), for tests/real_node.rs. When it cannot
# start, the rest of the suite still runs and that test fails, saying why.
node_started=0
if [ "$with_node" = 1 ] && ! node_running; then
  if "$here/node-up.sh"; then
    node_started=1
  else
    echo "with-cluster: the real node did not start (see above); its test will fail" >&2
  fi
fi

export ECHO_IAC_TEST_KUBECONFIG=$kubeconfig
if [ -z "${ECHO_IAC_KUBECTL:-}" ]; then
  ECHO_IAC_KUBECTL=$("$here/build.sh" | sed -n 's/^K8S_BIN=//p')/kubectl
  export ECHO_IAC_KUBECTL
fi

status=0
trap 'status=130' INT
trap 'status=143' TERM
"$@" || status=$?
trap - INT TERM

if [ "$started" = 1 ]; then
  "$here/down.sh" || true
elif [ "$node_started" = 1 ]; then
  "$here/node-down.sh" || true
fi
exit "$status"
