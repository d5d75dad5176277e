"""The GPU job's Python pieces: checkpoint parts and the int8 continuation, the all-ids
lists, the probe, the report and the model card."""
import json

import pytest
import torch

from vireid_train import device, pack
from vireid_train.model import ReIDNet
from vireid_train.synthetic import write_regdb


def _checkpoint(tmp_path, classes=5):
    torch.manual_seed(0)
    model = ReIDNet(classes, arch="resnet10", two_stream=True)
    with torch.no_grad():
        model.pool.p.fill_(3.7)
        model.bnneck.running_mean.normal_()
    cfg = {"data": {"dataset": "regdb", "height": 32, "width": 16}, "model": {"arch": "resnet10", "two_stream": True},
           "method": {"name": "lba"}}
    path = tmp_path / "last.pt"
    torch.save({"model": model.state_dict(), "method": {}, "opt": {"huge": torch.zeros(10)}, "epoch": 3,
                "config": cfg, "num_classes": classes}, path)
    return path, model


def test_bf16_parts_round_trip_and_are_checked(tmp_path):
    path, model = _checkpoint(tmp_path)
    out = tmp_path / "OUT"
    manifest = pack.pack_parts(path, out, part_bytes=200_000)
    assert len(manifest["parts"]) > 1 and all((out / p).stat().st_size <= 200_000 for p in manifest["parts"])
    back = pack.unpack_parts(out, tmp_path / "back.pt", manifest)
    ck = torch.load(back, weights_only=False)
    assert "opt" not in ck and ck["epoch"] == 3 and ck["num_classes"] == 5
    for k, v in model.state_dict().items():
        got = ck["model"][k]
        assert got.dtype == v.dtype, k
        if torch.is_floating_point(v):
            # bf16 keeps 8 significant bits: relative error below 2^-8
            assert torch.allclose(got, v, rtol=2 ** -8, atol=1e-30), k
        else:
            assert torch.equal(got, v), k
    # a missing or corrupted part is named, not a torch.load traceback
    (out / manifest["parts"][-1]).unlink()
    with pytest.raises(FileNotFoundError, match="missing"):
        pack.unpack_parts(out, tmp_path / "x.pt", manifest)
    pack.pack_parts(path, out, part_bytes=200_000)
    first = out / manifest["parts"][0]
    first.write_bytes(first.read_bytes()[:-10])
    with pytest.raises(ValueError, match="checksum"):
        pack.unpack_parts(out, tmp_path / "x.pt", manifest)


def test_int8_continuation_is_small_and_close(tmp_path):
    path, model = _checkpoint(tmp_path)
    small = pack.pack_int8(path, tmp_path / "resume.int8.pt", {"kind": "gpu"})
    assert small.stat().st_size < 0.4 * path.stat().st_size
    back = torch.load(pack.unpack_int8(small, tmp_path / "init.pt"), weights_only=False)
    assert back["provenance"]["kind"] == "gpu"
    state = model.state_dict()
    conv = "layer3.0.conv1.weight"
    w, got = state[conv], back["model"][conv]
    # per output channel, the error is at most half a step of max|w|/127
    step = w.reshape(w.shape[0], -1).abs().amax(1) / 127
    assert ((got - w).reshape(w.shape[0], -1).abs().amax(1) <= step / 2 + 1e-7).all()
    # small tensors (BN statistics, GeM p) are kept exactly
    assert torch.equal(back["model"]["bnneck.running_mean"], state["bnneck.running_mean"])
    assert back["model"]["pool.p"].item() == pytest.approx(3.7)
    # the network loads from it
    ReIDNet(5, arch="resnet10", two_stream=True).load_state_dict(back["model"])
    with pytest.raises(ValueError, match="continuation checkpoint"):
        pack.unpack_int8(path, tmp_path / "y.pt")


def test_all_ids_lists_hold_every_person(tmp_path):
    root = write_regdb(tmp_path / "r", n_train=3, n_test=2, per_id=2, size=(16, 32))
    n = device.all_ids(root)
    assert n == 5
    for mod in ("visible", "thermal"):
        lines = (root / "idx" / f"train_{mod}_1.txt").read_text().split("\n")
        lines = [ln for ln in lines if ln]
        assert len(lines) == 5 * 2
        assert sorted({int(ln.split()[1]) for ln in lines}) == list(range(5))
    # the same person has the same label in both modalities
    vis = {ln.split()[0].split("/")[1]: ln.split()[1] for ln in (root / "idx" / "train_visible_1.txt").read_text().split("\n") if ln}
    th = {ln.split()[0].split("/")[1]: ln.split()[1] for ln in (root / "idx" / "train_thermal_1.txt").read_text().split("\n") if ln}
    assert vis == th
    assert device.all_ids(root) == 5  # idempotent
    with pytest.raises(FileNotFoundError, match="vireid synth regdb"):
        device.all_ids(tmp_path / "nothing")


def test_probe_report_and_card(tmp_path):
    info = device.probe()
    assert info["cuda_available"] in (True, False) and isinstance(info["pretrained_resnet50"], list)
    (tmp_path / "job.json").write_text(json.dumps({"wall_s": 500, "train_ids": 10, "train_images": 2, "width": 16, "height": 32}))
    merged = device.report(str(tmp_path / "m.json"), [f"job={tmp_path / 'job.json'}", f"probe={tmp_path / 'none.json'}"])
    assert merged["job"]["wall_s"] == 500 and "missing" in merged["probe"]
    rep = {"mean": {"cmc": [0.5] + [0.9] * 19, "mAP": 0.4, "mINP": 0.2}}
    (tmp_path / "f.json").write_text(json.dumps(rep))
    rep["mean"]["mAP"] = 0.395
    (tmp_path / "i.json").write_text(json.dumps(rep))
    text = device.card(str(tmp_path / "m.json"), str(tmp_path / "f.json"), str(tmp_path / "i.json"), str(tmp_path / "c.md"))
    assert "| FP32 | 50.00 | 90.00 | 40.00 | 20.00 |" in text and "ΔmAP -0.50" in text


def test_find_pretrained_looks_in_the_hub_caches(tmp_path, monkeypatch):
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert device.find_pretrained() == []
    import torchvision
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), hub / "resnet50-0676ba61.pth")
    found = device.find_pretrained()
    assert [f["source"] for f in found] == ["torchvision"] and "BSD" in found[0]["licence"]
    out = device.as_torchvision_state(found[0]["path"], str(tmp_path / "w.pth"))
    assert "layer4.2.conv3.weight" in torch.load(out, weights_only=True)


def test_merge_renumbers_people_and_keeps_their_attributes(tmp_path):
    studio = write_regdb(tmp_path / "studio", n_train=3, n_test=2, per_id=2, size=(16, 32))
    scene = write_regdb(tmp_path / "scene", n_train=2, n_test=2, per_id=1, size=(16, 32))
    (scene / "attributes.csv").unlink()          # scene crops come without attributes
    counts = device.merge(tmp_path / "m", [f"{studio}:train", f"{scene}:test"])
    assert counts[f"{studio}:train"]["identities"] == 3 and counts[f"{scene}:test"]["identities"] == 2
    from vireid_train.data import load_attributes, load_train
    samples, n = load_train("regdb", tmp_path / "m")
    assert n == 5 and len(samples) == 3 * 2 * 2 + 2 * 1 * 2
    assert all((tmp_path / "m" / s.path).exists() or __import__("os").path.exists(s.path) for s in samples)
    attrs = load_attributes(tmp_path / "m", samples, n)
    assert (attrs.table[3:] == -1).all() and (attrs.table[:3] >= 0).any()
    # the studio people's rows are their own
    from vireid_train.data import raw_identity, read_attributes_csv
    _, _, rows = read_attributes_csv(studio / "attributes.csv")
    first = next(s for s in samples if s.label == 0)
    real = int((tmp_path / "m" / "Visible" / str(raw_identity(first.path))).resolve().name)
    assert attrs.table[0].tolist() == rows[real]
    with pytest.raises(ValueError, match="ROOT:train"):
        device.merge(tmp_path / "x", [str(studio)])


def test_night_day_view_keeps_night_thermal_and_day_visible(tmp_path):
    root = tmp_path / "scene"
    for folder, mod in (("Visible", "visible"), ("Thermal", "thermal")):
        (root / folder / "1").mkdir(parents=True)
        (root / "idx").mkdir(exist_ok=True)
        lines = [f"{folder}/1/day_000010.jpg 0", f"{folder}/1/night_000310.jpg 0", f"{folder}/1/day_000015.jpg 0"]
        (root / "idx" / f"test_{mod}_1.txt").write_text("\n".join(lines) + "\n")
    q, g = device.night_day(root, tmp_path / "nd")
    assert (q, g) == (1, 2)
    assert (tmp_path / "nd" / "idx" / "test_thermal_1.txt").read_text() == "Thermal/1/night_000310.jpg 0\n"
    assert "night" not in (tmp_path / "nd" / "idx" / "test_visible_1.txt").read_text()
    assert (tmp_path / "nd" / "Visible" / "1").is_dir()
    with pytest.raises(FileNotFoundError, match="synth scene --crops"):
        device.night_day(tmp_path / "nothing", tmp_path / "nd2")
