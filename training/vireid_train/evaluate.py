"""Cross-modal evaluation: thermal queries against an RGB gallery.

SYSU-MM01 all-search single-shot: queries are all thermal images (cams 3, 6) of the test ids;
each trial draws one random image per (identity, RGB camera 1/2/4/5) as the gallery. Mean over
10 trials. RegDB / LLCM: thermal → visible over the full test lists.

The ranking rules are those of `vireid eval` (src/eval/metrics.rs), which matches the field's
reference evaluation to 1e-8; tests/test_evaluate.py checks the two agree on the same distance
matrix:
- each query ranks the gallery by ascending distance, ties broken by gallery order (stable sort);
- SYSU-MM01: a cam-3 query ignores every cam-2 gallery item (cams 2 and 3 share a location);
  LLCM: gallery items with the query's identity and camera are ignored; RegDB: nothing;
- SYSU-MM01 and LLCM compute the CMC on the ranking with repeated identities removed (first
  occurrence kept); RegDB on the plain ranking;
- the CMC has min(20, gallery columns) entries and is divided by the number of valid queries
  (those with at least one true match left); rank k beyond that length is the last entry;
- AP over the whole (non-deduplicated) ranking after removal; INP = true matches / 1-based
  position of the last true match (mINP, Ye et al.);
- queries without a true match are skipped; no valid query at all, NaN distances or mismatched
  shapes are errors.
"""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from .data import IMAGENET_MEAN, IMAGENET_STD, Sample, decode_images, load_test
from .model import ReIDNet

EmbedFn = Callable[[torch.Tensor, int], np.ndarray]
PROTOCOLS = ("sysu", "regdb", "llcm")
MAX_RANK = 20


def protocol_metrics(dist: np.ndarray, q_ids, q_cams, g_ids, g_cams, protocol: str) -> dict:
    """One trial under `protocol`'s rules: {"cmc": fractions [min(20, gallery)], "mAP", "mINP"
    (fractions), "num_valid_queries"} — the fields of `vireid eval distmat --json`."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}; choose one of {PROTOCOLS}")
    dist = np.asarray(dist)
    q_ids, q_cams, g_ids, g_cams = (np.asarray(a).astype(np.int64) for a in (q_ids, q_cams, g_ids, g_cams))
    if dist.ndim != 2 or dist.shape != (len(q_ids), len(g_ids)) or len(q_cams) != len(q_ids) \
            or len(g_cams) != len(g_ids):
        raise ValueError(f"distance matrix is {dist.shape} but there are {len(q_ids)} query and {len(g_ids)} "
                         "gallery labels: rows must be queries and columns gallery items, in label order")
    nq, ng = dist.shape
    if nq == 0 or ng == 0:
        raise ValueError(f"empty distance matrix ({nq}x{ng}): need at least one query and one gallery item")
    if np.isnan(dist).any():
        r, c = np.argwhere(np.isnan(dist))[0]
        raise ValueError(f"distance matrix has NaN at row {r}, column {c}: fix the features that produced it")
    max_rank = min(MAX_RANK, ng)
    dedup = protocol != "regdb"
    hits = np.zeros(max_rank, np.int64)
    sum_ap = sum_inp = 0.0
    valid = 0
    order = np.argsort(dist, axis=1, kind="stable")
    for i in range(nq):
        o = order[i]
        ids, cams = g_ids[o], g_cams[o]
        if protocol == "sysu":
            keep = ~((q_cams[i] == 3) & (cams == 2))
        elif protocol == "llcm":
            keep = ~((ids == q_ids[i]) & (cams == q_cams[i]))
        else:
            keep = np.ones(ng, bool)
        ids = ids[keep]
        match = ids == q_ids[i]
        pos = np.flatnonzero(match)
        if pos.size == 0:
            continue
        valid += 1
        first = pos[0]
        first_rank = np.unique(ids[:first]).size if dedup else first
        if first_rank < max_rank:
            hits[first_rank] += 1
        sum_ap += float(np.mean(np.arange(1, pos.size + 1) / (pos + 1)))
        sum_inp += pos.size / (pos[-1] + 1)
    if valid == 0:
        raise ValueError(f"no valid query: none of the {nq} queries has a true match left in the gallery under "
                         f"the {protocol} rules; check that query and gallery identities overlap and the cameras")
    return {"cmc": np.cumsum(hits) / valid, "mAP": sum_ap / valid, "mINP": sum_inp / valid,
            "num_valid_queries": valid}


def rank_metrics(dist: np.ndarray, q_ids, g_ids, q_cams, g_cams, sysu: bool | None = None,
                 protocol: str | None = None) -> dict:
    """protocol_metrics as percentages: r1, r5, r10, r20 (rank k beyond the CMC's length is its
    last entry, as `vireid eval` reports it), mAP, mINP. `sysu=True` is protocol "sysu",
    `sysu=False` "regdb"."""
    protocol = protocol or ("sysu" if sysu else "regdb")
    m = protocol_metrics(dist, q_ids, q_cams, g_ids, g_cams, protocol)
    cmc = m["cmc"]
    rank = lambda k: 100.0 * float(cmc[min(k, len(cmc)) - 1])
    return {"r1": rank(1), "r5": rank(5), "r10": rank(10), "r20": rank(20),
            "mAP": 100.0 * m["mAP"], "mINP": 100.0 * m["mINP"]}


_DECODED: dict = {}


def _decoded(samples: list[Sample], height: int, width: int) -> torch.Tensor:
    """The test images resized, uint8 [N,3,H,W], decoded once per process (periodic evaluations
    during training reuse them)."""
    key = (tuple(s.path for s in samples), height, width)
    if key not in _DECODED:
        if len(_DECODED) >= 4:
            _DECODED.pop(next(iter(_DECODED)))
        _DECODED[key] = decode_images(samples, height, width)
    return _DECODED[key]


def embed_samples(embed: EmbedFn, samples: list[Sample], height: int, width: int, batch: int = 64) -> np.ndarray:
    """L2-normalised features of `samples` (never mixing modalities inside one embed call, for
    the per-modality graphs), preprocessed as eval_transform does: resize, /255, ImageNet norm."""
    if not samples:
        raise ValueError("no images to embed")
    images = _decoded(samples, height, width)
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    feats = []
    i = 0
    while i < len(samples):
        j = i + 1
        while j < len(samples) and j - i < batch and samples[j].modality == samples[i].modality:
            j += 1
        x = (images[i:j].float() / 255.0 - mean) / std
        feats.append(np.asarray(embed(x, samples[i].modality), dtype=np.float32))
        i = j
    f = np.concatenate(feats)
    return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)


def torch_embedder(model: ReIDNet, device: str | torch.device | None = None) -> EmbedFn:
    """Embeds on the model's device (or `device`) in float32; features come back to the CPU."""
    model.eval()
    dev = torch.device(device) if device is not None else next(model.parameters()).device

    def run(x: torch.Tensor, modality: int) -> np.ndarray:
        with torch.no_grad():
            f = model.embed(x.to(dev, non_blocking=True), modality)
        return f.float().cpu().numpy()
    return run


def evaluate(embed: EmbedFn, dataset: str, root: str, height: int, width: int, trials: int = 10,
             trial: int = 1, return_features: bool = False) -> dict:
    thermal, rgb = load_test(dataset, root, trial)
    if not thermal or not rgb:
        raise ValueError(f"{root}: empty test set ({len(thermal)} thermal, {len(rgb)} RGB images)")
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
                                        [rgb[j].camera for j in pick], protocol="sysu"))
    else:
        dist = 1.0 - qf @ gf.T
        results.append(rank_metrics(dist, q_ids, [s.label for s in rgb], q_cams, [s.camera for s in rgb],
                                    protocol=dataset))
    out = {k: float(np.mean([r[k] for r in results])) for k in results[0]}
    out["trials"] = len(results)
    if return_features:
        out["_features"] = (qf, gf)
    return out


def format_metrics(m: dict) -> str:
    return f"R1={m['r1']:.2f} R5={m['r5']:.2f} R10={m['r10']:.2f} mAP={m['mAP']:.2f} mINP={m['mINP']:.2f}"
