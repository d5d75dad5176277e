#!/usr/bin/env bash
# A RegDB-layout training set cut from rendered day/night scenes, as the detector would see
# people: loose boxes, scene background, day and night, both cameras (`vireid synth scene --crops`).
# Dataset crops (`vireid synth regdb`) are tight, clean and daylit; a model trained only on them
# does not carry over to scene crops (training/RESULTS.md). Scenes are rendered with seeds
# SEED0..SEED0+N-1, SECONDS long; the last HELD of them become the test split (other people),
# the rest train. Keep SEED0 away from the demo's seeds (3 and 1001) so the demo scores people
# the model never saw.
#
# OUT/idx/pairs.txt carries every scene's co-observed pairs (`<visible relpath> <thermal relpath>`:
# one person's RGB and thermal crops of the same frame), paths prefixed like the lists; the
# training reader (`data.pairs`) uses the training scenes' pairs and skips the held-out ones.
# A scene folder rendered before `synth scene` wrote pairs.txt is rendered again.
#
# usage: training/scripts/make_scene_trainset.sh OUT [SCENES=20] [PEOPLE=12] [SEED0=2001] [HELD=2] [SECONDS=60]
set -euo pipefail
out=${1:?usage: make_scene_trainset.sh OUT [SCENES] [PEOPLE] [SEED0] [HELD] [SECONDS]}
scenes=${2:-20}; people=${3:-12}; seed0=${4:-2001}; held=${5:-2}; seconds=${6:-60}
VIREID=${VIREID:-target/release/vireid}
[ -x "$VIREID" ] || { echo "make_scene_trainset: $VIREID not built; run 'make build' first" >&2; exit 1; }
[ "$held" -lt "$scenes" ] || { echo "make_scene_trainset: HELD ($held) must be below SCENES ($scenes)" >&2; exit 1; }

mkdir -p "$out/idx"
for kind in visible thermal; do
  : > "$out/idx/train_${kind}_1.txt"; : > "$out/idx/test_${kind}_1.txt"
done
echo "# visible thermal: the same person at the same instant (make_scene_trainset.sh, one block per scene)" \
  > "$out/idx/pairs.txt"
for i in $(seq 0 $((scenes - 1))); do
  seed=$((seed0 + i)); name="s$seed"
  split=train; [ "$i" -ge $((scenes - held)) ] && split=test
  echo "scene $((i + 1))/$scenes (seed $seed, $split)"
  if [ ! -f "$out/$name/idx/test_thermal_1.txt" ] || [ ! -f "$out/$name/idx/pairs.txt" ]; then
    rm -rf "$out/$name" "$out/video-$name"
    "$VIREID" --log warn synth scene --out "$out/video-$name" --seconds "$seconds" --people "$people" --seed "$seed" \
      --width 960 --height 540 --crops "$out/$name" --no-video
    rm -rf "$out/video-$name"   # only the crops are kept
  fi
  # Labels are unique per scene: scene index × 1000 + the scene's person label.
  for kind in visible thermal; do
    awk -v p="$name/" -v off=$((i * 1000)) '{ print p $1, $2 + off }' "$out/$name/idx/test_${kind}_1.txt" \
      >> "$out/idx/${split}_${kind}_1.txt"
  done
  awk -v p="$name/" '!/^#/ && NF == 2 { print p $1, p $2 }' "$out/$name/idx/pairs.txt" >> "$out/idx/pairs.txt"
done
for f in "$out"/idx/*.txt; do echo "$(wc -l < "$f") lines in $f"; done
