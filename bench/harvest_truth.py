"""How many of a harvest's "certain" impostor pairs are one person? (issue 19)

Attributes each sighting of a box's gallery to a ground-truth person of the
synthetic scene it was seen in (its best box against the ground truth at its
best frame, IoU ≥ 0.3, as `vireid score` does), then counts the same-camera
impostor rows (`impostor_same`) whose two sightings are one person, and prints
the 99th percentile of the rows' track-against-track scores with and without
them, per modality. A second table takes the scores as `vireid thresholds
--from-gallery` does (a track against the best exemplar of the other track's
identity), per modality and light of the track (day or night, from the ground
truth), and leaves out what makes them uncertain: rows of one person, and
identities that also hold the track's own person (a wrong merge). A third
table is the labelled reference for `--from-gallery`: thresholds at the same
FAR from the box's own tracks (those with a feature in the harvest) labelled by
the ground truth, each track against the best of every other person's tracks
of its scene, as `vireid thresholds --root` scores labelled crops (thermal
against tracks in the same light; day against night is a kind of its own).
For the gallery of `bench/adapt_scaling.sh`:

    .venv/bin/python bench/harvest_truth.py OUT SEED...
    MODEL=adapted.onnx .venv/bin/python bench/harvest_truth.py OUT SEED...   # the reference for an adapted model
    CHECK="self:0.6694,0.8144,0.3666;crops:0.6958,0.7554,0.3413" …   # FMR of those thresholds on these tracks
    FAR=0.01 (the default) sets the reference's target false-match rate.

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
light = {}  # sighting id -> "day" | "night", from the ground truth's segment
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
            light[e["sighting_id"]] = best["segment"]

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

# As `thresholds --from-gallery` scores: each track against the best exemplar of
# the other track's identity, both ways (gallery::harvest::calibration_scores).
identity = dict(con.execute("select id, identity_id from sightings"))
people_of = {}  # identity -> ground-truth people among its sightings
for sid, iid in identity.items():
    if sid in person:
        people_of.setdefault(iid, set()).add(person[sid])
exemplars = {}
for iid, m, v in con.execute("select identity_id, modality, vector from features"):
    exemplars.setdefault((iid, m), []).append(np.frombuffer(v, np.float32))
exemplars = {k: np.stack(v) for k, v in exemplars.items()}
scores = []  # (modality, light, score, one person, identity holds the track's person)
for (a, b, m, fa, fb), o in zip(rows, one):
    ia, ib = identity.get(a), identity.get(b)
    if ia is None or ib is None or ia == ib:
        continue
    for track, feat, other in ((a, fa, ib), (b, fb, ia)):
        es = exemplars.get((other, m))
        if es is None:
            continue
        s = float((es @ np.frombuffer(feat, np.float32)).max())
        scores.append((m, light.get(track), s, o, person.get(track) in people_of.get(other, set())))
print()
print("As --from-gallery scores them (track against the other identity's best exemplar), 99th percentile:")
print("| modality | light | scores | all | without one-person rows | and without merged identities | n left |")
print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
for modality in ("rgb", "thermal"):
    for lt in ("day", "night", None):
        sel = [x for x in scores if x[0] == modality and (lt is None or x[1] == lt)]
        if len(sel) < 2:
            continue
        every = [x[2] for x in sel]
        no_one = [x[2] for x in sel if not x[3]]
        clean = [x[2] for x in sel if not x[3] and not x[4]]
        pct = lambda v: f"{np.percentile(v, 99):.4f}" if v else "n/a"
        print(f"| {modality} | {lt or 'both'} | {len(every)} | {pct(every)} | {pct(no_one)} | {pct(clean)} | {len(clean)} |")

# The labelled reference: the same tracks with ground-truth identities.
feat, mod = {}, {}
for a, b, ma, mb, fa, fb in con.execute(
        "select a_sighting_id, b_sighting_id, a_modality, b_modality, a_feature, b_feature from harvest"):
    feat[a], mod[a] = np.frombuffer(fa, np.float32), ma
    feat[b], mod[b] = np.frombuffer(fb, np.float32), mb
model = os.environ.get("MODEL")
if model:  # the reference in an adapted model's space: its adapter maps the base features (embed::adapter)
    import onnx
    from onnx import numpy_helper
    init = {i.name: numpy_helper.to_array(i).ravel() for i in onnx.load(model).graph.initializer}
    if "vireid_adapt/weight" not in init:
        sys.exit(f"{model}: not an adapted model (no vireid_adapt/* initializers)")
    weight, mean_rgb = init["vireid_adapt/weight"], init["vireid_adapt/mean_rgb"]
    mean = {"rgb": mean_rgb, "thermal": mean_rgb + init["vireid_adapt/mean_delta"]}
    for t in feat:
        x = feat[t] / np.linalg.norm(feat[t])
        y = (x - mean[mod[t]]) * weight
        feat[t] = y / np.linalg.norm(y)
tracks = [t for t in feat if t in person]
impostor = {"rgb": [], "thermal": [], "cross": []}
for q in tracks:
    best = {}  # (other person, kind) -> best score
    for g in tracks:
        if person[g][0] != person[q][0] or person[g] == person[q]:
            continue  # other scenes' people, and the track's own person
        if mod[g] != mod[q]:
            kind = "cross"
        elif mod[q] == "rgb" or light.get(g) == light.get(q):
            kind = mod[q]
        else:
            continue  # thermal day against night: the gallery's cross_light_threshold
        key = (person[g], kind)
        best[key] = max(best.get(key, -1.0), float(feat[q] @ feat[g]))
    for (_, kind), score in best.items():
        impostor[kind].append(score)


def at_far(scores, far):
    """The smallest threshold whose impostor acceptance is ≤ far (as `vireid thresholds`)."""
    scores = sorted(scores, reverse=True)
    allowed = int(far * len(scores))
    return float(np.nextafter(np.float32(scores[allowed]), np.float32(1))) if allowed < len(scores) else -1.0


far = float(os.environ.get("FAR", "0.01"))
print()
print(f"Labelled reference: {len(tracks)} of the box's tracks with ground-truth identities, threshold at {far:g} FAR"
      + (f", in the space of {model}:" if model else ":"))
# Other thresholds (CHECK="name:rgb,thermal,cross;…"): the false-match rate each lets through on these tracks.
checks = []
for item in filter(None, os.environ.get("CHECK", "").split(";")):
    name, _, values = item.partition(":")
    try:
        checks.append((name, [float(v) for v in values.split(",")]))
    except ValueError:
        sys.exit(f"CHECK: {item!r} is not name:rgb,thermal,cross (three thresholds)")
    if len(checks[-1][1]) != 3:
        sys.exit(f"CHECK: {item!r} needs three thresholds: rgb,thermal,cross")
print("| kind | impostor decisions | threshold" + "".join(f" | FMR at {n}" for n, _ in checks) + " |")
print("| --- | ---: | ---:" + " | ---:" * len(checks) + " |")
for i, (kind, name) in enumerate((("rgb", "RGB↔RGB"), ("thermal", "thermal↔thermal"), ("cross", "RGB↔thermal"))):
    if impostor[kind]:
        scores = np.array(impostor[kind])
        fmr = "".join(f" | {100 * np.mean(scores >= t[i]):.2f} % ({t[i]:.4f})" for _, t in checks)
        print(f"| {name} | {len(scores)} | {at_far(impostor[kind], far):.4f}{fmr} |")
