#!/usr/bin/env bash
# The box teaches itself, end to end (issue 19): harvest on busy scenes with the
# default model, `vireid adapt`, `vireid thresholds --from-gallery`, then run
# new 5-person day/night scenes with cross-modality matching on, and score each
# run against the ground truth. The base model with thresholds from labelled
# crops (what `make demo` does) runs on the same scenes, for comparison.
# Self-calibrated thresholds are compared with labelled ones (1 % FAR).
#
#   bench/adapt_demo.sh [RUNS=10] [OUT=out/adapt-demo]
#
# HARVEST_CONFIG: a box config whose gallery already holds a harvest (e.g.
# out/adapt-scaling/box.toml after bench/adapt_scaling.sh); without it the box
# runs on HARVEST_SCENES (default 4) 120 s scenes of 16 people first.
#
# Labelled references for the self-calibrated thresholds, each at 1 % FAR:
# - `1 scene`: crops of one 8-person scene (seed 1001), what `make demo` uses;
# - `harvest's scenes`: all crops of the scenes the box harvested on (seeds
#   4001…, LABELLED_SEEDS), scored scene by scene and pooled: the same people
#   and scenes as the harvest, labelled;
# - `other scenes`: the same for scenes nobody harvested (HELDOUT_SEEDS).
# Crops go to $CROPS-SEED (default $OUT/crops-SEED; rendered once, no video).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10}; OUT=${2:-out/adapt-demo}
VIREID=${VIREID:-target/release/vireid}
PY=${VIREID_PYTHON:-.venv/bin/python}
MODEL=${MODEL:-engines/vireid_default.onnx}
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$PWD/.deps/onnxruntime/libonnxruntime.so}
mkdir -p "$OUT"
V() { "$VIREID" --log warn "$@"; }

box_toml() {  # scene-dir state-dir model [extra TOML] -> config on stdout
  cat <<TOML
state_dir = "$2"
[[camera]]
name = "rgb"
modality = "rgb"
box = "box"
source = "$1/rgb.mp4"
[[camera]]
name = "thermal"
modality = "thermal"
box = "box"
source = "$1/thermal.mp4"
[ingest]
file_pace = "fast"
width = 0
height = 0
[embed]
model = "$3"
${4:-}
TOML
}

# 1. Harvest.
if [ -n "${HARVEST_CONFIG:-}" ]; then
  HC=$HARVEST_CONFIG
else
  HC=$OUT/harvest.toml
  if [ ! -f "$OUT/harvest.done" ]; then
    rm -rf "$OUT/harvest-state"
    for i in $(seq 1 "${HARVEST_SCENES:-4}"); do
      seed=$((4000 + i)); scene=$OUT/harvest-$seed
      [ -f "$scene/rgb.mp4" ] || V synth scene --out "$scene" --seconds 120 --people 16 --seed $seed --width 960 --height 540 >/dev/null
      box_toml "$scene" "$OUT/harvest-state" "$MODEL" > "$HC"
      V run --config "$HC" --tracks /dev/null --sightings /dev/null 2>/dev/null
    done
    touch "$OUT/harvest.done"
  fi
fi

# 2. Adapt and self-calibrate; labelled thresholds for comparison (crops of another scene, other people).
V adapt --config "$HC" --model "$MODEL" --out "$OUT/adapted.onnx" --min-pairs 20 | tee "$OUT/adapt.log"
# Cross-modality matching on for the adapted model (--min-cross-tmr 0): the demo shows what it does.
V thresholds --from-gallery --config "$HC" --model "$OUT/adapted.onnx" --min-cross-tmr 0 | tee "$OUT/self-adapted.toml"
V thresholds --from-gallery --config "$HC" --model "$MODEL" > "$OUT/self-base.toml"
if [ ! -f "$OUT/calib/idx/train_visible_1.txt" ] && [ ! -d "$OUT/calib/Visible" ]; then
  V synth scene --out "$OUT/calib-scene" --seconds 40 --people 8 --seed 1001 --width 960 --height 540 --crops "$OUT/calib" >/dev/null
fi
V thresholds --root "$OUT/calib" --far 0.01 --per-person-cam 24 --model "$MODEL" > "$OUT/labelled-base.toml"
V thresholds --root "$OUT/calib" --far 0.01 --per-person-cam 24 --model "$OUT/adapted.onnx" > "$OUT/labelled-adapted.toml"
CROPS=${CROPS:-$OUT/crops}
roots() {  # seeds... -> --root CROPS-SEED ... (rendering the crops once)
  for seed in "$@"; do
    [ -f "$CROPS-$seed/idx/test_thermal_1.txt" ] || V synth scene --out "$CROPS-$seed-scene" --seconds 120 --people 16 \
      --seed "$seed" --width 960 --height 540 --crops "$CROPS-$seed" --no-video >/dev/null
    printf -- '--root %s ' "$CROPS-$seed"
  done
}
read -ra harvest_roots <<<"$(roots ${LABELLED_SEEDS:-$(seq 4001 $((4000 + ${HARVEST_SCENES:-4})))})"
read -ra other_roots <<<"$(roots ${HELDOUT_SEEDS:-4009 4010 4011 4012})"
for m in base adapted; do
  model=$MODEL; [ $m = base ] || model=$OUT/adapted.onnx
  V thresholds "${harvest_roots[@]}" --far 0.01 --per-person-cam 1000 --model "$model" > "$OUT/scenes-$m.toml"
  V thresholds "${other_roots[@]}" --far 0.01 --per-person-cam 1000 --model "$model" > "$OUT/other-$m.toml"
done
thr() { sed -n "s/^# $2 *: threshold \([0-9.]*\),.*/\1/p" "$1"; }
{
  echo "| model | thresholds from | RGB↔RGB | thermal↔thermal | RGB↔thermal |"
  echo "| --- | --- | ---: | ---: | ---: |"
  for m in base adapted; do
    for src in "labelled:labelled, 1 scene" "scenes:labelled, harvest's scenes" "other:labelled, other scenes" \
      "self:self (the harvest)"; do
      f=$OUT/${src%%:*}-$m.toml
      echo "| $m | ${src#*:} | $(thr "$f" 'RGB↔RGB') | $(thr "$f" 'thermal↔thermal') | $(thr "$f" 'RGB↔thermal') |"
    done
  done
} | tee "$OUT/thresholds.md"

# 3. New scenes, 5 people each: base + labelled thresholds vs adapted + self-calibrated, cross-modality matching on.
score() { V score --json --gt "$1" --sightings "$2" | $PY -c "
import json,sys; s=json.load(sys.stdin)
print('%.1f %.1f %d %d' % (100*s['night_to_day_link_rate'], 100*s['false_link_rate'], s['people_linked_night_to_day'], s['people_day_rgb_night_thermal']))"; }
echo "| run | seed | base: night→day link | false-link | adapted + self-calibrated: night→day link | false-link |" | tee "$OUT/runs.md"
echo "| ---: | ---: | ---: | ---: | ---: | ---: |" | tee -a "$OUT/runs.md"
for r in $(seq 1 "$RUNS"); do
  seed=$((9100 + r)); scene=$OUT/new-$seed
  [ -f "$scene/rgb.mp4" ] || V synth scene --out "$scene" --seconds 40 --people 5 --seed $seed --width 960 --height 540 >/dev/null
  row="| $r | $seed"
  for m in base adapted; do
    if [ $m = base ]; then model=$MODEL; snippet=$OUT/labelled-base.toml; else model=$OUT/adapted.onnx; snippet=$OUT/self-adapted.toml; fi
    rm -rf "$OUT/run-$m" "$OUT/run-$m.jsonl"   # the events file is appended to
    box_toml "$scene" "$OUT/run-$m" "$model" "$(grep -v '^#' "$snippet")
[adapt]
harvest = false" > "$OUT/run-$m.toml"
    V run --config "$OUT/run-$m.toml" --tracks /dev/null --sightings "$OUT/run-$m.jsonl" 2>/dev/null
    read -r link false n_link n_people < <(score "$scene/ground_truth.jsonl" "$OUT/run-$m.jsonl")
    row="$row | $link % ($n_link/$n_people) | $false %"
  done
  echo "$row |" | tee -a "$OUT/runs.md"
done
