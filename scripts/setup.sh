#!/usr/bin/env bash
# Idempotent set-up for a fresh Debian 12 machine: system packages, the ONNX
# Runtime shared library (from its PyPI wheel), and a project-local Python
# virtualenv for training/ and the reference benchmarks.
# Usage: scripts/setup.sh [test|demo|bench]   (what the caller is about to do)
#
# Each purpose installs only what it runs: `demo` builds vireid and runs it on
# a synthetic scene (build tools, GStreamer, OpenCV, the ONNX Runtime wheel),
# no PyTorch, no browser, no cross compilers; `test` and `bench` add the rest.
set -euo pipefail
cd "$(dirname "$0")/.."
purpose="${1:-test}"

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# --- system packages -------------------------------------------------------
# What building and running vireid needs (the demo: render a scene, encode it
# with x264, decode it, HOG, ONNX Runtime from its wheel).
APT_PACKAGES=(
  build-essential pkg-config clang libclang-dev curl ca-certificates
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstrtspserver-1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav
  libopencv-dev
  python3 python3-venv
)
# What the tests (and benchmarks) add: RTSP server and tools, the systemd unit
# checks, the MQTT broker, the dashboard's browser, the aarch64 cross build.
if [ "$purpose" != demo ]; then
  APT_PACKAGES+=(
    unzip gstreamer1.0-tools gstreamer1.0-rtsp
    systemd mosquitto chromium
    gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user file
  )
fi
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

command -v cargo >/dev/null || { echo "setup: cargo not found: install Rust (rustup) first" >&2; exit 1; }

# --- Python virtualenv -----------------------------------------------------
# PyTorch from PyPI is large: install once into .venv and reuse; a stamp keyed
# on the requirements file decides whether anything needs installing.
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PY" -m venv .venv
fi
req=requirements/$purpose.txt
[ -f "$req" ] || req=requirements/test.txt
inputs_hash=$( (cat requirements/*.txt; cat training/pyproject.toml 2>/dev/null || true) | sha256sum | cut -c1-16)
stamp=.venv/.stamp-$(basename "$req" .txt)-$inputs_hash
if [ ! -f "$stamp" ]; then
  case "$purpose" in
    demo) echo "setup: installing Python packages from $req (ONNX Runtime's wheel, for its shared library)" ;;
    *) echo "setup: installing Python packages from $req (first run downloads PyTorch: a few minutes)" ;;
  esac
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r "$req"
  # The training package is for the tests and benchmarks; the demo only runs vireid.
  if [ "$purpose" != demo ] && [ -f training/pyproject.toml ]; then .venv/bin/pip install -q --no-deps -e training; fi
  touch "$stamp"
fi

# --- ONNX Runtime shared library, from the onnxruntime wheel ---------------
ORT_DIR=.deps/onnxruntime
if [ ! -e "$ORT_DIR/libonnxruntime.so" ]; then
  capi=$(.venv/bin/python -c 'import onnxruntime, os; print(os.path.join(os.path.dirname(onnxruntime.__file__), "capi"))')
  mkdir -p "$ORT_DIR"
  cp -a "$capi"/libonnxruntime.so* "$ORT_DIR"/
  versioned=$(cd "$ORT_DIR" && ls libonnxruntime.so.*[0-9] | sort -V | tail -1)
  ln -sf "$versioned" "$ORT_DIR/libonnxruntime.so"
  echo "setup: ONNX Runtime library in $ORT_DIR: $(ls "$ORT_DIR")"
fi

# --- real footage: OpenCV's sample pedestrian clip ---------------------------
# vtest.avi (768×576, 10 fps, 795 frames: people walking past a surveillance
# camera) ships in Debian's opencv-doc package. The .deb (~96 MB) is downloaded
# once into .cache/debs/ and only that one file is extracted to
# .deps/footage/vtest.avi; the package is not installed. The tests run
# `vireid run` on it (tests/pipeline/real_footage.rs); bench/real_footage.sh
# runs the whole clip. The demo does not need it.
FOOTAGE=.deps/footage/vtest.avi
if [ "$purpose" != demo ] && [ ! -s "$FOOTAGE" ]; then
  mkdir -p .cache/debs "$(dirname "$FOOTAGE")"
  deb=$(ls .cache/debs/opencv-doc_*_all.deb 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$deb" ]; then
    echo "setup: downloading Debian's opencv-doc (~96 MB, once) for its sample clip vtest.avi"
    if ! (cd .cache/debs && apt-get download opencv-doc); then
      $SUDO apt-get update -qq
      (cd .cache/debs && apt-get download opencv-doc)
    fi
    deb=$(ls .cache/debs/opencv-doc_*_all.deb | sort -V | tail -1)
  fi
  dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/share/doc/opencv-doc/examples/data/vtest.avi >"$FOOTAGE.part"
  mv "$FOOTAGE.part" "$FOOTAGE"
  echo "setup: real footage in $FOOTAGE ($(stat -c %s "$FOOTAGE") bytes, from $(basename "$deb"))"
fi
