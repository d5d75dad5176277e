#!/usr/bin/env bash
# How `vireid adapt` does as a box harvests more people: render day/night scenes (16 people
# each), run the box on them one after another into one gallery (its harvest grows), and after
# 1, 2, 4, … scenes fit the adapter and evaluate base vs adapted on people nobody harvested:
# night-thermal queries against day-visible crops of held-out scenes (seeds 6001, 6002).
#
#   bench/adapt_scaling.sh [SCENES=8] [OUT=out/adapt-scaling]
#   START=9 bench/adapt_scaling.sh 16 OUT   # OUT/state already holds the harvest of scenes 1-8
#   HARVEST_ONLY=1 bench/adapt_scaling.sh 16 OUT   # only the box's harvest (for thresholds --from-gallery)
#   GALLERY=t.toml …   # the box runs with this [gallery] snippet (e.g. what thresholds printed)
#
# Needs: target/release/vireid, the default model, .venv (for the night-day views).
set -euo pipefail
cd "$(dirname "$0")/.."
SCENES=${1:-8}; OUT=${2:-out/adapt-scaling}
VIREID=${VIREID:-target/release/vireid}
PY=${VIREID_PYTHON:-.venv/bin/python}
MODEL=${MODEL:-engines/vireid_default.onnx}
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$PWD/.deps/onnxruntime/libonnxruntime.so}
export PYTHONPATH=$PWD/training
mkdir -p "$OUT"
for t in $([ -n "${HARVEST_ONLY:-}" ] || echo 6001 6002); do
  if [ ! -f "$OUT/test-$t/idx/test_thermal_1.txt" ]; then
    "$VIREID" --log warn synth scene --out "$OUT/tv-$t" --seed $t --seconds 90 --people 20 --width 960 --height 540 \
      --crops "$OUT/test-$t" --no-video >/dev/null
    rm -rf "$OUT/tv-$t"
  fi
  [ -d "$OUT/nd-$t" ] || $PY -m vireid_train.device night-day --root "$OUT/test-$t" --out "$OUT/nd-$t"
done
evaluate() {  # model label -> "R1 mAP" averaged over the test scenes
  local r1=0 map=0
  for t in 6001 6002; do
    "$VIREID" --log warn eval dataset --protocol regdb --direction t2v --trials 1 --root "$OUT/nd-$t" --model "$1" \
      --out "$OUT/eval-$2-$t" --no-cache --quiet >/dev/null
    read -r a b < <($PY -c "import json,sys; m=json.load(open(sys.argv[1]))['mean']; print(100*m['cmc'][0], 100*m['mAP'])" "$OUT/eval-$2-$t/report.json")
    r1=$(echo "$r1 + $a / 2" | bc -l); map=$(echo "$map + $b / 2" | bc -l)
  done
  printf "%.1f %.1f" "$r1" "$map"
}
echo "| scenes | people harvested | pairs | impostors | night-T→day-V R1 base | adapted | mAP base | adapted | held-out pair R1 base → adapted |" | tee "$OUT/table.md"
echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |" | tee -a "$OUT/table.md"
[ -n "${HARVEST_ONLY:-}" ] || base=$(evaluate "$MODEL" base)
for i in $(seq "${START:-1}" "$SCENES"); do
  seed=$((4000 + i))
  [ -f "$OUT/scene-$seed/rgb.mp4" ] || "$VIREID" --log warn synth scene --out "$OUT/scene-$seed" --seconds 120 --people 16 --seed $seed \
    --width 960 --height 540 >/dev/null
  cat > "$OUT/box.toml" <<TOML
state_dir = "$OUT/state"
[[camera]]
name = "rgb"
modality = "rgb"
box = "box"
source = "$OUT/scene-$seed/rgb.mp4"
[[camera]]
name = "thermal"
modality = "thermal"
box = "box"
source = "$OUT/scene-$seed/thermal.mp4"
[ingest]
file_pace = "fast"
width = 0
height = 0
[embed]
model = "$MODEL"
$([ -z "${GALLERY:-}" ] || grep -v '^#' "$GALLERY")
TOML
  "$VIREID" --log warn run --config "$OUT/box.toml" --tracks /dev/null --sightings "$OUT/sightings-$seed.jsonl" 2>/dev/null
  [ -z "${HARVEST_ONLY:-}" ] || continue
  case $i in 1|2|4|8|16|32) ;; *) continue ;; esac
  log=$("$VIREID" --log warn adapt --config "$OUT/box.toml" --out "$OUT/adapted-$i.onnx" --min-pairs 2 2>&1) || { echo "$log"; continue; }
  pairs=$(echo "$log" | sed -n 's/.* on \([0-9]*\) co-observed and \([0-9]*\) impostor.*/\1 \2/p')
  held=$(echo "$log" | sed -n 's/.*R1 \([0-9.]*\) % base, \([0-9.]*\) % adapted.*/\1 → \2/p')
  read -r b1 bm <<<"$base"; read -r a1 am <<<"$(evaluate "$OUT/adapted-$i.onnx" "a$i")"
  echo "| $i | $((16 * i)) | ${pairs% *} | ${pairs#* } | $b1 | $a1 | $bm | $am | ${held:-n/a} |" | tee -a "$OUT/table.md"
done
