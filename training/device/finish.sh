#!/usr/bin/env bash
# Finish a GPU job's model here, on the CPU: reassemble the checkpoint, export FP32 ONNX,
# quantize to INT8 Q/DQ, evaluate both with `vireid eval` on synthetic people nobody trained
# or evaluated on, keep the continuation checkpoint, and write the model card.
#
#   training/device/finish.sh FILES_DIR [--install]
#   FORCE=1 training/device/finish.sh FILES_DIR --install   # install even if it is not better
#
# --install refuses (exit 3) a model whose night-thermal → day-visible R1 on the unseen scene is
# below the current default's on the same crops: the default may be better than a short GPU run.
#
# FILES_DIR holds what the job wrote to $OUT (ckpt.bf16.part*, metrics.json, run.log,
# retrievals.png). Results go to out/device-finish/. With --install the model becomes the
# default: engines/vireid_default.onnx (INT8), engines/vireid_default.fp32.onnx (git-ignored),
# engines/vireid_default.md, and training/device/resume.int8.pt (the next GPU run continues it).
set -euo pipefail
cd "$(dirname "$0")/../.."
FILES=${1:?usage: training/device/finish.sh FILES_DIR [--install]}
INSTALL=0
[ "${2:-}" = "--install" ] && INSTALL=1
[ -f "$FILES/metrics.json" ] || { echo "finish.sh: $FILES/metrics.json missing: give the folder the job's files came back to" >&2; exit 2; }
PY=${VIREID_PYTHON:-.venv/bin/python}
VIREID=${VIREID:-target/release/vireid}
[ -x "$VIREID" ] || { echo "finish.sh: $VIREID not built: run 'make build' first" >&2; exit 2; }
export PYTHONPATH=$PWD/training${PYTHONPATH:+:$PYTHONPATH}
W=out/device-finish
CALIB=${CALIB:-calibration/scene-synth.txt}
mkdir -p "$W"

echo "finish: reassembling the checkpoint"
$PY -m vireid_train.device unpack --parts-dir "$FILES" --metrics "$FILES/metrics.json" --out "$W/last.pt"
read -r H WD < <($PY -c "import sys, torch; d = torch.load(sys.argv[1], weights_only=False)['config']['data']; print(d['height'], d['width'])" "$W/last.pt")
desc=$($PY -c "import json, sys; m = json.load(open(sys.argv[1])); j = m['job']; print(f\"GPU job: synthetic RegDB layout, {j['train_ids']} people x {j['train_images']} images per sensor (seed 101), {j['width']}x{j['height']}\")" "$FILES/metrics.json")

echo "finish: FP32 ONNX and INT8 Q/DQ ($CALIB)"
$PY -m vireid_train export --checkpoint "$W/last.pt" --out "$W/model.fp32.onnx" --training-data "$desc"
$PY -m vireid_train quantize --model "$W/model.fp32.onnx" --calibration "$CALIB" --out "$W/model.onnx"

echo "finish: evaluating on unseen people (seed 303) with vireid eval"
[ -d "$W/eval/idx" ] || "$VIREID" --log warn synth regdb --out "$W/eval" --ids 200 --seed 303 --width "$WD" --height "$H"
# ... and on what the product asks at night: night thermal crops of an unseen scene against its
# day visible crops.
if [ ! -f "$W/scene-nd/idx/test_thermal_1.txt" ]; then
  "$VIREID" --log warn synth scene --out "$W/scene-video" --seed 8001 --seconds 90 --people 20 --width 960 --height 540 \
    --crops "$W/scene" --no-video >/dev/null
  $PY -m vireid_train.device night-day --root "$W/scene" --out "$W/scene-nd"
fi
for m in fp32 int8; do
  f="$W/model.onnx"; [ $m = fp32 ] && f="$W/model.fp32.onnx"
  for set in eval scene-nd; do
    "$VIREID" --log warn eval dataset --protocol regdb --direction t2v --trials 1 --root "$W/$set" --model "$f" \
      --out "$W/$set-$m" --no-cache --quiet
  done
done

$PY -m vireid_train.device card --metrics "$FILES/metrics.json" --eval-fp32 "$W/eval-fp32/report.json" \
  --eval-int8 "$W/eval-int8/report.json" --scene-fp32 "$W/scene-nd-fp32/report.json" \
  --scene-int8 "$W/scene-nd-int8/report.json" --out "$W/model.md"
echo "finish: model card $W/model.md"

r1() { $PY -c "import json, sys; print(round(100 * json.load(open(sys.argv[1]))['mean']['cmc'][0], 1))" "$1/report.json"; }
if [ "$INSTALL" = 1 ] && [ -f engines/vireid_default.onnx ]; then
  "$VIREID" --log warn eval dataset --protocol regdb --direction t2v --trials 1 --root "$W/scene-nd" \
    --model engines/vireid_default.onnx --out "$W/scene-nd-current" --no-cache --quiet
  new_r1=$(r1 "$W/scene-nd-int8"); cur_r1=$(r1 "$W/scene-nd-current")
  echo "finish: night-thermal → day-visible R1 on the unseen scene: this model $new_r1 %, the current default $cur_r1 %"
  if [ "$($PY -c "import sys; print(int(float(sys.argv[1]) < float(sys.argv[2])))" "$new_r1" "$cur_r1")" = 1 ] \
     && [ -z "${FORCE:-}" ]; then
    echo "finish: not installed: the current default is better ($cur_r1 % against $new_r1 %). Keep the job's" \
      "continuation checkpoint for the next window (python -m vireid_train.device int8 --checkpoint $W/last.pt" \
      "--out training/device/resume.int8.pt), or install anyway with FORCE=1" >&2
    exit 3
  fi
fi
if [ "$INSTALL" = 1 ]; then
  cp "$W/model.onnx" engines/vireid_default.onnx
  cp "$W/model.fp32.onnx" engines/vireid_default.fp32.onnx
  cp "$W/model.md" engines/vireid_default.md
  gpu_s=$($PY -c "import json, sys; print(json.load(open(sys.argv[1]))['train'].get('train_seconds', 0))" "$FILES/metrics.json")
  $PY -m vireid_train.device int8 --checkpoint "$W/last.pt" --out training/device/resume.int8.pt \
    --provenance "{\"kind\": \"gpu\", \"last_gpu_train_seconds\": $gpu_s}"
  cp "$FILES/retrievals.png" docs/gpu_retrievals.png 2>/dev/null || true
  echo "finish: installed as the default model; commit engines/ and training/device/resume.int8.pt"
fi
