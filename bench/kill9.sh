#!/usr/bin/env bash
# Power-loss campaign (issue 18, item 2): SIGKILL vireid at random moments and
# check the gallery after every kill.
#
#   bench/kill9.sh [KILLS=200] [OUT=out/kill9]
#
# Most kills hit `vireid run` on looping scene files (two cameras, sightings
# announced as JSON lines); every 10th hits `vireid enrol`, every 10th+5 a
# `vireid gallery forget`, every 20th+7 `vireid adapt` (once the harvest has
# pairs). After each kill:
#   - PRAGMA integrity_check is "ok";
#   - every announced sighting (a whole line of the events file) is in the
#     gallery, unless its identity was forgotten on purpose;
#   - an adapted model, if one is there, is whole (`vireid adapt` reads it back
#     and refuses it as already adapted);
#   - the next start works (a run that exits non-zero before its kill counts as
#     a failed restart).
# Writes $OUT/report.md. Needs target/release/vireid, the default model, python3.
set -uo pipefail
cd "$(dirname "$0")/.."
KILLS=${1:-200}; OUT=${2:-out/kill9}
VIREID=${VIREID:-target/release/vireid}
MODEL=${MODEL:-engines/vireid_default.onnx}
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$PWD/.deps/onnxruntime/libonnxruntime.so}
mkdir -p "$OUT"
rm -rf "$OUT/state" "$OUT/events.jsonl" "$OUT/forgotten.txt" "$OUT/adapted.onnx"
touch "$OUT/forgotten.txt"
[ -f "$OUT/scene/rgb.mp4" ] || "$VIREID" --log warn synth scene --out "$OUT/scene" --seconds 12 --people 4 --seed 5 \
  --width 640 --height 360 --crops "$OUT/crops" >/dev/null
cat > "$OUT/box.toml" <<TOML
state_dir = "$OUT/state"
[[camera]]
name = "rgb"
modality = "rgb"
box = "box"
source = "$OUT/scene/rgb.mp4"
loop = true
[[camera]]
name = "thermal"
modality = "thermal"
box = "box"
source = "$OUT/scene/thermal.mp4"
loop = true
[ingest]
file_pace = "fast"
width = 0
height = 0
[embed]
model = "$MODEL"
[events]
jsonl = "$OUT/events.jsonl"
TOML
enrol_image=$(find "$OUT/crops" -name '*.jpg' | head -n 1)

check() {  # -> "integrity announced missing"
  python3 - "$OUT/state/gallery.db" "$OUT/events.jsonl" "$OUT/forgotten.txt" <<'PY'
import json, sqlite3, sys
db, events, forgotten = sys.argv[1:]
con = sqlite3.connect(db)
integrity = con.execute("PRAGMA integrity_check").fetchone()[0]
stored = {r[0] for r in con.execute("SELECT id FROM sightings")}
gone = {int(l) for l in open(forgotten) if l.strip()}
announced = missing = 0
try:
    lines = open(events).read().split("\n")
except FileNotFoundError:
    lines = []
for line in lines[:-1]:  # the last piece has no newline yet: not announced
    e = json.loads(line)
    announced += 1
    if e["sighting_id"] not in stored and e["identity_id"] not in gone:
        missing += 1
print(integrity.replace(" ", "_"), announced, missing)
PY
}

kills=0; corrupt=0; lost=0; failed_starts=0; bad_models=0
declare -A phase_count
for i in $(seq 1 "$KILLS"); do
  phase=run
  if [ $((i % 10)) -eq 0 ] && [ -n "$enrol_image" ]; then phase=enrol; fi
  if [ $((i % 10)) -eq 5 ] && [ -f "$OUT/state/gallery.db" ]; then phase=forget; fi
  if [ $((i % 20)) -eq 7 ] && [ -f "$OUT/state/gallery.db" ]; then phase=adapt; fi
  case $phase in
    run) "$VIREID" --log warn run --config "$OUT/box.toml" --tracks /dev/null 2>>"$OUT/stderr.log" & ;;
    enrol) "$VIREID" --log warn enrol --config "$OUT/box.toml" --label "k$i" --image "$enrol_image" >/dev/null 2>>"$OUT/stderr.log" & ;;
    forget)
      id=$(python3 -c "import sqlite3,sys; r=sqlite3.connect(sys.argv[1]).execute('SELECT min(id) FROM identities').fetchone()[0]; print(r or '')" "$OUT/state/gallery.db")
      [ -n "$id" ] && echo "$id" >> "$OUT/forgotten.txt"
      "$VIREID" --log warn gallery forget --config "$OUT/box.toml" "${id:-0}" >/dev/null 2>>"$OUT/stderr.log" & ;;
    adapt) rm -f "$OUT/adapted.onnx"
      "$VIREID" --log warn adapt --config "$OUT/box.toml" --out "$OUT/adapted.onnx" --min-pairs 2 >/dev/null 2>>"$OUT/stderr.log" & ;;
  esac
  pid=$!
  phase_count[$phase]=$(( ${phase_count[$phase]:-0} + 1 ))
  # A run is killed 1-15 s in (start-up, steady state, checkpoints); a short command within 0-0.6 s.
  if [ $phase = run ]; then sleep "$(python3 -c "import random; print(round(random.uniform(1, 15), 2))")"
  else sleep "$(python3 -c "import random; print(round(random.uniform(0, 0.6), 2))")"; fi
  if kill -0 "$pid" 2>/dev/null; then
    kill -9 "$pid"; wait "$pid" 2>/dev/null; kills=$((kills + 1))
  else
    wait "$pid"; rc=$?
    # run never ends on its own (looping files); enrol/forget/adapt may finish first, and may refuse (too few pairs).
    if [ $phase = run ] && [ $rc -ne 0 ]; then failed_starts=$((failed_starts + 1)); echo "kill $i: run exited $rc" >> "$OUT/failures.log"; fi
  fi
  [ -f "$OUT/state/gallery.db" ] || continue
  read -r integrity announced missing < <(check)
  [ "$integrity" = ok ] || { corrupt=$((corrupt + 1)); echo "kill $i ($phase): integrity $integrity" >> "$OUT/failures.log"; }
  [ "$missing" = 0 ] || { lost=$((lost + missing)); echo "kill $i ($phase): $missing announced sightings missing" >> "$OUT/failures.log"; }
  if [ -f "$OUT/adapted.onnx" ]; then
    msg=$("$VIREID" --log warn adapt --config "$OUT/box.toml" --model "$OUT/adapted.onnx" --out "$OUT/x.onnx" 2>&1)
    echo "$msg" | grep -q "already adapted" || { bad_models=$((bad_models + 1)); echo "kill $i: adapted model unreadable: $msg" >> "$OUT/failures.log"; }
  fi
  [ $((i % 10)) -eq 0 ] && echo "kill9: $i/$KILLS done: $kills killed mid-work, corrupt $corrupt, lost $lost, failed starts $failed_starts, bad models $bad_models, announced $announced" >&2
done
{
  echo "| attempts | killed mid-work | run / enrol / forget / adapt | corrupt databases | announced sightings | lost | failed restarts | damaged adapted models |"
  echo "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |"
  echo "| $KILLS | $kills | ${phase_count[run]:-0} / ${phase_count[enrol]:-0} / ${phase_count[forget]:-0} / ${phase_count[adapt]:-0} | $corrupt | $announced | $lost | $failed_starts | $bad_models |"
} | tee "$OUT/report.md"
[ $corrupt -eq 0 ] && [ $lost -eq 0 ] && [ $failed_starts -eq 0 ] && [ $bad_models -eq 0 ]
