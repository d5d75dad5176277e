#!/usr/bin/env python3
"""How long `vireid adapt` takes for N harvested pairs (issue 19: "seconds on 2 CPU cores
for 10,000 pairs"), against a numpy peer that reads the same rows and computes the same
per-dimension weights, in the same run.

    bench/adapt_time.py --state out/adapt-scaling/state --pairs 10000 [--model engines/vireid_default.onnx]

The harvest of STATE (a box that ran with MODEL) is copied and grown to N co-observed and
N impostor pairs by repeating its rows with small noise (the fit's cost depends on the
count, not on who the people are); the original is not touched.
"""
import argparse, os, shutil, sqlite3, subprocess, sys, tempfile, time

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--state", required=True)
    ap.add_argument("--pairs", type=int, default=10000)
    ap.add_argument("--model", default="engines/vireid_default.onnx")
    ap.add_argument("--vireid", default=os.environ.get("VIREID", "target/release/vireid"))
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="adapt-time-")
    db = os.path.join(tmp, "gallery.db")
    src = sqlite3.connect(f"file:{os.path.join(a.state, 'gallery.db')}?mode=ro", uri=True)
    src.backup(sqlite3.connect(db))
    con = sqlite3.connect(db)
    rng = np.random.default_rng(0)
    for kind in ("pair", "impostor"):
        rows = con.execute("SELECT a_sighting_id, b_sighting_id, a_modality, b_modality, a_feature, b_feature, space "
                           "FROM harvest WHERE kind = ?", (kind,)).fetchall()
        if not rows:
            sys.exit(f"{a.state} has no {kind} rows: run the box first")
        con.execute("DELETE FROM harvest WHERE kind = ?", (kind,))
        for i in range(a.pairs):
            sa, sb, ma, mb, fa, fb, space = rows[i % len(rows)]
            noisy = [(np.frombuffer(f, "<f4") + rng.normal(0, 0.01, len(f) // 4).astype("<f4")) for f in (fa, fb)]
            noisy = [(v / np.linalg.norm(v)).astype("<f4").tobytes() for v in noisy]
            # Distinct (a, b) per row (UNIQUE): offset ids; the fit reads features only.
            con.execute("INSERT INTO harvest (kind, a_sighting_id, b_sighting_id, a_modality, b_modality, a_feature, "
                        "b_feature, space, created_ns) VALUES (?,?,?,?,?,?,?,?,?)",
                        (kind, sa + 10_000_000 * (i + 1), sb, ma, mb, noisy[0], noisy[1], space, i))
    con.commit()
    con.close()
    with open(os.path.join(tmp, "box.toml"), "w") as f:
        f.write(f'state_dir = "{tmp}"\n[embed]\nmodel = "{os.path.abspath(a.model)}"\n')
    t0 = time.perf_counter()
    out = subprocess.run([a.vireid, "--log", "warn", "adapt", "--config", os.path.join(tmp, "box.toml"),
                          "--out", os.path.join(tmp, "adapted.onnx"), "--min-pairs", "2"],
                         capture_output=True, text=True)
    t_vireid = time.perf_counter() - t0
    if out.returncode != 0:
        sys.exit(out.stderr)
    # The peer: the same rows and the same math in numpy (no ONNX writing).
    t0 = time.perf_counter()
    con = sqlite3.connect(db)
    def load(kind):
        rows = con.execute("SELECT a_feature, b_feature FROM harvest WHERE kind = ?", (kind,)).fetchall()
        return (np.stack([np.frombuffer(r[0], "<f4") for r in rows]).astype(np.float64),
                np.stack([np.frombuffer(r[1], "<f4") for r in rows]).astype(np.float64))
    (gr, gt), (ir, it) = load("pair"), load("impostor")
    mr, mt = np.concatenate([gr, ir]).mean(0), np.concatenate([gt, it]).mean(0)
    g = (((gr - mr) - (gt - mt)) ** 2).mean(0)
    i = (((ir - mr) - (it - mt)) ** 2).mean(0)
    n = len(gr)
    w = 1 + (np.maximum(np.where(i > 0, (i - g) / np.where(i > 0, i, 1), 0), 0.01) - 1) * n / (n + 100)
    t_numpy = time.perf_counter() - t0
    load_avg = os.getloadavg()
    print(f"| {a.pairs} | {t_vireid:.2f} s | {t_numpy:.2f} s | {t_vireid / t_numpy:.2f} | "
          f"{load_avg[0]:.1f}, {load_avg[1]:.1f}, {load_avg[2]:.1f} |")
    print(out.stdout.strip().splitlines()[0], file=sys.stderr)
    shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
