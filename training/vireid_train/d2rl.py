"""D2RL (Wang et al., CVPR 2019): dual-level discrepancy reduction.

Image level (T_I): a UNIT-style translator (Liu et al. 2017; the poster's "Encoder, Generator,
Discriminator" per spectrum) — encoders E_v, E_i map a visible / infrared image to a shared
latent z (a VAE with unit variance: z = μ + ε), generators G_v, G_i decode z into either
spectrum, discriminators D_v, D_i judge the translations. The encoders share their last
residual block and the generators their first (UNIT's shared-latent assumption).
  L_I = L_VAE,v + L_VAE,i + L_GAN,v + L_GAN,i + L_CC,v + L_CC,i
  L_VAE = recon_w·‖G(E(x)) − x‖₁ + kl_w·mean(μ²)
  L_CC  = cyc_w·‖G_v(E_i(G_i(E_v(x)))) − x‖₁ + kl_cyc_w·mean(μ_translated²)   (and i ↔ v)
  L_GAN = least-squares GAN on the translations (UNIT's authors' code: LSGAN, multi-scale).
Feature level (T_F): every image becomes a unified multi-spectral image — visible x ↦
[x, G_i(E_v(x))], infrared y ↦ [G_v(E_i(y)), y], 4 channels (RGB + IR) — and a ResNet with a
4-channel first convolution embeds it: L_F = λ4·L_CE + λ5·L_triplet. The two are trained end to
end: L = lambda_image·L_I + L_F, the re-id gradient flowing into the generators.

At test time the translator is part of the embedder (the exported graph takes the per-row
`modality` input and picks the direction), so the runtime feeds plain crops as for any model.
"""
from __future__ import annotations

import contextlib

import torch
import torch.nn as nn

from . import gan, losses
from .model import RGB, THERMAL, ReIDNet

OPTIONS = {
    "label_smoothing": 0.0, "triplet_margin": 0.3, "ce_weight": 1.0, "triplet_weight": 1.0,
    "lambda_image": 1.0, "gan_w": 1.0, "recon_w": 10.0, "kl_w": 0.01, "cyc_w": 10.0, "kl_cyc_w": 0.01,
    "gen_dim": 64, "n_down": 2, "n_res": 4, "shared_blocks": 1,
    "dis_dim": 64, "dis_layers": 4, "dis_scales": 3,
    "gan_lr": 1e-4, "gan_betas": [0.5, 0.999], "gan_weight_decay": 1e-4,
}
SMOKE = ["method.gen_dim=8", "method.n_res=2", "method.dis_dim=8", "method.dis_layers=2", "method.dis_scales=2"]


# ---------------------------------------------------------------- the translator (part of the model)

class Translator(nn.Module):
    """UNIT's two VAE-GAN halves. Visible images have 3 channels, infrared 1, both in [-1, 1].
    encode_x returns μ (the latent mean); decode_x maps a latent to spectrum x."""

    def __init__(self, dim: int = 64, n_down: int = 2, n_res: int = 4, shared: int = 1):
        super().__init__()
        if not 0 <= shared <= n_res:
            raise ValueError(f"method.shared_blocks = {shared}: between 0 and method.n_res = {n_res}")
        if dim < 1 or n_down < 1:
            raise ValueError("method.gen_dim and method.n_down must be >= 1")

        def front(cin):
            mods, d = [gan.ConvBlock(cin, dim, 7, 1, 3, "in", "relu")], dim
            for _ in range(n_down):
                mods.append(gan.ConvBlock(d, 2 * d, 4, 2, 1, "in", "relu"))
                d *= 2
            mods += [gan.ResBlock(d, "in") for _ in range(n_res - shared)]
            return nn.Sequential(*mods), d

        self.enc_v, latent = front(3)
        self.enc_i, _ = front(1)
        self.enc_shared = nn.Sequential(*[gan.ResBlock(latent, "in") for _ in range(shared)])
        self.dec_shared = nn.Sequential(*[gan.ResBlock(latent, "in") for _ in range(shared)])

        def back(cout):
            mods, d = [gan.ResBlock(latent, "in") for _ in range(n_res - shared)], latent
            for _ in range(n_down):
                mods.append(gan.upsample_block(d, d // 2))
                d //= 2
            mods.append(gan.ConvBlock(d, cout, 7, 1, 3, "none", "tanh"))
            return nn.Sequential(*mods)

        self.dec_v, self.dec_i = back(3), back(1)
        self.latent_channels, self.stride = latent, 2 ** n_down
        gan.init_kaiming(self)

    def encode(self, x: torch.Tensor, modality: int) -> torch.Tensor:
        return self.enc_shared((self.enc_v if modality == RGB else self.enc_i)(x))

    def decode(self, z: torch.Tensor, modality: int) -> torch.Tensor:
        return (self.dec_v if modality == RGB else self.dec_i)(self.dec_shared(z))


class D2RLNet(ReIDNet):
    """The inference network: translator → unified 4-channel image → ResNet (first convolution
    widened to 4 channels) → pooling → BNNeck. `modality` picks the translation direction, so
    the export is a per-modality graph (`vireid.modality_handling = per_modality`)."""

    def __init__(self, num_classes: int, arch: str = "resnet50", gem_p: float = 3.0, pooling: str = "gem",
                 gem_learnable: bool = True, test_feature: str = "bn", translator: dict | None = None):
        super().__init__(num_classes, arch=arch, two_stream=False, gem_p=gem_p, pooling=pooling,
                         gem_learnable=gem_learnable, test_feature=test_feature)
        old = self.stems[0][0]
        conv = nn.Conv2d(4, old.out_channels, old.kernel_size, old.stride, old.padding, bias=False)
        with torch.no_grad():
            conv.weight[:, :3] = old.weight
            conv.weight[:, 3:] = old.weight.mean(1, keepdim=True)
        self.stems[0][0] = conv
        self.two_stream = True        # one graph, a per-row modality input (export, runtime)
        self.translator = Translator(**(translator or {}))

    def unify(self, x: torch.Tensor, modality: int) -> torch.Tensor:
        """Deterministic (z = μ) unified image of ImageNet-normalised crops of one modality."""
        g = gan.to_gan(x)
        if modality == RGB:
            ir = self.translator.decode(self.translator.encode(g, RGB), THERMAL)
            return torch.cat([x, gan.ir_channel(ir)], 1)
        ir = gan.grey(g)
        rgb = self.translator.decode(self.translator.encode(ir, THERMAL), RGB)
        return torch.cat([gan.from_gan(rgb), gan.ir_channel(ir)], 1)

    def stem(self, x: torch.Tensor, modality: torch.Tensor | int) -> torch.Tensor:
        if isinstance(modality, int):
            return self.stems[0](self.unify(x, modality))
        modality = modality.cpu()
        u = x.new_zeros((x.shape[0], 4) + x.shape[2:])
        for m in (RGB, THERMAL):
            sel = (modality == m).nonzero(as_tuple=True)[0].to(x.device)
            if sel.numel():
                u[sel] = self.unify(x[sel], m)
        return self.stems[0](u)

    def export_forward(self, x: torch.Tensor, modality: torch.Tensor) -> torch.Tensor:
        """The exported graph: both directions for every row, blended by the 0/1 modality
        (exact for 0/1), then the shared network."""
        m = modality.reshape(-1, 1, 1, 1)
        u = self.unify(x, RGB) * (1.0 - m) + self.unify(x, THERMAL) * m
        return self.trunk(self.stems[0](u))[self.test_feature]

    def load_imagenet_state(self, state: dict) -> dict:
        """ImageNet conv1 has 3 input channels: the 4th (infrared) gets their mean."""
        state = dict(super().load_imagenet_state(state))
        w = state.get("conv1.weight")
        if w is not None and w.shape[1] == 3:
            state["conv1.weight"] = torch.cat([w, w.mean(1, keepdim=True)], 1)
        return state


def translator_config(params: dict) -> dict:
    return {"dim": int(params["gen_dim"]), "n_down": int(params["n_down"]), "n_res": int(params["n_res"]),
            "shared": int(params["shared_blocks"])}


def build_model(cfg: dict, num_classes: int) -> D2RLNet:
    m = cfg["model"]
    if m.get("two_stream"):
        raise ValueError("method d2rl: set model.two_stream = false (the unified 4-channel image feeds one network; "
                         "the translator is what depends on the modality)")
    params = gan.check_options("d2rl", {k: v for k, v in cfg["method"].items() if k != "name"}, OPTIONS)
    return D2RLNet(num_classes, arch=m["arch"], gem_p=float(m["gem_p"]), pooling=m.get("pooling", "gem"),
                   gem_learnable=bool(m.get("gem_learnable", True)), test_feature=m.get("test_feature", "bn"),
                   translator=translator_config(params))


# ---------------------------------------------------------------- the objective

def vae_terms(x: torch.Tensor, mu: torch.Tensor, recon: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(‖recon − x‖₁ mean, mean(μ²)): UNIT's VAE reconstruction and, with unit variance, its KL
    term up to constants (KL(N(μ, 1) ‖ N(0, 1)) = ½‖μ‖²; UNIT's code takes mean(μ²))."""
    return gan.l1(recon, x), (mu.float() ** 2).mean()


class D2RLMethod(nn.Module):
    """Owns the discriminators D_v, D_i (training only). The translator lives in the model."""

    name = "d2rl"

    def __init__(self, params: dict, num_classes: int, cfg: dict):
        super().__init__()
        self.p = gan.check_options("d2rl", params, OPTIONS)
        self.dis_v = gan.MultiScaleDiscriminator(3, int(self.p["dis_dim"]), int(self.p["dis_layers"]),
                                                 int(self.p["dis_scales"]))
        self.dis_i = gan.MultiScaleDiscriminator(1, int(self.p["dis_dim"]), int(self.p["dis_layers"]),
                                                 int(self.p["dis_scales"]))
        self.dis_v.check_size(cfg["data"]["height"], cfg["data"]["width"], "method d2rl")
        self.train_lr = float(cfg["train"]["lr"])
        self.autocast = contextlib.nullcontext
        self.epoch = 0.0

    def get(self, key: str) -> float:
        return float(self.p[key])

    def configure(self, autocast=None, seed: int = 0) -> None:
        self.autocast = autocast or contextlib.nullcontext

    def set_epoch(self, epoch: float) -> None:
        self.epoch = epoch

    def head_parameters(self) -> list:
        return []

    def param_groups(self, model: D2RLNet) -> list[dict]:
        betas, wd = self.p["gan_betas"], self.get("gan_weight_decay")
        return [gan.gan_group(model.translator.parameters(), self.train_lr, self.get("gan_lr"), betas, wd, "generators"),
                gan.gan_group(self.parameters(), self.train_lr, self.get("gan_lr"), betas, wd, "discriminators")]

    def translate_all(self, tr: Translator, xv: torch.Tensor, xi: torch.Tensor, noise: bool) -> dict:
        """Every image UNIT's objective needs, in [-1, 1]. noise: the VAE's z = μ + ε (training)."""
        z = (lambda mu: mu + torch.randn_like(mu)) if noise else (lambda mu: mu)
        mu_v, mu_i = tr.encode(xv, RGB), tr.encode(xi, THERMAL)
        zv, zi = z(mu_v), z(mu_i)
        out = {"mu_v": mu_v, "mu_i": mu_i, "rec_v": tr.decode(zv, RGB), "rec_i": tr.decode(zi, THERMAL),
               "v2i": tr.decode(zv, THERMAL), "i2v": tr.decode(zi, RGB)}
        out["mu_v2i"], out["mu_i2v"] = tr.encode(out["v2i"], THERMAL), tr.encode(out["i2v"], RGB)
        out["cyc_v"] = tr.decode(z(out["mu_v2i"]), RGB)
        out["cyc_i"] = tr.decode(z(out["mu_i2v"]), THERMAL)
        return out

    def forward(self, model: D2RLNet, images: torch.Tensor, labels: torch.Tensor,
                modality: torch.Tensor, paired: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """paired (co-observed pairs, data.pairs): not used by this method."""
        n = gan.halves(modality.cpu(), "method d2rl")
        xv = gan.to_gan(images[:n])
        xi = gan.grey(gan.to_gan(images[n:]))
        with self.autocast():
            t = self.translate_all(model.translator, xv, xi, noise=True)
        t = {k: v.float() for k, v in t.items()}
        rec_v, kl_v = vae_terms(xv, t["mu_v"], t["rec_v"])
        rec_i, kl_i = vae_terms(xi, t["mu_i"], t["rec_i"])
        cyc = gan.l1(t["cyc_v"], xv) + gan.l1(t["cyc_i"], xi)
        kl_cyc = (t["mu_v2i"] ** 2).mean() + (t["mu_i2v"] ** 2).mean()
        with self.autocast():
            g_v, d_v = gan.adversarial_terms(self.dis_v, xv, t["i2v"])
            g_i, d_i = gan.adversarial_terms(self.dis_i, xi, t["v2i"])
        image = (self.get("gan_w") * (g_v + g_i) + self.get("recon_w") * (rec_v + rec_i)
                 + self.get("kl_w") * (kl_v + kl_i) + self.get("cyc_w") * cyc + self.get("kl_cyc_w") * kl_cyc)
        # feature level, on the unified multi-spectral images (the translations keep their gradient)
        unified = torch.cat([torch.cat([images[:n], gan.ir_channel(t["v2i"])], 1),
                             torch.cat([gan.from_gan(t["i2v"]), gan.ir_channel(xi)], 1)])
        with self.autocast():
            raw = model.trunk(model.stems[0](unified))
        out = {k: v.float() for k, v in raw.items()}
        ce = losses.id_loss(out["logits"], labels, self.get("label_smoothing"))
        tri = losses.hard_triplet_loss(out["pooled"], labels, self.get("triplet_margin"))
        parts = {"id": self.get("ce_weight") * ce, "tri": self.get("triplet_weight") * tri,
                 "img": self.get("lambda_image") * image, "dis": d_v + d_i}
        total = sum(parts.values())
        parts.update({"gan_g": (g_v + g_i).detach(), "rec": (rec_v + rec_i).detach(), "cyc": cyc.detach()})
        return total, {k: v.detach() for k, v in parts.items()}

    @torch.no_grad()
    def translate(self, model: D2RLNet, rgb: torch.Tensor, ir: torch.Tensor, rgb_style: torch.Tensor,
                  ir_style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(RGB → thermal, thermal → RGB) in [-1, 1], z = μ; D2RL has no style input."""
        tr = model.translator
        v2i = tr.decode(tr.encode(gan.to_gan(rgb), RGB), THERMAL)
        i2v = tr.decode(tr.encode(gan.grey(gan.to_gan(ir)), THERMAL), RGB)
        return v2i, i2v
