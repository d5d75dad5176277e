#!/usr/bin/env bash
# Pipeline benchmark (issue 5): ingest + detect + track on two 1280×720 @ 10 fps
# videos (an RGB and a thermal camera of a synthetic scene), against a
# straightforward Python OpenCV script doing the same HOG detection on the same
# files, in the same run.
#   1. fast1:    vireid run detecting on every frame (the same HOG work as the Python
#                peer), files read as fast as processed — wall time vs Python
#   2. fast:     the same with the shipped default, detect.every_n_frames = 2 (the
#                tracker carries boxes on the frames in between; quality in BENCHMARKS.md)
#   3. realtime: the default, files paced at 10 fps like live cameras — must drop 0 frames
# Usage: bench/pipeline_bench.sh [SECONDS_OF_VIDEO]   (default 20)
# Results: out/bench-pipeline/result.json and a Markdown table on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-20}
out=out/bench-pipeline
mkdir -p "$out"
PY=${VIREID_PYTHON:-.venv/bin/python}
[ -x "$PY" ] || { echo "pipeline_bench: Python not found at $PY: run scripts/setup.sh bench" >&2; exit 1; }
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-2} cargo build --release -q
bin=target/release/vireid
scene="$out/scene-$secs"
if [ ! -f "$scene/thermal.mp4" ]; then
  "$bin" --log warn synth scene --out "$scene" --seconds "$secs" --seed 7
fi
write_config() { # $1 = name, $2 = pace, $3 = detect.every_n_frames
  cat > "$out/$1.toml" <<TOML
[[camera]]
name = "rgb"
modality = "rgb"
source = "$PWD/$scene/rgb.mp4"
[[camera]]
name = "thermal"
modality = "thermal"
source = "$PWD/$scene/thermal.mp4"
[ingest]
file_pace = "$2"
queue_frames = 4
[detect]
every_n_frames = $3
TOML
}
write_config fast1 fast 1
write_config fast fast 2
write_config realtime realtime 2
nproc_=$(nproc); load=$(cut -d' ' -f1 /proc/loadavg)
echo "machine: $(uname -m), $nproc_ cores, load average $load before the run"

/usr/bin/time -f '%e %U %S' -o "$out/time_fast1.txt" \
  "$bin" --log warn run --config "$out/fast1.toml" --tracks "$out/tracks_fast1.jsonl" --stats "$out/stats_fast1.json" 2>/dev/null
/usr/bin/time -f '%e %U %S' -o "$out/time_fast.txt" \
  "$bin" --log warn run --config "$out/fast.toml" --tracks "$out/tracks_fast.jsonl" --stats "$out/stats_fast.json" 2>/dev/null
/usr/bin/time -f '%e %U %S' -o "$out/time_py.txt" \
  "$PY" bench/pipeline_hog_reference.py --out "$out/python.json" "$scene/rgb.mp4:rgb" "$scene/thermal.mp4:thermal" >/dev/null
/usr/bin/time -f '%e %U %S' -o "$out/time_rt.txt" \
  "$bin" --log warn run --config "$out/realtime.toml" --tracks "$out/tracks_rt.jsonl" --stats "$out/stats_rt.json" 2>/dev/null

"$PY" - "$out" "$secs" "$load" <<'PYEOF'
import json, sys
out, secs, load = sys.argv[1], int(sys.argv[2]), sys.argv[3]
t = lambda n: [float(x) for x in open(f"{out}/time_{n}.txt").read().split()[-3:]]
fast, rt, py = json.load(open(f"{out}/stats_fast.json")), json.load(open(f"{out}/stats_rt.json")), json.load(open(f"{out}/python.json"))
(fw, fu, fs), (pw, pu, ps), (rw, ru, rs), (f1w, f1u, f1s) = t("fast"), t("py"), t("rt"), t("fast1")
frames = sum(c["processed_frames"] for c in fast["cameras"])
pyframes = sum(v["frames"] for v in py["videos"])
res = {
    "video_seconds": secs, "load_before": load,
    "rust_fast_wall_s": fw, "rust_fast_cpu_s": fu + fs, "rust_fast_frames": frames,
    "python_wall_s": pw, "python_cpu_s": pu + ps, "python_frames": pyframes,
    "speedup_wall": pw / fw, "speedup_cpu": (pu + ps) / (fu + fs),
    "rust_every_frame_wall_s": f1w, "rust_every_frame_cpu_s": f1u + f1s,
    "speedup_every_frame_wall": pw / f1w, "speedup_every_frame_cpu": (pu + ps) / (f1u + f1s),
    "realtime_wall_s": rw, "realtime_cpu_s": ru + rs,
    "realtime_dropped": sum(c["ingest"]["dropped"] for c in rt["cameras"]),
    "realtime_frames_in": sum(c["ingest"]["frames"] for c in rt["cameras"]),
    "realtime_processed": sum(c["processed_frames"] for c in rt["cameras"]),
    "stages_fast": {c["ingest"]["camera"]: {k: round(c[k], 2) for k in ("copy_ms_per_frame", "detect_ms_per_frame", "track_ms_per_frame")} for c in fast["cameras"]},
    "stages_realtime": {c["ingest"]["camera"]: {k: round(c[k], 2) for k in ("copy_ms_per_frame", "detect_ms_per_frame", "track_ms_per_frame")} for c in rt["cameras"]},
    "python_stages": {v["modality"]: {"read_ms_per_frame": round(v["read_ms_per_frame"], 2), "detect_ms_per_frame": round(v["detect_ms_per_frame"], 2)} for v in py["videos"]},
}
json.dump(res, open(f"{out}/result.json", "w"), indent=2)
print(f"| run | frames | wall s | CPU s |\n|---|---|---|---|")
print(f"| vireid run, fast pace, detect every frame (same HOG work as Python) | {frames} | {f1w:.1f} | {f1u+f1s:.1f} |")
print(f"| vireid run, fast pace, default detect.every_n_frames = 2 | {frames} | {fw:.1f} | {fu+fs:.1f} |")
print(f"| Python OpenCV HOG script (sequential) | {pyframes} | {pw:.1f} | {pu+ps:.1f} |")
print(f"| vireid run, realtime 10 fps pace | {res['realtime_frames_in']} in, {res['realtime_processed']} processed, {res['realtime_dropped']} dropped | {rw:.1f} | {ru+rs:.1f} |")
print(f"\nspeed-up, same work (every frame): wall {res['speedup_every_frame_wall']:.2f}x, CPU {res['speedup_every_frame_cpu']:.2f}x")
print(f"speed-up, shipped default (every 2nd frame): wall {res['speedup_wall']:.2f}x, CPU {res['speedup_cpu']:.2f}x")
print("per-stage ms/frame, fast:", json.dumps(res["stages_fast"]))
print("per-stage ms/frame, realtime:", json.dumps(res["stages_realtime"]))
print("python ms/frame:", json.dumps(res["python_stages"]))
PYEOF
