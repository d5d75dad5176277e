"""Building blocks shared by the image-level methods (D2RL, JSIA-ReID, disentangled
structure/appearance): image spaces, convolution blocks with instance / layer / adaptive
instance normalisation, residual blocks, the AdaIN decoder's parameter MLP, the multi-scale
PatchGAN discriminator with the least-squares GAN losses, and the picture of translations.

Image spaces. The re-id networks take ImageNet-normalised RGB (what the data path and the
runtime feed: thermal is grey replicated to 3 channels). The generative parts work in [-1, 1]
(tanh outputs), as the image-translation papers of the time (CycleGAN, UNIT, MUNIT, DG-Net) do;
`to_gan` / `from_gan` convert between the two. Thermal images are one channel in the
generative parts (`grey`), replicated to 3 when a re-id network or the picture needs them.

Every loss here is a pure function of float32 tensors (methods cast bf16 outputs first), so
that tests can check it against hand-computed values.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import IMAGENET_MEAN, IMAGENET_STD

# The thermal channel of a unified (D2RL) image is normalised like an ImageNet channel: with
# the mean of the three channels' means and standard deviations.
IR_MEAN = sum(IMAGENET_MEAN) / 3
IR_STD = sum(IMAGENET_STD) / 3
LUMA = (0.299, 0.587, 0.114)


def _stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return mean, std


def to_gan(x: torch.Tensor) -> torch.Tensor:
    """ImageNet-normalised RGB [B,3,H,W] → [-1, 1]."""
    mean, std = _stats(x)
    return (x * std + mean) * 2.0 - 1.0


def from_gan(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] images (1 channel = grey, replicated) → ImageNet-normalised RGB [B,3,H,W]."""
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    mean, std = _stats(x)
    return ((x + 1.0) * 0.5 - mean) / std


def grey(x: torch.Tensor) -> torch.Tensor:
    """[B,3,H,W] → [B,1,H,W] luminance (ITU-R 601 weights; a grey-replicated image is unchanged)."""
    w = torch.tensor(LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def ir_channel(x_gan: torch.Tensor) -> torch.Tensor:
    """A [-1, 1] one-channel thermal image → the normalised thermal channel of a unified image."""
    return ((x_gan + 1.0) * 0.5 - IR_MEAN) / IR_STD


# ---------------------------------------------------------------- blocks

def adain(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Adaptive instance normalisation (Huang & Belongie 2017): each sample's channels are
    normalised over their positions, then scaled by weight[b, c] and shifted by bias[b, c]
    (MUNIT's convention: the scale is used as given, no +1)."""
    return F.instance_norm(x, eps=eps) * weight[:, :, None, None] + bias[:, :, None, None]


class ConvBlock(nn.Module):
    """pad → conv → norm → activation. norm: none | in (instance) | ln (layer norm over C,H,W
    with a per-channel affine) | bn | adain (parameters given to forward); activation: none |
    relu | lrelu (0.2) | tanh."""

    def __init__(self, cin: int, cout: int, k: int, stride: int = 1, pad: int = 0, norm: str = "none",
                 act: str = "relu", pad_type: str = "reflect", dilation: int = 1):
        super().__init__()
        self.pad = {"reflect": nn.ReflectionPad2d, "zero": nn.ZeroPad2d, "replicate": nn.ReplicationPad2d}[pad_type](pad)
        self.conv = nn.Conv2d(cin, cout, k, stride, 0, dilation=dilation, bias=True)
        self.norm_type = norm
        self.norm = {"none": None, "adain": None, "in": nn.InstanceNorm2d(cout), "bn": nn.BatchNorm2d(cout),
                     "ln": nn.GroupNorm(1, cout)}[norm]
        self.act = {"none": None, "relu": nn.ReLU(), "lrelu": nn.LeakyReLU(0.2), "tanh": nn.Tanh()}[act]
        self.out_channels = cout

    def forward(self, x: torch.Tensor, adain_params: tuple | None = None) -> torch.Tensor:
        x = self.conv(self.pad(x))
        if self.norm_type == "adain":
            x = adain(x, *adain_params)
        elif self.norm is not None:
            x = self.norm(x)
        return self.act(x) if self.act is not None else x


class ResBlock(nn.Module):
    """x + conv3x3(norm, relu) → conv3x3(norm). With norm = adain, forward takes the four
    tensors (weight₁, bias₁, weight₂, bias₂) of its two normalisations."""

    def __init__(self, dim: int, norm: str = "in", pad_type: str = "reflect"):
        super().__init__()
        self.c1 = ConvBlock(dim, dim, 3, 1, 1, norm, "relu", pad_type)
        self.c2 = ConvBlock(dim, dim, 3, 1, 1, norm, "none", pad_type)
        self.adain = norm == "adain"
        self.dim = dim

    def forward(self, x: torch.Tensor, params: tuple | None = None) -> torch.Tensor:
        if self.adain:
            w1, b1, w2, b2 = params
            return x + self.c2(self.c1(x, (w1, b1)), (w2, b2))
        return x + self.c2(self.c1(x))


class AdaINResBlocks(nn.Module):
    """n residual blocks with adaptive instance normalisation; `num_params` numbers per sample
    are split in order: for each block, (weight₁, bias₁, weight₂, bias₂) of `dim` each."""

    def __init__(self, n: int, dim: int, pad_type: str = "reflect"):
        super().__init__()
        self.blocks = nn.ModuleList([ResBlock(dim, "adain", pad_type) for _ in range(n)])
        self.dim = dim

    @property
    def num_params(self) -> int:
        return 4 * self.dim * len(self.blocks)

    def forward(self, x: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        if params.shape[1] != self.num_params:
            raise ValueError(f"AdaIN blocks need {self.num_params} parameters per sample, got {params.shape[1]}")
        chunks = params.split(self.dim, dim=1)
        for i, block in enumerate(self.blocks):
            x = block(x, chunks[4 * i:4 * i + 4])
        return x


def mlp(din: int, dout: int, hidden: int, layers: int = 3) -> nn.Sequential:
    """MUNIT's MLP: `layers` linear layers, ReLU between them, none after the last."""
    mods, d = [], din
    for _ in range(layers - 1):
        mods += [nn.Linear(d, hidden), nn.ReLU()]
        d = hidden
    mods.append(nn.Linear(d, dout))
    return nn.Sequential(*mods)


def upsample_block(cin: int, cout: int, norm: str = "ln", pad_type: str = "reflect") -> nn.Sequential:
    """Nearest ×2 upsampling, 5×5 convolution, layer norm, ReLU (MUNIT's and DG-Net's decoders)."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), ConvBlock(cin, cout, 5, 1, 2, norm, "relu", pad_type))


def init_gaussian(module: nn.Module, std: float = 0.02) -> None:
    """N(0, 0.02) convolution and linear weights, zero biases (MUNIT's and JSIA's discriminators)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def init_kaiming(module: nn.Module) -> None:
    """Kaiming-normal (fan in) convolution and linear weights, zero biases (the generators)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
            if m.bias is not None:
                nn.init.zeros_(m.bias)


# ---------------------------------------------------------------- discriminator

class MultiScaleDiscriminator(nn.Module):
    """PatchGAN discriminator at several scales (MUNIT's, JSIA-ReID's): per scale a stack of
    4×4 stride-2 convolutions (no normalisation, leaky ReLU 0.2, reflection padding) doubling the
    channels from `dim`, and a 1×1 convolution to one score per patch; the input is average-
    pooled by 2 between scales. Returns one score map per scale."""

    def __init__(self, in_channels: int, dim: int = 64, layers: int = 4, scales: int = 3):
        super().__init__()
        self.in_channels, self.layers, self.scales = in_channels, layers, scales
        self.nets = nn.ModuleList()
        for _ in range(scales):
            d, mods = dim, [ConvBlock(in_channels, dim, 4, 2, 1, "none", "lrelu")]
            for _ in range(layers - 1):
                mods.append(ConvBlock(d, 2 * d, 4, 2, 1, "none", "lrelu"))
                d *= 2
            mods.append(nn.Conv2d(d, 1, 1))
            self.nets.append(nn.Sequential(*mods))
        self.down = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        init_gaussian(self)

    def check_size(self, height: int, width: int, where: str) -> None:
        """Reflection padding needs every convolution's input to be at least 2 pixels each way."""
        h, w = height, width
        for s in range(self.scales):
            hh, ww = h, w
            for _ in range(self.layers):
                if min(hh, ww) < 2:
                    raise ValueError(f"{where}: {self.scales} scales x {self.layers} layers of the discriminator "
                                     f"do not fit {height}x{width} images (scale {s + 1} reaches {hh}x{ww}); lower "
                                     "method.dis_scales or method.dis_layers, or raise data.height/width")
                hh, ww = (hh + 1) // 2, (ww + 1) // 2
            h, w = (h + 1) // 2, (w + 1) // 2

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, net in enumerate(self.nets):
            if i:
                x = self.down(x)
            outs.append(net(x))
        return outs


def lsgan_d_loss(real_scores: list[torch.Tensor], fake_scores: list[torch.Tensor]) -> torch.Tensor:
    """Least-squares GAN (Mao et al.), the discriminator's side: Σ_scales mean((D(real) − 1)²) +
    mean(D(fake)²)."""
    return sum(((r.float() - 1.0) ** 2).mean() + (f.float() ** 2).mean() for r, f in zip(real_scores, fake_scores))


def lsgan_g_loss(fake_scores: list[torch.Tensor]) -> torch.Tensor:
    """Least-squares GAN, the generator's side: Σ_scales mean((D(fake) − 1)²)."""
    return sum(((f.float() - 1.0) ** 2).mean() for f in fake_scores)


def adversarial_terms(dis: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(generator term, discriminator term) of one discriminator in ONE backward pass: the
    generator term sees the discriminator's weights without gradient (they are switched off
    while it is recorded), the discriminator term sees the fake detached. Summed into one loss
    and stepped by one optimiser, each side gets only its own gradient (simultaneous updates
    instead of the alternating ones of the papers' code; see RESULTS.md)."""
    flags = [p.requires_grad for p in dis.parameters()]
    for p in dis.parameters():
        p.requires_grad_(False)
    try:
        g = lsgan_g_loss(dis(fake))
    finally:
        for p, f in zip(dis.parameters(), flags):
            p.requires_grad_(f)
    d = lsgan_d_loss(dis(real.detach()), dis(fake.detach()))
    return g, d


def l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.float() - b.float()).abs().mean()


def kl_rows(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """Mean over rows of KL(p ‖ q) = Σ_c p_c (log p_c − log q_c), from logits."""
    logp = F.log_softmax(p_logits.float(), dim=1)
    logq = F.log_softmax(q_logits.float(), dim=1)
    return (logp.exp() * (logp - logq)).sum(1).mean()


# ---------------------------------------------------------------- layout and parameter groups

def halves(modality: torch.Tensor, what: str) -> int:
    """n for a batch [RGB n | thermal n] (the identity sampler's layout: slot i of both halves is
    the same person); a clear error for anything else (e.g. CAJ's added view)."""
    n = int((modality == 1).sum())
    if n == 0 or modality.numel() != 2 * n or not bool((modality[:n] == 0).all()):
        raise ValueError(f"{what} needs batches [RGB P×K | thermal P×K] from the identity sampler (slot i of both "
                         "halves the same person); data.channel_aug_mode = \"add\" (a third block) is not supported")
    return n


def gan_group(params, cfg_lr: float, lr: float, betas, weight_decay: float, name: str) -> dict:
    """An Adam parameter group of the generative parts: its own learning rate (as a multiple of
    train.lr, so the run's schedule scales it too), betas and weight decay."""
    return {"params": [p for p in params if p.requires_grad], "lr_mult": float(lr) / float(cfg_lr),
            "betas": tuple(float(b) for b in betas), "weight_decay": float(weight_decay), "name": name}


def check_options(name: str, params: dict, options: dict, choices: dict | None = None) -> dict:
    unknown = sorted(set(params) - set(options))
    if unknown:
        raise ValueError(f"method.{unknown[0]} is not an option of method {name!r}; its options: {sorted(options)}")
    p = {**options, **params}
    for key, allowed in (choices or {}).items():
        if p[key] not in allowed:
            raise ValueError(f"method.{key} = {p[key]!r}: choose one of {allowed}")
    for key, default in options.items():
        if isinstance(default, list) and (not isinstance(p[key], list) or len(p[key]) != len(default)):
            raise ValueError(f"method.{key} = {p[key]!r}: a list of {len(default)} numbers, e.g. {default}")
    return p


# ---------------------------------------------------------------- the picture

def _to_pil(x_gan: torch.Tensor, scale: int):
    from PIL import Image
    img = ((x_gan.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte()
    if img.shape[0] == 1:
        img = img.expand(3, -1, -1)
    pil = Image.fromarray(img.permute(1, 2, 0).cpu().numpy(), "RGB")
    return pil.resize((pil.width * scale, pil.height * scale), Image.Resampling.NEAREST)


def save_grid(rows: list[list[torch.Tensor]], headers: list[str], path: str | Path, scale: int = 2) -> Path:
    """A PNG of [-1, 1] images (1 or 3 channels, all one size): one row per list, a gap after
    every third column, `headers` written above the columns (PIL's built-in bitmap font)."""
    from PIL import Image, ImageDraw
    if not rows or not rows[0]:
        raise ValueError("no images for the translation grid")
    h, w = rows[0][0].shape[1] * scale, rows[0][0].shape[2] * scale
    ncol, pad, top = len(rows[0]), 4, 14
    gaps = (ncol - 1) // 3
    width = ncol * (w + pad) + pad + gaps * 10
    sheet = Image.new("RGB", (width, top + len(rows) * (h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    x_of = [pad + c * (w + pad) + (c // 3) * 10 for c in range(ncol)]
    for c, text in enumerate(headers[:ncol]):
        draw.text((x_of[c], 2), text, fill=(0, 0, 0))
    for r, row in enumerate(rows):
        for c, img in enumerate(row):
            sheet.paste(_to_pil(img, scale), (x_of[c], top + pad + r * (h + pad)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(path, optimize=True)
    return path
