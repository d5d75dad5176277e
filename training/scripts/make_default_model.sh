#!/usr/bin/env bash
# Export, quantize and evaluate a trained checkpoint as vireid's default model.
# usage: training/scripts/make_default_model.sh RUN_DIR DATA_ROOT "training-data description" [CALIBRATION_LIST]
# DATA_ROOT is evaluated in the layout the run was trained on (its checkpoint's data.dataset).
set -euo pipefail
run=$1; root=$2; desc=$3; calib=${4:-calibration/regdb-synth.txt}
P=${VIREID_PYTHON:-.venv/bin/python}
dataset=$($P -c "import sys, torch; print(torch.load(sys.argv[1], map_location='cpu', weights_only=False)['config']['data']['dataset'])" "$run/last.pt")
$P -m vireid_train export --checkpoint "$run/last.pt" --out engines/vireid_default.fp32.onnx \
   --training-data "$desc" --metrics "$run/metrics.json"
$P -m vireid_train quantize --model engines/vireid_default.fp32.onnx \
   --calibration "$calib" --out engines/vireid_default.onnx
$P -m vireid_train evaluate --onnx engines/vireid_default.fp32.onnx --compare engines/vireid_default.onnx \
   --dataset "$dataset" --root "$root" --json "$run/fp32_vs_int8.json"
