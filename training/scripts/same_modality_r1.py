"""R1 within and across modalities of a checkpoint on a RegDB-layout test split: shows what a
network has learnt when its cross-modal R1 is at chance (training/RESULTS.md).

usage: .venv/bin/python training/scripts/same_modality_r1.py RUN/last.pt DATA_ROOT [TRIAL]
"""
import sys

import numpy as np
import torch

from vireid_train.data import load_test
from vireid_train.evaluate import embed_samples, torch_embedder
from vireid_train.train import load_checkpoint


def r1(a, a_ids, b, b_ids, same: bool) -> float:
    d = -a @ b.T
    if same:  # a crop is not its own match
        np.fill_diagonal(d, np.inf)
    return float((b_ids[d.argmin(1)] == a_ids).mean() * 100)


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    model, ck = load_checkpoint(sys.argv[1])
    torch.set_num_threads(2)
    queries, gallery = load_test("regdb", sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 1)
    h, w = ck["config"]["data"]["height"], ck["config"]["data"]["width"]
    embed = torch_embedder(model)
    norm = lambda f: f / np.linalg.norm(f, axis=1, keepdims=True)
    t, v = norm(embed_samples(embed, queries, h, w)), norm(embed_samples(embed, gallery, h, w))
    t_ids, v_ids = np.array([s.label for s in queries]), np.array([s.label for s in gallery])
    print(f"T->V R1 {r1(t, t_ids, v, v_ids, False):.2f}  V->V R1 {r1(v, v_ids, v, v_ids, True):.2f}  "
          f"T->T R1 {r1(t, t_ids, t, t_ids, True):.2f}")


if __name__ == "__main__":
    main()
