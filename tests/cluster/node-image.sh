#!/usr/bin/env bash
# Builds the container images the real node runs, since no image can be
# pulled here, as OCI archives for `ctr images import`; cached under
# ${XDG_CACHE_HOME:-~/.cache}/echo-iac/cluster/node-images-<nginx version>/ and
# each only rebuilt when missing. Prints the archives' paths (and the names
# of those whose name carries a version):
#   NGINX_IMAGE=<dir>/nginx.tar  docker.io/library/nginx:alpine, i.e. the seed's
#                                `nginx:alpine`: Debian's nginx binary, the
#                                shared libraries it links and a minimal
#                                filesystem; runs `nginx -g 'daemon off;'`
#                                and includes /etc/nginx/conf.d/*.conf.
#   PAUSE_IMAGE=<dir>/pause.tar  the pod sandbox image (pause/pause.go,
#                                static), containerd's sandbox_image.
#   CURL_IMAGE=<dir>/curl-<v>.tar, CURL_REF=localhost/echo-iac/curl:<v>:
#                                Debian's curl and libcurl, the shared
#                                libraries they link and a minimal filesystem
#                                (no CA bundle: nothing here speaks TLS);
#                                its entrypoint is curl.
#   COREDNS_IMAGE=<dir>/coredns-<v>.tar, COREDNS_REF=localhost/echo-iac/coredns:<v>:
#                                the static CoreDNS that build.sh --node
#                                builds; runs /coredns -conf /etc/coredns/Corefile.
#   METALLB_IMAGE=<dir>/metallb-<v>.tar, METALLB_REF=localhost/echo-iac/metallb:<v>:
#                                MetalLB's static /controller and /speaker
#                                (build.sh --node).
# Needs apt-get (downloads the nginx and curl packages, installs nothing), Go,
# tar, sha256sum.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export GOTOOLCHAIN=local CGO_ENABLED=0
cache=${ECHO_IAC_CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/echo-iac/cluster}

# The names the images are imported under (node-up.sh sets sandbox_image to
# the second).
nginx_ref=docker.io/library/nginx:alpine
pause_ref=localhost/echo-iac/pause:1

work=$(mktemp -d)
chmod 755 "$work" # apt-get download writes there as user _apt
trap 'rm -rf "$work"' EXIT

# The nginx version decides the cache folder: the candidate apt would download.
nginx_version() { apt-cache policy nginx 2>/dev/null | sed -n 's/^ *Candidate: *//p' | grep -v '^(none)$' || true; }
version=$(nginx_version)
if [ -z "$version" ]; then
  echo "node-image: apt knows no nginx package; running apt-get update" >&2
  apt-get update -qq >&2
  version=$(nginx_version)
  [ -n "$version" ] || { echo "node-image: no nginx package in apt's sources" >&2; exit 1; }
fi
out=$cache/node-images-${version//[:~+]/_}
# The add-ons' versions name their images; the binaries come from build.sh.
# shellcheck source=versions.env
. "$here/versions.env"
curl_version=$(apt-cache policy curl 2>/dev/null | sed -n 's/^ *Candidate: *//p' | grep -v '^(none)$' || true)
[ -n "$curl_version" ] || { echo "node-image: no curl package in apt's sources" >&2; exit 1; }
curl_tag=${curl_version//[:~+]/_}
curl_ref=localhost/echo-iac/curl:$curl_tag
coredns_ref=localhost/echo-iac/coredns:${COREDNS_VERSION#v}
metallb_ref=localhost/echo-iac/metallb:${METALLB_VERSION#v}
curl_tar=$out/curl-$curl_tag.tar
coredns_tar=$out/coredns-$COREDNS_VERSION.tar
metallb_tar=$out/metallb-$METALLB_VERSION.tar
print_images() {
  echo "NGINX_IMAGE=$out/nginx.tar"
  echo "PAUSE_IMAGE=$out/pause.tar"
  echo "CURL_IMAGE=$curl_tar"
  echo "CURL_REF=$curl_ref"
  echo "COREDNS_IMAGE=$coredns_tar"
  echo "COREDNS_REF=$coredns_ref"
  echo "METALLB_IMAGE=$metallb_tar"
  echo "METALLB_REF=$metallb_ref"
}
if [ -s "$out/nginx.tar" ] && [ -s "$out/pause.tar" ] && [ -s "$curl_tar" ] \
  && [ -s "$coredns_tar" ] && [ -s "$metallb_tar" ]; then
  print_images
  exit 0
fi
mkdir -p "$out"
bins=$("$here/build.sh" --node)
coredns_bin=$(sed -n 's/^COREDNS_BIN=//p' <<<"$bins")
metallb_bin=$(sed -n 's/^METALLB_BIN=//p' <<<"$bins")

# oci_archive <rootfs> <archive> <ref> <config json>: packs the folder as a
# one-layer OCI image (uncompressed, reproducible: sorted, mtime 0, owned by
# root) into an OCI archive whose index names the image <ref>.
oci_archive() {
  local rootfs=$1 archive=$2 ref=$3 config=$4
  local dir=$work/oci blobs=$work/oci/blobs/sha256
  rm -rf "$dir"; mkdir -p "$blobs"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$rootfs" -cf "$work/layer.tar" .
  local layer layer_size
  layer=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
  layer_size=$(stat -c %s "$work/layer.tar")
  mv "$work/layer.tar" "$blobs/$layer"
  blob() { # blob <content>: stores it, prints "<digest> <size>"
    local d; d=$(printf '%s' "$1" | sha256sum | cut -d' ' -f1)
    printf '%s' "$1" >"$blobs/$d"; echo "$d ${#1}"
  }
  local cfg cfg_digest cfg_size manifest m_digest m_size
  cfg=$(printf '{"architecture":"amd64","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"tests/cluster/node-image.sh"}]}' "$config" "$layer")
  read -r cfg_digest cfg_size < <(blob "$cfg")
  manifest=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
    "$cfg_digest" "$cfg_size" "$layer" "$layer_size")
  read -r m_digest m_size < <(blob "$manifest")
  printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
    "$m_digest" "$m_size" "$ref" "${ref##*:}" >"$dir/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$dir/oci-layout"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$dir" -cf "$archive.tmp" oci-layout index.json blobs
  mv "$archive.tmp" "$archive"
}

# copy_libs <rootfs> <binary> [<dir>]: the shared libraries the binary links,
# from this machine or from the unpacked packages in <dir> (found through
# LD_LIBRARY_PATH), into the same paths in <rootfs>.
copy_libs() {
  local rootfs=$1 bin=$2 from=${3:-} missing lib
  missing=$(ldd "$bin" | awk '/not found/ { print $1 }')
  if [ -n "$missing" ]; then
    echo "node-image: $(basename "$bin") needs libraries missing on this machine: $missing" >&2
    echo "node-image: install the packages that provide them (apt-get install -y ...)" >&2
    exit 1
  fi
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do
    local dest=$lib
    [ -n "$from" ] && dest=${lib#"$from"}
    mkdir -p "$rootfs$(dirname "$dest")"
    cp -L "$lib" "$rootfs$dest"
  done
}

# ---------------------------------------------------------------------- pause
if [ ! -s "$out/pause.tar" ]; then
rootfs=$work/pause-root
mkdir -p "$rootfs"
(cd "$here/pause" && go build -trimpath -ldflags='-s -w' -o "$rootfs/pause" pause.go)
oci_archive "$rootfs" "$out/pause.tar" "$pause_ref" '{"Entrypoint":["/pause"]}'
fi

# ---------------------------------------------------------------------- nginx
if [ ! -s "$out/nginx.tar" ]; then
(cd "$work" && apt-get download -q "nginx=$version" "nginx-common=$version" >&2)
mkdir -p "$work/deb"
for deb in "$work"/nginx*.deb; do dpkg -x "$deb" "$work/deb"; done
rootfs=$work/nginx-root
mkdir -p "$rootfs"/{usr/sbin,etc/nginx/conf.d,var/log/nginx,var/lib/nginx,var/cache/nginx,run,tmp,usr/share/nginx/html,dev,proc,sys}
chmod 1777 "$rootfs/tmp"
cp "$work/deb/usr/sbin/nginx" "$rootfs/usr/sbin/nginx"
cp "$work/deb/etc/nginx/mime.types" "$rootfs/etc/nginx/mime.types"
# The shared libraries, from this machine, where the packages nginx depends
# on are installed (libc6, libssl3, libpcre2-8-0, zlib1g, libcrypt1).
missing=$(ldd "$rootfs/usr/sbin/nginx" | awk '/not found/ { print $1 }')
if [ -n "$missing" ]; then
  echo "node-image: nginx needs libraries missing on this machine: $missing" >&2
  echo "node-image: install them: apt-get install -y libssl3 libpcre2-8-0 zlib1g libcrypt1" >&2
  exit 1
fi
for lib in $(ldd "$rootfs/usr/sbin/nginx" | grep -o '/[^ ]*'); do
  mkdir -p "$rootfs$(dirname "$lib")"
  cp -L "$lib" "$rootfs$lib"
done
# The official image's user (uid 101), configuration and logging to the
# container's stdout and stderr.
printf 'root:x:0:0:root:/root:/sbin/nologin\nnginx:x:101:101:nginx:/var/cache/nginx:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n' >"$rootfs/etc/passwd"
printf 'root:x:0:\nnginx:x:101:nginx\nnogroup:x:65534:\n' >"$rootfs/etc/group"
printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
ln -s /dev/stdout "$rootfs/var/log/nginx/access.log"
ln -s /dev/stderr "$rootfs/var/log/nginx/error.log"
cat >"$rootfs/etc/nginx/nginx.conf" <<'EOF'
user  nginx;
worker_processes  auto;

error_log  /var/log/nginx/error.log notice;
pid        /run/nginx.pid;

events {
    worker_connections  1024;
}

http {
    include       /etc/nginx/mime.types;
    default_type  application/octet-stream;

    log_format  main  '$remote_addr - $remote_user [$time_local] "$request" '
                      '$status $body_bytes_sent "$http_referer" '
                      '"$http_user_agent" "$http_x_forwarded_for"';

    access_log  /var/log/nginx/access.log  main;

    sendfile        on;
    keepalive_timeout  65;

    include /etc/nginx/conf.d/*.conf;
}
EOF
cat >"$rootfs/etc/nginx/conf.d/default.conf" <<'EOF'
server {
    listen       80;
    server_name  localhost;

    location / {
        root   /usr/share/nginx/html;
        index  index.html;
    }
}
EOF
printf '<!DOCTYPE html>\n<title>Welcome to nginx!</title>\n<h1>Welcome to nginx!</h1>\n' >"$rootfs/usr/share/nginx/html/index.html"
# The binary must load in that filesystem alone.
if command -v chroot >/dev/null && [ "$(id -u)" = 0 ]; then
  chroot "$rootfs" /usr/sbin/nginx -v 2>"$work/nginx-v.log" || {
    cat "$work/nginx-v.log" >&2; echo "node-image: nginx does not start in the image's filesystem" >&2; exit 1; }
fi
oci_archive "$rootfs" "$out/nginx.tar" "$nginx_ref" \
  '{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["nginx","-g","daemon off;"],"ExposedPorts":{"80/tcp":{}},"StopSignal":"SIGQUIT"}'
echo "node-image: built nginx $version and pause images in $out" >&2
fi

# ----------------------------------------------------------------------- curl
if [ ! -s "$curl_tar" ]; then
  (cd "$work" && apt-get download -q "curl=$curl_version" "libcurl4=$curl_version" >&2)
  mkdir -p "$work/curl-deb"
  for deb in "$work"/curl_*.deb "$work"/libcurl4_*.deb; do dpkg -x "$deb" "$work/curl-deb"; done
  rootfs=$work/curl-root
  mkdir -p "$rootfs"/{usr/bin,etc,tmp,dev,proc,sys}
  chmod 1777 "$rootfs/tmp"
  cp "$work/curl-deb/usr/bin/curl" "$rootfs/usr/bin/curl"
  # libcurl from its package (this machine's may be another version), the
  # rest from this machine, where curl's dependencies are installed.
  libcurl_dir=$(dirname "$(find "$work/curl-deb" -name 'libcurl.so.4*' | sed -n 1p)")
  LD_LIBRARY_PATH=$libcurl_dir copy_libs "$rootfs" "$rootfs/usr/bin/curl" "$work/curl-deb"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/:/sbin/nologin\n' >"$rootfs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$rootfs/etc/group"
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
  if command -v chroot >/dev/null && [ "$(id -u)" = 0 ]; then
    chroot "$rootfs" /usr/bin/curl --version >"$work/curl-v.log" 2>&1 || {
      cat "$work/curl-v.log" >&2; echo "node-image: curl does not start in the image's filesystem" >&2; exit 1; }
  fi
  oci_archive "$rootfs" "$curl_tar" "$curl_ref" \
    '{"Env":["PATH=/usr/bin:/bin"],"Entrypoint":["curl"],"User":"65534:65534"}'
  echo "node-image: built $curl_ref in $out" >&2
fi

# -------------------------------------------------------------------- coredns
if [ ! -s "$coredns_tar" ]; then
  rootfs=$work/coredns-root
  mkdir -p "$rootfs"/{etc/coredns,tmp}
  cp "$coredns_bin/coredns" "$rootfs/coredns"
  oci_archive "$rootfs" "$coredns_tar" "$coredns_ref" \
    '{"Entrypoint":["/coredns"],"Cmd":["-conf","/etc/coredns/Corefile"],"ExposedPorts":{"53/udp":{},"53/tcp":{}}}'
  echo "node-image: built $coredns_ref in $out" >&2
fi

# -------------------------------------------------------------------- metallb
if [ ! -s "$metallb_tar" ]; then
  rootfs=$work/metallb-root
  mkdir -p "$rootfs"/tmp
  chmod 1777 "$rootfs/tmp"
  cp "$metallb_bin/controller" "$metallb_bin/speaker" "$rootfs/"
  oci_archive "$rootfs" "$metallb_tar" "$metallb_ref" '{"Entrypoint":["/controller"]}'
  echo "node-image: built $metallb_ref in $out" >&2
fi

print_images
