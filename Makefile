# vireid — the two commands a user needs first:
#   make demo   set up, build, render a synthetic day/night scene and run vireid on it
#   make test   set up, then run every test (Rust and Python)
# Both do their own idempotent set-up on a fresh Debian 12 machine.

SHELL := /bin/bash
ORT_DIR := $(CURDIR)/.deps/onnxruntime
export ORT_DYLIB_PATH ?= $(firstword $(wildcard $(ORT_DIR)/libonnxruntime.so.*[0-9]) $(ORT_DIR)/libonnxruntime.so)
export VIREID_PYTHON := $(CURDIR)/.venv/bin/python
CARGO ?= cargo

.PHONY: setup setup-demo setup-bench build test test-rust test-python demo bench clean

setup:
	scripts/setup.sh test

setup-demo:
	scripts/setup.sh demo

setup-bench:
	scripts/setup.sh bench

build:
	$(CARGO) build --release

test: setup
	$(MAKE) test-rust test-python

test-rust:
	$(CARGO) test --release --no-fail-fast

test-python:
	@if [ -d training/tests ]; then .venv/bin/python -m pytest -q training/tests; else echo "no Python tests yet"; fi

demo: setup-demo build
	scripts/demo.sh

bench: setup-bench
	scripts/bench.sh

clean:
	$(CARGO) clean
