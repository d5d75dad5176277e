#!/usr/bin/env bash
# Docker-free aarch64 check (what `make cross-check` and CI run): builds vireid
# for aarch64-unknown-linux-gnu against a Debian 12 arm64 sysroot
# (cross/sysroot.sh) with Debian's gcc-aarch64-linux-gnu, then runs the binary's
# `--version`, its config check and the library's unit tests under qemu-aarch64.
#
# Needs: gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user (apt),
# `rustup target add aarch64-unknown-linux-gnu`. Separate target dir
# (target/cross) so it never invalidates the host build.
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET=aarch64-unknown-linux-gnu
SYSROOT=$(realpath -m "${VIREID_ARM64_SYSROOT:-.cache/sysroot-arm64}")
JOBS=${CARGO_BUILD_JOBS:-2}

for tool in aarch64-linux-gnu-gcc aarch64-linux-gnu-g++ qemu-aarch64; do
  command -v "$tool" >/dev/null || { echo "cross-check: $tool not found: apt-get install -y gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user" >&2; exit 1; }
done
rustup target list --installed 2>/dev/null | grep -qx "$TARGET" || rustup target add "$TARGET"
cross/sysroot.sh "$SYSROOT"

T=${TARGET//-/_}            # aarch64_unknown_linux_gnu, for cc/pkg-config per-target variables
TU=${T^^}                   # AARCH64_UNKNOWN_LINUX_GNU, for cargo's
MULTIARCH=$SYSROOT/usr/lib/aarch64-linux-gnu
export CARGO_TARGET_${TU}_LINKER=aarch64-linux-gnu-gcc
export CARGO_TARGET_${TU}_RUSTFLAGS="-C link-arg=--sysroot=$SYSROOT -C link-arg=-Wl,-rpath-link,$MULTIARCH -C link-arg=-Wl,-rpath-link,$SYSROOT/lib/aarch64-linux-gnu"
export CARGO_TARGET_${TU}_RUNNER="qemu-aarch64 -L $SYSROOT"
export CC_${T}=aarch64-linux-gnu-gcc CXX_${T}=aarch64-linux-gnu-g++ AR_${T}=aarch64-linux-gnu-ar
export CFLAGS_${T}="--sysroot=$SYSROOT" CXXFLAGS_${T}="--sysroot=$SYSROOT"
export PKG_CONFIG_ALLOW_CROSS=1
export PKG_CONFIG_SYSROOT_DIR_${T}=$SYSROOT
export PKG_CONFIG_LIBDIR_${T}=$MULTIARCH/pkgconfig:$SYSROOT/usr/share/pkgconfig
# Debian ships opencv4.pc only in libopencv-dev (all modules); vireid needs three.
export OPENCV_LINK_LIBS=opencv_objdetect,opencv_imgproc,opencv_core
export OPENCV_LINK_PATHS=$MULTIARCH
export OPENCV_INCLUDE_PATHS=$SYSROOT/usr/include/opencv4,$SYSROOT/usr/include/aarch64-linux-gnu/opencv4
export OPENCV_DISABLE_PROBES=cmake,vcpkg_cmake,vcpkg
# The binding generator parses the headers with libclang: point it at the target.
export BINDGEN_EXTRA_CLANG_ARGS_${T}="--target=aarch64-linux-gnu --sysroot=$SYSROOT"

start=$(date +%s)
cargo build --release --locked --target "$TARGET" --target-dir target/cross -j "$JOBS"
built=$(date +%s)
bin=target/cross/$TARGET/release/vireid
file "$bin" | grep -q "ARM aarch64" || { echo "cross-check: $bin is not an aarch64 binary: $(file "$bin")" >&2; exit 1; }
echo "cross-check: built $bin in $((built - start)) s"
qemu-aarch64 -L "$SYSROOT" "$bin" --version
# check-config makes start-up's checks: config, each camera's pipeline, the
# API token, then the model load. Stage what a box has after the .deb and the
# admin's one step (the token file) at scratch paths. ONNX Runtime's aarch64
# library (onnxruntime 1.31.1 wheel) segfaults while loading under qemu-user
# (7.2), so the model load is left to the box (`make deb-check`, the device):
# the aarch64 binary must pass every check before it and stop exactly there.
box=$(mktemp -d); trap 'rm -rf "$box"' EXIT
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$box/api-token"
sed -e "s|\"/etc/vireid/api-token\"|\"$box/api-token\"|" \
    -e "s|\"/usr/share/vireid/engines/vireid_default.onnx\"|\"$PWD/engines/vireid_default.onnx\"|" \
    -e "s|\"/var/lib/vireid\"|\"$box/state\"|" systemd/config.toml > "$box/config.toml"
for staged in "$box/api-token" "$PWD/engines/vireid_default.onnx" "$box/state"; do
  grep -qF "\"$staged\"" "$box/config.toml" || { echo "cross-check: systemd/config.toml no longer has the path staged as $staged: update cross/check.sh" >&2; exit 1; }
done
if checked=$(ORT_DYLIB_PATH=/nonexistent/libonnxruntime.so qemu-aarch64 -L "$SYSROOT" "$bin" check-config --config "$box/config.toml" 2>&1); then
  echo "cross-check: check-config passed without ONNX Runtime: it no longer loads the model?" >&2; exit 1
fi
grep -q "cannot start the embedder for the gallery: ONNX Runtime library /nonexistent/libonnxruntime.so does not exist" <<<"$checked" || { echo "cross-check: the aarch64 check-config of systemd/config.toml failed before the model load:" >&2; echo "$checked" >&2; exit 1; }
echo "cross-check: systemd/config.toml passes check-config on aarch64 up to the model load"
# Unit tests of the library under qemu (the runner set above). Integration tests
# need services (GStreamer plugins, mosquitto, chromium) that are host-side here.
cargo test --release --locked --target "$TARGET" --target-dir target/cross -j "$JOBS" --lib
echo "cross-check: OK in $(( $(date +%s) - start )) s (build $((built - start)) s)"
