"""Dataset layouts, augmentation of thermal images, and the identity-balanced sampler."""
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from vireid_train import data as D
from vireid_train.synthetic import render_person, write_regdb
import random


def test_sysu_merges_train_and_val_and_splits_modalities_by_camera(tiny_sysu):
    samples, n = D.load_train("sysu", tiny_sysu)
    assert n == 5                                  # 4 train + 1 val identities
    assert sorted({s.label for s in samples}) == list(range(5))
    for s in samples:
        assert (s.modality == D.THERMAL) == (s.camera in (3, 6))
    c = Counter(s.modality for s in samples)
    assert c[D.RGB] == 5 * 4 * 2 and c[D.THERMAL] == 5 * 2 * 2
    thermal, rgb = D.load_test("sysu", tiny_sysu)
    assert {s.label for s in thermal} == {6, 7, 8} and all(s.modality == D.THERMAL for s in thermal)
    assert {s.camera for s in rgb} == {1, 2, 4, 5}


def test_regdb_and_llcm_lists(tmp_path):
    root = write_regdb(tmp_path / "regdb", n_train=3, n_test=2, per_id=2, size=(16, 32), trial=2)
    samples, n = D.load_train("regdb", root, trial=2)
    assert n == 3 and len(samples) == 12
    thermal, rgb = D.load_test("regdb", root, trial=2)
    assert len(thermal) == len(rgb) == 4
    # LLCM: idx/train_vis.txt / train_nir.txt, camera from the file name
    llcm = tmp_path / "llcm"
    (llcm / "idx").mkdir(parents=True)
    rng = random.Random(0)
    for folder, name, thermal_flag in (("vis", "vis", False), ("nir", "nir", True)):
        lines = []
        for pid in range(2):
            for cam in (1, 2):
                rel = f"{folder}/{pid:04d}/{pid:04d}_c0{cam}_s1_{cam}.jpg"
                (llcm / rel).parent.mkdir(parents=True, exist_ok=True)
                render_person(pid, thermal_flag, rng, (16, 32)).save(llcm / rel)
                lines.append(f"{rel} {pid}")
        (llcm / "idx" / f"train_{name}.txt").write_text("\n".join(lines))
    samples, n = D.load_train("llcm", llcm)
    assert n == 2 and {s.camera for s in samples} == {1, 2}
    assert Counter(s.modality for s in samples) == {D.RGB: 4, D.THERMAL: 4}


def test_bad_inputs_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="SYSU-MM01 train id list"):
        D.load_train("sysu", tmp_path)
    with pytest.raises(ValueError, match="unknown data.dataset"):
        D.load_train("market", tmp_path)
    (tmp_path / "idx").mkdir()
    (tmp_path / "idx" / "train_visible_1.txt").write_text("only_a_path\n")
    with pytest.raises(ValueError, match="expected 'relpath label'"):
        D.load_train("regdb", tmp_path)


def test_thermal_images_are_three_channel_grey(tmp_path):
    p = tmp_path / "t.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 16, 3), dtype=np.uint8)).save(p)
    img = np.asarray(D.load_image(str(p), D.THERMAL))
    assert img.shape == (32, 16, 3)
    assert (img[..., 0] == img[..., 1]).all() and (img[..., 1] == img[..., 2]).all()
    tf_rgb, tf_ir = D.train_transforms(32, 16, channel_aug=True)
    x = tf_ir(D.load_image(str(p), D.THERMAL))
    assert x.shape == (3, 32, 16)


def test_channel_augment_replicates_one_channel():
    random.seed(0)
    x = torch.rand(3, 4, 4)
    y = D.ChannelAugment(p=1.0)(x)
    assert any(torch.equal(y, x[c:c + 1].expand(3, -1, -1)) for c in range(3))
    assert torch.equal(D.ChannelAugment(p=0.0)(x), x)


def test_grey_jitter_changes_only_grey_images_and_can_invert():
    random.seed(1)
    colour = torch.rand(3, 8, 4)
    assert torch.equal(D.GreyIntensityJitter(p=1.0)(colour), colour)
    grey = torch.linspace(0, 1, 32).reshape(1, 8, 4).expand(3, -1, -1).clone()
    inv = D.GreyIntensityJitter(p=1.0, p_invert=1.0)(grey)
    assert inv.shape == grey.shape and torch.equal(inv[0], inv[2])
    assert 0.0 <= inv.min() and inv.max() <= 1.0
    # Inverted: the brightest input pixel is now the darkest.
    assert inv[0].flatten()[-1] < inv[0].flatten()[0]
    kept = D.GreyIntensityJitter(p=1.0, p_invert=0.0)(grey)
    assert kept[0].flatten()[-1] > kept[0].flatten()[0]
    assert torch.equal(D.GreyIntensityJitter(p=0.0)(grey), grey)


def test_low_light_darkens_desaturates_and_stays_in_range():
    random.seed(2)
    torch.manual_seed(2)
    red = torch.zeros(3, 16, 8)
    red[0] = 0.9
    night = D.LowLight(p=1.0)(red)
    assert night.shape == red.shape and 0.0 <= night.min() and night.max() <= 1.0
    # A fraction of the light: the red channel's mean drops below 0.6 of the day's.
    assert night[0].mean() < 0.6 * 0.9
    # Most colour gone: red/green contrast is far smaller than by day (0.9).
    assert (night[0] - night[1]).mean() < 0.4 * 0.9
    assert torch.equal(D.LowLight(p=0.0)(red), red)


def test_sampler_balance(tiny_sysu):
    samples, _ = D.load_train("sysu", tiny_sysu)
    p, k = 3, 4
    sampler = D.CrossModalIdentitySampler(samples, p, k, seed=0, batches=10)
    seen = Counter()
    for batch in sampler:
        assert len(batch) == 2 * p * k
        rgb, ir = batch[:p * k], batch[p * k:]
        assert all(samples[i].modality == D.RGB for i in rgb)
        assert all(samples[i].modality == D.THERMAL for i in ir)
        # slot i of each half has the same identity; P distinct identities, K images each
        assert [samples[i].label for i in rgb] == [samples[i].label for i in ir]
        ids = Counter(samples[i].label for i in rgb)
        assert len(ids) == p and set(ids.values()) == {k}
        # RGB identities have 8 images >= K: drawn without replacement
        for pid in ids:
            idx = [i for i in rgb if samples[i].label == pid]
            assert len(set(idx)) == k
        seen.update(ids.keys())
    # identities are cycled: over 10 batches of 3 every one of the 5 appears 6 times
    assert set(seen.values()) == {6}
    sampler.set_epoch(1)
    assert list(sampler) != list(D.CrossModalIdentitySampler(samples, p, k, seed=0, batches=10))


def test_sampler_rejects_too_few_identities(tiny_sysu):
    samples, _ = D.load_train("sysu", tiny_sysu)
    with pytest.raises(ValueError, match="identities with both modalities"):
        D.CrossModalIdentitySampler(samples, 9, 2)
