"""Contrastive adapters on frozen features: linear low-rank / MLP residual per modality, InfoNCE."""
import os, sys, numpy as np, torch, torch.nn as nn, torch.nn.functional as F
sys.argv = [sys.argv[0]]
exec(open("bench/adapt_probe/probe.py").read().split('ident = lambda x: x')[0])  # reuse data loading + evaluate
torch.manual_seed(0); torch.set_num_threads(2)

def tracks(sc):
    """track-level features: mean over a person's crops per (segment, modality)."""
    out = {}
    for mod in ("visible", "thermal"):
        f, y, n = sc[f"{mod}_f"], sc[f"{mod}_y"], sc[f"{mod}_night"]
        for p in np.unique(y):
            for seg in (False, True):
                m = (y == p) & (n == seg)
                if m.sum():
                    v = f[m].mean(0); out[(mod, p, seg)] = v / np.linalg.norm(v)
    return out

class Adapter(nn.Module):
    def __init__(self, d=2048, r=128, mlp=False):
        super().__init__()
        def head():
            if mlp:
                h = nn.Sequential(nn.Linear(d, r), nn.ReLU(), nn.Linear(r, d))
            else:
                h = nn.Sequential(nn.Linear(d, r, bias=False), nn.Linear(r, d, bias=False))
            nn.init.zeros_(h[-1].weight)
            return h
        self.h = nn.ModuleList([head(), head()])
    def forward(self, x, m):
        return F.normalize(x + self.h[m](x), dim=1)

def fit(posR, posT, mlp, r, steps=600, tau=0.05, wd=1e-3):
    A = Adapter(r=r, mlp=mlp)
    opt = torch.optim.AdamW(A.parameters(), 1e-3, weight_decay=wd)
    R_, T_ = torch.tensor(posR), torch.tensor(posT)
    for s in range(steps):
        idx = torch.randint(0, len(R_), (256,))
        a, b = A(R_[idx], 0), A(T_[idx], 1)
        logits = a @ b.t() / tau
        lab = torch.arange(len(idx))
        loss = (F.cross_entropy(logits, lab) + F.cross_entropy(logits.t(), lab)) / 2
        opt.zero_grad(); loss.backward(); opt.step()
    return A

def ev(A, name):
    with torch.no_grad():
        evaluate(lambda x: A(torch.tensor(x), 0).numpy(), lambda x: A(torch.tensor(x), 1).numpy(), name)

# instance pairs (same frame)
for mlp in (False, True):
    for r in (32, 256):
        ev(fit(R, T, mlp, r), f"inst pairs {'mlp' if mlp else 'lin'} r={r}")
# track pairs, same segment (what a box's co-observation gives at track level)
tr = [tracks(s) for s in train]
PR, PT = [], []
for t in tr:
    for (mod, p, seg), v in t.items():
        if mod == "visible" and ("thermal", p, seg) in t:
            PR.append(v); PT.append(t[("thermal", p, seg)])
PR, PT = np.array(PR), np.array(PT)
print("track pairs", len(PR))
for mlp in (False, True):
    for r in (32, 256):
        ev(fit(PR, PT, mlp, r), f"track pairs {'mlp' if mlp else 'lin'} r={r}")
# track pairs across segments (gallery-linked: day RGB with night thermal too)
PR2, PT2 = [], []
for t in tr:
    for (mod, p, seg), v in t.items():
        if mod == "visible":
            for seg2 in (False, True):
                if ("thermal", p, seg2) in t:
                    PR2.append(v); PT2.append(t[("thermal", p, seg2)])
PR2, PT2 = np.array(PR2), np.array(PT2)
for mlp in (False, True):
    ev(fit(PR2, PT2, mlp, 64), f"linked track pairs {'mlp' if mlp else 'lin'} r=64")
