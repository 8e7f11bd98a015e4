#!/usr/bin/env bash
# Builds the two container images the real node runs, since no image can be
# pulled here, as OCI archives for `ctr images import`; cached under
# ${XDG_CACHE_HOME:-~/.cache}/echo-iac/cluster/node-images-<nginx version>/ and
# only rebuilt when missing. Prints the archives' paths:
#   NGINX_IMAGE=<dir>/nginx.tar  docker.io/library/nginx:alpine, i.e. the seed's
#                                `nginx:alpine`: Debian's nginx binary, the
#                                shared libraries it links and a minimal
#                                filesystem; runs `nginx -g 'daemon off;'`
#                                and includes /etc/nginx/conf.d/*.conf.
#   PAUSE_IMAGE=<dir>/pause.tar  the pod sandbox image (pause/pause.go,
#                                static), containerd's sandbox_image.
# Needs apt-get (downloads the nginx packages, installs nothing), Go, tar,
# sha256sum.
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
if [ -s "$out/nginx.tar" ] && [ -s "$out/pause.tar" ]; then
  echo "NGINX_IMAGE=$out/nginx.tar"
  echo "PAUSE_IMAGE=$out/pause.tar"
  exit 0
fi
mkdir -p "$out"

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

# ---------------------------------------------------------------------- pause
rootfs=$work/pause-root
mkdir -p "$rootfs"
(cd "$here/pause" && go build -trimpath -ldflags='-s -w' -o "$rootfs/pause" pause.go)
oci_archive "$rootfs" "$out/pause.tar" "$pause_ref" '{"Entrypoint":["/pause"]}'

# ---------------------------------------------------------------------- nginx
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
echo "NGINX_IMAGE=$out/nginx.tar"
echo "PAUSE_IMAGE=$out/pause.tar"
