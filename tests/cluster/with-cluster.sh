#!/usr/bin/env bash
# with-cluster.sh <command>...: runs the command against the local control
# plane. Starts the control plane when it is not running, and then stops it
# afterwards, even when the command fails or is interrupted; a control plane
# that was already running is left running. Exits with the command's status.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

started=0
if ! running; then
  "$here/up.sh"
  started=1
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
fi
exit "$status"
