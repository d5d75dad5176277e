#!/usr/bin/env bash
# Every benchmark of the project, each a ratio against a peer measured in the
# same run. Results go to the terminal; copy them with the machine into
# BENCHMARKS.md. Usage: scripts/bench.sh [eval|synth|gallery|embed|pipeline ...]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2}
PY=.venv/bin/python
which=("$@")
[ "${#which[@]}" -gt 0 ] || which=(eval synth gallery embed pipeline)

cargo build --release
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
for b in "${which[@]}"; do
  echo "=== $b"
  case "$b" in
    eval)     cargo bench --bench eval_speed ;;
    synth)    cargo bench --bench synth ;;
    gallery)  cargo bench --bench gallery_topk && $PY bench/gallery_vs_faiss.py ;;
    embed)    $PY bench/embed_bench.py ;;
    pipeline) bench/pipeline_bench.sh ;;
    *) echo "bench.sh: unknown benchmark '$b' (eval, synth, gallery, embed, pipeline)" >&2; exit 2 ;;
  esac
done
