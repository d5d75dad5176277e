#!/usr/bin/env bash
# The one command run on the GPU machine (README.md beside this file says how to call it).
#
#   training/device/run.sh           on the GPU machine: at most 9 minutes of wall time, start-up
#                                    included; results in $OUT (at most 8 files of < 16 MiB)
#   training/device/run.sh --smoke   the same steps on this machine's CPU at toy size (< 3 min);
#                                    $OUT defaults to out/device-smoke. Part of `make test`.
#   ... --then d2rl,jsia,disentangle the menu: after the default model (trained, packed, pictured
#                                    as without it), each listed method trains for VIREID_MENU_S
#                                    seconds (default 120; the default model's budget shrinks by
#                                    what the menu takes) on the same data and is evaluated on the
#                                    same unseen people; their metrics and translation pictures
#                                    come back in $OUT/menu.tar.gz (README.md, "The menu").
#
# Steps: probe the machine → render the training set (and an evaluation set of other people)
# with the portable `vireid` binary → train within the time left → pack the checkpoint in bf16
# parts → a picture of retrievals → metrics JSON. training/device/finish.sh takes it from there.
set -euo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)

SMOKE=0
THEN=${VIREID_THEN:-}
usage() { echo "usage: training/device/run.sh [--smoke] [--then d2rl,jsia,disentangle]" >&2; exit 2; }
while [ $# -gt 0 ]; do
  case "$1" in
    --smoke) SMOKE=1 ;;
    --then) [ $# -ge 2 ] || usage; THEN=$2; shift ;;
    *) usage ;;
  esac
  shift
done
MENU=()
for m in ${THEN//,/ }; do
  case "$m" in
    d2rl|jsia|disentangle) MENU+=("$m") ;;
    *) echo "run.sh: --then $m: the menu has d2rl, jsia and disentangle (comma-separated)" >&2; exit 2 ;;
  esac
done

if [ "$SMOKE" = 1 ]; then
  OUT=${OUT:-out/device-smoke}
  PY=${VIREID_PYTHON:-.venv/bin/python}
  WALL=170
  BIN=${VIREID_BIN:-}
  [ -n "$BIN" ] || for b in target/portable/release/vireid training/device/bin/vireid target/release/vireid; do
    [ -x "$b" ] && { BIN=$b; break; }
  done
else
  : "${OUT:?OUT is not set: this script writes its results to \$OUT (the device tool sets it)}"
  PY=${VIREID_PYTHON:-python3}
  WALL=${VIREID_WALL_S:-540}
  BIN=${VIREID_BIN:-training/device/bin/vireid}
fi
[ -n "${BIN:-}" ] && [ -x "$BIN" ] || {
  echo "run.sh: no vireid binary at '${BIN:-}': build the portable one (README.md beside this script) and carry training/device/bin" >&2
  exit 2
}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
WORK=${VIREID_WORK:-$(mktemp -d /tmp/vireid-device.XXXXXX)}
LOG=$OUT/run.log
: >"$LOG"
exec > >(tee -a "$LOG") 2>&1
export PYTHONPATH=$PWD/training${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1

elapsed() { echo $(( $(date +%s) - T0 )); }
step() { echo "[run.sh +$(elapsed)s] $*"; }

# --- sizes ---------------------------------------------------------------------------------
# Training people: seed 101; evaluation people: seed 202 (another population, never trained on).
# Scene crops (people cut from rendered day/night plaza scenes with detector-like boxes, as the
# pipeline embeds them): seeds 7001.., away from the demo (3, 1001), the earlier scene training
# set (2001-2020) and the adaptation probes (5001-6002).
if [ "$SMOKE" = 1 ]; then
  TRAIN_IDS=8; TRAIN_IMAGES=3; EVAL_IDS=6; W=32; H=64; THREADS=2
  SCENES=1; SCENE_ARGS=(--seconds 6 --people 3 --width 640 --height 360)
  SETS=(--set model.arch=resnet10 --set data.p=2 --set data.k=2 --set train.device=cpu
        --set train.threads=1 --set train.log_every=1)
  RESERVE=60
  MENU_S=${VIREID_MENU_S:-6}; MENU_RESERVE=0
else
  TRAIN_IDS=${VIREID_TRAIN_IDS:-2000}; TRAIN_IMAGES=${VIREID_TRAIN_IMAGES:-12}; EVAL_IDS=200
  W=128; H=256; THREADS=16
  SCENES=${VIREID_SCENES:-16}; SCENE_ARGS=(--seconds 60 --people 12 --width 960 --height 540)
  SETS=(--set train.device=cuda --set train.threads=$THREADS)
  RESERVE=75
  # per menu method: its training budget, and what comes around it (building the model, the
  # final evaluation, the translation picture)
  MENU_S=${VIREID_MENU_S:-120}; MENU_RESERVE=45
fi

step "probe: $(uname -m), $(nproc) cpus, python $($PY -c 'import sys; print(sys.version.split()[0])')"
$PY -m vireid_train.device probe --out "$WORK/probe.json"

# --- where training starts -------------------------------------------------------------------
# A previous GPU run's continuation checkpoint first (GPU windows add up), then ImageNet
# weights if this machine already has them, then the CPU continuation, then scratch.
INIT=()
RESUME=training/device/resume.int8.pt
INIT_NOTE="from scratch"
resume_from() { $PY -m vireid_train.device unint8 --checkpoint "$RESUME" --out "$WORK/init.pt" >/dev/null \
  && INIT=(--set "model.init_checkpoint=$WORK/init.pt") && INIT_NOTE="continued $RESUME ($1)" && step "init: $INIT_NOTE"; }
resume_kind=none
if [ -f "$RESUME" ]; then
  resume_kind=$($PY -c "import sys, torch; print(torch.load(sys.argv[1], weights_only=False).get('provenance', {}).get('kind', 'cpu'))" "$RESUME")
fi
imagenet=$($PY -c "import json, sys; f = json.load(open(sys.argv[1]))['pretrained_resnet50']; print(f[0]['path'] if f else '')" "$WORK/probe.json")
if [ "$resume_kind" = gpu ]; then
  resume_from "earlier GPU training"
elif [ -n "$imagenet" ] && [ "$SMOKE" = 0 ]; then
  $PY -m vireid_train.device imagenet --weights "$imagenet" --out "$WORK/imagenet.pth" >/dev/null
  INIT=(--set "model.init_weights=$WORK/imagenet.pth")
  INIT_NOTE="ImageNet ResNet-50 weights found on the machine: $imagenet"
  step "init: $INIT_NOTE"
elif [ "$resume_kind" = cpu ]; then
  resume_from "CPU pretraining"
else
  step "init: from scratch (no continuation checkpoint, no ImageNet weights on this machine)"
fi

# --- data ----------------------------------------------------------------------------------
step "render: $SCENES scenes of crops, $TRAIN_IDS training ids x $TRAIN_IMAGES images x 2 sensors at ${W}x${H}, $EVAL_IDS evaluation ids"
# Scenes one per core in the background (each renders its frames on one thread), the studio
# sets on what is left.
scene_jobs=$(( THREADS > 4 ? THREADS - 4 : 1 ))
seq 7001 $(( 7000 + SCENES )) | RAYON_NUM_THREADS=1 xargs -P "$scene_jobs" -I{} \
  "$BIN" --log warn synth scene --out "$WORK/video-{}" --seed {} "${SCENE_ARGS[@]}" --crops "$WORK/scene-{}" --no-video \
  >"$WORK/scenes.log" 2>&1 &
scenes_pid=$!
RAYON_NUM_THREADS=$(( THREADS - scene_jobs > 1 ? THREADS - scene_jobs : 1 )) \
  "$BIN" synth regdb --out "$WORK/studio" --ids "$TRAIN_IDS" --seed 101 --images "$TRAIN_IMAGES" --width $W --height $H
"$BIN" synth regdb --out "$WORK/eval" --ids "$EVAL_IDS" --seed 202 --width $W --height $H
$PY -m vireid_train.device all-ids --root "$WORK/studio"
wait "$scenes_pid" || { cat "$WORK/scenes.log"; echo "run.sh: rendering the scenes failed" >&2; exit 1; }
step "rendered: $(du -sh "$WORK" | cut -f1) of images"
$PY -m vireid_train.device merge --out "$WORK/train" "$WORK/studio:train" $(seq -f "$WORK/scene-%g:test" 7001 $(( 7000 + SCENES )))

# --- train in the time that is left ----------------------------------------------------------
BUDGET=$(( WALL - $(elapsed) - RESERVE ))
if [ ${#MENU[@]} -gt 0 ] && [ "$SMOKE" = 0 ]; then
  # the default model comes first: it keeps at least DEFAULT_MIN_S; the menu's seconds shrink to
  # fit what is left, and a menu of under 30 s a method is dropped
  DEFAULT_MIN_S=${VIREID_DEFAULT_MIN_S:-120}
  fit=$(( (BUDGET - DEFAULT_MIN_S) / ${#MENU[@]} - MENU_RESERVE ))
  [ "$fit" -lt "$MENU_S" ] && MENU_S=$fit
  if [ "$MENU_S" -lt 30 ]; then
    step "menu: dropped (${BUDGET}s left, the default model keeps ${DEFAULT_MIN_S}s; ${#MENU[@]} method(s) need $(( ${#MENU[@]} * (30 + MENU_RESERVE) ))s more): list fewer methods or give the menu a window of its own"
    MENU=()
  fi
  BUDGET=$(( BUDGET - ${#MENU[@]} * (MENU_S + MENU_RESERVE) ))
fi
[ "$SMOKE" = 1 ] && BUDGET=20
[ "$BUDGET" -gt 10 ] || { echo "run.sh: only ${BUDGET}s left for training: the set-up took too long" >&2; exit 1; }
step "train: ${BUDGET}s budget"
$PY -m vireid_train train --config training/device/gpu.toml --no-resume \
  --set "data.root=$WORK/train" --set "data.eval_root=$WORK/eval" --set "data.height=$H" --set "data.width=$W" \
  --set "train.out_dir=$WORK/run" --set "train.time_budget_s=$BUDGET" "${SETS[@]}" "${INIT[@]}"

# --- bring back --------------------------------------------------------------------------------
step "pack"
$PY -m vireid_train.device pack --checkpoint "$WORK/run/last.pt" --out-dir "$OUT" --manifest "$WORK/manifest.json"
step "retrievals"
$PY -m vireid_train.device retrievals --checkpoint "$WORK/run/last.pt" --root "$WORK/eval" \
  --out "$OUT/retrievals.png" --json "$WORK/retrievals.json"
# --- the menu: other methods after the default model ------------------------------------------
# Each trains its paper recipe (configs/<m>_ref.toml) for MENU_S seconds on the same training
# set, from ImageNet weights when the machine has them, else from scratch (the default model's
# continuation checkpoint is another network); the disentangle method's pre-trained classifier
# (its L_dis teacher) is the default model just trained (same people, same size). A failing
# method is named in run.log and menu.json; the default model's results are already in $OUT.
MENU_PARTS=()
MENU_REPORT=()
if [ ${#MENU[@]} -gt 0 ]; then
  mkdir -p "$WORK/menu"
  MENU_INIT=()
  [ -n "$imagenet" ] && [ "$SMOKE" = 0 ] && MENU_INIT=(--set "model.init_weights=$WORK/imagenet.pth")
  for m in "${MENU[@]}"; do
    MSETS=()
    [ "$SMOKE" = 1 ] && read -r -a MSETS < <($PY -c "import importlib, sys; print(' '.join('--set ' + s for s in importlib.import_module('vireid_train.' + sys.argv[1]).SMOKE))" "$m")
    [ "$m" = disentangle ] && MSETS+=(--set "method.teacher=$WORK/run/last.pt")
    [ "$SMOKE" = 0 ] && MSETS+=(--set train.amp=true)
    step "menu: $m, ${MENU_S}s budget"
    if $PY -m vireid_train train --config "training/configs/${m}_ref.toml" --no-resume \
        --set data.dataset=regdb --set data.trial=1 --set "data.root=$WORK/train" --set "data.eval_root=$WORK/eval" \
        --set "data.height=$H" --set "data.width=$W" --set data.resident=true --set train.eval_every=0 \
        --set train.eval_trials=1 --set "train.out_dir=$WORK/menu/$m" --set "train.time_budget_s=$MENU_S" \
        "${SETS[@]}" "${MENU_INIT[@]}" "${MSETS[@]}"; then
      mkdir -p "$WORK/menu-out/$m"
      cp "$WORK/menu/$m/metrics.json" "$WORK/menu/$m/translations.png" "$WORK/menu-out/$m/"
      MENU_PARTS+=(--part "$m=$WORK/menu/$m/metrics.json")
    else
      step "menu: $m failed (its output is above); the next one starts"
      MENU_PARTS+=(--part "$m=$WORK/menu/$m/failed")
    fi
  done
  $PY -m vireid_train.device report --out "$WORK/menu.json" "${MENU_PARTS[@]}"
  mkdir -p "$WORK/menu-out"
  cp "$WORK/menu.json" "$WORK/menu-out/"
  tar -czf "$OUT/menu.tar.gz" -C "$WORK/menu-out" .
  MENU_REPORT=(--part "menu=$WORK/menu.json")
  step "menu: $(tar -tzf "$OUT/menu.tar.gz" | grep -c . ) entries in menu.tar.gz"
fi

echo "{\"wall_s\": $(elapsed), \"smoke\": $SMOKE, \"scenes\": $SCENES, \"train_ids\": $TRAIN_IDS, \"train_images\": $TRAIN_IMAGES, \"eval_ids\": $EVAL_IDS, \"width\": $W, \"height\": $H, \"budget_s\": $BUDGET, \"init\": \"$INIT_NOTE\"}" >"$WORK/job.json"
$PY -m vireid_train.device report --out "$OUT/metrics.json" --part "job=$WORK/job.json" --part "probe=$WORK/probe.json" \
  --part "train=$WORK/run/metrics.json" --part "checkpoint=$WORK/manifest.json" --part "retrievals=$WORK/retrievals.json" \
  "${MENU_REPORT[@]}"
step "done: $(ls "$OUT" | tr '\n' ' ')"
[ -n "${VIREID_WORK:-}" ] || rm -rf "$WORK"
