#!/usr/bin/env python3
"""Independent plain-numpy reference of vireid's VI-ReID evaluation rules.

Written from the rules in issue #3 (not from any implementation), as a
straightforward per-query loop, so that `vireid eval distmat` can be checked
against it (tests/embed_eval/eval_cli.rs) and timed against it (benches/eval_speed.rs).

Rules:
  * each query ranks the gallery by ascending distance; ties keep gallery order
    (stable sort);
  * sysu: a cam-3 query ignores every cam-2 gallery item; llcm: gallery items
    with the query's id and cam are ignored; regdb: nothing is ignored;
  * sysu/llcm CMC uses the ranking with repeated identities removed (first
    occurrence kept); regdb CMC uses the plain ranking;
  * CMC length = min(20, gallery columns), divided by the number of valid
    queries (at least one true match left);
  * AP over the whole ranking after removal; INP = matches / 1-based position
    of the last match; invalid queries are skipped; no valid query -> error.

Usage:
  eval_reference.py --protocol sysu --distmat D.npy --query-meta Q.csv \
      --gallery-meta G.csv --json OUT.json
  eval_reference.py --bench DIR   (times evaluate() over DIR/trial_*.npy with
      DIR/query.csv and DIR/gallery_*.csv; prints JSON with seconds)
"""
import argparse
import json
import sys
import time

import numpy as np

MAX_RANK = 20


def read_meta(path):
    with open(path) as f:
        header = [c.strip().lower() for c in f.readline().split(",")]
        if "id" not in header or "cam" not in header:
            sys.exit(f"{path}: header must have columns id and cam")
        rows = [line.strip().split(",") for line in f if line.strip()]
    i, c = header.index("id"), header.index("cam")
    return np.array([int(r[i]) for r in rows]), np.array([int(r[c]) for r in rows])


def evaluate(dist, q_ids, q_cams, g_ids, g_cams, protocol):
    num_q, num_g = dist.shape
    assert num_q == len(q_ids) and num_g == len(g_ids), "shape mismatch"
    if np.isnan(dist).any():
        raise ValueError("NaN in distance matrix")
    max_rank = min(MAX_RANK, num_g)
    cmc_sum = np.zeros(max_rank)
    ap_sum = 0.0
    inp_sum = 0.0
    valid = 0
    for q in range(num_q):
        order = np.argsort(dist[q], kind="stable")
        ids = g_ids[order]
        cams = g_cams[order]
        if protocol == "sysu":
            keep = ~((q_cams[q] == 3) & (cams == 2))
        elif protocol == "llcm":
            keep = ~((ids == q_ids[q]) & (cams == q_cams[q]))
        else:
            keep = np.ones(num_g, dtype=bool)
        ids = ids[keep]
        hits = ids == q_ids[q]
        if not hits.any():
            continue
        valid += 1
        # AP: mean precision at each true match's position.
        positions = np.nonzero(hits)[0] + 1
        precision = np.arange(1, len(positions) + 1) / positions
        ap_sum += precision.mean()
        inp_sum += len(positions) / positions[-1]
        # CMC: first-match rank, deduplicated for sysu/llcm.
        if protocol in ("sysu", "llcm"):
            _, first_index = np.unique(ids, return_index=True)
            deduped = ids[np.sort(first_index)]
            rank = int(np.nonzero(deduped == q_ids[q])[0][0])
        else:
            rank = int(positions[0] - 1)
        if rank < max_rank:
            cmc_sum[rank:] += 1
    if valid == 0:
        raise ValueError("no valid query")
    return {
        "cmc": (cmc_sum / valid).tolist(),
        "mAP": ap_sum / valid,
        "mINP": inp_sum / valid,
        "num_valid_queries": valid,
    }


def bench(folder):
    import glob
    import os

    q_ids, q_cams = read_meta(os.path.join(folder, "query.csv"))
    trials = sorted(glob.glob(os.path.join(folder, "trial_*.npy")))
    loaded = []
    for path in trials:
        k = os.path.basename(path)[len("trial_"):-len(".npy")]
        g_ids, g_cams = read_meta(os.path.join(folder, f"gallery_{k}.csv"))
        loaded.append((np.load(path), g_ids, g_cams))
    start = time.perf_counter()
    results = [evaluate(d, q_ids, q_cams, g, c, "sysu") for d, g, c in loaded]
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "trials": len(loaded), "mAP": [r["mAP"] for r in results]}))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--protocol", choices=["sysu", "regdb", "llcm"])
    ap.add_argument("--distmat")
    ap.add_argument("--query-meta")
    ap.add_argument("--gallery-meta")
    ap.add_argument("--json")
    ap.add_argument("--bench")
    a = ap.parse_args()
    if a.bench:
        bench(a.bench)
        return
    if not (a.protocol and a.distmat and a.query_meta and a.gallery_meta):
        ap.error("--protocol, --distmat, --query-meta and --gallery-meta are required")
    q_ids, q_cams = read_meta(a.query_meta)
    g_ids, g_cams = read_meta(a.gallery_meta)
    result = evaluate(np.load(a.distmat), q_ids, q_cams, g_ids, g_cams, a.protocol)
    text = json.dumps(result)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
