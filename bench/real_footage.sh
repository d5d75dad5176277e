#!/usr/bin/env bash
# Real footage (issue 18, item 5): OpenCV's sample pedestrian clip vtest.avi
# (scripts/setup.sh test|bench extracts it to .deps/footage/) through
# `vireid run` as the RGB camera of a box with no thermal camera, every frame
# processed (fast pace), the shipped model; then `vireid detect --track` on
# the same config (same boxes and track ids) for the picture
# docs/real-footage.png (bench/real_footage_picture.py).
# Usage: bench/real_footage.sh [OUT_DIR]   (default out/real-footage)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-out/real-footage}
clip=$PWD/.deps/footage/vtest.avi
[ -f "$clip" ] || { echo "no $clip: run scripts/setup.sh test" >&2; exit 1; }
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$PWD/.deps/onnxruntime/libonnxruntime.so}
vireid=target/release/vireid
rm -rf "$out" && mkdir -p "$out" && out=$(cd "$out" && pwd)
cat >"$out/run.toml" <<TOML
state_dir = "$out/state"
[[camera]]
name = "vtest"
modality = "rgb"
source = "$clip"
[ingest]
file_pace = "fast"
width = 0
height = 0
TOML
uptime
/usr/bin/time -f "run: %e s wall, %U+%S s CPU, %M KiB max RSS" \
  "$vireid" --log warn run --config "$out/run.toml" --tracks "$out/tracks.jsonl" \
  --sightings "$out/sightings.jsonl" --stats "$out/stats.json"
"$vireid" --log warn detect --config "$out/run.toml" --input "$clip" --modality rgb --track --jsonl "$out/boxes.jsonl"
python3 - "$out" <<'PY'
import collections, json, sys
out = sys.argv[1]
s = json.load(open(f"{out}/stats.json"))
cam = s["cameras"][0]
ev = [json.loads(l) for l in open(f"{out}/sightings.jsonl")]
per_id = collections.Counter(e["identity_id"] for e in ev)
print(f"frames {cam['processed_frames']}, detected {cam['detected_frames']}, detections {cam['detections']} "
      f"({cam['detections'] / cam['detected_frames']:.2f} per detected frame), dropped {cam['ingest']['dropped']}")
print(f"tracks {s['tracks_written']}, sightings {s['gallery']['sightings']}, identities {len(per_id)}, "
      f"sightings per identity {sorted(per_id.values(), reverse=True)}")
PY
uptime
.venv/bin/python bench/real_footage_picture.py "$clip" "$out/boxes.jsonl" "$out/tracks.jsonl" \
  "$out/sightings.jsonl" "$out/real-footage.png" 100 250 450 700
