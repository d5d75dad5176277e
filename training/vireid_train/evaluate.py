"""Cross-modal evaluation: thermal queries against an RGB gallery.

SYSU-MM01 all-search single-shot: queries are all thermal images (cams 3, 6) of the test ids;
each trial draws one random image per (identity, RGB camera 1/2/4/5) as the gallery; gallery
images of the query's identity from camera 2 are ignored for queries from camera 3 (the two
share a location), as in the official protocol. Mean over 10 trials.
RegDB / LLCM: thermal → visible over the full test lists.
Metrics: CMC rank-1/5/10/20, mAP, mINP (Ye et al.).
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .data import Sample, load_image, load_test, eval_transform
from .model import ReIDNet

EmbedFn = Callable[[torch.Tensor, int], np.ndarray]


def rank_metrics(dist: np.ndarray, q_ids, g_ids, q_cams, g_cams, sysu: bool) -> dict:
    q_ids, g_ids, q_cams, g_cams = map(np.asarray, (q_ids, g_ids, q_cams, g_cams))
    max_rank = 20
    cmc_sum = np.zeros(max_rank)
    aps, inps, valid = [], [], 0
    order = np.argsort(dist, axis=1, kind="stable")
    for i in range(dist.shape[0]):
        o = order[i]
        keep = np.ones_like(o, dtype=bool)
        if sysu and q_cams[i] == 3:
            keep = ~((g_ids[o] == q_ids[i]) & (g_cams[o] == 2))
        match = (g_ids[o] == q_ids[i])[keep]
        if not match.any():
            continue
        valid += 1
        cmc = match.cumsum()
        cmc_sum += (cmc[:max_rank] >= 1).astype(float) if len(cmc) >= max_rank else \
            np.pad((cmc >= 1).astype(float), (0, max_rank - len(cmc)), constant_values=1.0)
        pos = np.nonzero(match)[0]
        hits = np.arange(1, len(pos) + 1)
        aps.append(float(np.mean(hits / (pos + 1))))
        inps.append(len(pos) / (pos[-1] + 1))  # mINP: matches / rank of the hardest match
    if valid == 0:
        raise ValueError("no query has a match in the gallery: check the test split")
    cmc = cmc_sum / valid
    return {"r1": 100 * cmc[0], "r5": 100 * cmc[4], "r10": 100 * cmc[9], "r20": 100 * cmc[19],
            "mAP": 100 * float(np.mean(aps)), "mINP": 100 * float(np.mean(inps))}


def embed_samples(embed: EmbedFn, samples: list[Sample], height: int, width: int, batch: int = 64) -> np.ndarray:
    tf = eval_transform(height, width)
    feats = []
    for i in range(0, len(samples), batch):
        chunk = samples[i:i + batch]
        x = torch.stack([tf(load_image(s.path, s.modality)) for s in chunk])
        feats.append(embed(x, chunk[0].modality if len({s.modality for s in chunk}) == 1 else None))
    f = np.concatenate(feats).astype(np.float32)
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)


def torch_embedder(model: ReIDNet) -> EmbedFn:
    model.eval()

    def run(x: torch.Tensor, modality: int) -> np.ndarray:
        with torch.no_grad():
            return model(x, modality)["bn"].numpy()
    return run


def evaluate(embed: EmbedFn, dataset: str, root: str, height: int, width: int, trials: int = 10,
             trial: int = 1, return_features: bool = False) -> dict:
    thermal, rgb = load_test(dataset, root, trial)
    if not thermal or not rgb:
        raise ValueError(f"{root}: empty test set ({len(thermal)} thermal, {len(rgb)} RGB images)")
    # all-search, but never mix modalities inside one embed call (per-modality graphs)
    qf = embed_samples(embed, thermal, height, width)
    gf = embed_samples(embed, rgb, height, width)
    q_ids = [s.label for s in thermal]
    q_cams = [s.camera for s in thermal]
    results = []
    if dataset == "sysu":
        by_slot: dict[tuple[int, int], list[int]] = {}
        for j, s in enumerate(rgb):
            by_slot.setdefault((s.label, s.camera), []).append(j)
        slots = sorted(by_slot)
        for t in range(trials):
            rng = np.random.default_rng(t)
            pick = np.array([by_slot[k][rng.integers(len(by_slot[k]))] for k in slots])
            dist = 1.0 - qf @ gf[pick].T
            results.append(rank_metrics(dist, q_ids, [rgb[j].label for j in pick], q_cams,
                                        [rgb[j].camera for j in pick], sysu=True))
    else:
        dist = 1.0 - qf @ gf.T
        results.append(rank_metrics(dist, q_ids, [s.label for s in rgb], q_cams, [s.camera for s in rgb],
                                    sysu=False))
    out = {k: float(np.mean([r[k] for r in results])) for k in results[0]}
    out["trials"] = len(results)
    if return_features:
        out["_features"] = (qf, gf)
    return out


def format_metrics(m: dict) -> str:
    return f"R1={m['r1']:.2f} R5={m['r5']:.2f} R10={m['r10']:.2f} mAP={m['mAP']:.2f} mINP={m['mINP']:.2f}"
