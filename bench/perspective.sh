#!/usr/bin/env bash
# What the learnt perspective ([detect.perspective]) does to detection and
# tracking: each camera of busy scenes (16 people, 120 s, as bench/adapt_scaling.sh
# harvests) tracked twice by `vireid detect --track --ground-truth`, with the
# height prior on (the default, max_height_ratio = 1.5) and off (0). Precision
# and recall are the boxes the pipeline reports (detections, and the
# tracker's carried boxes on skipped frames) against the ground truth; track
# purity is the share of tracked frames on their track's most frequent person.
#
#   bench/perspective.sh [SEEDS="4001 4002 4003 4004"] [OUT=out/perspective]
# SCENES=dir… uses scenes already rendered (each with rgb.mp4, thermal.mp4
# and ground_truth.jsonl) instead of rendering SEEDS.
set -euo pipefail
cd "$(dirname "$0")/.."
SEEDS=${1:-4001 4002 4003 4004}; OUT=${2:-out/perspective}
VIREID=${VIREID:-target/release/vireid}
mkdir -p "$OUT"
V() { "$VIREID" --log warn "$@"; }

for arm in on off; do
  ratio=$([ $arm = on ] && echo 1.5 || echo 0)
  printf '[ingest]\nwidth = 0\nheight = 0\n[detect.perspective]\nmax_height_ratio = %s\n' "$ratio" > "$OUT/$arm.toml"
done
if [ -z "${SCENES:-}" ]; then
  SCENES=""
  for seed in $SEEDS; do
    scene=$OUT/scene-$seed
    [ -f "$scene/rgb.mp4" ] || V synth scene --out "$scene" --seconds 120 --people 16 --seed "$seed" \
      --width 960 --height 540 >/dev/null
    SCENES="$SCENES $scene"
  done
fi
echo "| scene | camera | off: precision | recall | purity | tracks | on: precision | recall | purity | tracks | boxes dropped |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for scene in $SCENES; do
  name=$(basename "$scene")
  for camera in rgb thermal; do
    row="| $name | $camera"
    for arm in off on; do
      report=$OUT/$name-$camera-$arm.json
      V detect --input "$scene/$camera.mp4" --modality $camera --jsonl /dev/null --track \
        --ground-truth "$scene/ground_truth.jsonl" --config "$OUT/$arm.toml" > "$report"
      row="$row | $(python3 - "$report" "$arm" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); i = r["identity"]
seg = r["segments"].values()
found = sum(s["matched_detections"] for s in seg); shown = sum(s["detections"] - s["ignored_detections"] for s in seg)
hit = sum(s["matched_gt"] for s in seg); people = sum(s["gt_boxes"] for s in seg)
cells = ["%.3f" % (found / max(shown, 1)), "%.3f" % (hit / max(people, 1)), "%.3f" % i["track_purity"], str(i["tracks"])]
if sys.argv[2] == "on":
    cells.append(str(r["dropped_detections"]))
print(" | ".join(cells))
PY
)"
    done
    echo "$row |"
  done
done
python3 - "$OUT" <<'PY'
import json, glob, sys
for camera in ("rgb", "thermal"):
    for arm in ("off", "on"):
        rs = [json.load(open(f)) for f in sorted(glob.glob(f"{sys.argv[1]}/*-{camera}-{arm}.json"))]
        seg = [s for r in rs for s in r["segments"].values()]
        wrong = sum(s["detections"] - s["ignored_detections"] - s["matched_detections"] for s in seg)
        shown = sum(s["detections"] - s["ignored_detections"] for s in seg)
        hit, people = sum(s["matched_gt"] for s in seg), sum(s["gt_boxes"] for s in seg)
        ids = [r["identity"] for r in rs]
        frames = sum(i["tracked_frames"] for i in ids); pure = sum(i["majority_person_frames"] for i in ids)
        print(f"{camera:8} perspective {arm:3}: precision {1 - wrong / max(shown, 1):.3f} ({wrong} boxes on nobody), "
              f"recall {hit / max(people, 1):.3f}, purity {pure / max(frames, 1):.3f} "
              f"({frames - pure} of {frames} tracked frames on another person), {sum(i['tracks'] for i in ids)} tracks")
PY
