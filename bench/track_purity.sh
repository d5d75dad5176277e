#!/usr/bin/env bash
# Tracks that hold one person: each camera of the 10 new 5-person day/night
# scenes of bench/day_night_demo.sh (seeds 9101–9110) tracked twice, by boxes
# only (`track.max_look_distance = 0`) and with looks (the default), scored by
# `vireid detect --track --ground-truth`. Track purity is the share of tracked
# frames on their track's most frequent person (a track that takes over
# somebody else mixes two people in everything downstream); coverage is the
# share of visible people's frames that a confirmed track follows.
#
#   bench/track_purity.sh [RUNS=10] [OUT=out/track-purity]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-10}; OUT=${2:-out/track-purity}
VIREID=${VIREID:-target/release/vireid}
mkdir -p "$OUT"
V() { "$VIREID" --log warn "$@"; }

for arm in boxes looks; do
  distance=$([ $arm = boxes ] && echo 0 || echo 0.035)
  printf '[ingest]\nwidth = 0\nheight = 0\n[track]\nmax_look_distance = %s\n' "$distance" > "$OUT/$arm.toml"
done
echo "| run | seed | camera | boxes only: purity | coverage | tracks | with looks: purity | coverage | tracks |"
echo "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for r in $(seq 1 "$RUNS"); do
  seed=$((9100 + r)); scene=$OUT/scene-$seed
  [ -f "$scene/rgb.mp4" ] || V synth scene --out "$scene" --seconds 40 --people 5 --seed $seed --width 960 --height 540 >/dev/null
  for camera in rgb thermal; do
    row="| $r | $seed | $camera"
    for arm in boxes looks; do
      report=$OUT/$seed-$camera-$arm.json
      V detect --input "$scene/$camera.mp4" --modality $camera --jsonl /dev/null --track \
        --ground-truth "$scene/ground_truth.jsonl" --config "$OUT/$arm.toml" > "$report"
      row="$row | $(python3 -c 'import json,sys; i=json.load(open(sys.argv[1]))["identity"]
print("%.3f | %.3f | %d" % (i["track_purity"], i["track_coverage"], i["tracks"]))' "$report")"
    done
    echo "$row |"
  done
done
python3 - "$OUT" <<'PY'
import json, glob, sys
for camera in ("rgb", "thermal"):
    for arm in ("boxes", "looks"):
        ids = [json.load(open(f))["identity"] for f in glob.glob(f"{sys.argv[1]}/*-{camera}-{arm}.json")]
        frames = sum(i["tracked_frames"] for i in ids)
        pure = sum(i["majority_person_frames"] for i in ids)
        cov = sum(i["track_coverage"] for i in ids) / len(ids)
        print(f"{camera:8} {arm:6} purity {pure / frames:.3f} ({frames - pure} of {frames} tracked frames on another person), mean coverage {cov:.3f}")
PY
