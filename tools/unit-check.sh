#!/usr/bin/env bash
# Run the installed unit for real: boot this machine's own system, under a
# throw-away overlay, as a systemd-nspawn container with no network but
# loopback, install a --prefix=/usr build of this tree into it, and let a
# probe unit start rendervisor.service, render a page, reload, stop, and
# print what systemd and the service said. For checking the unit's hardening
# against Chromium by hand (docs/install.md); not part of `make test`.
# Needs root and Debian's systemd-container. Usage: tools/unit-check.sh
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
command -v systemd-nspawn >/dev/null || { echo "unit-check: apt-get install systemd-container" >&2; exit 1; }
((EUID == 0)) || { echo "unit-check: run as root" >&2; exit 1; }

work=$(mktemp -d /tmp/rv-unit-check-XXXXXX)
root=$work/overlay/merged
cleanup() {
  mountpoint -q "$root" && umount "$root"
  mountpoint -q "$work/overlay" && umount "$work/overlay"
  rm -rf "$work"
}
trap cleanup EXIT

meson setup "$work/build" "$src" --prefix=/usr -Dtests=false >/dev/null
ninja -C "$work/build" >/dev/null
meson install -C "$work/build" --destdir "$work/dest" --quiet

# / as the lower layer: its submounts (/dev, /proc, /run, ...) are not in it,
# which is what nspawn wants; every write goes to a tmpfs.
mkdir -p "$work/overlay"
mount -t tmpfs -o size=2G tmpfs "$work/overlay"
mkdir -p "$work/overlay/upper" "$work/overlay/work" "$root"
mount -t overlay overlay -o "lowerdir=/,upperdir=$work/overlay/upper,workdir=$work/overlay/work" "$root"
cp -a "$work/dest/." "$root/"
rm -f "$root"/etc/systemd/system/multi-user.target.wants/*
cat > "$root/etc/systemd/system/rv-probe.service" <<'EOF'
[Service]
Type=oneshot
ExecStart=/rv-probe.sh
StandardOutput=journal+console
StandardError=journal+console
EOF
ln -s /etc/systemd/system/rv-probe.service "$root/etc/systemd/system/multi-user.target.wants/"
cat > "$root/rv-probe.sh" <<'EOF'
#!/bin/bash
say() { sed 's/^/PROBE: /'; }
t0=$(date +%s%N)
systemctl start rendervisor; echo "start rc=$? ms=$((($(date +%s%N) - t0) / 1000000))" | say
systemctl show -p User -p ActiveState -p StatusText rendervisor | say
curl -s -o /tmp/r.png -w 'render status=%{http_code} bytes=%{size_download}\n' -H 'X-Auth-Token: -' \
  'http://127.0.0.1:8081/render?url=http://127.0.0.1:9465/&width=400&height=300' | say
systemctl reload rendervisor; echo "reload rc=$?" | say
systemctl show -p ActiveState -p StatusText rendervisor | say
t0=$(date +%s%N)
systemctl stop rendervisor; echo "stop rc=$? ms=$((($(date +%s%N) - t0) / 1000000))" | say
systemctl show -p Result -p ExecMainStatus rendervisor | say
journalctl -u rendervisor -o cat --no-pager | grep -v 'msg="child output"' | say
systemctl poweroff
EOF
chmod +x "$root/rv-probe.sh"

timeout 300 systemd-nspawn -D "$root" --private-network --register=no --keep-unit --link-journal=no \
  -M rv-unit-check -b 2>&1 | sed 's/\x1b\[[0-9;]*m//g' | grep -o 'PROBE: .*'
