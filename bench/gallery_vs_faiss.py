"""Gallery exact top-10 over N x D unit features: vireid's FeatureIndex vs FAISS
IndexFlatIP, same data, same run, identical results required.

usage: gallery_vs_faiss.py [--rows 100000] [--dim 2048] [--queries 50] [--workdir target/bench-gallery]
Runs `cargo bench --bench gallery_topk` (release) for the vireid side.
"""
import argparse
import json
import os
import subprocess
import sys
import time

import faiss
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=2048)
    ap.add_argument("--queries", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workdir", default="target/bench-gallery")
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    rng = np.random.default_rng(7)
    x = rng.uniform(-1, 1, size=(a.rows, a.dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    # Queries near stored rows (like a re-seen person), so the top-1 is meaningful.
    q = x[rng.choice(a.rows, a.queries, replace=False)] + 0.05 * rng.standard_normal((a.queries, a.dim)).astype(np.float32)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    np.save(os.path.join(a.workdir, "features.npy"), x)
    np.save(os.path.join(a.workdir, "queries.npy"), q.astype(np.float32))

    faiss.omp_set_num_threads(a.threads)
    index = faiss.IndexFlatIP(a.dim)
    index.add(x)
    index.search(q[:1], 10)  # warm-up
    t = time.perf_counter()
    single = np.vstack([index.search(q[i : i + 1], 10)[1] for i in range(a.queries)])
    faiss_single_ms = (time.perf_counter() - t) * 1e3 / a.queries
    t = time.perf_counter()
    _, batch = index.search(q, 10)
    faiss_batch_ms = (time.perf_counter() - t) * 1e3
    del index, x

    env = dict(os.environ, VIREID_GALLERY_BENCH_DIR=os.path.abspath(a.workdir), CARGO_BUILD_JOBS="2")
    out = subprocess.run(["cargo", "bench", "--bench", "gallery_topk"], env=env, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"cargo bench --bench gallery_topk failed:\n{out.stderr[-3000:]}")
    v = json.loads([l for l in out.stdout.splitlines() if l.startswith("{")][-1])
    ids = np.load(os.path.join(a.workdir, "vireid_ids.npy"))
    identical = int((ids == single).all(axis=1).sum())
    print(json.dumps({
        "rows": a.rows, "dim": a.dim, "queries": a.queries, "threads": a.threads,
        "faiss_single_query_ms": faiss_single_ms, "vireid_single_query_ms": v["single_query_ms"],
        "speed_ratio_single (faiss/vireid)": faiss_single_ms / v["single_query_ms"],
        "faiss_batch_ms": faiss_batch_ms, "vireid_batch_ms": v["batch_all_queries_ms"],
        "speed_ratio_batch (faiss/vireid)": faiss_batch_ms / v["batch_all_queries_ms"],
        "queries_with_identical_top10": identical,
        "faiss_single_vs_batch_identical": int((single == batch).all(axis=1).sum()),
    }, indent=1))
    if identical != a.queries:
        sys.exit("top-10 results differ from FAISS")


if __name__ == "__main__":
    main()
