#!/usr/bin/env bash
# Builds rendervisor's OCI image from Debian 12 packages only: a root file
# system made by mmdebstrap from this machine's apt sources (Chromium's
# headless shell, fonts, the libraries the programs link), the project's
# `meson install` output, the user `rendervisor`, and the configuration of
# deploy/kubernetes/base/rendervisor.ini; then `podman import` with the
# image's settings. No registry image is used. docs/install.md, "In a
# container", says how to run it.
#
#   deploy/container/build-image.sh [BUILD_DIR]
#
# BUILD_DIR is a configured, non-sanitizer meson build of this tree (prefix
# /usr or /usr/local); without it the script configures and builds one of its
# own under a temporary directory. The image is tagged
# localhost/rendervisor:<project version> and :latest.
#
# The image carries a label rendervisor.inputs: a hash of what it is made
# from (this script, the installed files with the configuration, the sources
# file and package names, and this machine's apt package lists in
# /var/lib/apt/lists). When an image of that tag already carries the same
# hash, it is kept and nothing is built (RV_IMAGE_REBUILD=1 builds anyway).
# mmdebstrap downloads the mirror's lists itself: a package updated on the
# mirror since this machine's last `apt-get update` is only taken in by a
# build, which that update (or RV_IMAGE_REBUILD=1) brings about.
#
# Environment: RV_IMAGE_SOURCES, the apt sources file mmdebstrap reads
# (default /etc/apt/sources.list.d/debian.sources, else /etc/apt/sources.list);
# RV_IMAGE_NAME (default localhost/rendervisor).
set -euo pipefail

die() { echo "build-image.sh: $*" >&2; exit 1; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$(cd "$here/../.." && pwd)
config="$src/deploy/kubernetes/base/rendervisor.ini"
name=${RV_IMAGE_NAME:-localhost/rendervisor}

((EUID == 0)) || die "must run as root (rootful podman; mmdebstrap's root mode)"
for tool in meson ninja mmdebstrap podman useradd sha256sum; do
  command -v "$tool" >/dev/null || die "$tool is not installed (scripts/install-deps.sh)"
done
[[ -f $config ]] || die "missing $config"

sources=${RV_IMAGE_SOURCES:-}
if [[ -z $sources ]]; then
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    [[ -f $f ]] && { sources=$f; break; }
  done
fi
[[ -n $sources && -f $sources ]] || die "no apt sources file (set RV_IMAGE_SOURCES)"

work=$(mktemp -d /var/tmp/rendervisor-image.XXXXXX)
trap 'rm -rf "$work"' EXIT

build=${1:-}
if [[ -z $build ]]; then
  build="$work/build"
  meson setup "$build" "$src" --prefix=/usr --buildtype=release -Dtests=false >/dev/null ||
    die "meson setup of $build failed"
fi
[[ -f $build/meson-info/intro-buildoptions.json ]] || die "$build is not a configured meson build directory"

option() {
  python3 -c 'import json,sys
for o in json.load(open(sys.argv[1])):
    if o["name"] == sys.argv[2]:
        print(o["value"] if not isinstance(o["value"], list) else ",".join(o["value"]))' \
    "$build/meson-info/intro-buildoptions.json" "$1"
}
prefix=$(option prefix)
sanitize=$(option b_sanitize)
version=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' \
  "$build/meson-info/intro-projectinfo.json")
[[ $sanitize == none ]] || die "$build is a sanitizer build (b_sanitize=$sanitize): its programs need the sanitizer runtime; use a plain build"
[[ $prefix == /usr || $prefix == /usr/local ]] || die "$build has prefix $prefix: the image needs /usr or /usr/local (config in /etc/rendervisor)"

# ninja and meson print their errors on stdout: kept only when they fail
log="$work/build.log"
ninja -C "$build" >"$log" 2>&1 || { tail -n 40 "$log" >&2; die "ninja -C $build failed"; }
meson install -C "$build" --destdir "$work/dest" --no-rebuild >"$log" 2>&1 ||
  { tail -n 40 "$log" >&2; die "meson install -C $build failed"; }
bindir="$prefix/bin"
for prog in rendervisor rendervisor-exporter rendervisor-renderer; do
  [[ -x $work/dest$bindir/$prog ]] || die "meson install put no $bindir/$prog in the destdir"
done
# The image's configuration is the shared one, not the host default.
install -m 0644 "$config" "$work/dest/etc/rendervisor/rendervisor.ini"

# The Debian packages of the shared libraries the programs link, found by ldd
# and dpkg on this machine (the same release the image is made from). With
# merged /usr, dpkg knows a library by either of its two paths.
owner() {
  local p
  for p in "$1" "${1#/usr}" "/usr$1"; do
    dpkg-query -S "$p" 2>/dev/null | head -n1 | cut -d: -f1 && return 0
  done
  return 1
}
libs=()
while read -r lib; do
  pkg=$(owner "$lib") && [[ -n $pkg ]] || die "no Debian package owns $lib (linked by the programs)"
  libs+=("$pkg")
done < <(for prog in rendervisor rendervisor-exporter rendervisor-renderer; do
           ldd "$work/dest$bindir/$prog" | awk '$3 ~ /^\// { print $3 }'
         done | sort -u)
mapfile -t libs < <(printf '%s\n' "${libs[@]}" | sort -u)

# Chromium's headless shell, the fonts pages fall back to (Liberation is
# metric-compatible with Arial/Times/Courier, DejaVu covers wide Unicode),
# fontconfig, whose fc-cache writes the font cache into the image
# (/var/cache/fontconfig: on a read-only root file system each browser
# would otherwise scan the fonts at every start and say "Fontconfig error:
# No writable cache directories"), CA certificates for https pages. No
# init: the supervisor is PID 1. libcurl3-gnutls: the renderer loads it
# (dlopen, which ldd does not see) when [tracing] is on.
packages=(chromium-headless-shell fonts-liberation fonts-dejavu-core fontconfig ca-certificates libcurl3-gnutls
          "${libs[@]}")
include=$(IFS=,; echo "${packages[*]}")

# The inputs' hash: this script, every installed file (path, mode, bytes), the
# package names and the apt lists they are resolved against.
inputs=$(
  {
    sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1
    echo "$include"
    cat "$sources"
    (cd "$work/dest" && find . -printf '%p %m %y\n' | LC_ALL=C sort)
    (cd "$work/dest" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    find /var/lib/apt/lists -maxdepth 1 -name '*_Packages*' -type f -print0 | LC_ALL=C sort -z | xargs -0 -r sha256sum
  } | sha256sum | cut -d' ' -f1
)

if [[ ${RV_IMAGE_REBUILD:-0} != 1 ]] &&
   have=$(podman image inspect --format '{{index .Labels "rendervisor.inputs"}}' "$name:$version" 2>/dev/null) &&
   [[ $have == "$inputs" ]]; then
  echo "build-image.sh: $name:$version is up to date (rendervisor.inputs=$inputs)" >&2
  podman tag "$name:$version" "$name:latest"
  echo "$name:$version"
  exit 0
fi

# The user rendervisor has uid and gid 999, so a mounted configuration or a
# securityContext can name it.
#
# No recommended packages (mmdebstrap's default, said here to be sure).
# Mesa's drivers and LLVM (160 MB) still come in through chromium-common's
# dependency on x11-utils; they are kept so dpkg's view of the image stays
# whole, though --disable-gpu never loads them. Documentation, man pages and
# translations are left out of the packages (nothing in the image reads
# them); copyright files stay.
#
# fontconfig trusts its cache only while each font directory's mtime, to
# the nanosecond, is the one it recorded, and mmdebstrap's tar clamps every
# mtime to SOURCE_DATE_EPOCH: it is set here, the directories get that
# mtime, then the cache is made.
fontcache='t=${SOURCE_DATE_EPOCH:?}; for d in /usr/share/fonts /usr/local/share/fonts; do [ -d "$1$d" ] && find "$1$d" -type d -exec touch -d "@$t" {} +; done; chroot "$1" fc-cache --force --system-only'
SOURCE_DATE_EPOCH=$(date +%s) mmdebstrap --variant=essential --mode=root --format=tar \
  --aptopt='APT::Install-Recommends "false"' \
  --include="$include" \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --customize-hook="sync-in $work/dest /" \
  --customize-hook='useradd --root "$1" --system --uid 999 --user-group --home-dir /var/lib/rendervisor --create-home --shell /usr/sbin/nologin rendervisor' \
  --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*.log' \
  --customize-hook="$fontcache" \
  --customize-hook='for p in rendervisor rendervisor-exporter rendervisor-renderer; do chroot "$1" sh -c "ldd \$(command -v $p)" | grep "not found" && exit 1; done; true' \
  bookworm "$work/rootfs.tar" "$sources" >&2

created=$(date -u +%Y-%m-%dT%H:%M:%SZ)
old=$(podman image inspect --format '{{.Id}}' "$name:$version" 2>/dev/null || true)
podman import \
  --change "ENTRYPOINT [\"$bindir/rendervisor\", \"--config\", \"/etc/rendervisor/rendervisor.ini\"]" \
  --change 'CMD []' \
  --change 'ENV PATH=/usr/local/bin:/usr/bin:/bin' \
  --change 'EXPOSE 8081/tcp' \
  --change 'EXPOSE 9465/tcp' \
  --change 'STOPSIGNAL SIGTERM' \
  --change 'WORKDIR /' \
  --change "LABEL org.opencontainers.image.title=rendervisor" \
  --change "LABEL org.opencontainers.image.description=\"Grafana image renderer: supervisor, renderer (GET /render on 8081) and exporter (/metrics on 9465)\"" \
  --change "LABEL org.opencontainers.image.version=$version" \
  --change "LABEL org.opencontainers.image.licenses=Apache-2.0" \
  --change "LABEL org.opencontainers.image.created=$created" \
  --change "LABEL rendervisor.inputs=$inputs" \
  "$work/rootfs.tar" "$name:$version" >/dev/null
podman tag "$name:$version" "$name:latest"
new=$(podman image inspect --format '{{.Id}}' "$name:$version")
# the image this one replaces, unless a container still uses it
[[ -z $old || $old == "$new" ]] || podman rmi "$old" >/dev/null 2>&1 || true
echo "build-image.sh: built $name:$version ($(podman image inspect --format '{{.Size}}' "$name:$version") bytes, rendervisor.inputs=$inputs)" >&2
echo "$name:$version"
