#!/usr/bin/env bash
# Stops the local control plane that up.sh started: only the processes whose
# pids it recorded, after checking they are still those processes; waits for
# them to exit, then removes the cluster's data (etcd, certificates,
# kubeconfig). Logs stay in .cluster/logs/ until the next start.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

lock
# The real node (node-up.sh) first, while the API server can still remove
# its Node object.
if [ -d "$cluster_dir/node" ]; then
  "$here/node-down.sh" || true
fi
if partly_running; then
  stop_cluster
  remove_data
  echo "cluster: stopped (logs kept in $log_dir)" >&2
else
  remove_data
  echo "cluster: not running; nothing to stop" >&2
fi
