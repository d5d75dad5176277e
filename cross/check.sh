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
qemu-aarch64 -L "$SYSROOT" "$bin" check-config --config systemd/config.toml
# Unit tests of the library under qemu (the runner set above). Integration tests
# need services (GStreamer plugins, mosquitto, chromium) that are host-side here.
cargo test --release --locked --target "$TARGET" --target-dir target/cross -j "$JOBS" --lib
echo "cross-check: OK in $(( $(date +%s) - start )) s (build $((built - start)) s)"
