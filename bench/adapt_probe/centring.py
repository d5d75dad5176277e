"""Should `vireid adapt` subtract each modality's mean feature? And how much shrinkage (n₀)?

Fits the adapter's variants on a box's harvest (the `harvest` table of its gallery.db) and scores
night-thermal → day-visible R1/mAP on night-day views of scenes nobody harvested:

    .venv/bin/python bench/adapt_probe/centring.py MODEL.onnx STATE/gallery.db [VIEW ...]
    FIRST=20 …   # fit on the harvest's first 20 co-observed pairs only (a young box)

VIEWs are `python -m vireid_train.device night-day` outputs (default: out/as16/nd-6001, nd-6002,
the scenes BENCHMARKS reports on). Choose on other views (e.g. seeds 6101, 6102) and report on
those. Crops are resized with PIL here, not as `vireid` does, so the base R1 differs from
`vireid eval dataset` by a point or two; compare rows, not runs. Features are cached in /tmp/ana.
"""
import sys, sqlite3
from pathlib import Path
import numpy as np, onnx, onnxruntime as ort
from PIL import Image

model, db = sys.argv[1], sys.argv[2]
views = sys.argv[3:] or ["out/as16/nd-6001", "out/as16/nd-6002"]
so = ort.SessionOptions(); so.intra_op_num_threads = 2; so.log_severity_level = 3
sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
md = {p.key: p.value for p in onnx.load(model, load_external_data=False).metadata_props}
H, W = int(md["vireid.input_height"]), int(md["vireid.input_width"])
mean = np.array([float(v) for v in md["vireid.mean"].split(",")], np.float32)
std = np.array([float(v) for v in md["vireid.std"].split(",")], np.float32)
per_mod = md.get("vireid.modality_handling") == "per_modality"
inputs = [i.name for i in sess.get_inputs()]

def norm(x): return x / np.linalg.norm(x, axis=-1, keepdims=True).clip(1e-12)

def embed(root, mod):
    Path("/tmp/ana").mkdir(exist_ok=True)
    cache = Path(f"/tmp/ana/feat-{Path(model).stem}-{Path(root).parent.name}-{Path(root).name}-{mod}.npz")
    if cache.exists():
        d = np.load(cache); return d["f"], d["y"]
    lines = [l.split() for l in (Path(root) / "idx" / f"test_{mod}_1.txt").read_text().splitlines() if l.strip()]
    th = mod == "thermal"
    out = []
    for i in range(0, len(lines), 64):
        xs = []
        for l in lines[i:i+64]:
            img = Image.open(Path(root) / l[0]); img = img.convert("L").convert("RGB") if th else img.convert("RGB")
            x = np.asarray(img.resize((W, H), Image.Resampling.BILINEAR), np.float32) / 255.0
            xs.append(((x - mean) / std).transpose(2, 0, 1))
        feeds = {inputs[0]: np.stack(xs)}
        if per_mod: feeds["modality"] = np.full(len(xs), 1.0 if th else 0.0, np.float32)
        out.append(sess.run(None, feeds)[0])
    f = norm(np.concatenate(out)); y = np.array([int(l[1]) for l in lines])
    np.savez(cache, f=f, y=y); return f, y

def r1map(q, g, qy, gy):
    o = np.argsort(-(q @ g.T), axis=1, kind="stable"); m = gy[o] == qy[:, None]
    aps = [np.mean(np.arange(1, len(p) + 1) / (p + 1)) for p in (np.nonzero(r)[0] for r in m) if len(p)]
    return 100 * m[:, 0].mean(), 100 * np.mean(aps)

c = sqlite3.connect(db)
import os
rows = c.execute("select kind, a_modality, b_modality, a_feature, b_feature from harvest order by id").fetchall()
if os.environ.get("FIRST"):
    n = int(os.environ["FIRST"]); k = 0; cut = len(rows)
    for j, r in enumerate(rows):
        k += r[0] == "pair"
        if k > n: cut = j; break
    rows = rows[:cut]
def feats(kind):
    R, T = [], []
    for k, am, bm, a, b in rows:
        if k != kind or {am, bm} != {"rgb", "thermal"}: continue
        a = np.frombuffer(a, "<f4"); b = np.frombuffer(b, "<f4")
        r, t = (a, b) if am == "rgb" else (b, a); R.append(r); T.append(t)
    return norm(np.array(R)), norm(np.array(T))
GR, GT = feats("pair"); IR, IT = feats("impostor")
print(f"{len(GR)} pairs, {len(IR)} impostors, dim {GR.shape[1]}")
mr = np.concatenate([GR, IR]).mean(0); mt = np.concatenate([GT, IT]).mean(0)

def weights(n0, center=True):
    cr, ct = (mr, mt) if center else (0, 0)
    g = (((GR - cr) - (GT - ct)) ** 2).mean(0); i = (((IR - cr) - (IT - ct)) ** 2).mean(0)
    f = np.maximum(0.01, np.where(i > 0, (i - g) / i, 0)); n = len(GR)
    return 1 + (f - 1) * n / (n + n0)

variants = {
    "base": lambda f, th: f,
    "centred, weights n0=100 (before)": lambda f, th, w=weights(100): norm((f - (mt if th else mr)) * w),
    "centred only": lambda f, th: norm(f - (mt if th else mr)),
    "shared centre only": lambda f, th: norm(f - (mt + mr) / 2),
    "uncentred, weights n0=30 (now)": lambda f, th, w=weights(30, False): norm(f * w),
    "uncentred, weights n0=100": lambda f, th, w=weights(100, False): norm(f * w),
    "uncentred, weights n0=300": lambda f, th, w=weights(300, False): norm(f * w),
}
res = {k: [] for k in variants}
for v in views:
    q, qy = embed(v, "thermal"); g, gy = embed(v, "visible")
    for k, fn in variants.items():
        res[k].append(r1map(fn(q, True), fn(g, False), qy, gy))
for k, r in res.items():
    a = np.array(r); print(f"{k:34s} " + "  ".join(f"{x[0]:.1f}/{x[1]:.1f}" for x in a) + f"   mean R1 {a[:,0].mean():.1f} mAP {a[:,1].mean():.1f}")
