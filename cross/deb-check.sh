#!/usr/bin/env bash
# Installs the .deb into a clean Debian 12 root (debootstrap, minbase) and checks
# what can be checked without a running systemd: the package installs with its
# dependencies, the user/directories/token exist, `vireid --version` and
# `vireid check-config` run, the unit is where systemd looks for it and
# enabled, and the model and ONNX Runtime library are in place.
# Usage: cross/deb-check.sh path/to/vireid_*.deb   (root; needs debootstrap)
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(realpath "${1:?usage: cross/deb-check.sh path/to/vireid.deb}")
root=$(realpath -m .cache/debroot)
if [ ! -x "$root/usr/bin/apt-get" ]; then
  command -v debootstrap >/dev/null || { echo "deb-check: debootstrap not found: apt-get install -y debootstrap" >&2; exit 1; }
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian
fi
# A fresh copy per run, so every check starts from the clean root.
work=$(mktemp -d /tmp/vireid-debroot.XXXXXX)
trap 'umount "$work/proc" 2>/dev/null || true; rm -rf "$work"' EXIT
cp -a "$root/." "$work/"
cp /etc/resolv.conf "$work/etc/resolv.conf"
mount -t proc proc "$work/proc"
# No init system runs in a chroot: let maintainer scripts skip starting services.
printf '#!/bin/sh\nexit 101\n' > "$work/usr/sbin/policy-rc.d"; chmod 755 "$work/usr/sbin/policy-rc.d"
cp "$deb" "$work/tmp/vireid.deb"
in_root() { chroot "$work" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive "$@"; }
in_root apt-get update -qq
in_root apt-get install -y -q --no-install-recommends /tmp/vireid.deb
echo "--- checks"
in_root /usr/bin/vireid --version
in_root getent passwd vireid
in_root test -d /var/lib/vireid
in_root sh -c 'test "$(stat -c %U:%a /var/lib/vireid)" = vireid:750'
in_root sh -c 'test "$(stat -c %U:%G:%a /etc/vireid/api-token)" = root:vireid:640 && test "$(wc -c < /etc/vireid/api-token)" -ge 17'
in_root test -s /usr/share/vireid/engines/default.onnx
in_root test -s /usr/lib/vireid/libonnxruntime.so
in_root test -f /lib/systemd/system/vireid.service
in_root test -L /etc/systemd/system/multi-user.target.wants/vireid.service
in_root /usr/bin/vireid check-config --config /etc/vireid/config.toml
# The unit's ExecStartPre is exactly that check, as the service user.
in_root setpriv --reuid=vireid --regid=vireid --init-groups /usr/bin/vireid check-config --config /etc/vireid/config.toml
echo "--- remove and purge"
in_root apt-get purge -y -q vireid >/dev/null
in_root sh -c '! getent passwd vireid && ! test -e /var/lib/vireid && ! test -e /lib/systemd/system/vireid.service'
echo "deb-check: OK ($(basename "$deb"))"
