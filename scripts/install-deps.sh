#!/usr/bin/env bash
# Installs the Debian 12 packages rendervisor needs to build, run and test,
# asking apt only for what is missing. Safe to run again.
set -euo pipefail

packages=(
  build-essential meson ninja-build pkg-config python3 curl socat
  libmicrohttpd-dev libproc2-dev libwebsockets-dev libinih-dev libjansson-dev libcmocka-dev
  libgnutls28-dev openssl
  libcurl4-gnutls-dev
  chromium-headless-shell poppler-utils prometheus wrk
  clang libclang-rt-14-dev valgrind passwd
  libsystemd-dev systemd procps man-db groff-base
  podman runc mmdebstrap uidmap slirp4netns haproxy python3-yaml
  dpkg-dev debhelper
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$p")
done
((${#missing[@]})) || exit 0

echo "installing: ${missing[*]}" >&2
sudo=()
((EUID == 0)) || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
