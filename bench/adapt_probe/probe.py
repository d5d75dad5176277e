"""Probe: which cross-modal adapter on frozen features generalises to unseen people?"""
import sys, json, re, glob, os
from pathlib import Path
import numpy as np
import onnxruntime as ort
from PIL import Image

MODEL = sys.argv[1] if len(sys.argv) > 1 else "engines/vireid_default.onnx"
ROOT = Path("out/adapt")
so = ort.SessionOptions(); so.intra_op_num_threads = 2; so.log_severity_level = 3
sess = ort.InferenceSession(MODEL, so, providers=["CPUExecutionProvider"])
md = {p.key: p.value for p in __import__("onnx").load(MODEL, load_external_data=False).metadata_props}
H, W = int(md["vireid.input_height"]), int(md["vireid.input_width"])
mean = np.array([float(v) for v in md["vireid.mean"].split(",")], np.float32)
std = np.array([float(v) for v in md["vireid.std"].split(",")], np.float32)
per_mod = md.get("vireid.modality_handling") == "per_modality"
tag = Path(MODEL).stem


def load(p, thermal):
    img = Image.open(p)
    img = img.convert("L").convert("RGB") if thermal else img.convert("RGB")
    x = np.asarray(img.resize((W, H), Image.Resampling.BILINEAR), np.float32) / 255.0
    return ((x - mean) / std).transpose(2, 0, 1)


def embed(paths, thermal):
    out = []
    for i in range(0, len(paths), 64):
        x = np.stack([load(p, thermal) for p in paths[i:i + 64]])
        feeds = {"images": x}
        if per_mod:
            feeds["modality"] = np.full(len(x), 1.0 if thermal else 0.0, np.float32)
        out.append(sess.run(None, feeds)[0])
    f = np.concatenate(out)
    return f / np.linalg.norm(f, axis=1, keepdims=True)


def scene(seed):
    cache = ROOT / f"feat-{tag}-{seed}.npz"
    if cache.exists():
        return dict(np.load(cache))
    d = ROOT / f"s{seed}"
    rec = {}
    for mod, thermal in (("visible", False), ("thermal", True)):
        lines = [l.split() for l in (d / "idx" / f"test_{mod}_1.txt").read_text().splitlines() if l.strip()]
        paths = [str(d / l[0]) for l in lines]
        labels = np.array([seed * 1000 + int(l[1]) for l in lines])
        frames = np.array([int(re.search(r"_(\d+)\.jpg", l[0]).group(1)) for l in lines])
        night = np.array(["night_" in l[0] for l in lines])
        rec[mod] = dict(f=embed(paths, thermal), y=labels, fr=frames, night=night)
    flat = {f"{m}_{k}": v for m, r in rec.items() for k, v in r.items()}
    np.savez(cache, **flat)
    return flat


def r1_map(q, g, qy, gy):
    s = q @ g.T
    o = np.argsort(-s, axis=1, kind="stable")
    m = gy[o] == qy[:, None]
    r1 = m[:, 0].mean()
    aps = []
    for row in m:
        pos = np.nonzero(row)[0]
        if len(pos):
            aps.append(np.mean(np.arange(1, len(pos) + 1) / (pos + 1)))
    return 100 * r1, 100 * np.mean(aps)


def norm(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def pairs_of(sc):
    """(rgb feature, thermal feature) of the same person at the same frame."""
    vi = {(y, fr): i for i, (y, fr) in enumerate(zip(sc["visible_y"], sc["visible_fr"]))}
    R, T, Y = [], [], []
    for j, (y, fr) in enumerate(zip(sc["thermal_y"], sc["thermal_fr"])):
        i = vi.get((y, fr))
        if i is not None:
            R.append(sc["visible_f"][i]); T.append(sc["thermal_f"][j]); Y.append(y)
    return np.array(R), np.array(T), np.array(Y)


train_seeds = [int(a) for a in os.environ.get("TRAIN", "5001 5002 5003 5004").split()]
test_seeds = [6001, 6002]
train = [scene(s) for s in train_seeds]
test = [scene(s) for s in test_seeds]
R, T, Y = map(np.concatenate, zip(*[pairs_of(s) for s in train]))
allR = np.concatenate([s["visible_f"] for s in train]); allT = np.concatenate([s["thermal_f"] for s in train])
print(f"{len(train)} train scenes, {len(np.unique(Y))} people, {len(R)} pairs; test scenes {test_seeds}")


def evaluate(fr, ft, name):
    res = []
    for s in test:
        q = s["thermal_night"]; g = ~s["visible_night"]
        res.append(r1_map(ft(s["thermal_f"][q]), fr(s["visible_f"][g]), s["thermal_y"][q], s["visible_y"][g]))
    r = np.mean(res, axis=0)
    # same-modality must not suffer: night thermal -> day thermal
    sm = []
    for s in test:
        q = s["thermal_night"]; g = ~s["thermal_night"]
        sm.append(r1_map(ft(s["thermal_f"][q]), ft(s["thermal_f"][g]), s["thermal_y"][q], s["thermal_y"][g])[0])
    print(f"{name:40s} nT->dV R1 {r[0]:5.1f} mAP {r[1]:5.1f} | nT->dT R1 {np.mean(sm):5.1f}")
    return r


ident = lambda x: x
evaluate(ident, ident, "none")
mr, mt = allR.mean(0), allT.mean(0)
evaluate(lambda x: norm(x - mr), lambda x: norm(x - mt), "centre per modality")


def whiten(X, k):
    mu = X.mean(0); U, S, Vt = np.linalg.svd(X - mu, full_matrices=False)
    P = Vt[:k].T / (S[:k] / np.sqrt(len(X)))
    return mu, P


for k in (64, 128, 256):
    # CCA in PCA-reduced spaces
    mu_r, Pr = whiten(allR, k); mu_t, Pt = whiten(allT, k)
    Rw, Tw = (R - mu_r) @ Pr, (T - mu_t) @ Pt
    C = Rw.T @ Tw / len(Rw)
    U, S, Vt = np.linalg.svd(C)
    for kk in (k // 2, k):
        fr = lambda x, U=U, kk=kk, mu_r=mu_r, Pr=Pr, S=S: norm(((x - mu_r) @ Pr @ U[:, :kk]))
        ft = lambda x, Vt=Vt, kk=kk, mu_t=mu_t, Pt=Pt: norm(((x - mu_t) @ Pt @ Vt[:kk].T))
        evaluate(fr, ft, f"PCA{k}+CCA{kk}")

# ridge: thermal -> rgb space, centred
for lam in (1.0, 10.0, 100.0):
    Tc, Rc = T - mt, R - mr
    A = Tc.T @ Tc + lam * np.eye(Tc.shape[1])
    Wm = np.linalg.solve(A, Tc.T @ Rc + lam * np.eye(Tc.shape[1]))
    evaluate(lambda x: norm(x - mr), lambda x, Wm=Wm: norm((x - mt) @ Wm), f"ridge T->R (towards I) lam={lam}")

print("--- NAP: project out the principal directions of pair differences")
Rc, Tc = R - mr, T - mt
D = Rc - Tc
_, Sd, Vd = np.linalg.svd(D - D.mean(0), full_matrices=False)
for k in (4, 8, 16, 32, 64, 128, 256):
    V = Vd[:k].T
    P = lambda x, V=V: x - (x @ V) @ V.T
    evaluate(lambda x, P=P: norm(P(x - mr)), lambda x, P=P: norm(P(x - mt)), f"centre + NAP k={k}")

print("--- LDA with pairs as classes (Sw = pair differences, Sb = pair means)")
M = (Rc + Tc) / 2
for reg in (1e-3, 1e-2, 1e-1):
    Sw = D.T @ D / len(D) / 2 + reg * np.eye(D.shape[1])
    Sb = (M - M.mean(0)).T @ (M - M.mean(0)) / len(M)
    L = np.linalg.cholesky(Sw); Li = np.linalg.inv(L)
    ev, U = np.linalg.eigh(Li @ Sb @ Li.T)
    U = Li.T @ U[:, ::-1]
    for d in (32, 128, 512):
        evaluate(lambda x, U=U, d=d: norm((x - mr) @ U[:, :d]), lambda x, U=U, d=d: norm((x - mt) @ U[:, :d]), f"LDA reg={reg} d={d}")
