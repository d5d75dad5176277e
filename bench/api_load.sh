#!/usr/bin/env bash
# The API under load while the box works (issue 18, item 6).
#
#   bench/api_load.sh [RATE=1000] [SECONDS=60] [OUT=out/api_load]
#
# `vireid run` processes two cameras (a synthetic scene's RGB and thermal
# files, looping, at their own frame rate like live cameras: frames the
# pipeline cannot keep up with are dropped and counted) with the API on
# loopback, twice for the same time: once alone (the peer), once while
# benches/api_load.rs sends RATE requests/s of mixed reads and queries
# (open loop, 32 keep-alive connections). Reported: per-route p50/p99, non-2xx
# answers and transport errors; frames dropped with and without the load;
# sightings lost (tracks finished that are not in the gallery) in each run.
# Writes $OUT/report.md. Needs target/release/vireid, the default model, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${1:-1000}; SECONDS_LOAD=${2:-60}; OUT=${3:-out/api_load}
VIREID=${VIREID:-target/release/vireid}
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$PWD/.deps/onnxruntime/libonnxruntime.so}
mkdir -p "$OUT"
[ -f "$OUT/scene/rgb.mp4" ] || "$VIREID" --log warn synth scene --out "$OUT/scene" --seconds 20 --people 4 --seed 9 \
  --width 640 --height 360 --crops "$OUT/crops" >/dev/null
image=$(find "$OUT/crops" -path '*Thermal*' -name '*.jpg' -print -quit)
loader=$(cargo bench --bench api_load --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p')
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')

# One run of RUN_S seconds; with LOAD=1 the load starts once the API answers.
run_once() {  # name load
  local name=$1 load=$2 dir=$OUT/$1
  rm -rf "$dir"; mkdir -p "$dir"
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  printf '%s\n' "$token" > "$dir/token"
  cat > "$dir/box.toml" <<TOML
state_dir = "$dir/state"
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
file_pace = "realtime"
width = 0
height = 0
[api]
enabled = true
bind = "127.0.0.1:$port"
token_file = "$dir/token"
TOML
  local run_s=$((SECONDS_LOAD + 10))
  "$VIREID" --log warn run --config "$dir/box.toml" --duration "$run_s" --tracks "$dir/tracks.jsonl" \
    --sightings "$dir/events.jsonl" --stats "$dir/stats.json" 2> "$dir/run.log" &
  local pid=$!
  for _ in $(seq 1 100); do
    python3 -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "http://127.0.0.1:$port/healthz" 2>/dev/null && break
    sleep 0.1
  done
  if [ "$load" = 1 ]; then
    sleep 2
    "$loader" "127.0.0.1:$port" "$token" "$RATE" "$SECONDS_LOAD" "$image" "$dir/load.json" | tee "$dir/load.txt"
  fi
  wait "$pid" || { echo "api_load: vireid run ($name) failed: $(tail -5 "$dir/run.log")" >&2; exit 1; }
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
run_once alone 0
run_once loaded 1
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

python3 - "$OUT" "$RATE" "$SECONDS_LOAD" "$load_before" "$load_after" <<'PY' | tee "$OUT/report.md"
import json, sqlite3, sys
out, rate, secs, load_before, load_after = sys.argv[1:]
def run(name):
    d = f"{out}/{name}"
    s = json.load(open(f"{d}/stats.json"))
    frames = sum(c["ingest"]["frames"] for c in s["cameras"])
    dropped = sum(c["ingest"]["dropped"] for c in s["cameras"])
    tracks = sum(1 for _ in open(f"{d}/tracks.jsonl"))
    stored = sqlite3.connect(f"{d}/state/gallery.db").execute("SELECT COUNT(*) FROM sightings").fetchone()[0]
    announced = sum(1 for _ in open(f"{d}/events.jsonl"))
    return dict(frames=frames, dropped=dropped, tracks=tracks, stored=stored, announced=announced,
                lost=tracks - stored)
alone, loaded = run("alone"), run("loaded")
load = json.load(open(f"{out}/loaded/load.json"))
print(f"# API under load: {rate} req/s for {secs} s while `vireid run` processes two cameras\n")
print(f"load average {load_before} before, {load_after} after\n")
print(f"achieved {load['achieved_rate']:.0f} req/s; all routes p50 {load['p50_ms']:.2f} ms, p99 {load['p99_ms']:.2f} ms; "
      f"{load['non_2xx']} non-2xx, {load['errors']} transport errors\n")
print("| route | answers | p50 ms | p99 ms | max ms | non-2xx | errors |\n| --- | ---: | ---: | ---: | ---: | --- | ---: |")
for name, r in load["routes"].items():
    print(f"| {name} | {r['answers']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.2f} | {r['non_2xx'] or 0} | {r['errors']} |")
print("\n| run | frames in | dropped | dropped % | tracks finished | sightings stored | announced | lost |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
for name, r in (("alone (peer)", alone), ("under load", loaded)):
    print(f"| {name} | {r['frames']} | {r['dropped']} | {100*r['dropped']/max(r['frames'],1):.1f} | {r['tracks']} | {r['stored']} | {r['announced']} | {r['lost']} |")
PY
