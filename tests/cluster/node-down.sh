#!/usr/bin/env bash
# Stops the real node that node-up.sh started and removes all of it: its
# processes, containers, mounts, network namespace and veth pair (and with the
# namespace every iptables rule written inside it), cgroups, its Node object
# and its files. Logs stay in .cluster/logs/node/ until the next start.
# down.sh runs it before stopping the control plane.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=node-lib.sh
. "$here/node-lib.sh"

[ "$(id -u)" = 0 ] || { echo "node: must run as root" >&2; exit 1; }
node_lock
if node_partly_running || [ -e "/run/netns/$node_netns" ] || [ -d "$node_dir" ]; then
  node_stop
  echo "node: stopped and removed (logs kept in $node_log_dir)" >&2
else
  echo "node: not running; nothing to stop" >&2
fi
