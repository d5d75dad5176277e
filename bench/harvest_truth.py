"""How many of a harvest's "certain" impostor pairs are one person? (issue 19)

Attributes each sighting of a box's gallery to a ground-truth person of the
synthetic scene it was seen in (its best box against the ground truth at its
best frame, IoU ≥ 0.3, as `vireid score` does), then counts the same-camera
impostor rows (`impostor_same`) whose two sightings are one person, and prints
the 99th percentile of the rows' track-against-track scores with and without
them, per modality. For the gallery of `bench/adapt_scaling.sh`:

    .venv/bin/python bench/harvest_truth.py OUT SEED...

OUT holds state/gallery.db, scene-SEED/ground_truth.jsonl and
sightings-SEED.jsonl for each SEED (e.g. out/adapt-scaling 4001 4002 4003 4004).
"""
import json
import os
import sqlite3
import sys

import numpy as np

if len(sys.argv) < 3:
    sys.exit(__doc__.split("\n\n")[-2].strip())
out, seeds = sys.argv[1], sys.argv[2:]
db = f"{out}/state/gallery.db"
if not os.path.isfile(db):
    sys.exit(f"{db}: no gallery; run bench/adapt_scaling.sh into {out} first")


def iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / (aw * ah + bw * bh - inter + 1e-9)


person = {}  # sighting id -> (scene, person id)
for seed in seeds:
    gt_path, events_path = f"{out}/scene-{seed}/ground_truth.jsonl", f"{out}/sightings-{seed}.jsonl"
    for path in (gt_path, events_path):
        if not os.path.isfile(path):
            sys.exit(f"{path}: missing; each SEED needs its scene's ground truth and the box's sightings")
    gt = {}
    for line in open(gt_path):
        g = json.loads(line)
        gt.setdefault((g["camera"], g["pts_ns"]), []).append(g)
    for line in open(events_path):
        e = json.loads(line)
        if e.get("event") != "sighting" or e.get("best_pts_ns") is None:
            continue
        cands = gt.get((e["camera"], e["best_pts_ns"]), [])
        best = max(cands, key=lambda g: iou(e["best_box"], g["bbox"]), default=None)
        if best is not None and iou(e["best_box"], best["bbox"]) >= 0.3:
            person[e["sighting_id"]] = (seed, best["person_id"])

con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
total = con.execute("select count(*) from sightings").fetchone()[0]
print(f"{db}: {len(person)} of {total} sightings attributed to a ground-truth person")
rows = con.execute("select a_sighting_id, b_sighting_id, a_modality, a_feature, b_feature "
                   "from harvest where kind = 'impostor_same'").fetchall()
one = [person.get(a) is not None and person.get(a) == person.get(b) for a, b, *_ in rows]
print(f"impostor_same rows: {len(rows)}, of one person: {sum(one)}")
print("| modality | rows | of one person | 99th pct, all rows | 99th pct, without them |")
print("| --- | ---: | ---: | ---: | ---: |")
for modality in ("rgb", "thermal"):
    scores = [(float(np.frombuffer(fa, np.float32) @ np.frombuffer(fb, np.float32)), o)
              for (_, _, m, fa, fb), o in zip(rows, one) if m == modality]
    if not scores:
        continue
    every = np.array([s for s, _ in scores])
    clean = np.array([s for s, o in scores if not o])
    print(f"| {modality} | {len(every)} | {len(every) - len(clean)} | {np.percentile(every, 99):.4f} | "
          f"{np.percentile(clean, 99):.4f} |")
