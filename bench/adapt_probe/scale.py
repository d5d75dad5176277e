import sys, os, numpy as np
sys.argv = [sys.argv[0]]
src = open("bench/adapt_probe/probe.py").read().split('ident = lambda x: x')[0]
os.environ["TRAIN"] = " ".join(str(s) for s in range(5001, 5017))
exec(src)
nn_src = open("out/adapt/probe_nn.py").read()
exec(nn_src.split("# instance pairs (same frame)")[0].split("exec(open")[0] + nn_src.split("exec(open(\"bench/adapt_probe/probe.py\").read().split('ident = lambda x: x')[0])  # reuse data loading + evaluate")[1].split("# instance pairs (same frame)")[0])
ident = lambda x: x
evaluate(ident, ident, "none")
for n_sc in (1, 4, 8, 16):
    tr_sc = train[:n_sc]
    Rn, Tn, Yn = map(np.concatenate, zip(*[pairs_of(s) for s in tr_sc]))
    aR = np.concatenate([s["visible_f"] for s in tr_sc]); aT = np.concatenate([s["thermal_f"] for s in tr_sc])
    mr_, mt_ = aR.mean(0), aT.mean(0)
    print(f"== {n_sc} scenes, {len(np.unique(Yn))} people, {len(Rn)} pairs")
    for lam in (30.0, 100.0, 300.0):
        Tc, Rc = Tn - mt_, Rn - mr_
        Wm = np.linalg.solve(Tc.T @ Tc + lam * np.eye(2048), Tc.T @ Rc + lam * np.eye(2048))
        evaluate(lambda x: norm(x - mr_), lambda x, Wm=Wm: norm((x - mt_) @ Wm), f"ridge lam={lam}")
    tr = [tracks(s) for s in tr_sc]
    PR2, PT2 = [], []
    for t in tr:
        for (mod, p, seg), v in t.items():
            if mod == "visible":
                for seg2 in (False, True):
                    if ("thermal", p, seg2) in t:
                        PR2.append(v); PT2.append(t[("thermal", p, seg2)])
    ev(fit(np.array(PR2), np.array(PT2), False, 64), "linked track pairs lin r=64")
