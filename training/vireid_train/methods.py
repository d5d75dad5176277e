"""The training objectives: baseline, DANet, LbA. A Method owns any extra trainable parts
(DANet's modality-specific classifiers) so they are optimised and checkpointed with the model.

Batches come from CrossModalIdentitySampler: the first half is RGB, the second thermal, and
slot i of the RGB half has the same identity as slot i of the thermal half (P ids x K).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import losses
from .model import ReIDNet

METHODS = ("baseline", "danet", "lba")


class Method(nn.Module):
    def __init__(self, name: str, params: dict, num_classes: int, embedding_dim: int, k: int):
        super().__init__()
        if name not in METHODS:
            raise ValueError(f"unknown method.name {name!r}; choose one of {METHODS}")
        self.name = name
        self.p = dict(params)
        self.k = k
        if name == "danet":
            # C_v and C_r of DANet eq. 4.
            self.cls_rgb = nn.Linear(embedding_dim, num_classes, bias=False)
            self.cls_ir = nn.Linear(embedding_dim, num_classes, bias=False)
            nn.init.normal_(self.cls_rgb.weight, std=0.001)
            nn.init.normal_(self.cls_ir.weight, std=0.001)

    def get(self, key: str, default):
        return float(self.p.get(key, default))

    def forward(self, model: ReIDNet, images: torch.Tensor, labels: torch.Tensor,
                modality: torch.Tensor) -> tuple[torch.Tensor, dict]:
        out = model(images, modality)
        parts = {
            "id": losses.id_loss(out["logits"], labels, self.get("label_smoothing", 0.1)),
            "tri": self.get("triplet_weight", 1.0)
            * losses.hard_triplet_loss(out["pooled"], labels, self.get("triplet_margin", 0.3)),
        }
        if self.name == "danet":
            parts.update(self._danet(out, labels, modality))
        elif self.name == "lba":
            parts.update(self._lba(model, out, labels))
        total = sum(parts.values())
        return total, {k: float(v.detach()) for k, v in parts.items()}

    def _danet(self, out: dict, labels: torch.Tensor, modality: torch.Tensor) -> dict:
        bn = out["bn"]
        is_rgb, is_ir = modality == 0, modality == 1
        # L_sid (eq. 4): each modality classifier learns from its own modality only, on
        # detached features, so it holds that modality's view of the identities.
        sid = (F.cross_entropy(self.cls_rgb(bn[is_rgb].detach()), labels[is_rgb])
               + F.cross_entropy(self.cls_ir(bn[is_ir].detach()), labels[is_ir]))
        # L_M (eq. 5) through frozen copies of the classifiers: only the backbone moves to make
        # the two modality classifiers agree (mutual-learning alignment at the logit level).
        wv, wr = self.cls_rgb.weight.detach(), self.cls_ir.weight.detach()
        fv, fr = bn[is_rgb], bn[is_ir]
        lm = losses.mutual_learning_loss(F.linear(fv, wr), F.linear(fv, wv),
                                         F.linear(fr, wv), F.linear(fr, wr))
        # L_cc (eq. 3) on L2-normalised pooled features, so the margin ρ=0.7 has a fixed scale.
        cc = losses.cross_modality_center_loss(F.normalize(out["pooled"], dim=1), labels, modality,
                                               self.get("rho", 0.7))
        return {"sid": sid, "cc": self.get("lambda_cc", 1.0) * cc,
                "m": self.get("lambda_m", 2.5) * lm}

    def _lba(self, model: ReIDNet, out: dict, labels: torch.Tensor) -> dict:
        n = labels.shape[0] // 2
        idx = torch.arange(n)
        pos = idx                        # same slot in the other half: same identity
        neg = (idx + self.k) % n         # next identity's slot: a different identity
        if torch.any(labels[:n][neg] == labels[:n]):
            raise ValueError("LbA needs at least 2 identities per batch (data.p >= 2)")
        beta = self.get("beta", 50.0)
        margin = self.get("dt_margin", 0.3)
        ic_terms, dt_terms = [], []
        for level in ("conv4", "conv5"):
            f = out[level]
            rgb, ir = f[:n], f[n:]
            for anchor, other, ylab in ((rgb, ir, labels[:n]), (ir, rgb, labels[n:])):
                recon_pos, coatt = losses.cmalign(anchor, other[pos], beta)
                recon_neg, _ = losses.cmalign(anchor, other[neg], beta)
                dt_terms.append(losses.dense_triplet_loss(anchor, recon_pos, recon_neg, coatt, margin))
                if level == "conv5":
                    # ID consistency: the reconstruction from the positive keeps the identity,
                    # classified by the same GeM + BNNeck + classifier head.
                    logits = model.classifier(model.bnneck(model.pool(recon_pos)))
                    ic_terms.append(losses.id_loss(logits, ylab, self.get("label_smoothing", 0.1)))
        return {"ic": self.get("lambda_ic", 1.0) * sum(ic_terms) / len(ic_terms),
                "dt": self.get("lambda_dt", 0.5) * sum(dt_terms) / len(dt_terms)}
