"""Losses of the three methods. Each function is pure (tensors in, scalar out) so that the
tests can check it against values computed by hand on tiny tensors.

Modality codes: 0 = RGB, 1 = thermal.
"""
from __future__ import annotations

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
    if not valid.any():
        return feats.sum() * 0.0
    return F.relu(hardest_pos[valid] - hardest_neg[valid] + margin).mean()


# ---------------------------------------------------------------- DANet

def cross_modality_center_loss(feats: torch.Tensor, labels: torch.Tensor, modality: torch.Tensor,
                               rho: float = 0.7) -> torch.Tensor:
    """DANet eq. 3.

    For sample i, c = centre (batch mean) of the features with i's identity from the *other*
    modality. Loss_i = ||f_i - c|| + [ρ - min_k ||c - f_k||]_+ over k of another identity and
    i's own modality. Samples whose identity has no other-modality sample in the batch are
    skipped (the sampler always provides one).
    """
    terms = []
    for i in range(feats.shape[0]):
        other = (labels == labels[i]) & (modality != modality[i])
        negs = (labels != labels[i]) & (modality == modality[i])
        if not other.any():
            continue
        c = feats[other].mean(dim=0)
        pull = (feats[i] - c).norm()
        if negs.any():
            push = F.relu(rho - (feats[negs] - c[None]).norm(dim=1).min())
        else:
            push = feats.new_zeros(())
        terms.append(pull + push)
    if not terms:
        return feats.sum() * 0.0
    return torch.stack(terms).mean()


def kl_rows(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """Mean over rows of KL(p || q) = Σ p log(p/q), from logits."""
    logp = F.log_softmax(p_logits, dim=1)
    logq = F.log_softmax(q_logits, dim=1)
    return (logp.exp() * (logp - logq)).sum(dim=1).mean()


def mutual_learning_loss(rgb_by_ir_cls: torch.Tensor, rgb_by_rgb_cls: torch.Tensor,
                         ir_by_rgb_cls: torch.Tensor, ir_by_ir_cls: torch.Tensor) -> torch.Tensor:
    """DANet eq. 5: L_M = mean_i KL(C_r(f_v) || C_v(f_v)) + mean_j KL(C_v(f_r) || C_r(f_r))."""
    return kl_rows(rgb_by_ir_cls, rgb_by_rgb_cls) + kl_rows(ir_by_rgb_cls, ir_by_ir_cls)


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


def cmalign(f_anchor: torch.Tensor, f_other: torch.Tensor, beta: float = 50.0):
    """Reconstruct the anchor's features from the other modality's features (LbA eq. 3):
    f̂ = M·W(f_other) + (1-M)·f_anchor, with M the anchor's person mask.

    Returns (f̂, co-attention map A = M_anchor · W(M_other), eq. 9)."""
    prob = matching_probabilities(f_anchor, f_other, beta)
    m_anchor = person_mask(f_anchor)
    warped = soft_warp(f_other, prob)
    recon = m_anchor * warped + (1.0 - m_anchor) * f_anchor
    coatt = m_anchor * soft_warp(person_mask(f_other), prob)
    return recon, coatt


def dense_triplet_loss(f_anchor: torch.Tensor, recon_pos: torch.Tensor, recon_neg: torch.Tensor,
                       coatt: torch.Tensor, margin: float = 0.3) -> torch.Tensor:
    """LbA eqs. 10-11: Σ_p A(p)·[d⁺(p) - d⁻(p) + margin]_+, where d± are local L2 distances
    between the anchor and its reconstructions from the positive / negative image. Normalised
    by Σ_p A(p) so the scale does not depend on the feature-map size."""
    d_pos = (f_anchor - recon_pos).norm(dim=1, keepdim=True)
    d_neg = (f_anchor - recon_neg).norm(dim=1, keepdim=True)
    hinge = F.relu(d_pos - d_neg + margin)
    return (coatt * hinge).sum() / coatt.sum().clamp(min=1e-12)
