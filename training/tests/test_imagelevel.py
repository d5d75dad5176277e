"""The image-level methods (D2RL, JSIA-ReID, disentangled structure/appearance and its
low-dimensional variant): losses against hand-computed values, generator and discriminator
shapes, codes of one image re-combined give the image back after a short overfit, each
method's --smoke run, export and (with the Rust binary) `vireid eval`, the GPU code paths on
the CPU, and the errors bad input gets."""
import json
import math
import os
import subprocess
from pathlib import Path

import onnx
import pytest
import torch

from vireid_train import gan
from vireid_train.__main__ import main
from vireid_train.config import load_config
from vireid_train.d2rl import D2RLNet, Translator, vae_terms
from vireid_train.disentangle import (Discriminator, DisentangleMethod, FeatureDecoder, FeatureEncoder, Generator,
                                      StructureEncoder, lowdim_triplet, other_identity_partners,
                                      same_identity_partners)
from vireid_train.jsia import Decoder, JSIAMethod, StyleEncoder, align_loss
from vireid_train.model import ReIDNet

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "training" / "configs"
VIREID = ROOT / "target" / "release" / "vireid"
ORT = os.environ.get("ORT_DYLIB_PATH") or str(ROOT / ".deps" / "onnxruntime" / "libonnxruntime.so")


@pytest.fixture(autouse=True)
def one_thread():
    """These tests are many tiny operations: one thread (two thrash on the shared 2-core machine:
    the overfit test took 150 s instead of 4)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _cfg(name: str, **method) -> dict:
    cfg = load_config(None, ["data.root=/x", "data.height=32", "data.width=16", "data.p=2", "data.k=2",
                             "model.arch=resnet10"])
    cfg["method"] = {"name": name, **method}
    return cfg


def _batch(p=2, k=2, h=32, w=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    n = p * k
    x = torch.randn(2 * n, 3, h, w, generator=g)
    x[n:] = x[n:, :1].expand(-1, 3, -1, -1)        # thermal: grey replicated, as the data path gives it
    y = torch.arange(p).repeat_interleave(k).repeat(2)
    mod = torch.cat([torch.zeros(n, dtype=torch.long), torch.ones(n, dtype=torch.long)])
    return x, y, mod


# ---------------------------------------------------------------- losses by hand

def test_lsgan_losses_hand_values():
    real = [torch.tensor([[1.0, 0.5]]), torch.tensor([[0.0]])]
    fake = [torch.tensor([[0.0, 0.5]]), torch.tensor([[1.0]])]
    # D: scale 1: mean((r-1)^2) = (0 + .25)/2, mean(f^2) = (0 + .25)/2; scale 2: 1 + 1
    assert gan.lsgan_d_loss(real, fake).item() == pytest.approx(0.125 + 0.125 + 1 + 1)
    # G: scale 1: mean((f-1)^2) = (1 + .25)/2; scale 2: 0
    assert gan.lsgan_g_loss(fake).item() == pytest.approx(0.625)


def test_adversarial_terms_give_each_side_only_its_gradient():
    class PatchD(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(3, 1)

        def forward(self, x):
            return [self.lin(x)]

    torch.manual_seed(0)
    patch, gen = PatchD(), torch.nn.Linear(3, 3)
    dis = patch.lin
    real = torch.randn(4, 3)
    fake = gen(torch.randn(4, 3))
    g, d = gan.adversarial_terms(patch, real, fake)
    assert all(p.requires_grad for p in dis.parameters())          # switched back on
    g.backward(retain_graph=True)
    assert dis.weight.grad is None and gen.weight.grad.abs().sum() > 0
    gen.weight.grad = None
    d.backward()
    assert gen.weight.grad is None and dis.weight.grad.abs().sum() > 0
    # the values are the LSGAN ones
    with torch.no_grad():
        assert g.item() == pytest.approx(((dis(fake) - 1) ** 2).mean().item(), rel=1e-6)
        assert d.item() == pytest.approx((((dis(real) - 1) ** 2).mean() + (dis(fake) ** 2).mean()).item(), rel=1e-6)


def test_adain_kl_vae_and_image_space_hand_values():
    x = torch.tensor([1.0, 3.0]).view(1, 1, 2, 1)          # mean 2, variance 1 → normalised ∓1
    out = gan.adain(x, torch.tensor([[2.0]]), torch.tensor([[0.5]]), eps=0.0)
    assert out.flatten().tolist() == pytest.approx([-1.5, 2.5])
    # KL([.5, .5] ‖ [.25, .75]) = .5 ln 2 + .5 ln(2/3) = .5 ln(4/3)
    assert gan.kl_rows(torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, math.log(3)]])).item() == \
        pytest.approx(0.5 * math.log(4 / 3), rel=1e-6)
    rec, kl = vae_terms(torch.tensor([0.0, 1.0]), torch.tensor([1.0, -2.0]), torch.tensor([0.5, 0.5]))
    assert (rec.item(), kl.item()) == pytest.approx((0.5, 2.5))
    # [-1, 1] ↔ ImageNet-normalised round trip; grey of a grey-replicated image is the image
    x = torch.rand(2, 3, 4, 4) * 2 - 1
    assert torch.allclose(gan.to_gan(gan.from_gan(x)), x, atol=1e-6)
    g = torch.rand(1, 1, 4, 4)
    assert torch.allclose(gan.grey(g.expand(-1, 3, -1, -1)), g, atol=1e-6)
    assert gan.ir_channel(torch.tensor([1.0])).item() == pytest.approx((1 - gan.IR_MEAN) / gan.IR_STD)


def test_jsia_alignment_hand_values():
    u, q = torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, math.log(3)]])   # [.5 .5], [.25 .75]
    kl_uq, kl_qu = 0.5 * math.log(4 / 3), 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    # eq. 8: KL(p_ir ‖ p_ir2rgb) + KL(p_rgb2ir ‖ p_rgb)
    assert align_loss(u, q, q, u, "paper").item() == pytest.approx(kl_uq + kl_qu, rel=1e-6)
    assert align_loss(u, u, q, q, "paper").item() == pytest.approx(0.0, abs=1e-7)
    # the authors' code: both directions for (rgb, rgb2ir) and (ir, ir2rgb)
    assert align_loss(u, q, u, u, "code").item() == pytest.approx(kl_uq + kl_qu, rel=1e-6)
    real = torch.tensor([[0.0, 1.0]], requires_grad=True)
    fake = torch.tensor([[1.0, 0.0]], requires_grad=True)
    align_loss(real, fake, fake, real, "code").backward()
    assert real.grad is None and fake.grad.abs().sum() > 0       # the real prediction is the target


def test_disentangle_partners_and_lowdim_triplet_hand_values():
    assert same_identity_partners(4, 2).tolist() == [1, 0, 3, 2, 5, 4, 7, 6]
    assert same_identity_partners(3, 3).tolist() == [1, 2, 0, 4, 5, 3]
    labels = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])
    for seed in range(5):
        other = other_identity_partners(labels, torch.Generator().manual_seed(seed))
        assert (labels[other] != labels).all()
    s1 = torch.tensor([[0.0, 0.0]])
    s2 = torch.tensor([[1.0, 0.0]])              # same person: L1 distance 1
    far, near = torch.tensor([[0.0, 2.0]]), torch.tensor([[0.5, 0.0]])
    y1, y3 = torch.tensor([0]), torch.tensor([1])
    assert lowdim_triplet(s1, s2, far, y1, y3, 0.3, "random").item() == pytest.approx(0.0)
    assert lowdim_triplet(s1, s2, near, y1, y3, 0.3, "random").item() == pytest.approx(0.3 + 1 - 0.5)
    # hard: the hardest positive (1.0) and the hardest negative (0.5) over the batch's thermal codes
    s1 = torch.tensor([[0.0, 0.0], [4.0, 4.0]])
    s2 = torch.tensor([[1.0, 0.0], [4.0, 4.5]])
    s3 = torch.tensor([[0.0, 3.0], [0.5, 0.0]])
    y1, y3 = torch.tensor([0, 1]), torch.tensor([2, 3])
    # anchor 0: pos 1.0, neg min(8.5, 3.0, 0.5) = 0.5 → 0.8; anchor 1: pos 0.5, neg min(1.5, 5, 7.5) = 1.5 → 0
    assert lowdim_triplet(s1, s2, s3, y1, y3, 0.3, "hard").item() == pytest.approx(0.4)


# ---------------------------------------------------------------- shapes

def test_generator_and_discriminator_shapes():
    torch.manual_seed(0)
    tr = Translator(dim=4, n_down=2, n_res=2, shared=1)
    z = tr.encode(torch.rand(2, 3, 32, 16) * 2 - 1, 0)
    assert z.shape == (2, 16, 8, 4) and tr.encode(torch.rand(2, 1, 32, 16), 1).shape == (2, 16, 8, 4)
    for m, c in ((0, 3), (1, 1)):
        out = tr.decode(z, m)
        assert out.shape == (2, c, 32, 16) and out.abs().max() <= 1
    d = gan.MultiScaleDiscriminator(3, dim=4, layers=3, scales=2)
    assert [o.shape for o in d(torch.randn(2, 3, 64, 32))] == [(2, 1, 8, 4), (2, 1, 4, 2)]
    d.check_size(64, 32, "x")
    with pytest.raises(ValueError, match="lower method.dis_scales or method.dis_layers"):
        gan.MultiScaleDiscriminator(3, dim=4, layers=4, scales=3).check_size(32, 16, "method d2rl")
    assert StyleEncoder(3, 4, 8, 2)(torch.randn(2, 3, 32, 16)).shape == (2, 8)
    dec = Decoder(16, 8, 12, 2, 1)
    assert dec(torch.randn(2, 16, 8, 4), torch.randn(2, 8)).shape == (2, 1, 32, 16)
    s = StructureEncoder(base=4, struct_dim=8, n_res=1)(torch.randn(2, 1, 32, 16))
    assert s.shape == (2, 8, 8, 4)
    g = Generator(8, 10, 12, 1)
    assert g(s, g.params(torch.randn(2, 10))).shape == (2, 3, 32, 16)
    assert [o.shape for o in Discriminator(4, 1)(torch.randn(2, 3, 32, 16))] == [(2, 1, 8, 4)]
    enc, dec2 = FeatureEncoder(12, 6, (16, 16)), FeatureDecoder(12, 6, (16,))
    s_code, m_code = enc(torch.randn(5, 12))
    assert s_code.shape == m_code.shape == (5, 6) and (s_code >= 0).all()
    assert dec2(m_code, s_code).shape == (5, 12)
    net = D2RLNet(3, arch="resnet10", translator={"dim": 4, "n_down": 2, "n_res": 1, "shared": 1})
    assert net.stems[0][0].in_channels == 4 and net.two_stream
    x = torch.randn(2, 3, 32, 16)
    assert net.unify(x, 0).shape == net.unify(x, 1).shape == (2, 4, 32, 16)


# ---------------------------------------------------------------- re-combined codes reconstruct

def _images(n=4, h=32, w=16, seed=0):
    """Synthetic person crops (vireid_train.synthetic) in [-1, 1]."""
    import random

    import numpy as np
    from vireid_train.synthetic import render_person
    rng = random.Random(seed)
    imgs = [np.asarray(render_person(i, False, rng, (w, h), seed).convert("RGB"), np.float32) for i in range(n)]
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2) / 127.5 - 1


def _overfit(params, loss_fn, steps, lr=3e-3):
    opt = torch.optim.Adam(params, lr=lr)
    first = None
    for _ in range(steps):
        loss = loss_fn()
        first = first if first is not None else loss.item()
        opt.zero_grad(); loss.backward(); opt.step()
    return first, loss_fn().item()


def test_codes_of_one_image_reconstruct_it_after_a_short_overfit():
    torch.manual_seed(0)
    x = _images()
    # JSIA: D_rgb(E^i(x), E^s_rgb(x)) → x
    model = ReIDNet(2, arch="resnet10")
    meth = JSIAMethod({"style_dim": 8, "style_dim_conv": 4, "mlp_dim": 16, "n_res": 1, "dis_layers": 2,
                       "dis_scales": 1}, 2, _cfg("jsia"), 64)
    xn = gan.from_gan(x)
    rec = lambda: gan.l1(meth.dec_rgb(model.layer1(model.stems[0](xn)), meth.style_rgb(x)), x)
    first, last = _overfit(list(model.stems.parameters()) + list(model.layer1.parameters()) +
                           list(meth.style_rgb.parameters()) + list(meth.dec_rgb.parameters()), rec, 100)
    assert last < 0.1 and last < first / 3, (first, last)
    # disentangle: G(E_s(grey x), E_a(x)) → x
    model = ReIDNet(2, arch="resnet10", pooling="max")
    meth = DisentangleMethod({"struct_base": 4, "struct_dim": 32, "mlp_dim": 16, "n_res": 1, "dis_dim": 4}, 2,
                             _cfg("disentangle"), model.embedding_dim)
    with torch.no_grad():
        a = model.eval()(xn)["pooled"]           # the appearance codes (E_a as initialised)
    rec = lambda: gan.l1(meth.gen(meth.struct(gan.grey(x)), meth.gen.params(a)), x)
    first, last = _overfit(list(meth.struct.parameters()) + list(meth.gen.parameters()), rec, 150)
    assert last < 0.1 and last < first / 3, (first, last)
    # D2RL: G_v(E_v(x)) → x (z = μ)
    tr = Translator(dim=8, n_down=2, n_res=1, shared=1)
    rec = lambda: gan.l1(tr.decode(tr.encode(x, 0), 0), x)
    first, last = _overfit(tr.parameters(), rec, 100)
    assert last < 0.1 and last < first / 3, (first, last)
    # low-dimensional: D(m(f), s(f)) → f
    f = torch.randn(16, 12)
    enc, dec = FeatureEncoder(12, 6, (32, 32)), FeatureDecoder(12, 6, (32, 32))
    rec = lambda: gan.l1(dec(*reversed(enc(f))), f)
    first, last = _overfit(list(enc.parameters()) + list(dec.parameters()), rec, 200, lr=3e-3)
    assert last < 0.1 and last < first / 3, (first, last)


# ---------------------------------------------------------------- objectives

def test_d2rl_re_id_gradient_reaches_the_translator_end_to_end():
    torch.manual_seed(0)
    cfg = _cfg("d2rl", gen_dim=4, n_res=1, dis_dim=4, dis_layers=2, dis_scales=1, lambda_image=0.0)
    from vireid_train.imagelevel import build_method, build_model
    model = build_model(cfg, 2)
    meth = build_method(cfg, 2, model)
    x, y, mod = _batch()
    loss, parts = meth(model, x, y, mod)
    assert {"id", "tri", "img", "dis", "gan_g", "rec", "cyc"} <= set(parts) and parts["img"].item() == 0
    loss.backward()
    # with L_I off, the generators' gradient is the re-id loss's, through the unified images
    assert model.translator.dec_i[-1].conv.weight.grad.abs().sum() > 0
    assert model.translator.dec_v[-1].conv.weight.grad.abs().sum() > 0
    groups = meth.param_groups(model)
    assert [g["name"] for g in groups] == ["generators", "discriminators"] and groups[0]["betas"] == (0.5, 0.999)
    assert groups[0]["lr_mult"] == pytest.approx(1e-4 / cfg["train"]["lr"])


def test_jsia_pretraining_then_joint_losses():
    torch.manual_seed(0)
    cfg = _cfg("jsia", style_dim=8, style_dim_conv=4, mlp_dim=16, n_res=1, dis_dim=4, dis_layers=2, dis_scales=1,
               pretrain_epochs=1, lambda_code=1.0)
    from vireid_train.imagelevel import build_method, build_model
    model = build_model(cfg, 2)
    meth = build_method(cfg, 2, model)
    x, y, mod = _batch()
    meth.set_epoch(0.5)
    _, parts = meth(model, x, y, mod)
    assert set(parts) == {"recon", "cyc", "gan", "dis", "code"}
    meth.set_epoch(1.0)
    loss, parts = meth(model, x, y, mod)
    assert {"id", "tri", "align"} <= set(parts)
    loss.backward()
    assert model.layer4[0].conv1.weight.grad.abs().sum() > 0 and meth.style_ir.net[0].conv.weight.grad is not None


def test_disentangle_teacher_and_late_losses(tmp_path):
    torch.manual_seed(0)
    teacher = ReIDNet(2, arch="resnet10")
    cfg_t = _cfg("baseline")
    torch.save({"model": teacher.state_dict(), "config": cfg_t, "num_classes": 2}, tmp_path / "t.pt")
    cfg = _cfg("disentangle", struct_base=4, struct_dim=8, mlp_dim=16, n_res=1, dis_dim=4, late_start_iter=1,
               teacher=str(tmp_path / "t.pt"))
    from vireid_train.imagelevel import build_method, build_model
    cfg["model"].update(pooling="max", test_feature="pooled")
    model = build_model(cfg, 2)
    assert model.pool.__class__.__name__ == "MaxPool" and model.test_feature == "pooled"
    meth = build_method(cfg, 2, model)
    assert "teacher" not in "".join(meth.state_dict())           # frozen, not checkpointed
    x, y, mod = _batch()
    _, parts = meth(model, x, y, mod)
    assert "code" not in parts and "kl" not in parts              # before late_start_iter
    loss, parts = meth(model, x, y, mod)
    assert {"recon", "id", "id_recon", "adv", "dis_d", "code", "kl"} <= set(parts) and int(meth.step) == 2
    meth.p["late_start_epoch"] = 0.5                              # by the schedule instead (time budgets)
    meth.set_epoch(0.4)
    assert "code" not in meth(model, x, y, mod)[1]
    meth.set_epoch(0.5)
    assert "code" in meth(model, x, y, mod)[1]
    meth.p["late_start_epoch"] = -1.0
    loss.backward()
    assert all(p.grad is None for p in meth.teacher.parameters())
    with pytest.raises(ValueError, match="classifies 2 identities"):
        build_method(cfg, 5, build_model(cfg, 5))
    bad = dict(cfg, method=dict(cfg["method"], teacher=str(tmp_path / "none.pt")))
    with pytest.raises(FileNotFoundError, match="method.teacher"):
        build_method(bad, 2, model)


# ---------------------------------------------------------------- smoke, export, vireid eval

@pytest.mark.parametrize("name", ["d2rl", "jsia", "disentangle", "disentangle_lowdim"])
def test_smoke_run_export_and_vireid_eval(tmp_path, name, capsys):
    out = tmp_path / "run"
    main(["train", "--config", str(CONFIGS / f"{name}.toml"), "--smoke", "--set", f"train.out_dir={out}"])
    text = capsys.readouterr().out
    assert f"FINAL method={name}" in text and (out / "last.pt").is_file()
    if name != "disentangle_lowdim":
        png = out / "translations.png"
        assert png.is_file() and png.stat().st_size < 300_000
        from PIL import Image
        assert Image.open(png).size[0] > 6 * 32
    main(["export", "--checkpoint", str(out / "last.pt"), "--out", str(tmp_path / "m.onnx")])
    md = {p.key: p.value for p in onnx.load(str(tmp_path / "m.onnx")).metadata_props}
    assert md["vireid.method"] == name and md["vireid.input_height"] == "32"
    per_modality = name in ("d2rl", "disentangle_lowdim")
    assert md["vireid.modality_handling"] == ("per_modality" if per_modality else "shared")
    if VIREID.is_file() and Path(ORT).is_file():      # the Rust evaluator (`make` sets ORT_DYLIB_PATH)
        rs = tmp_path / "rs"
        subprocess.run([str(VIREID), "--log", "warn", "synth", "regdb", "--out", str(rs), "--ids", "4", "--images", "2",
                        "--seed", "5"], check=True, capture_output=True)
        ev = subprocess.run([str(VIREID), "--log", "warn", "eval", "dataset", "--protocol", "regdb", "--direction",
                             "t2v", "--trials", "1", "--root", str(rs), "--model", str(tmp_path / "m.onnx"), "--out",
                             str(tmp_path / "ev"), "--quiet", "--no-cache"], capture_output=True, text=True,
                            env={**os.environ, "ORT_DYLIB_PATH": ORT})
        assert ev.returncode == 0, ev.stderr
        report = json.loads((tmp_path / "ev" / "report.json").read_text())
        assert 0.0 <= report["mean"]["mAP"] <= 1.0


def test_gpu_code_paths_on_the_cpu(tmp_path, capsys):
    """What a GPU window runs (bf16 autocast, resident data, channels_last) for each method, on
    the CPU at toy size."""
    for name in ("d2rl", "jsia", "disentangle"):
        out = tmp_path / name
        main(["train", "--config", str(CONFIGS / f"{name}.toml"), "--smoke", "--set", f"train.out_dir={out}",
              "--set", "train.amp=true", "--set", "data.resident=true", "--set", "train.channels_last=true",
              "--set", "train.batches_per_epoch=2"])
        text = capsys.readouterr().out
        assert "amp=bf16" in text and "data: resident on cpu" in text and "channels_last=True" in text
        line = [l for l in text.splitlines() if "iter 2/2" in l][0]
        vals = [float(v.split("=")[1]) for v in line.split() if "=" in v and not v.startswith("lr=")]
        assert all(math.isfinite(v) for v in vals), line


def test_translations_command_on_a_paired_set(tmp_path, capsys):
    out = tmp_path / "run"
    main(["train", "--config", str(CONFIGS / "jsia.toml"), "--smoke", "--set", f"train.out_dir={out}"])
    root = out / "smoke-data"
    # pairs.txt as `vireid synth regdb --paired` writes it: visible and thermal of the same instant
    vis = [l.split()[0] for l in (root / "idx" / "test_visible_1.txt").read_text().splitlines() if l]
    ir = [l.split()[0] for l in (root / "idx" / "test_thermal_1.txt").read_text().splitlines() if l]
    (root / "idx" / "pairs.txt").write_text("# visible thermal\n" + "\n".join(f"{v} {t}" for v, t in zip(vis, ir)))
    main(["translations", "--checkpoint", str(out / "last.pt"), "--out", str(tmp_path / "g.png"), "--people", "2"])
    assert (tmp_path / "g.png").is_file()
    with pytest.raises(SystemExit) as e:
        main(["translations", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path / "x.png")])
    assert e.value.code == 2


# ---------------------------------------------------------------- configs and errors

def test_configs_say_what_the_papers_do():
    import tomllib
    d2rl = tomllib.loads((CONFIGS / "d2rl_ref.toml").read_text())["method"]
    assert (d2rl["gan_w"], d2rl["recon_w"], d2rl["kl_w"], d2rl["cyc_w"], d2rl["kl_cyc_w"]) == (1, 10, 0.01, 10, 0.01)
    jsia = tomllib.loads((CONFIGS / "jsia_ref.toml").read_text())
    assert (jsia["method"]["lambda_cyc"], jsia["method"]["lambda_gan"], jsia["method"]["lambda_reid"]) == (10, 1, 1)
    assert jsia["method"]["pretrain_epochs"] == 100 and jsia["train"]["epochs"] == 150 and jsia["train"]["milestones"] == [130]
    assert (jsia["data"]["p"], jsia["data"]["k"], jsia["data"]["height"], jsia["data"]["width"]) == (16, 4, 256, 128)
    dis = tomllib.loads((CONFIGS / "disentangle_ref.toml").read_text())["method"]
    assert (dis["lambda_recon"], dis["lambda_id"], dis["late_start_iter"], dis["late_start_epoch"]) == (5, 0.5, 30000, 30)
    from vireid_train.imagelevel import build_method, build_model
    for name in ("d2rl", "d2rl_ref", "jsia", "jsia_ref", "disentangle", "disentangle_ref"):
        cfg = load_config(str(CONFIGS / f"{name}.toml"), ["data.root=/x", "model.arch=resnet10", "method.teacher="]
                          if "disentangle" in name else ["data.root=/x", "model.arch=resnet10"])
        build_method(cfg, 4, build_model(cfg, 4))


def test_bad_input_is_named(tmp_path):
    from vireid_train.imagelevel import build_method, build_model
    with pytest.raises(ValueError, match="model.two_stream = false"):
        build_model(dict(_cfg("jsia"), model=dict(_cfg("jsia")["model"], two_stream=True)), 2)
    with pytest.raises(ValueError, match="method.gan_lrr is not an option of method 'd2rl'"):
        build_model(_cfg("d2rl", gan_lrr=1), 2)
    with pytest.raises(ValueError, match="method.align = 'both'"):
        build_model(_cfg("jsia", align="both"), 2)
    with pytest.raises(ValueError, match="method.gan_betas"):
        build_model(_cfg("d2rl", gan_betas=0.5), 2)
    cfg = _cfg("disentangle")
    cfg["data"]["k"] = 1
    with pytest.raises(ValueError, match="data.k must be >= 2"):
        build_method(cfg, 2, build_model(cfg, 2))
    cfg = _cfg("jsia")
    cfg["train"]["optimizer"] = "sgd"
    with pytest.raises(ValueError, match="train.optimizer = adam"):
        build_method(cfg, 2, build_model(cfg, 2))
    meth = JSIAMethod({"dis_layers": 2, "dis_scales": 1}, 2, _cfg("jsia"), 64)
    x, y, mod = _batch()
    with pytest.raises(ValueError, match="channel_aug_mode"):
        meth(ReIDNet(2, arch="resnet10"), torch.cat([x, x[:4]]), torch.cat([y, y[:4]]), torch.cat([mod, mod[:4]]))
    # the CLI: exit status 2 and the message
    for args in (["--set", "method.align=both"], ["--set", "method.embedder=" + str(tmp_path / "none.pt")]):
        cfg_name = "jsia" if "align" in args[1] else "disentangle_lowdim"
        with pytest.raises(SystemExit) as e:
            main(["train", "--config", str(CONFIGS / f"{cfg_name}.toml"), "--smoke", "--set",
                  f"train.out_dir={tmp_path / cfg_name}", *args])
        assert e.value.code == 2


def test_gpu_job_menu_names_its_options():
    """training/device/run.sh --then: an unknown method is refused before anything runs."""
    run = subprocess.run([str(ROOT / "training" / "device" / "run.sh"), "--smoke", "--then", "d2rl,cyclegan"],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2 and "the menu has d2rl, jsia and disentangle" in run.stderr
    run = subprocess.run([str(ROOT / "training" / "device" / "run.sh"), "--then"], capture_output=True, text=True)
    assert run.returncode == 2 and "usage" in run.stderr

