# vireid — the two commands a user needs first:
#   make demo   set up, build, render a synthetic day/night scene and run vireid on it
#   make test   set up, then run every test (Rust and Python)
# Both do their own idempotent set-up on a fresh Debian 12 machine.

SHELL := /bin/bash
ORT_DIR := $(CURDIR)/.deps/onnxruntime
# setup.sh links libonnxruntime.so to the versioned library it extracts; the
# path is fixed so it is right even before the first set-up has run.
export ORT_DYLIB_PATH ?= $(ORT_DIR)/libonnxruntime.so
export VIREID_PYTHON := $(CURDIR)/.venv/bin/python
CARGO ?= cargo

.PHONY: setup setup-demo setup-bench build test test-gates test-rust test-portable test-python test-device demo bench clean

setup:
	scripts/setup.sh test

setup-demo:
	scripts/setup.sh demo

setup-bench:
	scripts/setup.sh bench

build:
	$(CARGO) build --release

# Everything CI runs. The aarch64 cross build and its unit tests under qemu are
# part of every run (about 9 minutes from scratch on 2 cores; incremental afterwards).
# test-python runs after test-rust: a Python test calls target/release/vireid.
test: setup
	$(MAKE) -k test-gates test-rust test-portable test-python test-device cross-check

# Quality gates, cheapest first: formatting, the module graph (no cycle, every
# edge down the flow: docs/ARCHITECTURE.md), then lints on every target.
test-gates:
	$(CARGO) fmt --check
	python3 scripts/check_modules.py
	$(CARGO) clippy --release --all-targets -- -D warnings

test-rust:
	$(CARGO) test --release --no-fail-fast

# The portable vireid (no GStreamer, OpenCV, ONNX Runtime), in its own target
# dir so the default build stays valid; ldd-checked (scripts/check_portable.sh).
PORTABLE_TARGET_DIR ?= target/portable
test-portable:
	CARGO="$(CARGO)" scripts/check_portable.sh $(PORTABLE_TARGET_DIR)

test-python:
	@if [ -d training/tests ]; then .venv/bin/python -m pytest -q training/tests; else echo "no Python tests yet"; fi

# The GPU machine's job, checked here (training/device/README.md): the tracked tree
# fits what the device tool sends, and the whole job runs at toy size on the CPU.
test-device:
	scripts/check_tree_size.sh
	training/device/run.sh --smoke

demo: setup-demo build
	scripts/demo.sh

bench: setup-bench
	scripts/bench.sh

clean:
	$(CARGO) clean

# --- running on the box: aarch64, .deb, browser test (see cross/README.md) ---
.PHONY: cross-check deb deb-check test-browser
# Docker-free aarch64 build + `--version` + unit tests under qemu-aarch64.
cross-check:
	cross/check.sh

# The .deb needs a default model: DEB_MODEL=path/to/model.onnx (vireid.* metadata).
DEB_MODEL ?= engines/vireid_default.onnx
deb: build
	@test -f "$(DEB_MODEL)" || { echo "deb: no model at $(DEB_MODEL): export one with training/ or pass DEB_MODEL=path/to/model.onnx" >&2; exit 1; }
	mkdir -p target/deb-assets
	cp "$(DEB_MODEL)" target/deb-assets/default.onnx
	cp -L "$(ORT_DYLIB_PATH)" target/deb-assets/libonnxruntime.so
	command -v cargo-deb >/dev/null || $(CARGO) install cargo-deb --locked
	$(CARGO) deb --no-build

# Install the .deb into a clean debootstrap'ed Debian 12 root and check it.
deb-check: deb
	cross/deb-check.sh $$(ls -t target/debian/vireid_*.deb | head -1)

# The dashboard screenshot test alone (it also runs in `make test`).
test-browser:
	$(CARGO) test --release --test api dashboard
