"""The training objectives: baseline, DANet, LbA (+ optional attribute heads). A Method owns any
extra trainable parts (DANet's modality-specific classifiers and their EMA teachers, the
attribute heads) so they are optimised and checkpointed with the model; none is exported.

Batches come from CrossModalIdentitySampler: [RGB P×K | thermal P×K], slot i of the RGB half
has the same identity as slot i of the thermal half; with `data.channel_aug_mode = "add"` the
RGB images' channel-exchanged views follow as a third block (modality 0).

Precision: the network forward may run under bf16 autocast (`train.amp`); every output is cast
to float32 before any loss or distance (in bf16 a pairwise distance at d ≈ 110 is off by ~0.2,
the size of the 0.3 margin). LbA's alignment (cosine similarities × β = 50) runs in float32 too.
"""
from __future__ import annotations

import contextlib
import random

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import losses
from .model import ReIDNet

METHODS = ("baseline", "danet", "lba")

# method.<key> options, with their defaults (the defaults reproduce the runs in RESULTS.md).
COMMON = {"label_smoothing": 0.1, "triplet_margin": 0.3, "triplet_weight": 1.0, "lambda_attr": 1.0,
          # co-observed pairs (data.pairs): cross-modal InfoNCE on the test feature, 0 = off
          "lambda_pair": 0.0, "pair_temperature": 0.1, "pair_negatives": "other_ids"}
OPTIONS = {
    "baseline": {},
    "danet": {"rho": 0.7, "lambda_cc": 1.0, "lambda_m": 2.5, "sid_weight": 1.0,
              "sid_live": False,            # L_sid on live features (authors' code) or detached
              "kl": "frozen",               # "frozen": eq. 5 through frozen copies; "ema": EMA teachers
              "ema_rate": 0.2, "ema_anneal_from": 0,
              "cc": "paper",                # "paper": eq. 3; "centre_cluster": the authors' code
              "cc_feature": "normalized"},  # "normalized" or "raw" pooled (pre-BNNeck) features
    "lba": {"beta": 50.0, "dt_margin": 0.3, "lambda_ic": 1.0, "lambda_dt": 0.5,
            "ic_levels": "conv5",           # "conv5" or "both" (conv4 reconstruction through layer4 too)
            "pairs": "slot",                # "slot" or "random" (LbA's code)
            "coatt": "raw",                 # "raw" or "minmax" (normalised and detached, LbA's code)
            "dt_reduction": "coatt"},       # "coatt" (Σ A·h / Σ A per term, averaged) or "mean" (LbA's code)
}
CHOICES = {"kl": ("frozen", "ema"), "cc": ("paper", "centre_cluster"), "cc_feature": ("normalized", "raw"),
           "ic_levels": ("conv5", "both"), "pairs": ("slot", "random"), "coatt": ("raw", "minmax"),
           "dt_reduction": ("coatt", "mean"), "pair_negatives": ("other_ids", "all")}


class Method(nn.Module):
    def __init__(self, name: str, params: dict, num_classes: int, embedding_dim: int, k: int,
                 attr_classes: list[int] | None = None, attr_table: torch.Tensor | None = None,
                 attr_names: list[str] | None = None):
        super().__init__()
        if name not in METHODS:
            raise ValueError(f"unknown method.name {name!r}; choose one of {METHODS}")
        known = {**COMMON, **OPTIONS[name]}
        unknown = sorted(set(params) - set(known))
        if unknown:
            raise ValueError(f"method.{unknown[0]} is not an option of method {name!r}; its options: {sorted(known)}")
        self.name = name
        self.p = {**known, **params}
        for key, allowed in CHOICES.items():
            if key in known and self.p[key] not in allowed:
                raise ValueError(f"method.{key} = {self.p[key]!r}: choose one of {allowed}")
        self.k = k
        self._layout_checked = False
        self.epoch = 0
        self.rng = random.Random(0)
        self.autocast = contextlib.nullcontext
        if name == "danet":
            # C_v and C_r of DANet eq. 4.
            self.cls_rgb = nn.Linear(embedding_dim, num_classes, bias=False)
            self.cls_ir = nn.Linear(embedding_dim, num_classes, bias=False)
            nn.init.normal_(self.cls_rgb.weight, std=0.001)
            nn.init.normal_(self.cls_ir.weight, std=0.001)
            if self.p["kl"] == "ema":
                # The authors' teachers: EMA copies, starting equal to the live classifiers.
                self.register_buffer("ema_rgb", self.cls_rgb.weight.detach().clone())
                self.register_buffer("ema_ir", self.cls_ir.weight.detach().clone())
        self.attr_names = list(attr_names or [])
        if attr_classes:
            if attr_table is None or attr_table.shape != (num_classes, len(attr_classes)):
                raise ValueError("attribute heads need a [classes, attributes] table of class indices")
            self.attr_heads = nn.ModuleList([nn.Linear(embedding_dim, c) for c in attr_classes])
            self.register_buffer("attr_table", attr_table.long(), persistent=False)
        else:
            self.attr_heads = None

    # ------------------------------------------------------------ plumbing

    def get(self, key: str) -> float:
        return float(self.p[key])

    def configure(self, autocast=None, seed: int = 0) -> None:
        """autocast: a context-manager factory wrapping the network forward (bf16 on CUDA)."""
        self.autocast = autocast or contextlib.nullcontext
        self.rng = random.Random(seed)

    def set_epoch(self, epoch: float) -> None:
        """The epoch of the (possibly time-scaled) schedule, in the config's epoch units."""
        self.epoch = epoch

    def ema_rate(self) -> float:
        """DANet's teacher update rate; with ema_anneal_from = E the authors' code scales it by
        min(E / (epoch + 1), 1) from epoch E on (1-based epochs)."""
        rate, start = self.get("ema_rate"), self.get("ema_anneal_from")
        if start > 0:
            rate *= min(start / (int(self.epoch) + 2), 1.0)
        return rate

    def head_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]

    # ------------------------------------------------------------ forward

    def forward(self, model: ReIDNet, images: torch.Tensor, labels: torch.Tensor,
                modality: torch.Tensor, paired: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """paired: [P·K] bool on the CPU, RGB slot i and thermal slot i are co-observed
        (CrossModalIdentitySampler.paired_mask); needed when method.lambda_pair > 0."""
        mod_cpu = modality.cpu()
        with self.autocast():
            raw = model(images, mod_cpu)
        out = {k: v.float() for k, v in raw.items()}
        parts = {"id": losses.id_loss(out["logits"], labels, self.get("label_smoothing"))}
        if self.get("triplet_weight") > 0:
            parts["tri"] = self.get("triplet_weight") * losses.hard_triplet_loss(
                out["pooled"], labels, self.get("triplet_margin"))
        if self.name == "danet":
            parts.update(self._danet(out, labels, mod_cpu))
        elif self.name == "lba":
            parts.update(self._lba(model, out, labels, mod_cpu))
        if self.attr_heads is not None:
            parts["attr"] = self.get("lambda_attr") * self._attributes(out["bn"], labels)
        if self.get("lambda_pair") > 0:
            parts["pair"] = self.get("lambda_pair") * self._pairs(model, out, labels, mod_cpu, paired)
        total = sum(parts.values())
        # detached tensors, not floats: reading them would wait for the device every step
        return total, {k: v.detach() for k, v in parts.items()}

    def _pairs(self, model: ReIDNet, out: dict, labels: torch.Tensor, modality: torch.Tensor,
               paired: torch.Tensor | None) -> torch.Tensor:
        """Cross-modal InfoNCE between the slot-aligned halves [RGB P·K | thermal P·K] on the
        feature the model embeds at test time (losses.paired_infonce)."""
        if paired is None:
            raise ValueError("method.lambda_pair > 0 needs co-observed pairs in the batches: set data.pairs "
                             "(e.g. idx/pairs.txt of `vireid synth regdb --paired`)")
        n = paired.numel()
        if modality.numel() < 2 * n or not (bool((modality[:n] == 0).all()) and bool((modality[n:2 * n] == 1).all())):
            raise ValueError("method.lambda_pair needs batches [RGB P×K | thermal P×K] from the identity sampler")
        f = out["bn"] if model.test_feature == "bn" else out["pooled"]
        return losses.paired_infonce(f[:n], f[n:2 * n], labels[:n], paired.to(f.device),
                                     self.get("pair_temperature"), self.p["pair_negatives"])

    def _attributes(self, bn: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean over attributes of the cross-entropy of each head on the BNNeck feature of every
        image (both modalities share these attributes); -1 targets are ignored."""
        target = self.attr_table[labels]
        terms = []
        for a, head in enumerate(self.attr_heads):
            t = target[:, a]
            # an attribute that no image of this batch has (all -1) contributes 0, not NaN
            terms.append(F.cross_entropy(head(bn), t, ignore_index=-1, reduction="sum")
                         / (t >= 0).sum().clamp(min=1))
        return torch.stack(terms).mean()

    def _danet(self, out: dict, labels: torch.Tensor, modality: torch.Tensor) -> dict:
        """modality: on the CPU (row selection without a device sync)."""
        bn = out["bn"]
        dev = labels.device
        iv = (modality == 0).nonzero(as_tuple=True)[0].to(dev)
        ir = (modality == 1).nonzero(as_tuple=True)[0].to(dev)
        fv, fr = bn[iv], bn[ir]
        yv, yr = labels[iv], labels[ir]
        # L_sid (eq. 4): each modality classifier learns from its own modality only. The
        # authors' code trains it on the live features (the backbone gets this gradient too);
        # sid_live = false detaches them so the classifiers only observe.
        sv, sr = (fv, fr) if self.p["sid_live"] else (fv.detach(), fr.detach())
        own_v, own_r = self.cls_rgb(sv), self.cls_ir(sr)
        sid = F.cross_entropy(own_v, yv) + F.cross_entropy(own_r, yr)
        if self.p["kl"] == "ema":
            # The authors' code: teachers are EMA copies of the other modality's classifier,
            # updated every step before use; KL(own || teacher) over all rows, batchmean.
            rate = self.ema_rate()
            losses.ema_update(self.ema_rgb, self.cls_rgb.weight, rate)
            losses.ema_update(self.ema_ir, self.cls_ir.weight, rate)
            with torch.no_grad():
                teach = torch.cat([F.linear(fv, self.ema_ir), F.linear(fr, self.ema_rgb)])
            own = torch.cat([self.cls_rgb(fv), self.cls_ir(fr)]) if not self.p["sid_live"] else \
                torch.cat([own_v, own_r])
            lm = losses.ema_mutual_kl(own, teach)
        else:
            # L_M (eq. 5) through frozen copies of the classifiers: only the backbone moves to
            # make the two modality classifiers agree (mutual-learning alignment of the logits).
            wv, wr = self.cls_rgb.weight.detach(), self.cls_ir.weight.detach()
            lm = losses.mutual_learning_loss(F.linear(fv, wr), F.linear(fv, wv), F.linear(fr, wv), F.linear(fr, wr))
        pooled = out["pooled"]
        if self.p["cc_feature"] == "normalized":
            pooled = F.normalize(pooled, dim=1)   # so that ρ = 0.7 has a fixed scale
        if self.p["cc"] == "paper":
            cc = losses.cross_modality_center_loss(pooled, labels, modality.to(dev), self.get("rho"))
        else:
            cc = losses.centre_cluster_loss(pooled, labels, self.get("rho"))
        return {"sid": self.get("sid_weight") * sid, "cc": self.get("lambda_cc") * cc,
                "m": self.get("lambda_m") * lm}

    def _lba(self, model: ReIDNet, out: dict, labels: torch.Tensor, modality: torch.Tensor) -> dict:
        n = int((modality == 1).sum())
        if n == 0 or not (bool((modality[:n] == 0).all()) and bool((modality[n:2 * n] == 1).all())):
            raise ValueError("LbA needs batches [RGB P×K | thermal P×K] from the identity sampler")
        if n % self.k:
            raise ValueError(f"LbA: {n} thermal images per batch is not a multiple of data.k = {self.k}")
        p = n // self.k
        if not self._layout_checked:   # once: reading labels back waits for the device
            blocks = labels[:n].view(p, self.k)
            if bool((blocks != blocks[:, :1]).any()) or bool((labels[:n] != labels[n:2 * n]).any()):
                raise ValueError("LbA needs identity blocks of data.k slots, the same in both halves "
                                 "(identity sampler)")
            self._layout_checked = True
        if p < 2:
            raise ValueError("LbA needs at least 2 identities per batch (data.p >= 2)")
        # partners in the other half: [RGB anchors → thermal partners, thermal anchors → RGB]
        pv, nv = losses.lba_pairs(p, self.k, self.p["pairs"], self.rng)
        pt, nt = losses.lba_pairs(p, self.k, self.p["pairs"], self.rng)
        dev = labels.device
        pos = torch.cat([pv + n, pt]).to(dev)
        neg = torch.cat([nv + n, nt]).to(dev)
        beta, margin = self.get("beta"), self.get("dt_margin")
        ls = self.get("label_smoothing")
        levels = ("conv4", "conv5")
        ic_levels = levels if self.p["ic_levels"] == "both" else ("conv5",)
        y2 = labels[:2 * n]
        ic, dt_level, dt_terms = [], [], []
        for level in levels:
            f = out[level][:2 * n]
            recon_pos, coatt = losses.cmalign(f, f[pos], beta, self.p["coatt"])
            recon_neg, _ = losses.cmalign(f, f[neg], beta, self.p["coatt"])
            if self.p["dt_reduction"] == "mean":
                dt_level.append(losses.dense_triplet_loss(f, recon_pos, recon_neg, coatt, margin, "mean"))
            else:
                for h in (slice(0, n), slice(n, 2 * n)):
                    dt_terms.append(losses.dense_triplet_loss(f[h], recon_pos[h], recon_neg[h], coatt[h], margin))
            if level in ic_levels:
                # ID consistency: the reconstruction from the positive keeps the identity. conv5:
                # pooling → BNNeck → classifier; conv4: through layer4 first (LbA's code).
                with self.autocast():
                    x = recon_pos if level == "conv5" else model.layer4(recon_pos)
                    logits = model.head(x)["logits"]
                ic.append(losses.id_loss(logits.float(), y2, ls))
        dt = sum(dt_level) if dt_level else sum(dt_terms) / len(dt_terms)
        return {"ic": self.get("lambda_ic") * sum(ic), "dt": self.get("lambda_dt") * dt}
