#!/usr/bin/env bash
# vireid demo: render a synthetic day/night dual-spectrum scene, run the whole
# pipeline on it (ingest → detect → track → embed → gallery → events), then
# print identities, sightings, day/night links and the score against the
# scene's ground truth.
#
# Embedder: the default model engines/vireid_default.onnx when it exists;
# otherwise the colour-histogram baseline (clearly labelled: colour is not
# shared between RGB and thermal, so it cannot make correct day/night links).
#
# Env: DEMO_DIR (default out/demo), DEMO_SECONDS (40), DEMO_PEOPLE (4), DEMO_SEED (3), DEMO_MODEL,
#      VIREID (default target/release/vireid).
set -euo pipefail
cd "$(dirname "$0")/.."

VIREID=${VIREID:-target/release/vireid}
DIR=${DEMO_DIR:-out/demo}
SECONDS_LEN=${DEMO_SECONDS:-40}
PEOPLE=${DEMO_PEOPLE:-4}
SEED=${DEMO_SEED:-3}
MODEL=${DEMO_MODEL:-engines/vireid_default.onnx}

[ -x "$VIREID" ] || { echo "demo: $VIREID not built; run 'make build' first" >&2; exit 1; }
if [ -z "${ORT_DYLIB_PATH:-}" ]; then
  ORT_DYLIB_PATH=$(ls .deps/onnxruntime/libonnxruntime.so.*[0-9] 2>/dev/null | head -n1 || true)
  export ORT_DYLIB_PATH
fi

if [ -f "$MODEL" ]; then
  EMBEDDER=(--model "$MODEL")
  EMBEDDER_LABEL="model $MODEL"
else
  EMBEDDER=(--baseline colorhist)
  EMBEDDER_LABEL="colour-histogram BASELINE (no $MODEL yet: day/night links are not expected to work)"
fi

rm -rf "$DIR"
mkdir -p "$DIR"
echo "== rendering a ${SECONDS_LEN}s day/night scene with $PEOPLE people into $DIR"
"$VIREID" --log warn synth scene --out "$DIR/scene" --seconds "$SECONDS_LEN" --people "$PEOPLE" --seed "$SEED" \
  --width 960 --height 540

cat > "$DIR/demo.toml" <<TOML
state_dir = "$DIR/state"

[[camera]]
name = "rgb"
modality = "rgb"
box = "demo"
source = "$DIR/scene/rgb.mp4"

[[camera]]
name = "thermal"
modality = "thermal"
box = "demo"
source = "$DIR/scene/thermal.mp4"

[ingest]
file_pace = "fast"   # every frame processed: a file is not a live camera
width = 0
height = 0
TOML
# Same- and cross-modality thresholds for this embedder at a 1% false-match
# rate, derived from crops of another synthetic scene (other people, other
# seed) cut as loosely as the detector's boxes: dataset crops do not carry over.
echo "== deriving thresholds (vireid thresholds --far 0.01) on crops of a calibration scene (other people)"
"$VIREID" --log warn synth scene --out "$DIR/calib-scene" --seconds "$SECONDS_LEN" --people "${DEMO_CALIB_PEOPLE:-8}" --seed 1001 \
  --width 960 --height 540 --crops "$DIR/calib"
"$VIREID" --log warn thresholds --root "$DIR/calib" --far 0.01 --per-person-cam 24 "${EMBEDDER[@]}" | tee "$DIR/thresholds.toml"
cat "$DIR/thresholds.toml" >> "$DIR/demo.toml"

echo "== vireid run with $EMBEDDER_LABEL"
"$VIREID" --log warn run --config "$DIR/demo.toml" --tracks "$DIR/tracks.jsonl" --sightings "$DIR/sightings.jsonl" \
  --stats "$DIR/stats.json" "${EMBEDDER[@]}"

echo
echo "== identities (embedder: $EMBEDDER_LABEL)"
"$VIREID" --log warn gallery list --state-dir "$DIR/state"
echo
echo "== sightings ($(wc -l < "$DIR/sightings.jsonl") events in $DIR/sightings.jsonl), day/night links:"
grep '"day_night_link":true' "$DIR/sightings.jsonl" | head -n 20 || echo "  (none)"
echo
echo "== score against the ground truth"
"$VIREID" --log warn score --gt "$DIR/scene/ground_truth.jsonl" --sightings "$DIR/sightings.jsonl" --explain
