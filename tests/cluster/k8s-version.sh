# Which Kubernetes release the local control plane runs, and which Go module
# pins it. Sourced after versions.env by build.sh, up.sh, gen-modules.sh and
# compat.sh, not run.
#
# The default is K8S_VERSION, pinned in k8s/. ECHO_IAC_CLUSTER_K8S_VERSION
# picks another release: one of COMPAT_K8S_VERSIONS (the ones `make compat`
# tests, docs/compat.md), each pinned in compat/k8s-<minor>/, given in full
# (v1.35.4) or by its minor (1.35).
# shellcheck shell=bash disable=SC2034  # the variables are for the sourcing scripts

k8s_versions_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# k8s_known_versions: K8S_VERSION and COMPAT_K8S_VERSIONS, one a line, oldest
# first.
k8s_known_versions() {
  { echo "$K8S_VERSION"; tr ',' '\n' <<<"${COMPAT_K8S_VERSIONS:-}"; } | grep . | sort -u -V
}

# k8s_minor <version>: 35 for v1.35.4.
k8s_minor() {
  local minor=${1#v}
  minor=${minor#1.}
  echo "${minor%%.*}"
}

# k8s_resolve <version or minor>: the full version (v1.35.4) of a known
# release given as v1.35.4, 1.35.4, v1.35 or 1.35. Fails, saying which
# releases are known, for any other.
k8s_resolve() {
  local want=${1#v} v
  while read -r v; do
    if [ "${v#v}" = "$want" ] || { [[ $want =~ ^1\.[0-9]+$ ]] && [ "$(k8s_minor "$v")" = "${want#1.}" ]; }; then
      echo "$v"
      return 0
    fi
  done < <(k8s_known_versions)
  echo "Kubernetes $1 is not one of the releases pinned in tests/cluster/versions.env" \
    "($(k8s_known_versions | paste -sd' ')); add it to COMPAT_K8S_VERSIONS and run" \
    "tests/cluster/gen-modules.sh v1.X.Y" >&2
  return 1
}

# k8s_version_wanted: the release to build and run, ECHO_IAC_CLUSTER_K8S_VERSION's
# or K8S_VERSION.
k8s_version_wanted() {
  if [ -n "${ECHO_IAC_CLUSTER_K8S_VERSION:-}" ]; then
    k8s_resolve "$ECHO_IAC_CLUSTER_K8S_VERSION"
  else
    echo "$K8S_VERSION"
  fi
}

# k8s_module_dir <version>: the folder of the Go module that pins it.
k8s_module_dir() {
  if [ "$1" = "$K8S_VERSION" ]; then
    echo "$k8s_versions_dir/k8s"
  else
    echo "$k8s_versions_dir/compat/k8s-1.$(k8s_minor "$1")"
  fi
}
