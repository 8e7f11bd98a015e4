#!/usr/bin/env bash
# Starts the local control plane on loopback: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler and kwok with three fake nodes whose
# pods become Running and Ready. Builds the binaries first (cached, see
# build.sh). Writes .cluster/kubeconfig (context echo-iac-local); logs go to
# .cluster/logs/, pids to .cluster/pids/, etcd data and certificates to
# .cluster/. Does nothing when the cluster is already up. Stop it with down.sh.
# Runs Kubernetes K8S_VERSION, or the release ECHO_IAC_CLUSTER_K8S_VERSION
# names (see k8s-version.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
# shellcheck source=versions.env
. "$here/versions.env"
# shellcheck source=k8s-version.sh
. "$here/k8s-version.sh"
k8s_version=$(k8s_version_wanted)

start_time=$(date +%s.%N)
say() { echo "cluster: $*" >&2; }
elapsed() { awk -v s="$start_time" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1fs", e - s }'; }

lock

if running; then
  # The API server's executable lies in its release's cache folder.
  running_exe=$(cut -d' ' -f2- "$pid_dir/kube-apiserver.pid")
  running_version=$(sed -n 's|.*/kubernetes-\([^/]*\)/kube-apiserver$|\1|p' <<<"$running_exe")
  if [ "$running_version" != "$k8s_version" ]; then
    say "already running Kubernetes ${running_version:-from $running_exe}, not $k8s_version;" \
      "stop it first with tests/cluster/down.sh (and the same ECHO_IAC_CLUSTER_DIR)"
    exit 1
  fi
  say "already running (kubeconfig: $kubeconfig); nothing to do"
  exit 0
fi
if partly_running; then
  say "some components are running but not all; stopping them to start afresh"
  stop_cluster
fi

# Binaries: built once per version, then taken from the cache.
bins=$("$here/build.sh")
k8s_bin=$(sed -n 's/^K8S_BIN=//p' <<<"$bins")
etcd_bin=$(sed -n 's/^ETCD_BIN=//p' <<<"$bins")
kwok_bin=$(sed -n 's/^KWOK_BIN=//p' <<<"$bins")
kubectl=$k8s_bin/kubectl

for port in $etcd_client_port $etcd_peer_port $apiserver_port $controller_manager_port $scheduler_port $kwok_port; do
  if port_in_use "$port"; then
    say "port 127.0.0.1:$port is already in use by another program; see: ss -ltnp 'sport = :$port'"
    exit 1
  fi
done

remove_data
rm -f "$log_dir"/*.log
mkdir -p "$pki_dir" "$pid_dir" "$log_dir" "$cluster_dir/kwok"

# From here on, any failure stops whatever was started and keeps the logs.
started_ok=0
cleanup() {
  local status=$?
  if [ "$started_ok" != 1 ]; then
    [ "$status" = 0 ] && status=1
    say "start failed; stopping what was started (logs kept in $log_dir)"
    stop_cluster
    remove_data
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# fail <component> <message>: prints the message and the end of the
# component's log, then exits (the EXIT trap stops everything).
fail() {
  say "$1: $2"
  log_tail "$log_dir/$1.log"
  exit 1
}

# ---------------------------------------------------------------- certificates
# A throwaway CA signs the API server's serving certificate and the admin's
# client certificate (group system:masters); service-account tokens are signed
# with their own key. EC P-256 keys: quick to make, accepted by Go and rustls.
newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# sign <name> <subject> <extensions>: key <name>.key, certificate <name>.crt.
sign() {
  local name=$1 subject=$2 ext=$3
  newkey "$pki_dir/$name.key"
  printf '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\n' >"$pki_dir/$name.req.cnf"
  printf '[v3]\n%b\n' "$ext" >"$pki_dir/$name.ext.cnf"
  openssl req -new -key "$pki_dir/$name.key" -subj "$subject" -config "$pki_dir/$name.req.cnf" \
    -out "$pki_dir/$name.csr"
  openssl x509 -req -in "$pki_dir/$name.csr" -CA "$pki_dir/ca.crt" -CAkey "$pki_dir/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 365 -sha256 \
    -extfile "$pki_dir/$name.ext.cnf" -extensions v3 -out "$pki_dir/$name.crt" 2>/dev/null
  rm -f "$pki_dir/$name.csr" "$pki_dir/$name.req.cnf" "$pki_dir/$name.ext.cnf"
}

make_pki() {
  newkey "$pki_dir/ca.key"
  cat >"$pki_dir/ca.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
x509_extensions = v3_ca
[dn]
CN = echo-iac-local-ca
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
EOF
  openssl req -x509 -new -key "$pki_dir/ca.key" -config "$pki_dir/ca.cnf" -days 365 -sha256 \
    -set_serial "0x$(openssl rand -hex 16)" -out "$pki_dir/ca.crt"
  rm -f "$pki_dir/ca.cnf"

  sign apiserver "/CN=kube-apiserver" \
    "basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1, DNS:localhost, IP:10.96.0.1, DNS:kubernetes, DNS:kubernetes.default, DNS:kubernetes.default.svc, DNS:kubernetes.default.svc.cluster.local\nauthorityKeyIdentifier = keyid"
  sign admin "/O=system:masters/CN=echo-iac-admin" \
    "basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature, keyEncipherment\nextendedKeyUsage = clientAuth\nauthorityKeyIdentifier = keyid"

  newkey "$pki_dir/sa.key"
  openssl pkey -in "$pki_dir/sa.key" -pubout -out "$pki_dir/sa.pub" 2>/dev/null
  chmod 600 "$pki_dir"/*.key
}

write_kubeconfig() {
  local tmp=$kubeconfig.tmp
  (
    umask 077
    cat >"$tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: echo-iac-local
  cluster:
    server: $apiserver_url
    certificate-authority-data: $(base64 -w0 <"$pki_dir/ca.crt")
users:
- name: echo-iac-local-admin
  user:
    client-certificate-data: $(base64 -w0 <"$pki_dir/admin.crt")
    client-key-data: $(base64 -w0 <"$pki_dir/admin.key")
contexts:
- name: echo-iac-local
  context:
    cluster: echo-iac-local
    user: echo-iac-local-admin
current-context: echo-iac-local
EOF
  )
  mv "$tmp" "$kubeconfig"
}

# ------------------------------------------------------------------ processes
# start <component> <executable> <args>...: runs it in its own session (so a
# Ctrl-C in the calling terminal does not reach it), output to its log, and
# records "<pid> <executable>" for down.sh.
start() {
  local name=$1 exe=$2; shift 2
  [ -x "$exe" ] || fail "$name" "missing executable $exe (run tests/cluster/build.sh)"
  # 8>&-: the lock must not outlive this script in the children.
  (exec setsid "$exe" "$@" </dev/null >"$log_dir/$name.log" 2>&1 8>&-) &
  echo "$! $exe" >"$pid_dir/$name.pid"
}

# wait_for <component> <timeout seconds> <command>...: polls the command until
# it succeeds; fails when the component exits or the time runs out.
wait_for() {
  local name=$1 timeout=$2; shift 2
  local deadline=$((SECONDS + timeout)) pid
  pid=$(cut -d' ' -f1 "$pid_dir/$name.pid")
  until "$@" >/dev/null 2>&1; do
    alive "$pid" || fail "$name" "exited during start"
    [ "$SECONDS" -lt "$deadline" ] || fail "$name" "not ready after ${timeout}s"
    sleep 0.1
  done
}

api_get() {
  curl -sf --max-time 2 --cacert "$pki_dir/ca.crt" --cert "$pki_dir/admin.crt" \
    --key "$pki_dir/admin.key" "$apiserver_url$1"
}
healthz() { curl -sfk --max-time 2 "$1" | grep -qx ok; }

nodes_ready() {
  local ready
  ready=$("$kubectl" --kubeconfig "$kubeconfig" get nodes -l type=kwok \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' 2>/dev/null \
    | grep -c '^True$')
  [ "$ready" -eq 3 ]
}

# Three fake nodes for kwok. Their addresses are on loopback so that nothing
# ever targets another host; capacity is sized for thousands of small pods.
register_nodes() {
  local i manifest=""
  for i in 1 2 3; do
    manifest+="---
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: \"0\"
  labels:
    type: kwok
    kubernetes.io/hostname: kwok-node-$i
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
status:
  addresses:
  - type: InternalIP
    address: 127.0.10.$i
  - type: Hostname
    address: kwok-node-$i
  capacity: {cpu: \"1000\", memory: 4Ti, pods: \"1000\", ephemeral-storage: 10Ti}
  allocatable: {cpu: \"1000\", memory: 4Ti, pods: \"1000\", ephemeral-storage: 10Ti}
"
  done
  "$kubectl" --kubeconfig "$kubeconfig" create -f - <<<"$manifest" >"$log_dir/nodes.log" 2>&1 \
    || fail nodes "could not register the fake nodes"
}

say "starting Kubernetes $k8s_version (binaries: $k8s_bin)"
make_pki
write_kubeconfig

start etcd "$etcd_bin/etcd" \
  --name=echo-iac-local \
  --data-dir="$cluster_dir/etcd" \
  --listen-client-urls="http://127.0.0.1:$etcd_client_port" \
  --advertise-client-urls="http://127.0.0.1:$etcd_client_port" \
  --listen-peer-urls="http://127.0.0.1:$etcd_peer_port" \
  --initial-advertise-peer-urls="http://127.0.0.1:$etcd_peer_port" \
  --initial-cluster="echo-iac-local=http://127.0.0.1:$etcd_peer_port" \
  --unsafe-no-fsync=true \
  --auto-compaction-retention=1 \
  --log-level=warn
wait_for etcd 30 curl -sf --max-time 2 "http://127.0.0.1:$etcd_client_port/health"
say "etcd ready ($(elapsed))"

# ECHO_IAC_CLUSTER_AUDIT=1 (for `make bench`, which counts every tool's API
# requests the same way) logs each request to logs/audit.log (watches twice), at
# level Metadata (no bodies). Off by default: the tests do not need it.
audit=()
if [ "${ECHO_IAC_CLUSTER_AUDIT:-}" = 1 ]; then
  cat >"$cluster_dir/audit-policy.yaml" <<'EOF'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
EOF
  audit=(--audit-policy-file="$cluster_dir/audit-policy.yaml" --audit-log-path="$log_dir/audit.log"
    --audit-log-format=json --audit-log-maxsize=0)
fi

# The `kubernetes` Service gets no endpoints (--endpoint-reconciler-type=none):
# endpoints may not be loopback addresses, and nothing in this cluster dials it.
# PodNodeSelector and PodTolerationRestriction let a namespace's annotations
# place its pods on the real node (node-up.sh); without them they do nothing.
# The API server reaches kubelets (logs, exec) at their InternalIP: the real
# node's name resolves nowhere, and must not be looked up in DNS.
start kube-apiserver "$k8s_bin/kube-apiserver" "${audit[@]}" \
  --etcd-servers="http://127.0.0.1:$etcd_client_port" \
  --bind-address=127.0.0.1 \
  --advertise-address=127.0.0.1 \
  --secure-port="$apiserver_port" \
  --endpoint-reconciler-type=none \
  --tls-cert-file="$pki_dir/apiserver.crt" \
  --tls-private-key-file="$pki_dir/apiserver.key" \
  --client-ca-file="$pki_dir/ca.crt" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$pki_dir/sa.pub" \
  --service-account-signing-key-file="$pki_dir/sa.key" \
  --authorization-mode=Node,RBAC \
  --enable-admission-plugins=PodNodeSelector,PodTolerationRestriction \
  --kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname \
  --service-cluster-ip-range=10.96.0.0/16 \
  --service-node-port-range=30000-32767 \
  --allow-privileged=true \
  --profiling=false
wait_for kube-apiserver 60 api_get /readyz
say "kube-apiserver ready ($(elapsed))"

# shellcheck disable=SC2054  # the commas separate paths within one flag
common=(--kubeconfig="$kubeconfig" --bind-address=127.0.0.1
  --authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics --profiling=false)
# The StaleControllerConsistency* gates (beta, on by default since 1.36) make
# a workload controller wait until its informer has seen its own last write.
# After an API server restart (the disruptive tests make one) the ReplicaSet
# informer was seen stuck behind that write for minutes, so the controller
# refused every sync and rollouts stopped: the test cluster runs without them.
# Earlier releases do not have them, and the controller-manager refuses to
# start with a gate it does not know (or one locked on), so only those its
# --help lists are set.
stale_gates=$("$k8s_bin/kube-controller-manager" --help 2>/dev/null \
  | grep -oE 'StaleControllerConsistency(ReplicaSet|DaemonSet|Job|StatefulSet)=true\|false' \
  | sed 's/=.*/=false/' | sort -u | paste -sd,) || true
gates=()
[ -n "$stale_gates" ] && gates=(--feature-gates="$stale_gates")
start kube-controller-manager "$k8s_bin/kube-controller-manager" "${common[@]}" \
  --secure-port="$controller_manager_port" \
  "${gates[@]}" \
  --leader-elect=false \
  --root-ca-file="$pki_dir/ca.crt" \
  --service-account-private-key-file="$pki_dir/sa.key" \
  --flex-volume-plugin-dir="$cluster_dir/flexvolume" \
  --cluster-signing-cert-file="$pki_dir/ca.crt" \
  --cluster-signing-key-file="$pki_dir/ca.key" \
  --kube-api-qps=500 --kube-api-burst=1000

cat >"$cluster_dir/scheduler.yaml" <<EOF
apiVersion: kubescheduler.config.k8s.io/v1
kind: KubeSchedulerConfiguration
clientConnection:
  kubeconfig: $kubeconfig
  qps: 500
  burst: 1000
leaderElection:
  leaderElect: false
EOF
start kube-scheduler "$k8s_bin/kube-scheduler" --config="$cluster_dir/scheduler.yaml" "${common[@]:1}" \
  --secure-port="$scheduler_port"

# kwok ships no stages of its own: kwok-stages.yaml holds the default ones.
# KWOK_WORKDIR keeps a personal ~/.kwok/kwok.yaml out of this cluster.
KWOK_WORKDIR=$cluster_dir/kwok start kwok "$kwok_bin/kwok" \
  --kubeconfig="$kubeconfig" \
  --config="$here/kwok-stages.yaml" \
  --manage-all-nodes=false \
  --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --node-lease-duration-seconds=40 \
  --cidr=10.244.0.0/16 \
  --server-address="127.0.0.1:$kwok_port"

register_nodes
wait_for kube-controller-manager 30 healthz "https://127.0.0.1:$controller_manager_port/healthz"
wait_for kube-scheduler 30 healthz "https://127.0.0.1:$scheduler_port/healthz"
wait_for kwok 30 healthz "http://127.0.0.1:$kwok_port/healthz"
wait_for kwok 60 nodes_ready
wait_for kube-controller-manager 60 api_get /api/v1/namespaces/default/serviceaccounts/default

started_ok=1
say "ready in $(elapsed): 3 kwok nodes, kubeconfig $kubeconfig (context echo-iac-local)"
