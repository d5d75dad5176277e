"""Losses of the three methods. Each function is pure (tensors in, scalar out) so that the
tests can check it against values computed by hand on tiny tensors. Callers pass float32
tensors (methods.py casts the network's bf16 outputs before any loss or distance).

Modality codes: 0 = RGB, 1 = thermal.
"""
from __future__ import annotations

import random

import torch
import torch.nn.functional as F


# ---------------------------------------------------------------- baseline

def id_loss(logits: torch.Tensor, labels: torch.Tensor, smoothing: float = 0.1) -> torch.Tensor:
    """Identity cross-entropy with label smoothing: (1-ε)·(-log p_y) + ε·mean_c(-log p_c)."""
    logp = F.log_softmax(logits, dim=1)
    nll = -logp.gather(1, labels[:, None]).squeeze(1)
    uniform = -logp.mean(dim=1)
    return ((1.0 - smoothing) * nll + smoothing * uniform).mean()


def pairwise_distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # Clamp before sqrt: the gradient of sqrt at 0 is infinite.
    d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.t()
    return d2.clamp(min=1e-12).sqrt()


def hard_triplet_loss(feats: torch.Tensor, labels: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """Batch-hard triplet (Hermans et al.): hardest positive and hardest negative per anchor."""
    d = pairwise_distances(feats, feats)
    same = labels[:, None] == labels[None, :]
    hardest_pos = d.masked_fill(~same, float("-inf")).max(dim=1).values
    hardest_neg = d.masked_fill(same, float("inf")).min(dim=1).values
    valid = torch.isfinite(hardest_neg) & torch.isfinite(hardest_pos)
    # masked mean, no data-dependent branch (no device sync); 0 when no anchor has both
    hinge = F.relu(torch.where(valid, hardest_pos - hardest_neg, torch.zeros_like(hardest_pos)) + margin)
    return (hinge * valid).sum() / valid.sum().clamp(min=1)


# ---------------------------------------------------------------- DANet

def cross_modality_center_loss(feats: torch.Tensor, labels: torch.Tensor, modality: torch.Tensor,
                               rho: float = 0.7) -> torch.Tensor:
    """DANet eq. 3 (`method.cc = "paper"`).

    For sample i, c = centre (batch mean) of the features with i's identity from the *other*
    modality. Loss_i = ||f_i - c|| + [ρ - min_k ||c - f_k||]_+ over k of another identity and
    i's own modality. Samples whose identity has no other-modality sample in the batch are
    skipped (the sampler always provides one). Vectorised: no per-sample loop or device sync.
    """
    same_id = labels[:, None] == labels[None, :]
    same_mod = modality[:, None] == modality[None, :]
    other = (same_id & ~same_mod).to(feats.dtype)               # [i, j]: j is i's identity, other modality
    count = other.sum(1)
    valid = count > 0
    centres = (other @ feats) / count.clamp(min=1)[:, None]
    pull = (feats - centres).norm(dim=1)
    negs = ~same_id & same_mod
    d = pairwise_distances(centres, feats).masked_fill(~negs, float("inf")).min(dim=1).values
    push = torch.where(torch.isfinite(d), F.relu(rho - d.clamp(max=rho)), torch.zeros_like(d))
    return ((pull + push) * valid).sum() / valid.sum().clamp(min=1)


def centre_cluster_loss(feats: torch.Tensor, labels: torch.Tensor, margin: float = 0.7) -> torch.Tensor:
    """DANet's cross-modality centre loss as its authors' code computes it (MPANet's
    CenterTripletLoss, `method.cc = "centre_cluster"`): centres c_y are batch means over *both*
    modalities; loss = mean_i ||f_i - c_{y_i}|| + mean over identities a of
    mean_{j: y_j != a} [margin - ||c_a - c_{y_j}||]_+ (every other-identity sample j counts, so an
    identity weighs by its images in the batch). On the raw pre-BNNeck features."""
    same = (labels[:, None] == labels[None, :]).to(feats.dtype)
    centres = (same @ feats) / same.sum(1, keepdim=True)
    pull = (feats - centres).norm(dim=1).mean()
    # one anchor per identity: its first occurrence in the batch (no earlier sample shares its label)
    n = labels.numel()
    earlier = torch.ones(n, n, dtype=torch.bool, device=labels.device).tril(-1)
    anchor = ~((same > 0) & earlier).any(dim=1)
    d = pairwise_distances(centres, centres)                       # [anchor, sample]
    other = (same == 0).to(feats.dtype)
    per_anchor = (F.relu(margin - d) * other).sum(1) / other.sum(1).clamp(min=1)
    push = (per_anchor * anchor).sum() / anchor.sum()
    return pull + push


def kl_rows(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """Mean over rows of KL(p || q) = Σ p log(p/q), from logits."""
    logp = F.log_softmax(p_logits, dim=1)
    logq = F.log_softmax(q_logits, dim=1)
    return (logp.exp() * (logp - logq)).sum(dim=1).mean()


def mutual_learning_loss(rgb_by_ir_cls: torch.Tensor, rgb_by_rgb_cls: torch.Tensor,
                         ir_by_rgb_cls: torch.Tensor, ir_by_ir_cls: torch.Tensor) -> torch.Tensor:
    """DANet eq. 5: L_M = mean_i KL(C_r(f_v) || C_v(f_v)) + mean_j KL(C_v(f_r) || C_r(f_r))."""
    return kl_rows(rgb_by_ir_cls, rgb_by_rgb_cls) + kl_rows(ir_by_rgb_cls, ir_by_ir_cls)


def ema_update(ema: torch.Tensor, live: torch.Tensor, rate: float) -> None:
    """In place: ema ← (1 - rate)·ema + rate·live (DANet's teachers, rate = 0.2)."""
    with torch.no_grad():
        ema.mul_(1.0 - rate).add_(live.detach().to(ema.dtype), alpha=rate)


def ema_mutual_kl(own_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """DANet's L_M as its authors' code computes it (`method.kl = "ema"`): rows are every image's
    own-modality classifier logits (live) and the *other* modality's EMA classifier logits on the
    same feature (the teacher, no gradient); KL(softmax(own) || softmax(teacher)) summed over
    classes and divided by the number of rows (KLDivLoss reduction "batchmean")."""
    p = F.softmax(own_logits, dim=1)
    return F.kl_div(F.log_softmax(teacher_logits.detach(), dim=1), p, reduction="batchmean")


# ---------------------------------------------------------------- LbA (CMAlign)

def person_mask(feat: torch.Tensor) -> torch.Tensor:
    """LbA eqs. 5-7: per-image min-max normalised L2 norm of the local features, [B,1,h,w].

    Parameter-free; detached, as the mask only selects where to align.
    """
    b, _, h, w = feat.shape
    g = feat.detach().norm(dim=1).reshape(b, h * w)
    g = g - g.min(dim=1, keepdim=True).values
    g = g / (g.max(dim=1, keepdim=True).values + 1e-12)
    return g.reshape(b, 1, h, w)


def matching_probabilities(f_anchor: torch.Tensor, f_other: torch.Tensor, beta: float = 50.0) -> torch.Tensor:
    """LbA eqs. 1-2: cosine similarity C(p;q) of every anchor position p with every position q
    of the other image, softmax over q with inverse temperature β. Shape [B, hw(p), hw(q)]."""
    a = F.normalize(f_anchor.flatten(2), dim=1)  # [B,d,hw]
    o = F.normalize(f_other.flatten(2), dim=1)
    sim = torch.einsum("bdp,bdq->bpq", a, o)
    return F.softmax(beta * sim, dim=2)


def soft_warp(values: torch.Tensor, prob: torch.Tensor) -> torch.Tensor:
    """LbA eq. 4: W(v)(p) = Σ_q P(p;q) v(q). values [B,c,h,w] of the other image, prob [B,hw,hw]."""
    b, c, h, w = values.shape
    out = torch.einsum("bpq,bcq->bcp", prob, values.flatten(2))
    return out.reshape(b, c, h, w)


def minmax_per_image(a: torch.Tensor) -> torch.Tensor:
    """[B,1,h,w] → each image's map shifted and scaled to [0, 1] (max + 1e-12 in the divisor)."""
    b = a.shape[0]
    g = a.reshape(b, -1)
    g = g - g.min(dim=1, keepdim=True).values
    g = g / (g.max(dim=1, keepdim=True).values + 1e-12)
    return g.reshape(a.shape)


def cmalign(f_anchor: torch.Tensor, f_other: torch.Tensor, beta: float = 50.0, coatt: str = "raw"):
    """Reconstruct the anchor's features from the other modality's features (LbA eq. 3):
    f̂ = M·W(f_other) + (1-M)·f_anchor, with M the anchor's person mask.

    Returns (f̂, co-attention map A = M_anchor · W(M_other), eq. 9). coatt = "minmax" is LbA's
    code: A min-max normalised per image and detached (a weight, not a path for gradients);
    "raw" keeps A as eq. 9 gives it, with the gradient through the matching probabilities."""
    if coatt not in ("raw", "minmax"):
        raise ValueError(f"method.coatt = {coatt!r}: choose raw or minmax")
    prob = matching_probabilities(f_anchor, f_other, beta)
    m_anchor = person_mask(f_anchor)
    warped = soft_warp(f_other, prob)
    recon = m_anchor * warped + (1.0 - m_anchor) * f_anchor
    att = m_anchor * soft_warp(person_mask(f_other), prob)
    if coatt == "minmax":
        att = minmax_per_image(att).detach()
    return recon, att


def dense_triplet_loss(f_anchor: torch.Tensor, recon_pos: torch.Tensor, recon_neg: torch.Tensor,
                       coatt: torch.Tensor, margin: float = 0.3, reduction: str = "coatt") -> torch.Tensor:
    """LbA eqs. 10-11: A(p)·[d⁺(p) - d⁻(p) + margin]_+, where d± are local L2 distances
    between the anchor and its reconstructions from the positive / negative image.
    reduction "coatt": Σ_p A·hinge / Σ_p A (scale independent of the feature-map size);
    "mean": the mean of A·hinge over images and positions (LbA's code)."""
    d_pos = (f_anchor - recon_pos).norm(dim=1, keepdim=True)
    d_neg = (f_anchor - recon_neg).norm(dim=1, keepdim=True)
    hinge = F.relu(d_pos - d_neg + margin)
    if reduction == "mean":
        return (coatt * hinge).mean()
    if reduction != "coatt":
        raise ValueError(f"method.dt_reduction = {reduction!r}: choose coatt or mean")
    return (coatt * hinge).sum() / coatt.sum().clamp(min=1e-12)


def lba_pairs(p: int, k: int, mode: str = "slot", rng: random.Random | None = None):
    """Positive and negative partners, in the *other* modality's half, of each of the P·K anchors
    of one half of a [RGB P×K | thermal P×K] batch (identity blocks of K consecutive slots).

    "slot": positive = the same slot (same identity), negative = the slot K further on (the next
    identity). "random" (LbA's code): positive = a random permutation of the K slots of the
    anchor's identity block; negatives = for each identity block, K identities drawn at random
    among the P - 1 others (distinct when P - 1 >= K) and a random permutation of slots."""
    n = p * k
    if mode == "slot":
        idx = torch.arange(n)
        return idx, (idx + k) % n
    if mode != "random":
        raise ValueError(f"method.pairs = {mode!r}: choose slot or random")
    rng = rng or random
    pos, neg = [], []
    for b in range(p):
        pos += [b * k + j for j in rng.sample(range(k), k)]
        others = [o for o in range(p) if o != b]
        blocks = rng.sample(others, k) if len(others) >= k else [rng.choice(others) for _ in range(k)]
        neg += [o * k + j for o, j in zip(blocks, rng.sample(range(k), k))]
    return torch.tensor(pos), torch.tensor(neg)


# ---------------------------------------------------------------- co-observed pairs (any method)

def paired_infonce(f_rgb: torch.Tensor, f_ir: torch.Tensor, labels: torch.Tensor, paired: torch.Tensor,
                   temperature: float = 0.1, negatives: str = "other_ids") -> torch.Tensor:
    """Cross-modal InfoNCE over co-observed pairs (`method.lambda_pair`).

    f_rgb, f_ir [n,d]: the slot-aligned RGB and thermal halves of a batch (row i of each shows
    identity labels[i]); paired [n] bool: row i of the two halves is one person at one instant.
    On L2-normalised features, S = f_rgb·f_irᵀ / τ. For each paired row i, in both directions,
        -log( exp(S_ii) / Σ_{j ∈ N(i)} exp(S_ij) )      (RGB → thermal; columns for thermal → RGB)
    with N(i) = {i} ∪ {j : labels[j] ≠ labels[i]} (`negatives = "other_ids"`: the same person's
    other crops are neither positives nor negatives, so the term never contradicts the identity
    loss) or every row (`"all"`: instance discrimination, the same person at other instants are
    negatives too). Returns the mean over paired rows of the two directions' average; 0 without
    a paired row (masked mean, no device sync)."""
    if negatives not in ("other_ids", "all"):
        raise ValueError(f"method.pair_negatives = {negatives!r}: choose other_ids or all")
    if temperature <= 0:
        raise ValueError(f"method.pair_temperature = {temperature}: must be > 0")
    v = F.normalize(f_rgb, dim=1)
    t = F.normalize(f_ir, dim=1)
    s = v @ t.t() / temperature
    n = s.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=s.device)
    keep = eye | (labels[:, None] != labels[None, :]) if negatives == "other_ids" else torch.ones_like(eye)
    s = s.masked_fill(~keep, float("-inf"))
    pos = s.diagonal()
    rgb_to_ir = torch.logsumexp(s, dim=1) - pos
    ir_to_rgb = torch.logsumexp(s, dim=0) - pos
    w = paired.to(s.dtype)
    return (0.5 * (rgb_to_ir + ir_to_rgb) * w).sum() / w.sum().clamp(min=1)
