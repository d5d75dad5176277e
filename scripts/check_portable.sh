#!/usr/bin/env bash
# The portable vireid: `cargo build --release --no-default-features` renders
# datasets (synth), evaluates (eval) and scores (score) on a machine without
# GStreamer, OpenCV or ONNX Runtime — the GPU machine, where it travels as an
# ignored path beside the working tree (training/device/README.md).
#
# Builds it in its own target dir (so the default build is not invalidated),
# then fails loudly if it links any of those libraries, or anything beyond
# glibc (libc, libm, libgcc_s, the loader), or if it cannot render a dataset.
# Usage: scripts/check_portable.sh [target-dir]   (default target/portable)
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET_DIR=${1:-target/portable}
CARGO=${CARGO:-cargo}
BIN=$TARGET_DIR/release/vireid

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! $CARGO build --release --locked --no-default-features --bin vireid --target-dir "$TARGET_DIR" 2>"$log"; then
  cat "$log" >&2
  echo "portable: FAILED: cargo build --release --no-default-features does not build (see above)" >&2
  exit 1
fi
if grep -q '^warning' "$log"; then
  cat "$log" >&2
  echo "portable: FAILED: the --no-default-features build has warnings (an item used only with media/infer needs a #[cfg])" >&2
  exit 1
fi

libs=$(ldd "$BIN" | awk '{print $1}')
# fail_if_linked WHAT FIX GREP-ARGS…: fails naming the libraries grep selects.
fail_if_linked() {
  local what=$1 fix=$2 found
  shift 2
  found=$(grep "$@" <<<"$libs" || true)
  [ -z "$found" ] && return 0
  echo "portable: FAILED: $BIN $what:" >&2
  sed 's/^/  /' <<<"$found" >&2
  echo "$fix" >&2
  exit 1
}
fail_if_linked "links libraries the GPU machine does not have" \
  "Gate the code that needs them behind the 'media' (GStreamer, OpenCV) or 'infer' (ONNX Runtime) feature." \
  -E '^lib(gst|opencv|onnxruntime)'
# glibc and the compiler runtime only: anything else (fontconfig, freetype, ssl…) may be missing there.
fail_if_linked "needs shared libraries beyond glibc and libgcc" \
  "Link them statically, gate them behind a feature, or replace them (ldd $BIN shows who)." \
  -vE '^(linux-vdso\.so|/lib64/ld-linux|/lib/ld-linux|ld-linux|libc\.so|libm\.so|libgcc_s\.so|libpthread\.so|libdl\.so|librt\.so)'


# It must do its job: a tiny RegDB-layout dataset and scene crops without video.
tmp=$(mktemp -d)
trap 'rm -f "$log"; rm -rf "$tmp"' EXIT
"$BIN" --log warn synth regdb --out "$tmp/regdb" --ids 4 --images 2 --seed 1 >/dev/null
"$BIN" --log warn synth scene --no-video --crops "$tmp/crops" --out "$tmp/scene" --seconds 2 --people 2 \
  --width 320 --height 240 >/dev/null
test -s "$tmp/scene/ground_truth.jsonl" && ! test -e "$tmp/scene/rgb.mp4" || {
  echo "portable: FAILED: synth scene --no-video wrote no ground truth, or wrote video" >&2
  exit 1
}
"$BIN" --log warn eval dataset --protocol regdb --root "$tmp/regdb" --baseline colorhist --trials 1 \
  --out "$tmp/report" --quiet >/dev/null
test -s "$tmp/report/report.json" && test -s "$tmp/report/cmc.png" || {
  echo "portable: FAILED: eval dataset wrote no report" >&2
  exit 1
}
echo "portable: $BIN ($(du -h "$BIN" | cut -f1)) links only $(tr '\n' ' ' <<<"$libs")"
