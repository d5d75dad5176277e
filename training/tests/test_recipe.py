"""The reference recipes' pieces (issue 16): SGD groups and schedule, LbA's conv4 ID-consistency
branch, DANet's EMA teachers, CAJ's added view in the methods, fp32 losses under bf16 autocast,
the exported test feature, continuing from a checkpoint, and the device code path (resident
data, channels_last, time budget) run on the CPU through the CLI."""
import json
import math
import tomllib
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from vireid_train import data as D
from vireid_train import losses
from vireid_train.__main__ import main
from vireid_train.config import load_config
from vireid_train.methods import Method
from vireid_train.model import EmbeddingGraph, ReIDNet
from vireid_train.train import build_optimizer, lr_factor

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _cfg(**train):
    cfg = load_config(None, ["data.root=/unused"])
    cfg["train"].update(train)
    return cfg


def test_sgd_two_groups_as_agw_and_lba():
    model = ReIDNet(7, arch="resnet10")
    meth = Method("danet", {}, 7, model.embedding_dim, k=2)
    cfg = _cfg(optimizer="sgd", lr=0.1, backbone_lr_mult=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    opt = build_optimizer(cfg, model, meth)
    assert isinstance(opt, torch.optim.SGD) and len(opt.param_groups) == 2
    backbone, head = opt.param_groups
    assert backbone["lr_mult"] == 0.1 and head["lr_mult"] == 1.0
    for g in opt.param_groups:
        assert g["momentum"] == 0.9 and g["nesterov"] and g["weight_decay"] == 5e-4
    ids = lambda ps: {id(p) for p in ps}
    # new layers: BNNeck (its weight; the bias is frozen) + classifier + the method's classifiers
    assert ids(head["params"]) == ids([model.bnneck.weight, model.classifier.weight, meth.cls_rgb.weight,
                                       meth.cls_ir.weight])
    assert id(model.stems[0][0].weight) in ids(backbone["params"]) and id(model.pool.p) in ids(backbone["params"])
    assert len(backbone["params"]) + len(head["params"]) == sum(p.requires_grad for p in model.parameters()) + 2
    # Adam with one learning rate keeps the single group of earlier runs (their checkpoints resume)
    adam = build_optimizer(_cfg(), model, meth)
    assert isinstance(adam, torch.optim.Adam) and len(adam.param_groups) == 1


def test_step_schedule_is_lba_agw_and_cosine_unchanged():
    cfg = _cfg(schedule="step", warmup_epochs=10, milestones=[20, 50], gamma=0.1, epochs=81)
    # warm-up (e + 1) / 10 per whole epoch, then x1, x0.1 from 20, x0.01 from 50 (LbA's train.py)
    want = {0: 0.1, 0.99: 0.1, 4.5: 0.5, 9: 1.0, 10: 1.0, 19.9: 1.0, 20: 0.1, 49: 0.1, 50: 0.01, 80: 0.01}
    for epoch, factor in want.items():
        assert lr_factor(cfg, epoch) == pytest.approx(factor), epoch
    cos = _cfg(epochs=10, warmup_epochs=2)
    assert lr_factor(cos, 0) == pytest.approx(0.1) and lr_factor(cos, 1) == pytest.approx(0.55)
    assert lr_factor(cos, 2) == pytest.approx(1.0) and lr_factor(cos, 6) == pytest.approx(0.01 + 0.99 * 0.5)
    assert lr_factor(cos, 10) == pytest.approx(0.01)


def _batch(p=2, k=2, size=(32, 16), seed=0, extra=False):
    g = torch.Generator().manual_seed(seed)
    n = p * k
    x = torch.randn(2 * n + (n if extra else 0), 3, *size, generator=g)
    y = torch.arange(p).repeat_interleave(k).repeat(3 if extra else 2)
    mod = torch.tensor([0] * n + [1] * n + ([0] * n if extra else []))
    return x, y, mod


def test_lba_conv4_consistency_branch_goes_through_layer4():
    torch.manual_seed(0)
    model = ReIDNet(3, arch="resnet10", two_stream=True)
    x, y, mod = _batch()
    n = 4
    params = {"label_smoothing": 0.0, "ic_levels": "both", "coatt": "minmax", "dt_reduction": "mean"}
    meth = Method("lba", params, 3, model.embedding_dim, k=2)
    model.eval()   # fixed BN statistics: the hand computation below sees the same numbers
    _, parts = meth(model, x, y, mod)
    with torch.no_grad():
        out = model(x, mod)
        pos = torch.cat([torch.arange(n) + n, torch.arange(n)])           # "slot" pairs
        neg = torch.cat([(torch.arange(n) + 2) % n + n, (torch.arange(n) + 2) % n])
        ic, dt = 0.0, 0.0
        for level in ("conv4", "conv5"):
            f = out[level]
            rp, att = losses.cmalign(f, f[pos], 50.0, "minmax")
            rn, _ = losses.cmalign(f, f[neg], 50.0, "minmax")
            dt = dt + losses.dense_triplet_loss(f, rp, rn, att, 0.3, "mean")
            feat = model.layer4(rp) if level == "conv4" else rp      # conv4: through layer4 first
            ic = ic + F.cross_entropy(model.head(feat)["logits"], y)  # the two CE terms summed
    assert parts["ic"].item() == pytest.approx(ic.item(), rel=1e-5)
    assert parts["dt"].item() == pytest.approx(0.5 * dt.item(), rel=1e-5)
    conv5_only = Method("lba", {**params, "ic_levels": "conv5"}, 3, model.embedding_dim, k=2)
    _, p5 = conv5_only(model, x, y, mod)
    assert p5["ic"].item() < parts["ic"].item()
    # in training mode the conv4 branch sends ID gradient into layer3 through the reconstruction
    model.train()
    model.zero_grad()
    meth2 = Method("lba", {**params, "lambda_dt": 0.0}, 3, model.embedding_dim, k=2)
    o = model(x, mod)
    parts2 = meth2._lba(model, {k: v.float() for k, v in o.items()}, y, mod)
    parts2["ic"].backward()
    assert model.layer3[0].conv1.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="ic_levels"):
        Method("lba", {"ic_levels": "conv3"}, 3, 512, k=2)
    with pytest.raises(ValueError, match="not an option of method 'baseline'"):
        Method("baseline", {"coatt": "minmax"}, 3, 512, k=2)


def test_danet_ema_teachers_and_live_sid():
    torch.manual_seed(0)
    model = ReIDNet(3, arch="resnet10")
    x, y, mod = _batch()
    params = {"kl": "ema", "sid_live": True, "cc": "centre_cluster", "cc_feature": "raw", "ema_rate": 0.2,
              "label_smoothing": 0.0, "triplet_weight": 0.0}
    meth = Method("danet", params, 3, model.embedding_dim, k=2)
    assert torch.equal(meth.ema_rgb, meth.cls_rgb.weight)           # teachers start as the classifiers
    with torch.no_grad():                                            # as after some optimiser steps
        for w in (meth.cls_rgb.weight, meth.cls_ir.weight, meth.ema_rgb, meth.ema_ir):
            w.normal_(0, 0.05)
    old_rgb, live_rgb = meth.ema_rgb.clone(), meth.cls_rgb.weight.detach().clone()
    model.eval()
    total, parts = meth(model, x, y, mod)
    assert torch.allclose(meth.ema_rgb, 0.8 * old_rgb + 0.2 * live_rgb)   # momentum 0.2, before use
    assert set(parts) == {"id", "sid", "cc", "m"}
    with torch.no_grad():
        bn, pooled = model(x, mod)["bn"], model(x, mod)["pooled"]
        fv, fr = bn[:4], bn[4:]
        own = torch.cat([meth.cls_rgb(fv), meth.cls_ir(fr)])
        teacher = torch.cat([F.linear(fv, meth.ema_ir), F.linear(fr, meth.ema_rgb)])
        kl = (F.softmax(own, 1) * (F.log_softmax(own, 1) - F.log_softmax(teacher, 1))).sum(1).mean()
        sid = F.cross_entropy(meth.cls_rgb(fv), y[:4]) + F.cross_entropy(meth.cls_ir(fr), y[4:])
        cc = losses.centre_cluster_loss(pooled, y, 0.7)
    assert parts["m"].item() == pytest.approx(2.5 * kl.item(), rel=1e-4)
    assert parts["sid"].item() == pytest.approx(sid.item(), rel=1e-5)
    assert parts["cc"].item() == pytest.approx(cc.item(), rel=1e-5)
    # L_sid on live features reaches the backbone; detached (sid_live = false) it does not
    for live, reaches in ((True, True), (False, False)):
        m = Method("danet", {**params, "sid_live": live}, 3, model.embedding_dim, k=2)
        o = {k: v.float() for k, v in model(x, mod).items()}
        sid_only = m._danet(o, y, mod)["sid"]
        g = torch.autograd.grad(sid_only, o["bn"], allow_unused=True)[0]
        assert (g is not None and g.abs().sum() > 0) == reaches
    # the teachers are checkpointed with the method; the annealing of the authors' code
    assert "ema_rgb" in meth.state_dict()
    meth.p["ema_anneal_from"] = 100
    meth.set_epoch(98.5)
    assert meth.ema_rate() == pytest.approx(0.2)
    meth.set_epoch(139)
    assert meth.ema_rate() == pytest.approx(0.2 * 100 / 141)


@pytest.mark.parametrize("name", ["baseline", "danet", "lba"])
def test_caj_added_view_batches_train_every_method(name):
    torch.manual_seed(0)
    model = ReIDNet(2, arch="resnet10", two_stream=name == "lba")
    x, y, mod = _batch(extra=True)
    meth = Method(name, {}, 2, model.embedding_dim, k=2)
    loss, parts = meth(model, x, y, mod)
    loss.backward()
    assert torch.isfinite(loss) and model.layer1[0].conv1.weight.grad.abs().sum() > 0


@pytest.mark.filterwarnings("ignore:TF32 acceleration on top of oneDNN")
def test_losses_see_float32_under_bf16_autocast(monkeypatch):
    """The network runs in bf16, every loss and distance input is float32."""
    seen = []

    def spy(fn):
        def wrapped(*args, **kw):
            seen.append((fn.__name__, [a.dtype for a in args if isinstance(a, torch.Tensor) and a.is_floating_point()]))
            return fn(*args, **kw)
        return wrapped

    for name in ("id_loss", "hard_triplet_loss", "cmalign", "dense_triplet_loss", "centre_cluster_loss",
                 "ema_mutual_kl"):
        monkeypatch.setattr(losses, name, spy(getattr(losses, name)))
    torch.manual_seed(0)
    net_dtypes = []
    for name, params in (("lba", {}), ("danet", {"kl": "ema", "cc": "centre_cluster", "cc_feature": "raw"})):
        model = ReIDNet(2, arch="resnet10", two_stream=name == "lba")
        model.layer4.register_forward_hook(lambda m, i, o: net_dtypes.append(o.dtype))
        meth = Method(name, params, 2, model.embedding_dim, k=2)
        meth.configure(lambda: torch.autocast("cpu", dtype=torch.bfloat16))
        x, y, mod = _batch()
        with torch.backends.mkldnn.flags(enabled=False):   # see train.py: oneDNN bf16 on this CPU
            loss, _ = meth(model, x, y, mod)
        assert loss.dtype == torch.float32
    assert net_dtypes and all(d == torch.bfloat16 for d in net_dtypes)   # the network did run in bf16
    names = {n for n, _ in seen}
    assert {"id_loss", "hard_triplet_loss", "cmalign", "dense_triplet_loss", "centre_cluster_loss",
            "ema_mutual_kl"} <= names
    assert all(d == torch.float32 for _, ds in seen for d in ds), seen


def test_pooled_test_feature_is_what_is_embedded_and_exported():
    torch.manual_seed(0)
    model = ReIDNet(3, arch="resnet10", two_stream=True, test_feature="pooled", gem_learnable=False).eval()
    assert "pool.p" in model.state_dict() and not any(n == "pool.p" for n, _ in model.named_parameters())
    x = torch.randn(2, 3, 32, 16)
    with torch.no_grad():
        out = model(x, torch.tensor([0, 1]))
        assert torch.equal(model.embed(x, torch.tensor([0, 1])), out["pooled"])
        assert torch.allclose(EmbeddingGraph(model)(x, torch.tensor([0.0, 1.0])), out["pooled"], atol=1e-5)
    with pytest.raises(ValueError, match="model.test_feature"):
        ReIDNet(3, arch="resnet10", test_feature="logits")


def test_init_checkpoint_keeps_classifier_and_method_state_of_the_same_set(tmp_path):
    old = ReIDNet(5, arch="resnet10")
    meth = Method("danet", {"kl": "ema"}, 5, old.embedding_dim, k=2)
    with torch.no_grad():
        old.classifier.weight.fill_(0.25)
        meth.ema_ir.fill_(0.5)
    path = tmp_path / "last.pt"
    torch.save({"model": old.state_dict(), "method": meth.state_dict(), "num_classes": 5,
                "config": {"method": {"name": "danet"}}}, path)
    same = ReIDNet(5, arch="resnet10")
    ck = same.load_backbone(str(path))
    assert ck["classifier_kept"] and torch.equal(same.classifier.weight, old.classifier.weight)
    from vireid_train.train import _restore_method_state
    m2 = Method("danet", {"kl": "ema"}, 5, old.embedding_dim, k=2)
    assert "reused" in _restore_method_state(m2, ck["method"], print)
    assert torch.equal(m2.ema_ir, meth.ema_ir) and torch.equal(m2.cls_rgb.weight, meth.cls_rgb.weight)
    other = ReIDNet(3, arch="resnet10")
    ck = other.load_backbone(str(path))
    assert not ck["classifier_kept"] and other.classifier.weight.shape == (3, other.embedding_dim)
    assert not torch.equal(other.classifier.weight[:, :3], old.classifier.weight[:3, :3])
    m3 = Method("danet", {"kl": "ema"}, 3, old.embedding_dim, k=2)
    assert "not reused" in _restore_method_state(m3, ck["method"], print)


def test_reference_configs_load_and_say_what_the_references_do():
    for name in ("baseline_ref", "danet_ref", "lba_ref"):
        cfg = load_config(str(CONFIGS / f"{name}.toml"), ["data.root=/x"])
        Method(cfg["method"]["name"], {k: v for k, v in cfg["method"].items() if k != "name"}, 4, 2048, cfg["data"]["k"])
    lba = tomllib.loads((CONFIGS / "lba_ref.toml").read_text())
    assert lba["train"]["optimizer"] == "sgd" and lba["train"]["milestones"] == [20, 50]
    assert lba["train"]["epochs"] == 81 and lba["method"]["ic_levels"] == "both"
    danet = tomllib.loads((CONFIGS / "danet_ref.toml").read_text())
    assert (danet["data"]["p"], danet["data"]["k"], danet["data"]["height"], danet["data"]["width"]) == (16, 4, 384, 128)
    assert danet["train"]["milestones"] == [80, 120] and danet["train"]["epochs"] == 140
    assert danet["method"]["kl"] == "ema"
    base = tomllib.loads((CONFIGS / "baseline_ref.toml").read_text())
    assert base["model"]["two_stream"] and base["method"]["name"] == "baseline"


def test_config_rejects_unknown_keys_and_bad_choices(tmp_path):
    with pytest.raises(ValueError, match="unknown key data.resdent"):
        load_config(None, ["data.root=/x", "data.resdent=true"])
    with pytest.raises(ValueError, match="train.optimizer"):
        load_config(None, ["data.root=/x", "train.optimizer=rmsprop"])
    with pytest.raises(ValueError, match="a list such as"):
        load_config(None, ["data.root=/x", "train.milestones=20"])
    assert load_config(None, ["data.root=/x", "train.milestones=[3, 7]"])["train"]["milestones"] == [3, 7]
    assert load_config(None, ["data.root=/x", "train.amp=true"])["train"]["amp"] is True


def test_device_code_path_on_the_cpu_with_a_time_budget(tmp_path, capsys):
    """What the GPU job runs (resident data on the training device, channels_last, SGD step
    schedule, CAJ's added view, attribute heads, a time budget), here on the CPU at toy size;
    then continued from its checkpoint (classifier kept) and evaluated from the checkpoint."""
    from vireid_train.synthetic import write_regdb
    root = write_regdb(tmp_path / "regdb", n_train=4, n_test=3, per_id=2, size=(16, 32), seed=2)
    cfg = tmp_path / "gpu.toml"
    cfg.write_text(f"""
[data]
dataset = "regdb"
root = "{root}"
height = 32
width = 16
p = 2
k = 2
resident = true
channel_aug = true
channel_aug_mode = "add"
[model]
arch = "resnet10"
two_stream = true
attr_heads = true
test_feature = "pooled"
[method]
name = "lba"
pairs = "random"
coatt = "minmax"
[train]
optimizer = "sgd"
lr = 0.01
backbone_lr_mult = 0.1
schedule = "step"
warmup_epochs = 1
milestones = [2]
epochs = 100
batches_per_epoch = 5
channels_last = true
device = "cpu"
time_budget_s = 12
budget_warmup_iters = 2
log_every = 1
out_dir = "{tmp_path / 'run'}"
""")
    main(["train", "--config", str(cfg)])
    out = capsys.readouterr().out
    assert "data: resident on cpu" in out and "channels_last=True" in out and "attributes=hat" in out
    plan = [l for l in out.splitlines() if l.startswith("time budget 12s:")]
    assert plan and "(config: 100 x 5)" in plan[0]
    epochs = int(plan[-1].split("-> ")[1].split(" epochs")[0])
    assert 1 <= epochs < 100                   # a CPU cannot do 500 iterations in 12 s
    assert "FINAL method=lba" in out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["train_seconds"] < 12 + 10 and metrics["test_feature"] == "pooled"
    ck = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert ck["plan"]["epochs"] == metrics["epochs"] and ck["attributes"][0] == "hat"
    # a later window continues: same training set, so the classifier and method state are kept
    main(["train", "--config", str(cfg), "--no-resume", "--init-checkpoint", str(tmp_path / "run" / "last.pt"),
          "--out-dir", str(tmp_path / "run2"), "--set", "train.time_budget_s=0", "--set", "train.epochs=1",
          "--set", "train.batches_per_epoch=1"])
    out = capsys.readouterr().out
    assert "classifier kept (same classes: a continued run)" in out and "FINAL" in out
    main(["evaluate", "--checkpoint", str(tmp_path / "run2" / "last.pt"), "--dataset", "regdb", "--root", str(root),
          "--device", "cpu", "--json", str(tmp_path / "e.json")])
    assert 0.0 <= json.loads((tmp_path / "e.json").read_text())["r1"] <= 100.0
