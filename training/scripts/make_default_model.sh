#!/usr/bin/env bash
# Export, quantize and evaluate a trained checkpoint as vireid's default model.
# usage: training/scripts/make_default_model.sh RUN_DIR DATA_ROOT "training-data description"
set -euo pipefail
run=$1; root=$2; desc=$3
P=${VIREID_PYTHON:-.venv/bin/python}
$P -m vireid_train export --checkpoint "$run/last.pt" --out engines/vireid_default.fp32.onnx \
   --training-data "$desc" --metrics "$run/metrics.json"
$P -m vireid_train quantize --model engines/vireid_default.fp32.onnx \
   --calibration calibration/sysu-synth.txt --out engines/vireid_default.onnx
$P -m vireid_train evaluate --onnx engines/vireid_default.fp32.onnx --compare engines/vireid_default.onnx \
   --root "$root" --json "$run/fp32_vs_int8.json"
