#!/usr/bin/env bash
# Builds the Pulumi toolchain `make bench` compares with, from source through
# the Go module proxy, once per version: the CLI, the Kubernetes provider and
# the YAML language host, cached beside the local control plane under
# ${XDG_CACHE_HOME:-$HOME/.cache}/echo-iac/cluster/pulumi-<version>/. Also
# installs the provider as a plugin in that folder's own PULUMI_HOME.
# Prints PULUMI_BIN=<folder>. A cold build takes about 12.5 minutes on two
# cores, and the provider's link peaks near 4.3 GiB.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$here/versions.env"
export GOTOOLCHAIN=local GOFLAGS="-mod=readonly -trimpath" CGO_ENABLED=0
cache=${ECHO_IAC_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/echo-iac/cluster}
out="$cache/pulumi-$PULUMI_VERSION"
# The provider's version, as a semver: its pseudo-version without the `v`.
k8s_plugin_version=${PULUMI_K8S_PROVIDER_VERSION#v}
bins=(pulumi pulumi-resource-kubernetes pulumi-language-yaml)

installed() {
  local b
  for b in "${bins[@]}"; do [ -x "$out/bin/$b" ] || return 1; done
  [ -f "$out/home/plugins/resource-kubernetes-v$k8s_plugin_version.lock" ] ||
    [ -d "$out/home/plugins/resource-kubernetes-v$k8s_plugin_version" ] || return 1
  [ -f "$out/versions" ] && [ "$(cat "$out/versions")" = "$(cat "$here/versions.env")" ]
}
if installed; then echo "PULUMI_BIN=$out/bin"; exit 0; fi

mkdir -p "$cache"
exec 9>"$cache/.pulumi-build.lock"
if ! flock -n 9; then
  echo "waiting for another build of the Pulumi toolchain to finish..." >&2
  flock 9
fi
if installed; then echo "PULUMI_BIN=$out/bin"; exit 0; fi

echo "building the Pulumi toolchain into $out (once; about 12.5 minutes cold on two cores)" >&2
mkdir -p "$out/bin"
start=$SECONDS

# build <name> <module dir> <ldflags> <package>: builds into a temporary
# file and renames it into place, so an interrupted build leaves nothing that
# looks finished.
build() {
  local name=$1 module=$2 ldflags=$3 pkg=$4 t=$SECONDS
  [ -x "$out/bin/$name" ] && return 0
  echo "building $name" >&2
  (cd "$module" && go build -ldflags "$ldflags" -o "$out/bin/.$name.tmp" "$pkg")
  mv "$out/bin/.$name.tmp" "$out/bin/$name"
  echo "built $name in $((SECONDS - t))s" >&2
}

build pulumi "$here/cli" \
  "-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$PULUMI_VERSION" \
  github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
build pulumi-language-yaml "$here/yaml" \
  "-s -w -X github.com/pulumi/pulumi-yaml/pkg/version.Version=$PULUMI_YAML_VERSION" \
  github.com/pulumi/pulumi-yaml/cmd/pulumi-language-yaml

if [ ! -x "$out/bin/pulumi-resource-kubernetes" ]; then
  # The main package embeds files that its generate.go writes from the
  # schema, and the module zip has neither: copy the package next to the
  # wrapper's go.mod and generate them there (see gen-modules.sh).
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  cp "$here/provider/go.mod" "$here/provider/go.sum" "$work/"
  src=$(cd "$work" && go mod download -json "github.com/pulumi/pulumi-kubernetes/provider/v4@$PULUMI_K8S_PROVIDER_VERSION" |
    sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  cp "$src"/cmd/pulumi-resource-kubernetes/{main.go,generate.go,schema.json,terraform-mapping.json} "$work/"
  chmod u+w "$work"/*
  (cd "$work" && VERSION=$k8s_plugin_version go run generate.go)
  build pulumi-resource-kubernetes "$work" \
    "-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version=$k8s_plugin_version" .
fi

# The provider as an installed plugin of this folder's PULUMI_HOME: found on
# PATH instead, Pulumi warns on every run and starts extra processes.
export PULUMI_HOME="$out/home" PULUMI_SKIP_UPDATE_CHECK=true
tarball=$(mktemp --suffix=.tar.gz)
tar -czf "$tarball" -C "$out/bin" pulumi-resource-kubernetes
"$out/bin/pulumi" plugin install resource kubernetes "$k8s_plugin_version" -f "$tarball" >&2
rm -f "$tarball"
cp "$here/versions.env" "$out/versions"
echo "built the Pulumi toolchain in $((SECONDS - start))s" >&2
echo "PULUMI_BIN=$out/bin"
