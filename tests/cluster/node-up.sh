#!/usr/bin/env bash
# Starts a real node beside the kwok nodes of the running local control plane
# (`make cluster` first): containerd and runc (Debian's packages), the kubelet
# and kube-proxy in iptables mode (built from the pinned Kubernetes release by
# build.sh --node), CNI bridge networking (Debian's containernetworking-plugins),
# the images node-image.sh builds (docker.io/library/nginx:alpine, the pod
# sandbox, curl, CoreDNS and MetalLB), and the add-ons node-addons.sh starts:
# cluster DNS (CoreDNS) and a load balancer (MetalLB, layer 2). Nothing is
# pulled.
#
# The node lives in its own network namespace (node-lib.sh: node IP 10.213.0.2,
# reached from this machine through a veth pair; pods on 10.214.0.0/24), so
# that its iptables rules, bridge and pod networks never touch this machine's.
# Its processes run in that network namespace (nsenter --net), in this
# machine's mount namespace. The API server listens on 127.0.0.1 only, in this
# machine's namespace; inside the node's namespace, 127.0.0.1:<API port> is
# bridged to it through a Unix socket (two socat processes), so the node's
# kubeconfigs use the same address and certificate names as everyone else's
# and the API server is reachable from nowhere else.
#
# The node is `echo-iac-node`, labelled echo-iac.io/node=real and tainted
# echo-iac.io/node=real:NoSchedule: pods land there only when they select it
# and tolerate the taint (e.g. through a namespace's
# scheduler.alpha.kubernetes.io/node-selector and defaultTolerations
# annotations; up.sh enables those admission plugins).
#
# Installs the Debian packages it needs when missing (as root). Logs go to
# .cluster/logs/node/, pids to .cluster/node/pids/. Does nothing when the node
# is already up. Stop it with node-down.sh (down.sh does it too).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=node-lib.sh
. "$here/node-lib.sh"

start_time=$(date +%s.%N)
say() { echo "node: $*" >&2; }
elapsed() { awk -v s="$start_time" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1fs", e - s }'; }

[ "$(id -u)" = 0 ] || { say "must run as root (network namespaces, mounts, cgroups, iptables)"; exit 1; }
running || { say "the local control plane is not running; start it first: make cluster"; exit 1; }

node_lock

kubectl_bin=$("$here/build.sh" | sed -n 's/^K8S_BIN=//p')/kubectl
kc() { "$kubectl_bin" --kubeconfig "$kubeconfig" "$@"; }
node_ready() {
  [ "$(kc get node "$node_name" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

if node_running && node_ready; then
  say "already running ($node_name, $node_ip); nothing to do"
  if ! grep -qF "clusterDNS: [$node_dns_ip]" "$node_dir/kubelet.yaml" 2>/dev/null; then
    say "warning: it was started by older scripts, without cluster DNS and MetalLB;"
    say "warning: to add them, restart it: tests/cluster/node-down.sh && tests/cluster/node-up.sh"
  fi
  exit 0
fi
if ! node_net_is_ours; then
  say "the network namespace $node_netns belongs to the real node of $(cat "$node_owner_file");"
  say "one real node per machine: stop that one first (ECHO_IAC_CLUSTER_DIR=$(cat "$node_owner_file") tests/cluster/node-down.sh)"
  exit 1
fi
if node_partly_running || [ -e "/run/netns/$node_netns" ] || [ -d "$node_dir" ]; then
  say "leftovers of an earlier node found; removing them first"
  node_stop
fi

# ------------------------------------------------------------------ packages
# command or file -> Debian package
declare -A package_of=(
  [containerd]=containerd [containerd-shim-runc-v2]=containerd [ctr]=containerd [runc]=runc
  [/usr/lib/cni/bridge]=containernetworking-plugins [iptables]=iptables
  [iptables-restore]=iptables [socat]=socat [nsenter]=util-linux [ip]=iproute2
  [apt-get]=apt [dpkg-deb]=dpkg [mount]=mount
)
missing=()
for need in "${!package_of[@]}"; do
  case $need in
    /*) [ -x "$need" ] || missing+=("${package_of[$need]}") ;;
    *) command -v "$need" >/dev/null || missing+=("${package_of[$need]}") ;;
  esac
done
if [ ${#missing[@]} -gt 0 ]; then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  say "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi
# The Debian containerd package starts a system containerd where systemd
# runs; this node runs its own, with its own socket and folders, beside it.

# ------------------------------------------------------- binaries and images
bins=$("$here/build.sh" --node)
k8s_bin=$(sed -n 's/^K8S_BIN=//p' <<<"$bins")
images=$("$here/node-image.sh")
pause_image=$(sed -n 's/^PAUSE_IMAGE=//p' <<<"$images")
curl_ref=$(sed -n 's/^CURL_REF=//p' <<<"$images")
coredns_ref=$(sed -n 's/^COREDNS_REF=//p' <<<"$images")
metallb_ref=$(sed -n 's/^METALLB_REF=//p' <<<"$images")
pause_ref=localhost/echo-iac/pause:1

# The admission plugins that let a namespace place its pods on this node.
apiserver_pid=$(pid_of kube-apiserver)
if ! tr '\0' '\n' <"/proc/$apiserver_pid/cmdline" | grep -q -- '--enable-admission-plugins=.*PodTolerationRestriction'; then
  say "warning: the running API server lacks --enable-admission-plugins=PodNodeSelector,PodTolerationRestriction"
  say "warning: (an older up.sh started it); namespaces cannot place pods on this node until: make cluster-down cluster"
fi

mkdir -p "$node_dir"/{pki,pids,containerd,cni/net.d,cni/ipam,cni/cache,kubelet,pod-logs} "$node_log_dir"
rm -f "$node_log_dir"/*.log

started_ok=0
cleanup() {
  local status=$?
  if [ "$started_ok" != 1 ]; then
    [ "$status" = 0 ] && status=1
    say "start failed; removing what was started (logs kept in $node_log_dir)"
    node_stop || true
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
  say "$1: $2"
  log_tail "$node_log_dir/$1.log"
  exit 1
}

# ------------------------------------------------------------------- network
echo "$cluster_dir" >"$node_owner_file"
ip netns add "$node_netns"
ip link add "$node_host_veth" type veth peer name eth0 netns "$node_netns"
ip addr add "$node_host_ip/$node_prefix" dev "$node_host_veth"
ip link set "$node_host_veth" up
in_node ip link set lo up
in_node ip addr add "$node_ip/$node_prefix" dev eth0
in_node ip link set eth0 up
# Pods reach the node and each other through the node; the bridge plugin
# also sets this, but a clean start should not depend on it.
in_node sysctl -qw net.ipv4.ip_forward=1

# -------------------------------------------------------------- certificates
# Client certificates signed by the control plane's CA: the kubelet as
# system:node:<name> (Node authorizer, NodeRestriction), kube-proxy as
# system:kube-proxy (bound to system:node-proxier by default).
sign_client() {
  local name=$1 subject=$2 dir=$node_dir/pki
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/$name.key" 2>/dev/null
  printf '[v3]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature, keyEncipherment\nextendedKeyUsage = clientAuth\n' >"$dir/$name.ext.cnf"
  openssl req -new -key "$dir/$name.key" -subj "$subject" -out "$dir/$name.csr" 2>/dev/null
  openssl x509 -req -in "$dir/$name.csr" -CA "$pki_dir/ca.crt" -CAkey "$pki_dir/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 365 -sha256 \
    -extfile "$dir/$name.ext.cnf" -extensions v3 -out "$dir/$name.crt" 2>/dev/null
  rm -f "$dir/$name.csr" "$dir/$name.ext.cnf"
  chmod 600 "$dir/$name.key"
}
node_kubeconfig() {
  local name=$1 user=$2
  (
    umask 077
    cat >"$node_dir/$name.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: echo-iac-local
  cluster:
    server: $apiserver_url
    certificate-authority: $pki_dir/ca.crt
users:
- name: $user
  user:
    client-certificate: $node_dir/pki/$name.crt
    client-key: $node_dir/pki/$name.key
contexts:
- name: echo-iac-local
  context:
    cluster: echo-iac-local
    user: $user
current-context: echo-iac-local
EOF
  )
}
sign_client kubelet "/O=system:nodes/CN=system:node:$node_name"
sign_client kube-proxy "/CN=system:kube-proxy"
node_kubeconfig kubelet "system:node:$node_name"
node_kubeconfig kube-proxy system:kube-proxy

# ------------------------------------------------------------ configuration
cat >"$node_dir/containerd/config.toml" <<EOF
version = 2
root = "$node_dir/containerd/root"
state = "$node_dir/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "$node_containerd_sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "$node_dir/containerd/opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause_ref"
  netns_mounts_under_state_dir = true
  # The kubelet asks for oom_score_adj -998 (sandbox) and -997 (Guaranteed
  # pods); lowering it needs CAP_SYS_RESOURCE, which a sandboxed root (as on
  # this machine) may lack. Clamp to containerd's own value instead.
  restrict_oom_score_adj = true
  enable_cdi = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$node_dir/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$node_runc_root"
        SystemdCgroup = false
EOF

cat >"$node_dir/cni/net.d/10-echo-iac.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "echo-iac-node",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$node_dir/cni/ipam",
        "ranges": [[{ "subnet": "$node_pod_cidr" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF

cat >"$node_dir/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has cgroup v1, which the kubelet refuses by default since 1.35.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$node_cgroup_parent
containerRuntimeEndpoint: unix://$node_containerd_sock
address: $node_ip
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
# The API server calls the kubelet (logs, exec) without a client certificate;
# the kubelet listens only inside the node's network namespace.
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
  x509:
    clientCAFile: $pki_dir/ca.crt
authorization:
  mode: AlwaysAllow
registerWithTaints:
- key: $node_taint_key
  value: real
  effect: NoSchedule
podLogsDir: $node_dir/pod-logs
resolvConf: ""
# Pods with the default dnsPolicy ask CoreDNS (node-addons.sh).
clusterDNS: [$node_dns_ip]
clusterDomain: $node_cluster_domain
maxPods: 30
failSwapOn: false
serializeImagePulls: false
# Never remove the two local images (they cannot be pulled back), and do not
# evict pods because this shared machine's disk is fuller than a node's.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%
  nodefs.inodesFree: 1%
  imagefs.available: 1%
containerLogMaxSize: 1Mi
EOF

cat >"$node_dir/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection:
  kubeconfig: $node_dir/kube-proxy.kubeconfig
hostnameOverride: $node_name
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
clusterCIDR: $node_pod_cidr
detectLocalMode: ClusterCIDR
nodePortAddresses: ["$node_ip/32"]
# Leave the machine-wide conntrack settings alone.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
iptables:
  localhostNodePorts: false
oomScoreAdj: 0
EOF

# ------------------------------------------------------------------ cgroups
# The parent cgroup in every hierarchy (v1: one per controller; v2: one).
for hierarchy in /sys/fs/cgroup /sys/fs/cgroup/*; do
  [ -f "$hierarchy/cgroup.procs" ] || continue
  [ "$hierarchy" = /sys/fs/cgroup ] && [ -d /sys/fs/cgroup/cpu ] && continue
  mkdir -p "$hierarchy/$node_cgroup_parent"
  if [ -f "$hierarchy/cpuset.cpus" ]; then
    cat "$hierarchy/cpuset.cpus" >"$hierarchy/$node_cgroup_parent/cpuset.cpus"
    cat "$hierarchy/cpuset.mems" >"$hierarchy/$node_cgroup_parent/cpuset.mems"
  fi
done

# ---------------------------------------------------------------- processes
# node_start <component> <executable> <args>...: as up.sh's start, inside the
# node's network namespace.
node_start() {
  local name=$1 exe=$2; shift 2
  [ -x "$exe" ] || fail "$name" "missing executable $exe"
  (exec setsid nsenter --net="/run/netns/$node_netns" "$exe" "$@" </dev/null >"$node_log_dir/$name.log" 2>&1 7>&- 8>&-) &
  echo "$! $exe" >"$node_pid_dir/$name.pid"
}
host_start() {
  local name=$1 exe=$2; shift 2
  (exec setsid "$exe" "$@" </dev/null >"$node_log_dir/$name.log" 2>&1 7>&- 8>&-) &
  echo "$! $exe" >"$node_pid_dir/$name.pid"
}
node_wait_for() {
  local name=$1 timeout=$2; shift 2
  local deadline=$((SECONDS + timeout)) pid
  pid=$(cut -d' ' -f1 "$node_pid_dir/$name.pid")
  until "$@" >/dev/null 2>&1; do
    alive "$pid" || fail "$name" "exited during start"
    [ "$SECONDS" -lt "$deadline" ] || fail "$name" "not ready after ${timeout}s"
    sleep 0.2
  done
}

socat_bin=$(command -v socat)
bridge_sock=$node_dir/apiserver.sock
host_start apiserver-bridge-host "$socat_bin" \
  "UNIX-LISTEN:$bridge_sock,fork,unlink-early,mode=600" "TCP:127.0.0.1:$apiserver_port"
node_start apiserver-bridge-node "$socat_bin" \
  "TCP-LISTEN:$apiserver_port,bind=127.0.0.1,fork,reuseaddr" "UNIX-CONNECT:$bridge_sock"
node_api_ok() {
  in_node curl -sf --max-time 2 --cacert "$pki_dir/ca.crt" --cert "$node_dir/pki/kubelet.crt" \
    --key "$node_dir/pki/kubelet.key" "$apiserver_url/readyz"
}
node_wait_for apiserver-bridge-node 10 node_api_ok

node_start containerd "$(command -v containerd)" --config "$node_dir/containerd/config.toml" --log-level warn
node_wait_for containerd 30 ctr_node version
ctr_node images import "$pause_image" >"$node_log_dir/images.log" 2>&1 || fail images "could not import $pause_image"
for image in NGINX_IMAGE CURL_IMAGE COREDNS_IMAGE METALLB_IMAGE; do
  archive=$(sed -n "s/^$image=//p" <<<"$images")
  ctr_node images import "$archive" >>"$node_log_dir/images.log" 2>&1 || fail images "could not import $archive"
done
# The curl image also goes by a name that does not change with Debian's curl
# version: the echo program's default `testImage`.
ctr_node images tag --force "$curl_ref" localhost/echo-iac/curl:1 >>"$node_log_dir/images.log" 2>&1 ||
  fail images "could not tag $curl_ref"
# Pinned, so that the kubelet never removes them, not even to reclaim disk
# space under pressure: none of them can be pulled back.
while read -r ref; do
  ctr_node images label "$ref" io.cri-containerd.pinned=pinned >>"$node_log_dir/images.log" 2>&1 ||
    fail images "could not pin $ref"
done < <(ctr_node images ls -q)
say "containerd ready, images imported ($(elapsed))"

node_start kubelet "$k8s_bin/kubelet" \
  --config="$node_dir/kubelet.yaml" \
  --kubeconfig="$node_dir/kubelet.kubeconfig" \
  --root-dir="$node_dir/kubelet" \
  --hostname-override="$node_name" \
  --node-ip="$node_ip" \
  --node-labels="$node_label"
node_wait_for kubelet 90 node_ready
say "kubelet ready: node $node_name is Ready ($(elapsed))"

node_start kube-proxy "$k8s_bin/kube-proxy" --config="$node_dir/kube-proxy.yaml"
node_wait_for kube-proxy 30 in_node curl -sf --max-time 2 http://127.0.0.1:10256/healthz

say "images: $curl_ref $coredns_ref $metallb_ref"
"$here/node-addons.sh" 7>&- 8>&-
say "add-ons ready ($(elapsed))"

started_ok=1
say "ready in $(elapsed): $node_name at $node_ip (pods $node_pod_cidr), label $node_label, taint $node_taint"
say "cluster DNS $node_dns_ip (kube-system/kube-dns, $node_cluster_domain); LoadBalancer pool $node_lb_range"
