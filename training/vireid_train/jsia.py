"""JSIA-ReID (Wang et al., AAAI 2020): cross-modality paired-images generation with joint
set-level and instance-level alignment.

Generation module G: the modality-invariant (content) encoder E^i is the re-id ResNet's first
layers (stem + layer1: the set-level encoder E^sl, weights shared, as the paper says); the
modality-specific (style) encoders E^s_rgb, E^s_ir are strided convolutions → global average
pooling → a fully connected (1×1) layer; the decoders D_rgb, D_ir are residual blocks with
adaptive instance normalisation, whose parameters an MLP makes from the style code, then two
×2 upsamplings with convolutions (content is at 1/4 resolution). Slot i of the RGB half and
slot i of the thermal half of a batch are the same person; codes are exchanged only within
such a pair ("intra-person"):
  X_ir2rgb = D_rgb(E^i(X_ir), E^s_rgb(X_rgb)),  X_rgb2ir = D_ir(E^i(X_rgb), E^s_ir(X_ir))   (eq. 3)
  L_recon = ‖X_rgb − D_rgb(E^i(X_rgb), E^s_rgb(X_rgb))‖₁ + (same for ir)                   (eq. 4)
  L_cyc = ‖X_rgb − D_rgb(E^i(X_rgb2ir), E^s_rgb(X_ir2rgb))‖₁ + (same for ir)               (eq. 5, 6)
  L_gan: least-squares GAN with multi-scale discriminators Dis_rgb, Dis_ir               (eq. 7)
Feature alignment module F: set level = the shared E^sl; instance level = the rest of the
ResNet (E^il: layer2-4, pooling, BNNeck, classifier C) aligned on the generated pairs:
  L_align = KL(p(X_ir) ‖ p(X_ir2rgb)) + KL(p(X_rgb2ir) ‖ p(X_rgb))                        (eq. 8)
  L_cls + L_triplet on real images                                                     (eq. 9, 10)
  L = λ_cyc·L_cyc + λ_gan·L_gan + λ_align·L_align + λ_reid·(L_cls + L_triplet) + λ_recon·L_recon
The generation module trains alone for `pretrain_epochs` first (the paper: 100 epochs, then 50
jointly). At test time only F runs: the plain single-stream ResNet, exported as any model.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn as nn

from . import gan, losses
from .model import ReIDNet

OPTIONS = {
    "label_smoothing": 0.1, "triplet_margin": 0.3, "triplet_weight": 1.0,
    "lambda_reid": 1.0, "lambda_recon": 10.0, "lambda_cyc": 10.0, "lambda_gan": 1.0, "lambda_align": 0.01,
    "lambda_code": 0.0, "align": "paper", "pretrain_epochs": 0.0,
    "style_dim": 128, "style_dim_conv": 32, "style_down": 2, "mlp_dim": 256, "n_res": 4,
    "dis_dim": 32, "dis_layers": 4, "dis_scales": 2,
    "gan_lr": 2e-4, "gan_betas": [0.5, 0.999], "gan_weight_decay": 1e-4,
}
CHOICES = {"align": ("paper", "code")}
SMOKE = ["method.style_dim=8", "method.style_dim_conv=4", "method.mlp_dim=16", "method.n_res=1", "method.dis_dim=4",
         "method.dis_layers=2", "method.dis_scales=1", "method.pretrain_epochs=0"]


class StyleEncoder(nn.Module):
    """7×7 convolution, `down` 4×4 stride-2 convolutions doubling the channels, global average
    pooling, a 1×1 convolution (a fully connected layer) to the style code. No normalisation
    (it would remove the style statistics), ReLU, reflection padding (MUNIT's style encoder)."""

    def __init__(self, cin: int, dim: int, style_dim: int, down: int):
        super().__init__()
        mods, d = [gan.ConvBlock(cin, dim, 7, 1, 3, "none", "relu")], dim
        for _ in range(down):
            mods.append(gan.ConvBlock(d, 2 * d, 4, 2, 1, "none", "relu"))
            d *= 2
        mods += [nn.AdaptiveAvgPool2d(1), nn.Conv2d(d, style_dim, 1)]
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)


class Decoder(nn.Module):
    """(content [B, C, H/4, W/4], style [B, S]) → image [B, cout, H, W] in [-1, 1]: AdaIN
    residual blocks (parameters from an MLP of the style), 2 × (upsample, 5×5 conv, layer norm),
    7×7 convolution, tanh."""

    def __init__(self, content_dim: int, style_dim: int, mlp_dim: int, n_res: int, cout: int):
        super().__init__()
        self.res = gan.AdaINResBlocks(n_res, content_dim)
        self.mlp = gan.mlp(style_dim, self.res.num_params, mlp_dim, 3)
        d = content_dim
        ups = []
        for _ in range(2):
            ups.append(gan.upsample_block(d, max(1, d // 2)))
            d = max(1, d // 2)
        self.up = nn.Sequential(*ups, gan.ConvBlock(d, cout, 7, 1, 3, "none", "tanh"))
        gan.init_kaiming(self)

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        return self.up(self.res(content, self.mlp(style)))


def content(model: ReIDNet, x_norm: torch.Tensor) -> torch.Tensor:
    """E^i = E^sl: the ResNet's stem and layer1 (stride 4), on ImageNet-normalised images."""
    return model.layer1(model.stems[0](x_norm))


def instance_head(model: ReIDNet, c: torch.Tensor) -> dict:
    """E^il and C: layer2-4, pooling, BNNeck, classifier on a content map."""
    return model.head(model.layer4(model.layer3(model.layer2(c))))


def align_loss(p_ir, p_ir2rgb, p_rgb2ir, p_rgb, mode: str = "paper") -> torch.Tensor:
    """Eq. 8 from classifier logits: KL(p_ir ‖ p_ir2rgb) + KL(p_rgb2ir ‖ p_rgb) (`paper`). `code`:
    the authors' code, KL both ways with the real image's prediction detached, for each
    generated image and the real image it was made from: KL(p_real ‖ p_fake) + KL(p_fake ‖ p_real)
    for (rgb, rgb2ir) and for (ir, ir2rgb)."""
    if mode == "paper":
        return gan.kl_rows(p_ir, p_ir2rgb) + gan.kl_rows(p_rgb2ir, p_rgb)
    if mode != "code":
        raise ValueError(f"method.align = {mode!r}: choose paper or code")
    total = 0.0
    for fake, real in ((p_rgb2ir, p_rgb), (p_ir2rgb, p_ir)):
        real = real.detach()
        total = total + gan.kl_rows(real, fake) + gan.kl_rows(fake, real)
    return total


def build_model(cfg: dict, num_classes: int) -> ReIDNet:
    m = cfg["model"]
    if m.get("two_stream"):
        raise ValueError("method jsia: set model.two_stream = false (the modality-invariant encoder E^i is the "
                         "ResNet's shared stem and layer1)")
    gan.check_options("jsia", {k: v for k, v in cfg["method"].items() if k != "name"}, OPTIONS, CHOICES)
    return ReIDNet(num_classes, arch=m["arch"], two_stream=False, gem_p=float(m["gem_p"]),
                   pooling=m.get("pooling", "gem"), gem_learnable=bool(m.get("gem_learnable", True)),
                   test_feature=m.get("test_feature", "bn"))


class JSIAMethod(nn.Module):
    """Owns E^s_rgb, E^s_ir, D_rgb, D_ir and the discriminators (training only)."""

    name = "jsia"

    def __init__(self, params: dict, num_classes: int, cfg: dict, content_dim: int):
        super().__init__()
        self.p = p = gan.check_options("jsia", params, OPTIONS, CHOICES)
        sd, dim = int(p["style_dim"]), int(p["style_dim_conv"])
        self.style_rgb = StyleEncoder(3, dim, sd, int(p["style_down"]))
        self.style_ir = StyleEncoder(1, dim, sd, int(p["style_down"]))
        self.dec_rgb = Decoder(content_dim, sd, int(p["mlp_dim"]), int(p["n_res"]), 3)
        self.dec_ir = Decoder(content_dim, sd, int(p["mlp_dim"]), int(p["n_res"]), 1)
        gan.init_kaiming(self.style_rgb)
        gan.init_kaiming(self.style_ir)
        self.dis_rgb = gan.MultiScaleDiscriminator(3, int(p["dis_dim"]), int(p["dis_layers"]), int(p["dis_scales"]))
        self.dis_ir = gan.MultiScaleDiscriminator(1, int(p["dis_dim"]), int(p["dis_layers"]), int(p["dis_scales"]))
        self.dis_rgb.check_size(cfg["data"]["height"], cfg["data"]["width"], "method jsia")
        if cfg["data"]["height"] % 4 or cfg["data"]["width"] % 4:
            raise ValueError("method jsia: data.height and data.width must be multiples of 4 (content at 1/4 "
                             "resolution, two ×2 upsamplings back)")
        self.train_lr = float(cfg["train"]["lr"])
        self.autocast = contextlib.nullcontext
        self.epoch = 0.0

    def get(self, key: str) -> float:
        return float(self.p[key])

    def configure(self, autocast=None, seed: int = 0) -> None:
        self.autocast = autocast or contextlib.nullcontext

    def set_epoch(self, epoch: float) -> None:
        self.epoch = epoch

    def joint(self) -> bool:
        """After the generation module's pre-training: re-id and alignment losses on."""
        return self.epoch >= self.get("pretrain_epochs")

    def head_parameters(self) -> list:
        return []

    def param_groups(self, model: ReIDNet) -> list[dict]:
        betas, wd = self.p["gan_betas"], self.get("gan_weight_decay")
        gen = [p for m in (self.style_rgb, self.style_ir, self.dec_rgb, self.dec_ir) for p in m.parameters()]
        dis = list(self.dis_rgb.parameters()) + list(self.dis_ir.parameters())
        return [gan.gan_group(gen, self.train_lr, self.get("gan_lr"), betas, wd, "generators"),
                gan.gan_group(dis, self.train_lr, self.get("gan_lr"), betas, wd, "discriminators")]

    def generate(self, model: ReIDNet, rgb: torch.Tensor, ir: torch.Tensor) -> dict:
        """Every image of eqs. 3-6 for the pairs (rgb[i], ir[i]) (ImageNet-normalised in, [-1, 1] out)."""
        g_rgb, g_ir = gan.to_gan(rgb), gan.grey(gan.to_gan(ir))
        c_rgb, c_ir = content(model, rgb), content(model, ir)
        s_rgb, s_ir = self.style_rgb(g_rgb), self.style_ir(g_ir)
        o = {"g_rgb": g_rgb, "g_ir": g_ir, "c_rgb": c_rgb, "c_ir": c_ir, "s_rgb": s_rgb, "s_ir": s_ir,
             "rec_rgb": self.dec_rgb(c_rgb, s_rgb), "rec_ir": self.dec_ir(c_ir, s_ir),
             "ir2rgb": self.dec_rgb(c_ir, s_rgb), "rgb2ir": self.dec_ir(c_rgb, s_ir)}
        o["c_ir2rgb"], o["c_rgb2ir"] = content(model, gan.from_gan(o["ir2rgb"])), content(model, gan.from_gan(o["rgb2ir"]))
        o["s_ir2rgb"], o["s_rgb2ir"] = self.style_rgb(o["ir2rgb"]), self.style_ir(o["rgb2ir"])
        o["cyc_rgb"] = self.dec_rgb(o["c_rgb2ir"], o["s_ir2rgb"])     # X_rgb2ir2rgb
        o["cyc_ir"] = self.dec_ir(o["c_ir2rgb"], o["s_rgb2ir"])       # X_ir2rgb2ir
        return o

    def forward(self, model: ReIDNet, images: torch.Tensor, labels: torch.Tensor,
                modality: torch.Tensor, paired: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """paired (co-observed pairs, data.pairs): not used by this method."""
        n = gan.halves(modality.cpu(), "method jsia")
        with self.autocast():
            o = self.generate(model, images[:n], images[n:])
        o = {k: v.float() for k, v in o.items()}
        recon = gan.l1(o["rec_rgb"], o["g_rgb"]) + gan.l1(o["rec_ir"], o["g_ir"])
        cyc = gan.l1(o["cyc_rgb"], o["g_rgb"]) + gan.l1(o["cyc_ir"], o["g_ir"])
        with self.autocast():
            g_rgb, d_rgb = gan.adversarial_terms(self.dis_rgb, o["g_rgb"], o["ir2rgb"])
            g_ir, d_ir = gan.adversarial_terms(self.dis_ir, o["g_ir"], o["rgb2ir"])
        parts = {"recon": self.get("lambda_recon") * recon, "cyc": self.get("lambda_cyc") * cyc,
                 "gan": self.get("lambda_gan") * (g_rgb + g_ir), "dis": d_rgb + d_ir}
        if self.get("lambda_code") > 0:
            code = (gan.l1(o["c_ir2rgb"], o["c_ir"]) + gan.l1(o["c_rgb2ir"], o["c_rgb"])
                    + gan.l1(o["s_ir2rgb"], o["s_rgb"]) + gan.l1(o["s_rgb2ir"], o["s_ir"]))
            parts["code"] = self.get("lambda_code") * code
        if self.joint():
            # F: real images [rgb | ir] and the generated pairs [ir2rgb | rgb2ir], one pass
            with self.autocast():
                f = instance_head(model, torch.cat([o["c_rgb"], o["c_ir"], o["c_ir2rgb"], o["c_rgb2ir"]]).to(images.dtype))
            f = {k: v.float() for k, v in f.items()}
            real = slice(0, 2 * n)
            cls = losses.id_loss(f["logits"][real], labels, self.get("label_smoothing"))
            tri = losses.hard_triplet_loss(f["pooled"][real], labels, self.get("triplet_margin"))
            lg = f["logits"]
            p_rgb, p_ir, p_ir2rgb, p_rgb2ir = lg[:n], lg[n:2 * n], lg[2 * n:3 * n], lg[3 * n:]
            parts["id"] = self.get("lambda_reid") * cls
            parts["tri"] = self.get("lambda_reid") * self.get("triplet_weight") * tri
            parts["align"] = self.get("lambda_align") * align_loss(p_ir, p_ir2rgb, p_rgb2ir, p_rgb, self.p["align"])
        total = sum(parts.values())
        return total, {k: v.detach() for k, v in parts.items()}

    @torch.no_grad()
    def translate(self, model: ReIDNet, rgb: torch.Tensor, ir: torch.Tensor, rgb_style: torch.Tensor,
                  ir_style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(RGB → thermal, thermal → RGB) in [-1, 1]: content of the input, style of an image of
        the same person in the target modality (`*_style`)."""
        rgb2ir = self.dec_ir(content(model, rgb), self.style_ir(gan.grey(gan.to_gan(ir_style))))
        ir2rgb = self.dec_rgb(content(model, ir), self.style_rgb(gan.to_gan(rgb_style)))
        return rgb2ir, ir2rgb
