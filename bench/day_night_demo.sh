#!/usr/bin/env bash
# Day against night in the running box (issue 19): new 40 s day/night scenes of
# 5 people (the seeds of bench/adapt_demo.sh), each run twice with the default
# model and thresholds from labelled crops of another scene (8 people, seed
# 1001): without and with `cross_light_threshold`. Scored by `vireid score`;
# then where the errors come from, over all runs (bench/day_night_explain.py).
#
#   bench/day_night_demo.sh [RUNS=10] [OUT=out/day-night-demo]
#   ARMS=with-light bench/day_night_demo.sh   # one arm only (half the time)
#   CALIB_ROOTS="out/gt-4001 out/gt-4002" ARMS="with-light pooled" bench/day_night_demo.sh
#     # arm `pooled`: thresholds from the labelled crops of several scenes at once
#     # (`vireid thresholds --root A --root B`, all crops), day↔night included
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10}; OUT=${2:-out/day-night-demo}
VIREID=${VIREID:-target/release/vireid}
MODEL=${MODEL:-engines/vireid_default.onnx}
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$PWD/.deps/onnxruntime/libonnxruntime.so}
mkdir -p "$OUT"
V() { "$VIREID" --log warn "$@"; }

[ -d "$OUT/calib/idx" ] || V synth scene --out "$OUT/calib-scene" --seconds 40 --people 8 --seed 1001 \
  --width 960 --height 540 --no-video --crops "$OUT/calib" >/dev/null
V thresholds --root "$OUT/calib" --far 0.01 --per-person-cam 24 --model "$MODEL" > "$OUT/with-light.toml"
grep -v '^cross_light_threshold' "$OUT/with-light.toml" > "$OUT/one-thermal.toml"
grep '^# ' "$OUT/with-light.toml"
if [ -n "${CALIB_ROOTS:-}" ]; then
  roots=(); for r in $CALIB_ROOTS; do roots+=(--root "$r"); done
  V thresholds "${roots[@]}" --far 0.01 --per-person-cam 1000 --model "$MODEL" > "$OUT/pooled.toml"
  grep '^# ' "$OUT/pooled.toml"
fi

ARMS=${ARMS:-one-thermal with-light}
header="| run | seed"; rule="| ---: | ---:"
for arm in $ARMS; do header="$header | $arm: night→day link | false-link"; rule="$rule | ---: | ---:"; done
echo "$header |"; echo "$rule |"
for r in $(seq 1 "$RUNS"); do
  seed=$((9100 + r)); scene=$OUT/new-$seed
  [ -f "$scene/rgb.mp4" ] || V synth scene --out "$scene" --seconds 40 --people 5 --seed $seed --width 960 --height 540 >/dev/null
  row="| $r | $seed"
  for arm in $ARMS; do
    run=$OUT/run-$seed-$arm; rm -rf "$run" "$run.jsonl"
    cat > "$run.toml" <<TOML
state_dir = "$run"
[[camera]]
name = "rgb"
modality = "rgb"
box = "box"
source = "$scene/rgb.mp4"
[[camera]]
name = "thermal"
modality = "thermal"
box = "box"
source = "$scene/thermal.mp4"
[ingest]
file_pace = "fast"
width = 0
height = 0
[embed]
model = "$MODEL"
[adapt]
harvest = false
$(grep -v '^#' "$OUT/$arm.toml")
TOML
    V run --config "$run.toml" --tracks /dev/null --sightings "$run.jsonl" 2>/dev/null
    V score --gt "$scene/ground_truth.jsonl" --sightings "$run.jsonl" > "$run.score"
    link=$(sed -n 's/^night→day link rate *\([0-9.]*%\) (\([0-9]*\/[0-9]*\).*/\1 (\2)/p' "$run.score")
    false=$(sed -n 's/^false-link rate *\([0-9.]*%\).*/\1/p' "$run.score")
    row="$row | $link | $false"
  done
  echo "$row |"
done
for arm in $ARMS; do VIREID="$VIREID" python3 bench/day_night_explain.py "$OUT" "$arm" "$RUNS"; done
