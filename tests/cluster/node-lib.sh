# Shared by node-up.sh, node-down.sh and with-cluster.sh: where the real node
# keeps its files, its network, and how its processes are recognised.
# Sourced, not run.
# shellcheck shell=bash disable=SC2034  # the variables are for the sourcing scripts
# shellcheck source=lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# The node's network: a namespace joined to this machine by a veth pair. The
# host end has 10.213.0.1, the node (inside the namespace) 10.213.0.2; pods
# get addresses from 10.214.0.0/24 on a bridge inside the namespace. Only
# this machine routes to them, and nothing is forwarded beyond it: the
# namespace has no default route.
node_name=echo-iac-node
node_netns=echo-iac-node
node_host_veth=eiac-node0
node_host_ip=10.213.0.1
node_ip=10.213.0.2
node_prefix=24
node_pod_cidr=10.214.0.0/24
# Cluster DNS (node-addons.sh): the kube-dns Service's address, in up.sh's
# service range; the kubelet gives it to pods as their nameserver.
node_dns_ip=10.96.0.10
node_cluster_domain=cluster.local
# MetalLB's pool (node-addons.sh): LoadBalancer addresses inside the node's
# subnet, so that this machine reaches them over the veth (the speaker answers
# ARP for them on the node's eth0).
node_lb_range=10.213.0.200-10.213.0.220
node_label=echo-iac.io/node=real
# The node is tainted so that only pods that tolerate it land there: the
# suite's other tests keep running on the kwok nodes.
node_taint_key=echo-iac.io/node
node_taint="$node_taint_key=real:NoSchedule"

node_dir=$cluster_dir/node
# The network namespace and veth are machine-wide: this file names the
# cluster folder whose node made them, so that a second checkout's scripts
# (ECHO_IAC_CLUSTER_DIR) never remove them.
node_owner_file=/run/echo-iac-node.owner
node_pid_dir=$node_dir/pids
node_log_dir=$log_dir/node
node_containerd_sock=$node_dir/containerd/containerd.sock
node_runc_root=$node_dir/containerd/runc
# The kubelet's cgroups (cgroupfs driver, cgroup v1 or v2) go under this
# parent in every hierarchy, so that node-down.sh can remove them all.
node_cgroup_parent=echo-iac-node

# Started in this order, stopped in the reverse.
node_components=(apiserver-bridge-host apiserver-bridge-node containerd kubelet kube-proxy)

# node_pid_of <component>: as pid_of, for the node's processes.
node_pid_of() {
  pid_dir=$node_pid_dir pid_of "$1"
}
node_running() {
  local c
  for c in "${node_components[@]}"; do node_pid_of "$c" >/dev/null || return 1; done
}
node_partly_running() {
  local c
  for c in "${node_components[@]}"; do node_pid_of "$c" >/dev/null && return 0; done
  return 1
}

# in_node <command>...: runs the command in the node's network namespace
# (and only that: the mount namespace stays this machine's, so the kubelet,
# containerd and the containers see the same mounts).
in_node() {
  nsenter --net="/run/netns/$node_netns" "$@"
}

# node_lock: one node-up.sh or node-down.sh at a time (not the control plane's
# lock: down.sh holds that while it runs node-down.sh).
node_lock() {
  mkdir -p "$cluster_dir"
  exec 7>"$cluster_dir/node.lock"
  if ! flock -n 7; then
    echo "waiting for another start or stop of the real node..." >&2
    flock 7
  fi
}

# node_net_is_ours: the node's network namespace and veth are this cluster
# folder's, or nobody's.
node_net_is_ours() {
  local owner
  [ -e "$node_owner_file" ] || return 0
  owner=$(cat "$node_owner_file" 2>/dev/null) || return 0
  [ "$owner" = "$cluster_dir" ] && return 0
  # An owner none of whose node processes runs left them behind: a killed
  # run, or a machine restarted under it, keeps its folder but no process.
  ! node_owner_running "$owner"
}

# node_owner_running <cluster folder>: a process of that folder's node runs.
node_owner_running() {
  local c
  [ -d "$1/node" ] || return 1
  for c in "${node_components[@]}"; do
    cluster_dir=$1 pid_dir=$1/node/pids pid_of "$c" >/dev/null && return 0
  done
  return 1
}

ctr_node() { ctr --address "$node_containerd_sock" --namespace k8s.io "$@"; }

# node_stop_group <component>...: stops them and waits until they are gone.
node_stop_group() {
  local c pid pids=()
  for c in "$@"; do
    if pid=$(node_pid_of "$c"); then pids+=("$pid"); fi
  done
  terminate node "${pids[@]}"
}

# node_shim_pids: the containerd shims serving this node's containerd (their
# command line names its socket).
node_shim_pids() {
  local dir pid
  for dir in /proc/[0-9]*; do
    pid=${dir#/proc/}
    [ "$(readlink "$dir/exe" 2>/dev/null)" = "$(command -v containerd-shim-runc-v2 2>/dev/null)" ] || continue
    tr '\0' '\n' <"$dir/cmdline" 2>/dev/null | grep -qxF -- "$node_containerd_sock" && echo "$pid"
  done
  return 0
}

# node_stop: stops and removes everything node-up.sh made, also after a crash
# or a half-done start: the processes it recorded, the containers and their
# shims, the mounts under .cluster/node/, the network namespace (and with it
# the bridge, the pods' veths and every iptables rule kube-proxy and the CNI
# plugins wrote: they all live in it), the host's veth, the cgroups, the Node
# object, and the node's files. Logs stay.
node_stop() {
  node_stop_group kube-proxy kubelet
  # Containers first, while containerd can still stop them.
  if node_pid_of containerd >/dev/null; then
    local task
    for task in $(ctr_node tasks ls -q 2>/dev/null); do
      ctr_node tasks kill -a -s SIGKILL "$task" >/dev/null 2>&1 || true
    done
    for task in $(ctr_node tasks ls -q 2>/dev/null); do
      ctr_node tasks rm -f "$task" >/dev/null 2>&1 || true
    done
  fi
  node_stop_group containerd
  node_stop_group apiserver-bridge-node apiserver-bridge-host
  # Whatever containerd did not stop: runc's own record of the containers,
  # then the shims.
  if [ -d "$node_runc_root/k8s.io" ] && command -v runc >/dev/null; then
    local id
    for id in $(runc --root "$node_runc_root/k8s.io" list -q 2>/dev/null); do
      runc --root "$node_runc_root/k8s.io" kill -a "$id" KILL >/dev/null 2>&1 || true
      runc --root "$node_runc_root/k8s.io" delete -f "$id" >/dev/null 2>&1 || true
    done
  fi
  local shims
  mapfile -t shims < <(node_shim_pids)
  if [ ${#shims[@]} -gt 0 ]; then
    kill -KILL "${shims[@]}" 2>/dev/null || true
    sleep 0.2
  fi
  # Mounts: the containers' root filesystems, the pods' network namespaces
  # and shm, the kubelet's volumes; deepest first.
  local mnt
  if [ -d "$node_dir" ]; then
    while read -r mnt; do
      umount "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
    done < <(awk -v d="$node_dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  fi
  if node_net_is_ours; then
    if [ -e "/run/netns/$node_netns" ]; then
      ip netns delete "$node_netns" 2>/dev/null || true
    fi
    if ip link show "$node_host_veth" >/dev/null 2>&1; then
      ip link delete "$node_host_veth" 2>/dev/null || true
    fi
    local hierarchy
    for hierarchy in /sys/fs/cgroup /sys/fs/cgroup/*; do
      [ -d "$hierarchy/$node_cgroup_parent" ] || continue
      find "$hierarchy/$node_cgroup_parent" -depth -type d -exec rmdir {} + 2>/dev/null || true
    done
    # containerd keeps the CNI plugins' results in libcni's machine-wide
    # cache (one file per network and pod sandbox), and its shims' sockets
    # under /run/containerd/s.
    local sandbox
    for sandbox in "$node_dir"/containerd/root/io.containerd.grpc.v1.cri/sandboxes/*; do
      [ -d "$sandbox" ] && rm -f /var/lib/cni/results/*-"${sandbox##*/}"-*
    done
    rmdir /var/lib/cni/results /var/lib/cni /run/containerd/s /run/containerd 2>/dev/null || true
    rm -f "$node_owner_file"
  fi
  # The Node object, when the control plane is still up.
  if [ -s "$kubeconfig" ] && pid_of kube-apiserver >/dev/null; then
    local kubectl_bin
    kubectl_bin=$("$(dirname "${BASH_SOURCE[0]}")/build.sh" | sed -n 's/^K8S_BIN=//p')/kubectl
    "$kubectl_bin" --kubeconfig "$kubeconfig" delete node "$node_name" --ignore-not-found \
      --wait=false >/dev/null 2>&1 || true
  fi
  rm -rf "$node_dir"
}
