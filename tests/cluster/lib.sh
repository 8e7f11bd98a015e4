# Shared by up.sh, down.sh and with-cluster.sh: where the local control plane
# keeps its files, which loopback ports it uses, and how its processes are
# recognised. Sourced, not run.
# shellcheck shell=bash disable=SC2034  # the variables are for the sourcing scripts

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cluster_dir=${ECHO_IAC_CLUSTER_DIR:-$repo/.cluster}
pki_dir=$cluster_dir/pki
pid_dir=$cluster_dir/pids
log_dir=$cluster_dir/logs
kubeconfig=$cluster_dir/kubeconfig

# Loopback ports, away from the defaults so that a cluster already running on
# this machine (kind, minikube, a kubelet) does not clash with this one.
# ECHO_IAC_CLUSTER_PORT_OFFSET shifts them all, so that a second checkout (with
# its own ECHO_IAC_CLUSTER_DIR) can run a second cluster.
offset=${ECHO_IAC_CLUSTER_PORT_OFFSET:-0}
etcd_client_port=$((12379 + offset))
etcd_peer_port=$((12380 + offset))
apiserver_port=$((16443 + offset))
controller_manager_port=$((20257 + offset))
scheduler_port=$((20259 + offset))
kwok_port=$((20250 + offset))
apiserver_url=https://127.0.0.1:$apiserver_port

# Components in start order; down.sh stops them in reverse order.
components=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)

# pid_of <component>: the recorded pid when that process is still the one
# up.sh started (same executable, and its command line names this cluster's
# folder), so that a recycled pid is never mistaken for it. Fails otherwise.
pid_of() {
  local file=$pid_dir/$1.pid pid exe
  [ -f "$file" ] || return 1
  read -r pid exe <"$file" || true
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  alive "$pid" || return 1
  local cmdline
  cmdline=$(tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [ "$(head -n1 <<<"$cmdline")" = "$exe" ] || return 1
  grep -qF -- "$cluster_dir/" <<<"$cmdline" || return 1
  echo "$pid"
}

# alive <pid>: the process exists and is not a zombie waiting to be reaped.
alive() {
  local state
  state=$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# running: every component is up. partly_running: at least one is.
running() {
  local c
  for c in "${components[@]}"; do pid_of "$c" >/dev/null || return 1; done
}
partly_running() {
  local c
  for c in "${components[@]}"; do pid_of "$c" >/dev/null && return 0; done
  return 1
}

# port_in_use <port>: something listens on 127.0.0.1:<port>.
port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# lock: one up.sh or down.sh at a time for this cluster folder. The lock file
# is never deleted, so that every waiter locks the same file.
lock() {
  mkdir -p "$cluster_dir"
  exec 8>"$cluster_dir/lock"
  if ! flock -n 8; then
    echo "waiting for another start or stop of the local control plane..." >&2
    flock 8
  fi
}

# terminate <label> <pid>...: SIGTERM, then SIGKILL after 20 s; waits until
# every pid is gone.
terminate() {
  local label=$1 pid deadline
  shift
  local pids=("$@")
  [ ${#pids[@]} -eq 0 ] && return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  deadline=$((SECONDS + 20))
  while :; do
    local left=()
    for pid in "${pids[@]}"; do alive "$pid" && left+=("$pid"); done
    [ ${#left[@]} -eq 0 ] && break
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$label: pid ${left[*]} did not stop after SIGTERM; sending SIGKILL" >&2
      kill -KILL "${left[@]}" 2>/dev/null || true
      deadline=$((SECONDS + 5))
    fi
    pids=("${left[@]}")
    sleep 0.1
  done
}

# log_tail <file>: the end of a component's log, shown when it failed.
log_tail() {
  [ -s "$1" ] || return 0
  echo "---- last 30 lines of $1 ----" >&2
  tail -n 30 "$1" >&2
  echo "----" >&2
}

# stop_cluster: stops the recorded processes that are still ours, clients
# first and etcd last, a group at a time. Forgets the pids.
stop_cluster() {
  local group c pid pids
  for group in "kwok kube-scheduler kube-controller-manager" kube-apiserver etcd; do
    pids=()
    for c in $group; do
      if pid=$(pid_of "$c"); then pids+=("$pid"); fi
    done
    terminate cluster "${pids[@]}"
  done
  rm -rf "$pid_dir"
}

# remove_data: everything under the cluster folder but the logs and the lock.
remove_data() {
  rm -rf "$cluster_dir/etcd" "$pki_dir" "$pid_dir" "$cluster_dir/kwok" "$cluster_dir/flexvolume" \
    "$kubeconfig" "$kubeconfig.tmp" "$cluster_dir/scheduler.yaml"
}
