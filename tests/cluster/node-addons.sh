#!/usr/bin/env bash
# Starts the real node's add-ons; node-up.sh runs it once the node is Ready
# and kube-proxy serves (and removes the whole node when it fails):
#
# - Cluster DNS: CoreDNS (build.sh --node, image from node-image.sh) as the
#   Deployment kube-system/coredns behind the Service kube-system/kube-dns at
#   $node_dns_ip (53/UDP and 53/TCP), which the kubelet hands to pods as their
#   nameserver. It serves cluster.local (and the reverse zones) from the API,
#   and answers NXDOMAIN at once for every other name: nothing is forwarded,
#   since there is no network beyond this machine.
# - Load balancer: MetalLB in layer 2 mode, its controller (a Deployment) and
#   speaker (a DaemonSet) in metallb-system, with the IPAddressPool
#   metallb-system/echo-iac ($node_lb_range, inside the node's subnet) and an
#   L2Advertisement on the node's eth0. A LoadBalancer Service gets an address
#   from the pool, the speaker answers ARP for it, and kube-proxy's rules send
#   it on to the pods: `curl http://<address>` works from this machine.
#
# Pods on the node cannot reach the API server (it listens on this machine's
# 127.0.0.1; only the node namespace's own loopback is bridged to it), so all
# three run with hostNetwork, in the node's namespace, and talk to the API
# through a kubeconfig on the node (a hostPath) with a client certificate of
# their own. The speaker must be a pod, not a bare process: it reads its own
# Pod object at start; the controller runs beside it the same way.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=node-lib.sh
. "$here/node-lib.sh"
# shellcheck source=versions.env
. "$here/versions.env"

say() { echo "node: $*" >&2; }
addons_dir=$node_dir/addons
mkdir -p "$addons_dir"

kubectl_bin=$("$here/build.sh" | sed -n 's/^K8S_BIN=//p')/kubectl
kc() { "$kubectl_bin" --kubeconfig "$kubeconfig" "$@"; }
apply() { kc apply --server-side --force-conflicts --field-manager=echo-iac-node -f - >/dev/null; }

images=$("$here/node-image.sh")
coredns_ref=$(sed -n 's/^COREDNS_REF=//p' <<<"$images")
metallb_ref=$(sed -n 's/^METALLB_REF=//p' <<<"$images")

# addon_kubeconfig <name> <user>: a client certificate for <user>, signed by
# the control plane's CA, in a self-contained kubeconfig (one file, so that a
# pod mounts it alone) at $addons_dir/<name>.kubeconfig.
addon_kubeconfig() {
  local name=$1 user=$2 key=$addons_dir/$1.key crt=$addons_dir/$1.crt
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$key" 2>/dev/null
  printf '[v3]\nbasicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature, keyEncipherment\nextendedKeyUsage = clientAuth\n' >"$addons_dir/$name.ext.cnf"
  openssl req -new -key "$key" -subj "/CN=$user" -out "$addons_dir/$name.csr" 2>/dev/null
  openssl x509 -req -in "$addons_dir/$name.csr" -CA "$pki_dir/ca.crt" -CAkey "$pki_dir/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days 365 -sha256 \
    -extfile "$addons_dir/$name.ext.cnf" -extensions v3 -out "$crt" 2>/dev/null
  (
    umask 077
    cat >"$addons_dir/$name.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: echo-iac-local
  cluster:
    server: $apiserver_url
    certificate-authority-data: $(base64 -w0 "$pki_dir/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 "$crt")
    client-key-data: $(base64 -w0 "$key")
contexts:
- name: echo-iac-local
  context:
    cluster: echo-iac-local
    user: $user
current-context: echo-iac-local
EOF
  )
  rm -f "$addons_dir/$name.csr" "$addons_dir/$name.ext.cnf" "$key" "$crt"
}

# The pod-spec lines that place a pod on the real node, on its network.
on_node() {
  local indent=$1
  sed "s/^/$indent/" <<EOF
hostNetwork: true
nodeSelector:
  ${node_label%%=*}: ${node_label#*=}
tolerations:
- {key: $node_taint_key, operator: Equal, value: real, effect: NoSchedule}
automountServiceAccountToken: false
EOF
}

# ------------------------------------------------------------------- CoreDNS
addon_kubeconfig coredns system:coredns
apply <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:coredns
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: system:coredns
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: system:coredns}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: system:coredns}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: coredns
  namespace: kube-system
data:
  # cluster.local and the reverse zones come from the API; every other name
  # is answered NXDOMAIN by the catch-all block, at once, because there is
  # nowhere to forward to. Ports other than 53 stay on the node's loopback,
  # but for readiness, which the kubelet probes on the node's address.
  Corefile: |
    cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {
        errors
        ready $node_ip:8181
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            kubeconfig /etc/coredns-kube/kubeconfig echo-iac-local
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
        }
        cache 30
        reload
    }
    .:53 {
        errors
        template ANY ANY {
            rcode NXDOMAIN
        }
    }
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: coredns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  replicas: 1
  selector:
    matchLabels: {k8s-app: kube-dns}
  template:
    metadata:
      labels: {k8s-app: kube-dns}
    spec:
$(on_node '      ')
      dnsPolicy: Default
      priorityClassName: system-cluster-critical
      containers:
      - name: coredns
        image: $coredns_ref
        imagePullPolicy: Never
        args: [-conf, /etc/coredns/Corefile]
        ports:
        - {name: dns, containerPort: 53, protocol: UDP}
        - {name: dns-tcp, containerPort: 53, protocol: TCP}
        readinessProbe:
          httpGet: {path: /ready, port: 8181}
          periodSeconds: 2
        resources:
          limits: {memory: 170Mi}
        volumeMounts:
        - {name: config, mountPath: /etc/coredns, readOnly: true}
        - {name: kubeconfig, mountPath: /etc/coredns-kube/kubeconfig, readOnly: true}
      volumes:
      - name: config
        configMap: {name: coredns}
      - name: kubeconfig
        hostPath: {path: $addons_dir/coredns.kubeconfig, type: File}
---
apiVersion: v1
kind: Service
metadata:
  name: kube-dns
  namespace: kube-system
  labels: {k8s-app: kube-dns}
spec:
  selector: {k8s-app: kube-dns}
  clusterIP: $node_dns_ip
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
EOF

# --------------------------------------------------------------------- MetalLB
metallb_src=$(cd "$here/metallb" && GOTOOLCHAIN=local GOFLAGS=-mod=readonly \
  go list -m -f '{{.Dir}}' go.universe.tf/metallb)
[ -d "$metallb_src/config/crd/bases" ] || { say "MetalLB's sources are not in Go's module cache ($metallb_src)"; exit 1; }
addon_kubeconfig metallb-controller system:metallb:controller
addon_kubeconfig metallb-speaker system:metallb:speaker

kc create namespace metallb-system --dry-run=client -o yaml | apply
for crd in "$metallb_src"/config/crd/bases/*.yaml; do apply <"$crd"; done
# MetalLB's own roles (not its bindings, which name service accounts: these
# processes are users with certificates).
awk 'BEGIN { RS = "\n---\n" } /\nkind: (ClusterRole|Role)\n/ { printf "%s\n---\n", $0 }' \
  "$metallb_src/config/rbac/role.yaml" | kc apply -n metallb-system --server-side \
  --force-conflicts --field-manager=echo-iac-node -f - >/dev/null
apply <<EOF
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: metallb-system:controller
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: metallb-system:controller}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: system:metallb:controller}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: metallb-system:speaker
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: metallb-system:speaker}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: system:metallb:speaker}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: controller
  namespace: metallb-system
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: controller}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: system:metallb:controller}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: pod-lister
  namespace: metallb-system
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: pod-lister}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: system:metallb:speaker}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: controller
  namespace: metallb-system
  labels: {app: metallb, component: controller}
spec:
  replicas: 1
  selector:
    matchLabels: {app: metallb, component: controller}
  template:
    metadata:
      labels: {app: metallb, component: controller}
    spec:
$(on_node '      ')
      containers:
      - name: controller
        image: $metallb_ref
        imagePullPolicy: Never
        command: [/controller]
        # No webhooks (nothing could call them: the API server is not on the
        # node's network), so no certificates to rotate; no BGP.
        args: [--namespace=metallb-system, --webhook-mode=disabled, --disable-cert-rotation,
          --port=7472, --log-level=info]
        env:
        - {name: KUBECONFIG, value: /etc/metallb-kube/kubeconfig}
        - {name: METALLB_BGP_TYPE, value: native}
        resources:
          limits: {memory: 100Mi}
        volumeMounts:
        - {name: kubeconfig, mountPath: /etc/metallb-kube/kubeconfig, readOnly: true}
      volumes:
      - name: kubeconfig
        hostPath: {path: $addons_dir/metallb-controller.kubeconfig, type: File}
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: speaker
  namespace: metallb-system
  labels: {app: metallb, component: speaker}
spec:
  selector:
    matchLabels: {app: metallb, component: speaker}
  template:
    metadata:
      labels: {app: metallb, component: speaker}
    spec:
$(on_node '      ')
      containers:
      - name: speaker
        image: $metallb_ref
        imagePullPolicy: Never
        command: [/speaker]
        # Memberlist (fast dead-node detection) stays off: one node.
        args: [--port=7473, --log-level=info]
        env:
        - {name: KUBECONFIG, value: /etc/metallb-kube/kubeconfig}
        - {name: METALLB_NAMESPACE, value: metallb-system}
        - name: METALLB_NODE_NAME
          valueFrom: {fieldRef: {fieldPath: spec.nodeName}}
        - name: METALLB_POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        - {name: METALLB_HOST, value: 127.0.0.1}
        securityContext:
          capabilities:
            drop: [ALL]
            add: [NET_RAW]
        resources:
          limits: {memory: 100Mi}
        volumeMounts:
        - {name: kubeconfig, mountPath: /etc/metallb-kube/kubeconfig, readOnly: true}
      volumes:
      - name: kubeconfig
        hostPath: {path: $addons_dir/metallb-speaker.kubeconfig, type: File}
---
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: echo-iac
  namespace: metallb-system
spec:
  addresses: [$node_lb_range]
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata:
  name: echo-iac
  namespace: metallb-system
spec:
  ipAddressPools: [echo-iac]
  interfaces: [eth0]
  # Without memberlist every speaker takes all Ready nodes as candidates and
  # hashes each address to one of them: the kwok nodes would win some
  # addresses, which nobody would then announce.
  nodeSelectors:
  - matchLabels: {${node_label%%=*}: ${node_label#*=}}
EOF

# --------------------------------------------------------------------- ready
# dns_answers <name>: a query over TCP to CoreDNS on the node's address gets
# NOERROR and an answer. (Not to the Service's address: the node's namespace
# has no route for the service range; pods reach it through their default
# route to the node, where kube-proxy's rules turn it into this address.)
dns_answers() {
  local name=$1 query="" label reply
  local IFS=.
  for label in $name; do query+=$(printf '\\x%02x' "${#label}")$label; done
  unset IFS
  # Header: id 0x4543, recursion desired, one question; then QTYPE A, IN.
  query=$(printf '\\x45\\x43\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00%s\\x00\\x00\\x01\\x00\\x01' "$query")
  # shellcheck disable=SC2016  # expanded by the inner bash
  reply=$(in_node timeout 2 bash -c '
    exec 3<>"/dev/tcp/$1/53" || exit 1
    n=$(printf "$2" | wc -c)
    { printf "\\x$(printf %02x $((n >> 8)))\\x$(printf %02x $((n & 255)))"; printf "$2"; } >&3
    head -c 10 <&3 | od -An -tu1' _ "$node_ip" "$query" 2>/dev/null) || return 1
  # shellcheck disable=SC2086  # the bytes, one word each
  set -- $reply
  # Bytes 1-2: the length; 6: the low flags, whose low 4 bits are the
  # rcode; 9-10: the answer count.
  [ $# -eq 10 ] && [ $(($6 & 15)) -eq 0 ] && [ $(($9 * 256 + ${10})) -gt 0 ]
}
wait_until() {
  local what=$1 timeout=$2 deadline; shift 2
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "$what: not ready after ${timeout}s"
      kc get pods -n kube-system -o wide >&2 || true
      kc get pods -n metallb-system -o wide >&2 || true
      local what_logs
      for what_logs in kube-system/deployment/coredns metallb-system/deployment/controller \
        metallb-system/daemonset/speaker; do
        echo "---- last 20 lines of ${what_logs#*/} ----" >&2
        kc logs -n "${what_logs%%/*}" "${what_logs#*/}" --tail=20 >&2 2>&1 || true
      done
      exit 1
    fi
    sleep 0.5
  done
}
wait_until "CoreDNS (kubernetes.default.svc.cluster.local at $node_ip)" 120 \
  dns_answers kubernetes.default.svc.cluster.local
say "cluster DNS answers at $node_dns_ip (kube-system/kube-dns, $coredns_ref)"
wait_until "MetalLB's controller" 120 kc -n metallb-system rollout status deployment/controller --timeout=2s
wait_until "MetalLB's speaker" 120 kc -n metallb-system rollout status daemonset/speaker --timeout=2s
say "MetalLB (layer 2, $metallb_ref) running; LoadBalancer addresses from $node_lb_range"
