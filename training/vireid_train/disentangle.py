"""Disentangled structure/appearance (Jambigi, "RGB Infrared Cross Modal Person
Re-identification"): identity-specific (appearance) and identity-independent (structure)
latent spaces, enforced with a generative model. Two variants, as in the paper.

Image space (`method.name = "disentangle"`, the paper's §3 and §4.2; networks after DG-Net,
Zheng et al. 2019, which the paper follows). One network for both modalities:
  E_a  appearance encoder: the re-id ResNet with global max pooling (`model.pooling = "max"`);
       its pooled feature a is the appearance code, its BNNeck → classifier gives p(y|x);
  E_s  structure encoder (Table 3): the grey image → 3×3 convolutions (strides 2, 1, 1, 2),
       4 residual blocks, atrous spatial pyramid pooling, 1×1 → s [struct_dim, H/4, W/4];
  G    generator (Table 4): 4 residual blocks with adaptive instance normalisation whose
       parameters an MLP makes from a, 2 × (upsample, 5×5 conv), 3×3 convs, 1×1 → image;
  D    discriminator (Table 5), least-squares GAN.
Per batch, x₁ takes its same-identity, same-modality partner x₂ (the next slot of its identity
block) and a partner x_q of another identity drawn at random from the batch (either modality):
  L_simple = ‖x₁ − G(a₁, s₁)‖₁,  L_cross = ‖x₁ − G(a₂, s₁)‖₁
  L_id = CE(p(x₁), y₁) + λ_id·CE(p(G(a_q, s₁)), y_q)
  L_code = ‖s₁ − E_s(G(a_q, s₁))‖₁ + ‖a_q − E_a(G(a_q, s₁))‖₁
  L_adv = LSGAN(D(x₁) real, D(G(a_q, s₁)) fake)
  L_dis = KL(p(G(a_q, s₁)) ‖ q(G(a_q, s₁))), q = a pre-trained classifier (`method.teacher`)
  L = λ_recon·(L_simple + L_cross) + L_id + L_code + L_adv + L_dis
with L_code and L_dis switched on after `late_start_iter` iterations (the paper: 30K) or, when
`late_start_epoch` >= 0, at that point of the schedule in epochs (what a time-budgeted run needs:
the schedule is fitted to the budget, so the switch stays at the same fraction of it). At test
time the appearance code of E_a is the embedding (`model.test_feature = "pooled"`).

Low-dimensional variant (`method.name = "disentangle_lowdim"`, the paper's §4.1): on
embeddings pre-extracted by an already trained embedder (`method.embedder`, a vireid_train
checkpoint), one auto-encoder per modality (Table 2: encoders D→1024→2048→512→64 for the
identity-specific code s and the modality code m; decoders with an s and an m tower summed),
trained on triplets [X₁ RGB, X₂ thermal same person, X₃ thermal other person]:
  L = L_simple + L_cross + L_dis + L_triplet
  L_simple = Σ ‖X − D(m_X, s_X)‖₁ over X₁, X₂, X₃;  L_cross = ‖X₁ − D_rgb(m₁, s₂)‖₁ + ‖X₂ − D_ir(m₂, s₁)‖₁
  L_dis = CE(C(D_rgb(m₁, s₃)), y₃) + CE(C(D_ir(m₃, s₁)), y₁), C a classifier pre-trained on the embeddings
  L_triplet = [margin + ‖s₁ − s₂‖₁ − ‖s₁ − s₃‖₁]₊ (hardest positive and negative in the batch: "hard")
It trains in seconds on the CPU; the exported model is the embedder followed by the
modality's encoder (a per-modality graph whose output is s).
"""
from __future__ import annotations

import contextlib
import copy
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import gan, losses
from .model import RGB, THERMAL, ReIDNet

OPTIONS = {
    "label_smoothing": 0.0, "triplet_margin": 0.3, "triplet_weight": 0.0,
    "lambda_recon": 5.0, "lambda_id": 0.5, "lambda_code": 1.0, "lambda_adv": 1.0, "lambda_dis": 1.0,
    "late_start_iter": 30000, "late_start_epoch": -1.0, "teacher": "",
    "struct_base": 16, "struct_dim": 128, "mlp_dim": 256, "n_res": 4, "dis_dim": 32,
    "gan_lr": 1e-4, "gan_betas": [0.0, 0.999], "gan_weight_decay": 5e-4,
}
SMOKE = ["method.struct_base=4", "method.struct_dim=8", "method.mlp_dim=16", "method.n_res=1", "method.dis_dim=4",
         "method.late_start_iter=0", "method.teacher="]


# ---------------------------------------------------------------- networks (image space)

class ASPP(nn.Module):
    """Atrous spatial pyramid pooling (Chen et al. 2017): a 1×1 branch and three 3×3 branches
    dilated 2, 4, 6 (zero padding), concatenated, 1×1 back to `dim`; instance norm, ReLU."""

    def __init__(self, dim: int):
        super().__init__()
        b = max(1, dim // 2)
        self.branches = nn.ModuleList([gan.ConvBlock(dim, b, 1, 1, 0, "in", "relu", "zero")] + [
            gan.ConvBlock(dim, b, 3, 1, r, "in", "relu", "zero", dilation=r) for r in (2, 4, 6)])
        self.out = gan.ConvBlock(4 * b, dim, 1, 1, 0, "in", "relu", "zero")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(torch.cat([br(x) for br in self.branches], 1))


class StructureEncoder(nn.Module):
    """Table 3 with base width w (the paper: 16): grey image [B,1,H,W] → s [B, struct_dim, H/4, W/4]."""

    def __init__(self, base: int = 16, struct_dim: int = 128, n_res: int = 4):
        super().__init__()
        w = base
        self.net = nn.Sequential(
            gan.ConvBlock(1, w, 3, 2, 1, "in", "relu"), gan.ConvBlock(w, 2 * w, 3, 1, 1, "in", "relu"),
            gan.ConvBlock(2 * w, 2 * w, 3, 1, 1, "in", "relu"), gan.ConvBlock(2 * w, 4 * w, 3, 2, 1, "in", "relu"),
            *[gan.ResBlock(4 * w, "in") for _ in range(n_res)], ASPP(4 * w), nn.Conv2d(4 * w, struct_dim, 1))
        gan.init_kaiming(self)

    def forward(self, x_grey: torch.Tensor) -> torch.Tensor:
        return self.net(x_grey)


class Generator(nn.Module):
    """Table 4: (s, AdaIN parameters) → image [B,3,H,W] in [-1, 1]. After the AdaIN blocks only
    layer norm (over C, H, W): an instance norm there would remove the per-image channel
    statistics that carry the appearance."""

    def __init__(self, struct_dim: int, app_dim: int, mlp_dim: int, n_res: int):
        super().__init__()
        self.res = gan.AdaINResBlocks(n_res, struct_dim)
        self.mlp = gan.mlp(app_dim, self.res.num_params, mlp_dim, 3)
        d1, d2 = max(1, struct_dim // 2), max(1, struct_dim // 4)
        self.up = nn.Sequential(gan.upsample_block(struct_dim, d1), gan.upsample_block(d1, d2),
                                gan.ConvBlock(d2, d2, 3, 1, 1, "ln", "relu"), gan.ConvBlock(d2, d2, 3, 1, 1, "ln", "relu"),
                                gan.ConvBlock(d2, 3, 1, 1, 0, "none", "tanh"))
        gan.init_kaiming(self)

    def params(self, a: torch.Tensor) -> torch.Tensor:
        return self.mlp(a)

    def forward(self, s: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        return self.up(self.res(s, params))


class Discriminator(nn.Module):
    """Table 5 (one scale, base width w: the paper 32): 1×1, 3×3, 3×3/2, 3×3, 3×3/2 convolutions,
    4 residual blocks, 1×1 to a score per patch; leaky ReLU, no normalisation. Returns [scores]
    (the multi-scale discriminator's format)."""

    def __init__(self, w: int = 32, n_res: int = 4):
        super().__init__()
        self.net = nn.Sequential(
            gan.ConvBlock(3, w, 1, 1, 0, "none", "lrelu"), gan.ConvBlock(w, w, 3, 1, 1, "none", "lrelu"),
            gan.ConvBlock(w, w, 3, 2, 1, "none", "lrelu"), gan.ConvBlock(w, w, 3, 1, 1, "none", "lrelu"),
            gan.ConvBlock(w, 2 * w, 3, 2, 1, "none", "lrelu"), *[gan.ResBlock(2 * w, "none") for _ in range(n_res)],
            nn.Conv2d(2 * w, 1, 1))
        gan.init_gaussian(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.net(x)]


def build_model(cfg: dict, num_classes: int) -> ReIDNet:
    m = cfg["model"]
    if m.get("two_stream"):
        raise ValueError("method disentangle: set model.two_stream = false (one appearance encoder for both "
                         "modalities, as the paper's image-space model)")
    gan.check_options("disentangle", {k: v for k, v in cfg["method"].items() if k != "name"}, OPTIONS)
    return ReIDNet(num_classes, arch=m["arch"], two_stream=False, gem_p=float(m["gem_p"]),
                   pooling=m.get("pooling", "gem"), gem_learnable=bool(m.get("gem_learnable", True)),
                   test_feature=m.get("test_feature", "bn"))


def same_identity_partners(n: int, k: int, device=None) -> torch.Tensor:
    """For a batch [RGB n | thermal n] of identity blocks of k slots: the next slot of the same
    block (same person, same modality, another image)."""
    idx = torch.arange(2 * n, device=device)
    block = idx // k
    return block * k + (idx % k + 1) % k


def other_identity_partners(labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """For each row, a uniformly random row with another label (either modality); no device sync."""
    b = labels.numel()
    scores = torch.rand(b, b, generator=gen, device=labels.device)
    scores = scores.masked_fill(labels[:, None] == labels[None, :], -1.0)
    return scores.argmax(1)


class DisentangleMethod(nn.Module):
    """Owns E_s, G and D (training only) and, not in its state, the frozen teacher."""

    name = "disentangle"

    def __init__(self, params: dict, num_classes: int, cfg: dict, app_dim: int, teacher: bool = True):
        super().__init__()
        self.p = p = gan.check_options("disentangle", params, OPTIONS)
        self.k = int(cfg["data"]["k"])
        if self.k < 2:
            raise ValueError("method disentangle: data.k must be >= 2 (L_cross swaps the appearance of two images "
                             "of the same person in the same modality)")
        if cfg["data"]["height"] % 4 or cfg["data"]["width"] % 4:
            raise ValueError("method disentangle: data.height and data.width must be multiples of 4")
        self.struct = StructureEncoder(int(p["struct_base"]), int(p["struct_dim"]), int(p["n_res"]))
        self.gen = Generator(int(p["struct_dim"]), app_dim, int(p["mlp_dim"]), int(p["n_res"]))
        self.dis = Discriminator(int(p["dis_dim"]), int(p["n_res"]))
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self._steps: int | None = None
        self.train_lr = float(cfg["train"]["lr"])
        self.autocast = contextlib.nullcontext
        self.gen_rng = torch.Generator()
        self.num_classes = num_classes
        self.epoch = 0.0
        object.__setattr__(self, "teacher", None)     # frozen, not a submodule: not in the checkpoint
        if teacher and p["teacher"] and self.get("lambda_dis") > 0:
            object.__setattr__(self, "teacher", load_teacher(p["teacher"], num_classes, cfg))

    def _apply(self, fn, *args, **kw):
        super()._apply(fn, *args, **kw)
        if self.teacher is not None:
            self.teacher._apply(fn, *args, **kw)
        return self

    def get(self, key: str) -> float:
        return float(self.p[key])

    def configure(self, autocast=None, seed: int = 0) -> None:
        self.autocast = autocast or contextlib.nullcontext
        dev = self.step.device
        self.gen_rng = torch.Generator(device=dev)
        self.gen_rng.manual_seed(seed)

    def set_epoch(self, epoch: float) -> None:
        self.epoch = epoch

    def head_parameters(self) -> list:
        return []

    def param_groups(self, model: ReIDNet) -> list[dict]:
        betas, wd = self.p["gan_betas"], self.get("gan_weight_decay")
        gen = list(self.struct.parameters()) + list(self.gen.parameters())
        return [gan.gan_group(gen, self.train_lr, self.get("gan_lr"), betas, wd, "generators"),
                gan.gan_group(self.dis.parameters(), self.train_lr, self.get("gan_lr"), betas, wd, "discriminators")]

    def late(self) -> bool:
        if self.get("late_start_epoch") >= 0:
            return self.epoch >= self.get("late_start_epoch")
        if self._steps is None:
            self._steps = int(self.step)
        return self._steps >= self.get("late_start_iter")

    def forward(self, model: ReIDNet, images: torch.Tensor, labels: torch.Tensor,
                modality: torch.Tensor, paired: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """paired (co-observed pairs, data.pairs): not used by this method."""
        mod = modality.cpu()
        n = gan.halves(mod, "method disentangle")
        dev = images.device
        if self.gen_rng.device != dev:
            self.configure(self.autocast)
        late = self.late()
        same = same_identity_partners(n, self.k, dev)
        other = other_identity_partners(labels, self.gen_rng)
        g = gan.to_gan(images)
        with self.autocast():
            out = model(images, mod)
            s = self.struct(gan.grey(g))
            prm = self.gen.params(out["pooled"])
            x_self = self.gen(s, prm)
            x_cross = self.gen(s, prm[same])
            x_swap = self.gen(s, prm[other])
            out_swap = model(gan.from_gan(x_swap), RGB)      # one network for both modalities
        out = {k: v.float() for k, v in out.items()}
        out_swap = {k: v.float() for k, v in out_swap.items()}
        ls = self.get("label_smoothing")
        parts = {"recon": self.get("lambda_recon") * (gan.l1(x_self, g) + gan.l1(x_cross, g)),
                 "id": losses.id_loss(out["logits"], labels, ls),
                 "id_recon": self.get("lambda_id") * losses.id_loss(out_swap["logits"], labels[other], ls)}
        if self.get("triplet_weight") > 0:
            parts["tri"] = self.get("triplet_weight") * losses.hard_triplet_loss(
                out["pooled"], labels, self.get("triplet_margin"))
        with self.autocast():
            g_adv, d_adv = gan.adversarial_terms(self.dis, g, x_swap)
        parts["adv"] = self.get("lambda_adv") * g_adv
        parts["dis_d"] = d_adv
        if late:
            with self.autocast():
                s_swap = self.struct(gan.grey(x_swap))
            parts["code"] = self.get("lambda_code") * (gan.l1(s_swap, s) + gan.l1(out_swap["pooled"], out["pooled"][other]))
            if self.teacher is not None:
                with torch.no_grad(), self.autocast():
                    # a two-stream teacher sees each image through the stem of its appearance donor
                    tmod = mod[other.cpu()] if self.teacher.two_stream else RGB
                    q = self.teacher(gan.from_gan(x_swap.detach()), tmod)["logits"]
                parts["kl"] = self.get("lambda_dis") * gan.kl_rows(out_swap["logits"], q.float())
        if self.training:
            self.step += 1
            self._steps = (self._steps or 0) + 1
        total = sum(parts.values())
        return total, {k: v.detach() for k, v in parts.items()}

    @torch.no_grad()
    def translate(self, model: ReIDNet, rgb: torch.Tensor, ir: torch.Tensor, rgb_style: torch.Tensor,
                  ir_style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(RGB → thermal, thermal → RGB) in [-1, 1]: the input's structure code and the
        appearance code of an image of the same person in the target modality."""
        a_ir = model(ir_style, THERMAL)["pooled"]
        a_rgb = model(rgb_style, RGB)["pooled"]
        rgb2ir = self.gen(self.struct(gan.grey(gan.to_gan(rgb))), self.gen.params(a_ir))
        ir2rgb = self.gen(self.struct(gan.grey(gan.to_gan(ir))), self.gen.params(a_rgb))
        return gan.grey(rgb2ir), ir2rgb


def load_teacher(path: str, num_classes: int, cfg: dict) -> nn.Module:
    """The paper's "pre trained classifier trained on rgb and ir images": a vireid_train
    checkpoint of the same training set (same classes) and input size, frozen."""
    from .train import load_checkpoint
    if not Path(path).is_file():
        raise FileNotFoundError(f"method.teacher = {path}: no such checkpoint; train a baseline on the same data first "
                                "(e.g. configs/baseline.toml) or set method.teacher = \"\" to train without L_dis")
    teacher, ck = load_checkpoint(path)
    if ck["num_classes"] != num_classes:
        raise ValueError(f"method.teacher = {path}: it classifies {ck['num_classes']} identities, this training set "
                         f"has {num_classes}; the teacher must be trained on the same training set")
    d = ck["config"]["data"]
    if (d["height"], d["width"]) != (cfg["data"]["height"], cfg["data"]["width"]):
        raise ValueError(f"method.teacher = {path}: trained at {d['height']}x{d['width']}, this run is at "
                         f"{cfg['data']['height']}x{cfg['data']['width']}")
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher.eval()


# ---------------------------------------------------------------- the low-dimensional variant

LOWDIM_OPTIONS = {"embedder": "", "code_dim": 64, "hidden": [1024, 2048, 512], "triplet_margin": 0.3, "triplet": "hard",
                  "classifier_epochs": 20, "lambda_simple": 1.0, "lambda_cross": 1.0, "lambda_dis": 1.0,
                  "lambda_triplet": 1.0, "_embedder": None}
LOWDIM_CHOICES = {"triplet": ("hard", "random")}


def _tower(dims: list[int], last_relu: bool) -> nn.Sequential:
    mods = []
    for i, (a, b) in enumerate(zip(dims, dims[1:])):
        mods.append(nn.Linear(a, b))
        if i < len(dims) - 2 or last_relu:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


TABLE2 = (1024, 2048, 512)


class FeatureEncoder(nn.Module):
    """Table 2's ENCODER-S and ENCODER-M: D → 1024 → 2048 → 512 → code, ReLU after every layer
    (`method.hidden` = the three widths; the decoder's are the last two reversed)."""

    def __init__(self, dim: int, code: int = 64, hidden: tuple = TABLE2):
        super().__init__()
        self.s = _tower([dim, *hidden, code], True)
        self.m = _tower([dim, *hidden, code], True)

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.s(f), self.m(f)


class FeatureDecoder(nn.Module):
    """Table 2's DECODER: an s tower and an m tower (code → 512 → 2048 → D), summed. The last
    layer of each tower is linear (the table's ReLU could not give back negative embedding
    values)."""

    def __init__(self, dim: int, code: int = 64, hidden: tuple = TABLE2[1:][::-1]):
        super().__init__()
        self.s = _tower([code, *hidden, dim], False)
        self.m = _tower([code, *hidden, dim], False)

    def forward(self, m: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return self.s(s) + self.m(m)


def feature_classifier(dim: int, classes: int) -> nn.Sequential:
    """Table 2's CLASSIFIER: D → 512 (ReLU) → classes."""
    return nn.Sequential(nn.Linear(dim, 512), nn.ReLU(), nn.Linear(512, classes))


class LowDimNet(nn.Module):
    """The embedder followed by its modality's encoder; the embedding is s. Exported as one
    per-modality graph (`vireid.modality_handling = per_modality`)."""

    def __init__(self, embedder: nn.Module, num_classes: int, code: int = 64, hidden: tuple = TABLE2):
        super().__init__()
        self.embedder = embedder
        dim = embedder.embedding_dim
        hidden = tuple(int(h) for h in hidden)
        dec = hidden[1:][::-1]
        self.enc_rgb, self.enc_ir = FeatureEncoder(dim, code, hidden), FeatureEncoder(dim, code, hidden)
        self.dec_rgb, self.dec_ir = FeatureDecoder(dim, code, dec), FeatureDecoder(dim, code, dec)
        self.classifier = feature_classifier(dim, num_classes)
        self.two_stream = True
        self.embedding_dim = code
        self.arch = f"{embedder.arch}+disentangle_lowdim"
        self.test_feature = "s"

    def codes(self, f: torch.Tensor, modality: torch.Tensor | int) -> torch.Tensor:
        if isinstance(modality, int):
            return (self.enc_rgb if modality == RGB else self.enc_ir)(f)[0]
        m = modality.to(f.device).reshape(-1, 1).to(f.dtype)
        return self.enc_rgb(f)[0] * (1.0 - m) + self.enc_ir(f)[0] * m

    def embed(self, x: torch.Tensor, modality: torch.Tensor | int = RGB) -> torch.Tensor:
        return self.codes(self.embedder.embed(x, modality), modality)

    def export_forward(self, x: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
        from .model import EmbeddingGraph
        f = EmbeddingGraph(self.embedder)(x, modality) if self.embedder.two_stream else \
            self.embedder.trunk(self.embedder.stems[0](x))[self.embedder.test_feature]
        m = modality.reshape(-1, 1)
        return self.enc_rgb(f)[0] * (1.0 - m) + self.enc_ir(f)[0] * m


def build_lowdim_model(cfg: dict, num_classes: int) -> LowDimNet:
    from .train import build_model
    info = cfg["method"].get("_embedder")
    if not info:
        raise ValueError("a disentangle_lowdim network needs its embedder's configuration (written into the "
                         "checkpoint by training); train with method.embedder = PATH")
    embedder = build_model(info["config"], info["num_classes"])
    return LowDimNet(embedder, num_classes, int(cfg["method"].get("code_dim", 64)),
                     cfg["method"].get("hidden", TABLE2))


def lowdim_triplet(s1: torch.Tensor, s2: torch.Tensor, s3: torch.Tensor, y1: torch.Tensor, y3: torch.Tensor,
                   margin: float, mode: str = "hard") -> torch.Tensor:
    """[margin + ‖s₁ − s₂‖₁ − ‖s₁ − s₃‖₁]₊ averaged over the RGB anchors s₁ (labels y1; s₂ the
    slot-aligned thermal codes of the same people, s₃ thermal codes of others, labels y3).
    "hard": the hardest positive and hardest negative among all thermal codes of the batch;
    "random": the given s₂, s₃."""
    if mode == "random":
        return F.relu(margin + (s1 - s2).abs().sum(1) - (s1 - s3).abs().sum(1)).mean()
    if mode != "hard":
        raise ValueError(f"method.triplet = {mode!r}: choose hard or random")
    s_ir, y_ir = torch.cat([s2, s3]), torch.cat([y1, y3])
    d = torch.cdist(s1, s_ir, p=1)
    same = y1[:, None] == y_ir[None, :]
    pos = d.masked_fill(~same, float("-inf")).max(1).values
    neg = d.masked_fill(same, float("inf")).min(1).values
    return F.relu(margin + pos - neg).mean()


def lowdim_losses(net: LowDimNet, f1: torch.Tensor, f2: torch.Tensor, f3: torch.Tensor, y1: torch.Tensor,
                  y3: torch.Tensor, p: dict) -> dict:
    """The §4.1 objective on a batch of triplets: f1 RGB (labels y1), f2 thermal of the same
    person (slot-aligned), f3 thermal of another person (labels y3). `p`: the options."""
    s1, m1 = net.enc_rgb(f1)
    s2, m2 = net.enc_ir(f2)
    s3, m3 = net.enc_ir(f3)
    simple = gan.l1(net.dec_rgb(m1, s1), f1) + gan.l1(net.dec_ir(m2, s2), f2) + gan.l1(net.dec_ir(m3, s3), f3)
    cross = gan.l1(net.dec_rgb(m1, s2), f1) + gan.l1(net.dec_ir(m2, s1), f2)
    dis = F.cross_entropy(net.classifier(net.dec_rgb(m1, s3)), y3) + F.cross_entropy(net.classifier(net.dec_ir(m3, s1)), y1)
    tri = lowdim_triplet(s1, s2, s3, y1, y3, float(p["triplet_margin"]), p["triplet"])
    return {"simple": float(p["lambda_simple"]) * simple, "cross": float(p["lambda_cross"]) * cross,
            "dis": float(p["lambda_dis"]) * dis, "tri": float(p["lambda_triplet"]) * tri}


@torch.no_grad()
def extract(model: nn.Module, samples, height: int, width: int, batch: int = 128) -> torch.Tensor:
    """Raw (not normalised) embeddings of `samples` by `model.embed`, one modality per call."""
    from .data import decode_images
    from .gan import _stats
    model.eval()
    images = decode_images(samples, height, width)
    mod = torch.tensor([s.modality for s in samples])
    out = torch.empty(len(samples), model.embedding_dim)
    for m in (RGB, THERMAL):
        idx = (mod == m).nonzero(as_tuple=True)[0]
        for i in range(0, idx.numel(), batch):
            sel = idx[i:i + batch]
            x = images[sel].float() / 255.0
            mean, std = _stats(x)
            out[sel] = model.embed((x - mean) / std, m).float()
    return out


def train_lowdim(cfg: dict, resume: bool = True, log=print) -> dict:
    """`train` for method.name = "disentangle_lowdim": extract the training set's embeddings
    with the embedder, pre-train the classifier C on them, train the two auto-encoders, evaluate
    the s codes of unseen people (and the embedder alone, for comparison), save last.pt."""
    from . import data as D
    from .evaluate import evaluate, format_metrics, torch_embedder
    from .train import load_checkpoint
    t_start = time.time()
    t = cfg["train"]
    torch.set_num_threads(int(t["threads"]))
    random.seed(t["seed"]); np.random.seed(t["seed"]); torch.manual_seed(t["seed"])
    p = gan.check_options("disentangle_lowdim", {k: v for k, v in cfg["method"].items() if k != "name"},
                          LOWDIM_OPTIONS, LOWDIM_CHOICES)
    if not p["embedder"]:
        raise ValueError("method disentangle_lowdim needs method.embedder = PATH: the last.pt of an already trained "
                         "embedder (any method of this package) on the same training set")
    if str(t.get("device", "auto")) == "cuda":
        raise ValueError("method disentangle_lowdim runs on the CPU (train.device = cpu or auto)")
    embedder, ck_e = load_checkpoint(p["embedder"])
    if ck_e["config"]["method"]["name"] == "disentangle_lowdim":
        raise ValueError(f"method.embedder = {p['embedder']} is itself a disentangle_lowdim model; give the image embedder")
    d = cfg["data"]
    h, w = ck_e["config"]["data"]["height"], ck_e["config"]["data"]["width"]
    cfg = copy.deepcopy(cfg)
    cfg["data"]["height"], cfg["data"]["width"] = h, w          # the embedder's input size
    cfg["method"]["_embedder"] = {"config": ck_e["config"], "num_classes": ck_e["num_classes"]}
    out_dir = Path(t["out_dir"]); out_dir.mkdir(parents=True, exist_ok=True)
    samples, num_classes = D.load_train(d["dataset"], d["root"], d["trial"])
    t0 = time.time()
    feats = extract(embedder, samples, h, w)
    labels = torch.tensor([s.label for s in samples])
    log(f"lowdim: {len(samples)} training embeddings ({embedder.embedding_dim}-d, {num_classes} ids) extracted by "
        f"{p['embedder']} in {time.time() - t0:.1f}s")
    net = LowDimNet(embedder, num_classes, int(p["code_dim"]), p["hidden"])
    for q in net.embedder.parameters():
        q.requires_grad_(False)
    # 1. the classifier C on the embeddings (both modalities), then frozen
    opt_c = torch.optim.Adam(net.classifier.parameters(), lr=float(t["lr"]))
    gen = torch.Generator().manual_seed(int(t["seed"]))
    for ep in range(int(p["classifier_epochs"])):
        perm = torch.randperm(len(samples), generator=gen)
        for i in range(0, len(perm), 128):
            sel = perm[i:i + 128]
            loss = F.cross_entropy(net.classifier(feats[sel]), labels[sel])
            opt_c.zero_grad(); loss.backward(); opt_c.step()
    with torch.no_grad():
        acc = (net.classifier(feats).argmax(1) == labels).float().mean().item()
    log(f"lowdim: classifier C pre-trained for {p['classifier_epochs']} epochs, training accuracy {100 * acc:.1f}%")
    for q in net.classifier.parameters():
        q.requires_grad_(False)
    # 2. the auto-encoders on triplets [RGB id1 | thermal id1 | thermal id3]
    sampler = D.CrossModalIdentitySampler(samples, d["p"], d["k"], seed=int(t["seed"]),
                                          batches=int(t["batches_per_epoch"]) or None)
    params = [q for m in (net.enc_rgb, net.enc_ir, net.dec_rgb, net.dec_ir) for q in m.parameters()]
    opt = torch.optim.Adam(params, lr=float(t["lr"]), weight_decay=float(t["weight_decay"]))
    epochs, k = int(t["epochs"]), int(d["k"])
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        run, n_it = {}, 0
        for batch in sampler:
            half = len(batch) // 2
            rgb, ir = torch.tensor(batch[:half]), torch.tensor(batch[half:])
            other = ir.roll(-k)          # the next identity block: another person
            parts = lowdim_losses(net, feats[rgb], feats[ir], feats[other], labels[rgb], labels[other], p)
            loss = sum(parts.values())
            opt.zero_grad(); loss.backward(); opt.step()
            for key, v in parts.items():
                run[key] = run.get(key, 0.0) + float(v.detach())
            n_it += 1
        vals = {key: v / max(1, n_it) for key, v in run.items()}
        if not all(math.isfinite(v) for v in vals.values()):
            raise FloatingPointError(f"lowdim: loss became non-finite in epoch {epoch + 1} ({vals}): lower train.lr")
        if (epoch + 1) % max(1, int(t["log_every"])) == 0 or epoch + 1 == epochs:
            log(f"epoch {epoch + 1}/{epochs} " + " ".join(f"{key}={v:.3f}" for key, v in vals.items()))
    net.eval()
    eval_root = d.get("eval_root") or d["root"]
    base = evaluate(torch_embedder(embedder), d["dataset"], eval_root, h, w, trials=int(t["eval_trials"]), trial=d["trial"])
    log(f"lowdim: the embedder alone: {format_metrics(base)}")
    metrics = evaluate(torch_embedder(net), d["dataset"], eval_root, h, w, trials=int(t["eval_trials"]), trial=d["trial"])
    metrics.update({"method": "disentangle_lowdim", "seed": t["seed"], "epochs": epochs, "embedder": p["embedder"],
                    "embedder_metrics": base, "classifier_train_accuracy": acc, "device": "cpu",
                    "train_seconds": round(time.time() - t_start, 1), "test_feature": "s",
                    "eval_root": str(eval_root), "protocol": f"{d['dataset']} thermal->visible"})
    ck_path = out_dir / "last.pt"
    torch.save({"model": net.state_dict(), "epoch": epochs - 1, "config": cfg, "num_classes": num_classes,
                "method": {}, "kind": "disentangle_lowdim"}, ck_path)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    log(f"FINAL method=disentangle_lowdim {format_metrics(metrics)} checkpoint={ck_path}")
    sys.stdout.flush()
    return metrics
