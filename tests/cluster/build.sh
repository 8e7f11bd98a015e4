#!/usr/bin/env bash
# Builds the local control plane's binaries from source through the Go module
# proxy, once per version: they are cached outside the repository under
# ${XDG_CACHE_HOME:-$HOME/.cache}/echo-iac/cluster/<component>-<version>/ and
# only rebuilt when missing. Prints the folder of each component's binaries.
# Kubernetes is K8S_VERSION, or the release ECHO_IAC_CLUSTER_K8S_VERSION names
# (see k8s-version.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
# shellcheck source=k8s-version.sh
. "$here/k8s-version.sh"
export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -trimpath" CGO_ENABLED=0
cache=${ECHO_IAC_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/echo-iac/cluster}

k8s_version=$(k8s_version_wanted)
k8s_module=$(k8s_module_dir "$k8s_version")
k8s_dir="$cache/kubernetes-$k8s_version"
etcd_dir="$cache/etcd-$ETCD_VERSION"
kwok_dir="$cache/kwok-$KWOK_VERSION"
coredns_dir="$cache/coredns-$COREDNS_VERSION"
metallb_dir="$cache/metallb-$METALLB_VERSION"
k8s_cmds=(kube-apiserver kube-controller-manager kube-scheduler kubectl)
# `build.sh --node` also builds what the real node runs (node-up.sh): the
# kubelet and kube-proxy, CoreDNS, and MetalLB's controller and speaker; the
# control plane alone does not need them.
node=0
if [ "${1:-}" = --node ]; then node=1; k8s_cmds+=(kubelet kube-proxy); fi

print_dirs() {
  echo "K8S_BIN=$k8s_dir"
  echo "ETCD_BIN=$etcd_dir"
  echo "KWOK_BIN=$kwok_dir"
  if [ "$node" = 1 ]; then
    echo "COREDNS_BIN=$coredns_dir"
    echo "METALLB_BIN=$metallb_dir"
  fi
}

# all_built: every binary is in the cache, so nothing needs Go or the network.
all_built() {
  local f files=("$etcd_dir/etcd" "$kwok_dir/kwok" "${k8s_cmds[@]/#/$k8s_dir/}")
  [ "$node" = 1 ] && files+=("$coredns_dir/coredns" "$metallb_dir/controller" "$metallb_dir/speaker")
  for f in "${files[@]}"; do
    [ -x "$f" ] || return 1
  done
}
if all_built; then print_dirs; exit 0; fi

# The pins must be those of this release: a folder left from another one
# would build that instead, into this release's cache folder.
if ! grep -Eq "^(require |\s+)k8s\.io/kubernetes ${k8s_version//./\\.}( |$)" "$k8s_module/go.mod" 2>/dev/null; then
  echo "Kubernetes $k8s_version has no Go module pins in ${k8s_module#"$here"/}/go.mod;" \
    "run tests/cluster/gen-modules.sh $k8s_version" >&2
  exit 1
fi

# One build at a time per cache (two `make cluster` at once would otherwise
# compile everything twice); the second waits, then finds the binaries built.
mkdir -p "$cache"
exec 9>"$cache/.build.lock"
if ! flock -n 9; then
  echo "waiting for another build of the local control plane to finish..." >&2
  flock 9
fi
if all_built; then print_dirs; exit 0; fi

# build <module dir> <out dir> <ldflags> <package>...: builds into a temporary
# folder and renames it into place, so an interrupted build leaves nothing
# that looks finished.
build() {
  local module=$1 out=$2 ldflags=$3; shift 3
  local missing=()
  for pkg in "$@"; do
    [ -x "$out/$(basename "$pkg")" ] || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  mkdir -p "$out"
  local tmp; tmp=$(mktemp -d "$out/.build.XXXXXX")
  local start=$SECONDS
  for pkg in "${missing[@]}"; do echo "building $(basename "$pkg") into $out" >&2; done
  (cd "$module" && go build -ldflags "$ldflags" -o "$tmp/" "${missing[@]}")
  for pkg in "${missing[@]}"; do mv "$tmp/$(basename "$pkg")" "$out/"; done
  rmdir "$tmp"
  echo "built $(printf '%s ' "${missing[@]##*/}")in $((SECONDS - start))s" >&2
}

# The version stamps upstream's hack/lib/version.sh sets, so that /version
# and `kubectl version` report the real release.
k8s_commit=$(cd "$k8s_module" && go mod download -json "k8s.io/kubernetes@$k8s_version" \
  | sed -n 's/.*"Hash": "\([0-9a-f]\{40\}\)".*/\1/p' | sed -n 1p)
minor=$(k8s_minor "$k8s_version")
k8s_ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  k8s_ldflags+=" -X $pkg.gitVersion=$k8s_version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  k8s_ldflags+=" -X $pkg.gitCommit=${k8s_commit:-unknown} -X $pkg.gitTreeState=clean"
  k8s_ldflags+=" -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

build "$here/etcd" "$etcd_dir" "-s -w" echo-iac.local/cluster/etcd
build "$here/kwok" "$kwok_dir" "-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok
build "$k8s_module" "$k8s_dir" "$k8s_ldflags" "${k8s_cmds[@]/#/k8s.io/kubernetes/cmd/}"
if [ "$node" = 1 ]; then
  # CoreDNS's main package is its module's root, with every in-tree plugin.
  build "$here/coredns" "$coredns_dir" "-s -w" github.com/coredns/coredns
  metallb_ldflags="-s -w -X go.universe.tf/metallb/internal/version.version=${METALLB_VERSION#v}"
  build "$here/metallb" "$metallb_dir" "$metallb_ldflags" \
    go.universe.tf/metallb/controller go.universe.tf/metallb/speaker
fi

print_dirs
