#!/usr/bin/env bash
# node-demo.sh <echo-iac command>...: the end of `make demo`. Deploys the
# `local` stack onto the real node (node-up.sh) and shows each rung of the
# seed's ladder answering: the ClusterIP through cluster DNS (`echo-iac
# test`, the seed's curl pod), the node port (`curl http://<node IP>:30007`)
# and the load-balancer address MetalLB assigned.
#
# stacks/local.yaml places its pods on the real node (a node selector for
# its label and a toleration of its taint).
#   tests/cluster/node-demo.sh cargo run --release --
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=node-lib.sh
. "$here/node-lib.sh"
[ $# -gt 0 ] || { echo "usage: $0 <echo-iac command>..." >&2; exit 2; }

stack_file=$repo/stacks/local.yaml
port=$(sed -n 's/^ *nodePort: *//p' "$stack_file" | sed -n 1p)
if [ -z "$port" ]; then
  echo "demo: cannot read nodePort from $stack_file" >&2
  exit 1
fi

pid_of kube-apiserver >/dev/null || { echo "demo: the local control plane is not running: make cluster" >&2; exit 1; }

"$@" --stack local up --yes

echo
echo "\$ echo-iac test    # a curl pod in the cluster asks http://echo-nodeport-service"
"$@" --stack local test --requests 6

url=http://$node_ip:$port
deadline=$((SECONDS + 60))
until curl -sf --max-time 2 "$url" >/dev/null; do
  [ "$SECONDS" -lt "$deadline" ] || { echo "demo: $url does not answer" >&2; exit 1; }
  sleep 0.2
done
# kube-proxy applies endpoint changes at most once a second: let it add the
# pods that became ready after the first.
sleep 2
echo
for _ in 1 2 3; do
  echo "\$ curl $url"
  curl -s --max-time 2 "$url"
done

lb=$("$@" --stack local output loadBalancerUrl)
echo
for _ in 1 2 3; do
  echo "\$ curl $lb"
  curl -s --max-time 2 "$lb"
done
