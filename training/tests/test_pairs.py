"""Co-observed pairs: the pairs.txt reader, the paired sampler, the cross-modal InfoNCE term
(hand values), its use by every method, and checkpoint recovery from an exported model."""
import math
from collections import Counter

import numpy as np
import pytest
import torch
import torch.nn as nn

from vireid_train import data as D
from vireid_train import losses
from vireid_train.config import load_config
from vireid_train.methods import Method
from vireid_train.model import ReIDNet
from vireid_train.pairs import read_pairs
from vireid_train.synthetic import write_regdb
from vireid_train.train import TrainData

E = math.e


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: two threads only wait on each other (and thrash on a loaded 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---------------------------------------------------------------- the loss, by hand

def _feats():
    v = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    return v, t          # S = v·tᵀ = [[1,0,0],[0,1,1],[1,0,0]]


def test_paired_infonce_hand_values():
    v, t = _feats()
    paired = torch.tensor([True, True, False])
    # three people: row 0 RGB→thermal log(e+2)−1, thermal→RGB (column 0: 1,0,1) log(2e+1)−1;
    # row 1: row (0,1,1) log(2e+1)−1, column (0,1,0) log(e+2)−1
    want = 0.5 * (math.log(E + 2) + math.log(2 * E + 1)) - 1
    got = losses.paired_infonce(v, t, torch.tensor([0, 1, 2]), paired, temperature=1.0)
    assert got.item() == pytest.approx(want, rel=1e-6)
    # rows 0 and 1 one person: "other_ids" leaves the other's crop out of both denominators:
    # row 0 keeps columns {0, 2}: log(e+1)−1; column 0 keeps rows {0, 2}: log(2e)−1; row 1 the same
    want = 0.5 * (math.log(E + 1) - 1 + math.log(2 * E) - 1)
    got = losses.paired_infonce(v, t, torch.tensor([0, 0, 1]), paired, temperature=1.0)
    assert got.item() == pytest.approx(want, rel=1e-6)
    # "all": the same person at another instant is a negative again (the three-people value)
    got = losses.paired_infonce(v, t, torch.tensor([0, 0, 1]), paired, temperature=1.0, negatives="all")
    assert got.item() == pytest.approx(0.5 * (math.log(E + 2) + math.log(2 * E + 1)) - 1, rel=1e-6)
    # temperature 0.5 doubles S; the features are L2-normalised first (scale does not matter)
    e2 = math.exp(2)
    want = 0.5 * (math.log(e2 + 2) + math.log(2 * e2 + 1)) - 2
    got = losses.paired_infonce(3 * v, 0.5 * t, torch.tensor([0, 1, 2]), paired, temperature=0.5)
    assert got.item() == pytest.approx(want, rel=1e-6)
    # only row 2 paired, and its pair is orthogonal (S_22 = 0): row (1,0,0) log(e+2), column (0,1,0) log(e+2)
    got = losses.paired_infonce(v, t, torch.tensor([0, 1, 2]), torch.tensor([False, False, True]), 1.0)
    assert got.item() == pytest.approx(math.log(E + 2), rel=1e-6)
    # no pair in the batch: 0, not NaN
    assert losses.paired_infonce(v, t, torch.tensor([0, 1, 2]), torch.zeros(3, dtype=torch.bool)).item() == 0.0
    with pytest.raises(ValueError, match="pair_negatives"):
        losses.paired_infonce(v, t, torch.tensor([0, 1, 2]), paired, negatives="some")
    with pytest.raises(ValueError, match="pair_temperature"):
        losses.paired_infonce(v, t, torch.tensor([0, 1, 2]), paired, temperature=0)


def test_paired_infonce_pulls_the_pair_together():
    torch.manual_seed(0)
    v = torch.randn(4, 8, requires_grad=True)
    t = torch.randn(4, 8, requires_grad=True)
    loss = losses.paired_infonce(v, t, torch.arange(4), torch.ones(4, dtype=torch.bool), 0.1)
    loss.backward()
    with torch.no_grad():
        v2, t2 = v - 0.1 * v.grad, t - 0.1 * t.grad
        before = torch.nn.functional.cosine_similarity(v, t).mean()
        after = torch.nn.functional.cosine_similarity(v2, t2).mean()
    assert after > before


# ---------------------------------------------------------------- pairs.txt

@pytest.fixture()
def regdb(tmp_path):
    # people 0, 1 train (labels 0, 1), person 2 test; img_m of Visible/<id> and Thermal/<id> one instant
    return write_regdb(tmp_path / "r", n_train=2, n_test=1, per_id=3, size=(16, 32))


def _write(root, lines):
    (root / "idx" / "pairs.txt").write_text("# visible thermal\n" + "\n".join(lines) + "\n")
    return root / "idx" / "pairs.txt"


def _read(root):
    train, _ = D.load_train("regdb", root)
    test = [s for half in D.load_test("regdb", root) for s in half]
    return train, read_pairs(root / "idx" / "pairs.txt", root, train, test)


def test_pairs_reader_keeps_training_pairs_and_skips_test_ones(regdb):
    lines = [f"Visible/{p}/img_{m}.bmp Thermal/{p}/img_{m}.bmp" for p in range(3) for m in range(3)]
    _write(regdb, lines + ["", lines[0]])      # a blank line and a duplicate
    train, pairs = _read(regdb)
    assert len(pairs.pairs) == 6 and pairs.test_pairs == 3
    for v, t in pairs.pairs:
        sv, st = train[v], train[t]
        assert sv.modality == D.RGB and st.modality == D.THERMAL and sv.label == st.label
        assert sv.path.replace("Visible", "Thermal") == st.path
    assert sorted(len(ts) for ts in pairs.partners().values()) == [1] * 6


@pytest.mark.parametrize("line, error", [
    ("Visible/0/img_0.bmp", "expected '<visible relpath> <thermal relpath>'"),
    ("Visible/0/img_0.bmp Thermal/0/img_9.bmp", "Thermal/0/img_9.bmp is not in the training or test lists"),
    ("Thermal/0/img_0.bmp Visible/0/img_0.bmp", "is a thermal crop, but the first column must be the visible"),
    ("Visible/0/img_0.bmp Visible/0/img_1.bmp", "is a visible crop, but the second column must be the thermal"),
    ("Visible/0/img_0.bmp Thermal/2/img_0.bmp", "is a training crop but Thermal/2/img_0.bmp is a test crop"),
    ("Visible/0/img_0.bmp Thermal/1/img_0.bmp", "different people"),
])
def test_pairs_reader_errors_name_the_line_and_the_fix(regdb, line, error):
    _write(regdb, ["Visible/1/img_0.bmp Thermal/1/img_0.bmp", line])
    with pytest.raises(ValueError, match=error) as e:
        _read(regdb)
    assert "pairs.txt:3:" in str(e.value)


def test_pairs_reader_missing_file_and_no_training_pair(regdb):
    with pytest.raises(FileNotFoundError, match="pairs.txt does not exist; `vireid synth regdb --paired`"):
        _read(regdb)
    _write(regdb, ["Visible/2/img_0.bmp Thermal/2/img_0.bmp"])
    with pytest.raises(ValueError, match=r"no pair of two training crops \(1 pair lines, 1 of the test lists\)"):
        _read(regdb)


# ---------------------------------------------------------------- sampler and batches

def _paired_set(tmp_path, n_train=4, per_id=4):
    root = write_regdb(tmp_path / "p", n_train=n_train, n_test=1, per_id=per_id, size=(16, 32))
    # every instant but the last one of each person is co-observed
    _write(root, [f"Visible/{p}/img_{m}.bmp Thermal/{p}/img_{m}.bmp" for p in range(n_train) for m in range(per_id - 1)])
    return root


def test_paired_sampler_puts_pairs_in_the_first_slots_and_says_which(tmp_path):
    root = _paired_set(tmp_path)
    train, pairs = _read(root)
    truth = set(pairs.pairs)
    s = D.CrossModalIdentitySampler(train, p=2, k=3, seed=0, batches=20, partners=pairs.partners(), pair_slots=2)
    n = 6
    for batch in s:
        rgb, ir = batch[:n], batch[n:]
        mask = s.paired_mask(batch)
        assert mask.tolist() == [(rgb[i], ir[i]) in truth for i in range(n)]
        for b in range(2):
            block = range(b * 3, b * 3 + 3)
            assert mask[b * 3] and mask[b * 3 + 1]                    # the pair slots
            assert len({ir[i] for i in block}) == 3 and len({rgb[i] for i in block}) == 3
            assert len({train[rgb[i]].label for i in block} | {train[ir[i]].label for i in block}) == 1
    # without partners nothing is paired, and pair_slots outside 0..k is an error
    plain = D.CrossModalIdentitySampler(train, p=2, k=3, seed=0, batches=2)
    assert not plain.paired_mask(next(iter(plain))).any()
    with pytest.raises(ValueError, match="data.pair_slots = 4: between 0 and data.k = 3"):
        D.CrossModalIdentitySampler(train, p=2, k=3, partners=pairs.partners(), pair_slots=4)


def _cfg(root, *extra):
    return load_config(None, [f"data.root={root}", "data.dataset=regdb", "data.height=32", "data.width=16",
                              "data.p=2", "data.k=2", "train.batches_per_epoch=4", *extra])


def test_batches_carry_the_pair_mask_on_both_data_paths(tmp_path):
    root = _paired_set(tmp_path)
    masks = {}
    for resident in ("true", "false"):
        data = TrainData(_cfg(root, "data.pairs=idx/pairs.txt", f"data.resident={resident}",
                              "data.channel_aug=true", "data.channel_aug_mode=add"), torch.device("cpu"), log=lambda m: None)
        data.sampler.set_epoch(0)
        got = [(x.shape[0], paired.tolist()) for x, _, _, paired in data.batches()]
        assert all(b == 2 * 2 * 2 + 4 for b, _ in got)          # [RGB | thermal | added RGB views]
        masks[resident] = [m for _, m in got]
    assert masks["true"] == masks["false"] and all(m[0] and m[2] for m in masks["true"])
    # no data.pairs: no mask; lambda_pair without pairs: an error naming the fix
    data = TrainData(_cfg(root), torch.device("cpu"), log=lambda m: None)
    assert all(p is None for *_, p in data.batches())
    with pytest.raises(ValueError, match="method.lambda_pair = 0.5 needs co-observed pairs: set data.pairs"):
        TrainData(_cfg(root, "method.lambda_pair=0.5"), torch.device("cpu"), log=lambda m: None)


def test_every_method_takes_the_pair_term(tmp_path):
    root = _paired_set(tmp_path)
    data = TrainData(_cfg(root, "data.pairs=idx/pairs.txt", "data.resident=true"), torch.device("cpu"),
                     log=lambda m: None)
    x, y, mod, paired = next(iter(data.batches()))
    for name in ("baseline", "danet", "lba"):
        torch.manual_seed(0)
        model = ReIDNet(data.num_classes, arch="resnet10", two_stream=name == "lba")
        meth = Method(name, {"lambda_pair": 0.5, "pair_temperature": 0.2}, data.num_classes, model.embedding_dim, k=2)
        loss, parts = meth(model, x, y, mod, paired)
        f = model(x, mod)["bn"]
        want = 0.5 * losses.paired_infonce(f[:4], f[4:8], y[:4], paired, 0.2)
        assert parts["pair"].item() == pytest.approx(want.item(), rel=1e-5), name
        loss.backward()
        assert torch.isfinite(loss) and model.layer1[0].conv1.weight.grad.abs().sum() > 0, name
        with pytest.raises(ValueError, match="method.lambda_pair > 0 needs co-observed pairs in the batches"):
            meth(model, x, y, mod)
        with pytest.raises(ValueError, match="pair_negatives = 'x': choose one of"):
            Method(name, {"pair_negatives": "x"}, 2, 512, k=2)


# ---------------------------------------------------------------- recovery from an exported model

def test_recover_unfolds_batchnorm_to_the_exported_function(tmp_path):
    from vireid_train.export import export, ort_inputs, ort_session
    from vireid_train.recover import recover, calibration_crops
    root = write_regdb(tmp_path / "c", n_train=3, n_test=1, per_id=4, size=(16, 32))
    torch.manual_seed(1)
    net = ReIDNet(3, arch="resnet10", two_stream=True)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.weight.data.uniform_(0.5, 2); m.bias.data.normal_()
            m.running_mean.normal_(); m.running_var.uniform_(0.5, 3)
    export(net, tmp_path / "m.onnx", 32, 16, "lba", "test", check=False)
    rep = recover(tmp_path / "m.onnx", root, tmp_path / "m.pt", per_modality=12, batch=24, log=lambda m: None)
    assert rep["max_abs_diff_eval"] < 1e-4 and rep["convolutions"] == 13
    ck = torch.load(tmp_path / "m.pt", weights_only=False)
    back = ReIDNet(1, arch="resnet10", two_stream=True)
    back.load_state_dict(ck["model"])
    x, mod, _ = calibration_crops(root, 12, 32, 16)
    sess = ort_session(tmp_path / "m.onnx")
    want = sess.run(None, ort_inputs(sess, x.numpy(), mod.numpy()))[0]
    with torch.no_grad():
        assert np.abs(back.eval().embed(x, mod).numpy() - want).max() < 1e-4
        # train mode on the measured crops reproduces the exported (eval) function before the BNNeck
        a = net.eval()(x, mod)["pooled"]
        b = back.train()(x, mod)["pooled"]
    assert torch.nn.functional.cosine_similarity(a, b).min() > 0.999
    with pytest.raises(FileNotFoundError, match="does not exist"):
        recover(tmp_path / "none.onnx", root, tmp_path / "x.pt")
