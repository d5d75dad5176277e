#!/usr/bin/env bash
# Builds an arm64 (aarch64) sysroot from Debian 12's own -dev packages, without
# docker and without touching the host's dpkg database: apt resolves and
# downloads with a private state directory, and dpkg-deb unpacks into the
# sysroot. (Installing `libopencv-*-dev:arm64` through host multiarch would make
# apt remove the amd64 OpenCV packages: libopencv-dev is not Multi-Arch: same.)
# Usage: cross/sysroot.sh [SYSROOT]   (default .cache/sysroot-arm64; idempotent)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(realpath -m "${1:-.cache/sysroot-arm64}")
work=$(realpath -m .cache/apt-arm64)
packages=(
  libc6-dev libstdc++-12-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  libopencv-core-dev libopencv-imgproc-dev libopencv-objdetect-dev
)
stamp="$root/.stamp-$(printf '%s\n' "${packages[@]}" | sha256sum | cut -c1-16)"
if [ -f "$stamp" ]; then echo "sysroot: $root is up to date"; exit 0; fi

mkdir -p "$work"/state/lists/partial "$work"/cache/archives/partial
: > "$work/status"
apt_opts=(
  -o "Dir::State=$work/state" -o "Dir::State::Status=$work/status" -o "Dir::Cache=$work/cache"
  -o APT::Architecture=arm64 -o APT::Architectures::=arm64 -o Debug::NoLocking=1
  -o APT::Install-Recommends=0 -o APT::Get::Assume-Yes=1
)
echo "sysroot: resolving and downloading arm64 packages into $work"
apt-get "${apt_opts[@]}" -qq update
apt-get "${apt_opts[@]}" -q --download-only install "${packages[@]}" >/dev/null
rm -rf "$root"; mkdir -p "$root"
n=0
for deb in "$work"/cache/archives/*_arm64.deb "$work"/cache/archives/*_all.deb; do
  [ -e "$deb" ] || continue
  dpkg-deb -x "$deb" "$root"; n=$((n+1))
done
# Absolute symlinks (e.g. libfoo.so -> /lib/aarch64-linux-gnu/libfoo.so.1) must
# point inside the sysroot for the cross linker.
find "$root" -type l -lname '/*' | while read -r link; do
  target=$(readlink "$link")
  ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$root$target")" "$link"
done
# Links dpkg's alternatives would make (postinst scripts do not run here):
# libblas.so.3 / liblapack.so.3, which libopencv_core needs at link time.
for alt in blas/libblas.so.3 lapack/liblapack.so.3; do
  src="$root/usr/lib/aarch64-linux-gnu/$alt"
  [ -e "$src" ] && ln -sfn "$alt" "$root/usr/lib/aarch64-linux-gnu/$(basename "$alt")"
done
# Debian 12 is merged-/usr: /lib -> usr/lib.
[ -e "$root/lib" ] || ln -s usr/lib "$root/lib"
echo "sysroot: unpacked $n packages into $root ($(du -sh "$root" | cut -f1))"
touch "$stamp"
