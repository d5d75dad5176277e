#!/usr/bin/env bash
# Thermal -> visible on people a model never saw, with the runtime's own evaluator:
# `vireid eval dataset --protocol regdb --direction t2v --trials 1` on each ROOT (a RegDB-layout
# studio set's test split, or a night-day view of an unseen scene's crops written by
# `python -m vireid_train.device night-day`). Prints one markdown row per ROOT (R1, R10, mAP,
# mINP in %) and, with two or more roots named nd-*, the mean over those (the night-day views);
# reports go to OUT/<root's folder name>/.
#
# usage: training/scripts/eval_unseen.sh MODEL.onnx OUT ROOT...
set -euo pipefail
model=${1:?usage: eval_unseen.sh MODEL.onnx OUT ROOT...}; out=${2:?usage: eval_unseen.sh MODEL.onnx OUT ROOT...}
shift 2
[ $# -ge 1 ] || { echo "eval_unseen: give at least one ROOT" >&2; exit 2; }
[ -f "$model" ] || { echo "eval_unseen: $model does not exist" >&2; exit 2; }
VIREID=${VIREID:-target/release/vireid}
[ -x "$VIREID" ] || { echo "eval_unseen: $VIREID not built; run 'make build' first" >&2; exit 2; }
PY=${PY:-.venv/bin/python}
echo "| model | set | queries | gallery | R1 | R10 | mAP | mINP |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
reports=()
for root in "$@"; do
  name=$(basename "$root")
  "$VIREID" --log warn eval dataset --protocol regdb --direction t2v --trials 1 --root "$root" --model "$model" \
    --out "$out/$name" --quiet --no-cache > "$out.$name.log" 2>&1 || { cat "$out.$name.log" >&2; exit 1; }
  rm -f "$out.$name.log"
  reports+=("$out/$name/report.json")
done
$PY - "$model" "${reports[@]}" <<'PY'
import json, sys
from pathlib import Path
model, rows = sys.argv[1], []
nd = []
for path in sys.argv[2:]:
    r = json.loads(Path(path).read_text())
    t, m = r["trials"][0], r["mean"]
    row = [100 * m["cmc"][0], 100 * m["cmc"][min(9, len(m["cmc"]) - 1)], 100 * m["mAP"], 100 * m["mINP"]]
    rows.append(row)
    if Path(path).parent.name.startswith("nd-"):
        nd.append(row)
    print(f"| {Path(model).name} | {Path(path).parent.name} | {t['num_queries']} | {t['num_gallery']} | "
          + " | ".join(f"{v:.2f}" for v in row) + " |")
if len(nd) >= 2:
    mean = [sum(c) / len(c) for c in zip(*nd)]
    print(f"| {Path(model).name} | mean of the {len(nd)} night-day views | | | "
          + " | ".join(f"{v:.2f}" for v in mean) + " |")
PY
