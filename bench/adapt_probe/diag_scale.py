import sys, os, numpy as np
sys.argv = [sys.argv[0]]
os.environ["TRAIN"] = " ".join(str(s) for s in range(5001, 5017))
exec(open("bench/adapt_probe/probe.py").read().split('ident = lambda x: x')[0])
def tracks(sc):
    out = {}
    for mod in ("visible", "thermal"):
        f, y, n = sc[f"{mod}_f"], sc[f"{mod}_y"], sc[f"{mod}_night"]
        for p in np.unique(y):
            for seg in (False, True):
                m = (y == p) & (n == seg)
                if m.sum():
                    v = f[m].mean(0); out[(mod, p, seg)] = v / np.linalg.norm(v)
    return out
ident = lambda x: x
evaluate(ident, ident, "none")
for n_sc in (1, 2, 4, 8, 16):
    tr_sc = train[:n_sc]
    aR = np.concatenate([s["visible_f"] for s in tr_sc]); aT = np.concatenate([s["thermal_f"] for s in tr_sc])
    mr_, mt_ = aR.mean(0), aT.mean(0)
    PR, PT = [], []
    for t in map(tracks, tr_sc):
        for (mod, p, seg), v in t.items():
            if mod == "visible" and ("thermal", p, seg) in t:
                PR.append(v); PT.append(t[("thermal", p, seg)])
    PR, PT = np.array(PR) - mr_, np.array(PT) - mt_
    corr = (PR * PT).mean(0) / (PR.std(0) * PT.std(0) + 1e-9)
    for g in (1, 2):
        w = np.clip(corr, 0, None) ** g
        evaluate(lambda x, w=w: norm((x - mr_) * w), lambda x, w=w: norm((x - mt_) * w), f"{n_sc:2d} scenes {len(PR):4d} track pairs corr^{g}")
print("--- Fisher-style weights: genuine (co-observed) vs impostor (simultaneous other person) cross-modal differences")
for n_sc in (1, 4, 16):
    tr_sc = train[:n_sc]
    aR = np.concatenate([s["visible_f"] for s in tr_sc]); aT = np.concatenate([s["thermal_f"] for s in tr_sc])
    mr_, mt_ = aR.mean(0), aT.mean(0)
    G, I = [], []
    for t in map(tracks, tr_sc):
        keys = [k for k in t if k[0] == "visible"]
        for (_, p, seg) in keys:
            if ("thermal", p, seg) not in t: continue
            r = t[("visible", p, seg)] - mr_
            G.append((r - (t[("thermal", p, seg)] - mt_)) ** 2)
            for (_, q, seg2) in keys:
                if q != p and seg2 == seg and ("thermal", q, seg) in t:
                    I.append((r - (t[("thermal", q, seg)] - mt_)) ** 2)
    G, I = np.mean(G, 0), np.mean(I, 0)
    for g in (0.5, 1, 2):
        w = np.clip((I - G) / (I + 1e-9), 0, None) ** g
        evaluate(lambda x, w=w: norm((x - mr_) * w), lambda x, w=w: norm((x - mt_) * w), f"{n_sc:2d} scenes fisher^{g}")
