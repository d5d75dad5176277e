"""The batched (device-resident) augmentation against the per-image PIL path it replaces, CAJ's
channel augmentations, and attributes.csv."""
import random

import numpy as np
import pytest
import torch
from torchvision import transforms as T

from vireid_train import data as D
from vireid_train.synthetic import write_regdb


@pytest.mark.parametrize("vectorised", [True, False])
def test_pad_crop_flip_is_a_padded_crop_possibly_mirrored(vectorised):
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 255, (64, 3, 8, 4), dtype=torch.uint8)
    pad, fill = 2, 127
    y = D.pad_crop_flip(x, pad, fill, True, g, vectorised)
    assert y.shape == x.shape and y.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (pad,) * 4, value=fill)
    seen = set()
    for b in range(len(x)):
        found = [(t, l, f) for t in range(2 * pad + 1) for l in range(2 * pad + 1) for f in (False, True)
                 if torch.equal(y[b], (lambda c: c.flip(-1) if f else c)(padded[b, :, t:t + 8, l:l + 4]))]
        assert found, b
        seen.update(found)
    # offsets and mirroring vary over the batch (25 offsets x 2)
    assert len({s[:2] for s in seen}) > 10 and {s[2] for s in seen} == {False, True}
    # no padding, no flip: the identity
    assert torch.equal(D.pad_crop_flip(x, 0, 0, False, g, vectorised), x)


def test_resident_batch_without_random_steps_equals_the_pil_eval_transform(tmp_path):
    root = write_regdb(tmp_path / "r", n_train=3, n_test=1, per_id=2, size=(16, 32), seed=3)
    samples, _ = D.load_train("regdb", root)
    aug = D.AugConfig(24, 12, pad=0, flip=False, erasing_p=0.0)   # resized from 32x16: same PIL resize
    res = D.ResidentTrainSet(samples, aug, "cpu", workers=2)
    assert res.images.shape == (len(samples), 3, 24, 12) and res.images.dtype == torch.uint8
    views = list(range(len(samples)))
    x, y, mod = res.batch(views)
    want = D.load_tensor_batch(samples, 24, 12)
    assert torch.allclose(x, want, atol=1e-6)
    assert y.tolist() == [s.label for s in samples] and mod.tolist() == [s.modality for s in samples]
    # thermal rows are grey replicated, as load_image makes them
    t = res.images[mod == D.THERMAL]
    assert torch.equal(t[:, 0], t[:, 1]) and torch.equal(t[:, 1], t[:, 2])


def test_batched_erasing_matches_torchvision_statistics():
    h, w, n = 32, 16, 3000
    g = torch.Generator().manual_seed(0)
    er = D.RandomErase(0.5, "torchvision")
    on, top, left, eh, ew = er.sample(n, h, w, g, "cpu")
    x = er.apply(torch.ones(n, 3, h, w), on, top, left, eh, ew)
    erased = (x[:, 0] == 0).flatten(1).float().mean(1)
    torch.manual_seed(0)
    ref = torch.stack([(T.RandomErasing(p=0.5, value=0)(torch.ones(3, h, w))[0] == 0).float().mean()
                       for _ in range(n)])
    # how often, and how much: the same distribution (standard errors ~0.01 and ~0.004)
    assert abs((erased > 0).float().mean() - (ref > 0).float().mean()) < 0.05
    assert abs(erased[erased > 0].mean() - ref[ref > 0].mean()) < 0.02
    # every box lies inside the image and erases exactly eh x ew pixels
    assert bool(((top + eh <= h) & (left + ew <= w))[on].all())
    assert torch.equal((x[:, 0] == 0).flatten(1).sum(1)[on], (eh * ew)[on])
    # CAJ's flavour fills with its channel means (on the normalised image)
    caj = D.RandomErase(1.0, "caj")
    xc = caj.apply(torch.zeros(n, 3, h, w), *caj.sample(n, h, w, g, "cpu"))
    box = xc[:, 0] != 0
    assert box.flatten(1).any(1).float().mean() > 0.95
    assert torch.allclose(xc[:, 2][box], torch.tensor(0.4465))
    random.seed(0)
    single = caj(torch.zeros(3, h, w))
    assert (single[1] == 0.4822).any() and single.shape == (3, h, w)


def test_channel_exchange_and_adapt_gray_hand_values():
    x = torch.tensor([1.0, 2.0, 4.0]).view(1, 3, 1, 1).expand(4, 3, 2, 2).clone()
    # exchange: rows 0..2 copy channel 0, 1, 2; row 3 is not an added view (-1)
    y = D.replicate_channel(x, torch.tensor([0, 1, 2, -1]))
    assert y[:, :, 0, 0].tolist() == [[1, 1, 1], [2, 2, 2], [4, 4, 4], [1, 2, 4]]
    lum = 0.2989 * 1 + 0.5870 * 2 + 0.1140 * 4
    z = D.ChannelAdapGray.apply(x, torch.tensor([-1, 2, -1, -1]), torch.tensor([True, False, False, False]))
    assert z[0, :, 0, 0].tolist() == pytest.approx([lum] * 3) and z[1, :, 0, 0].tolist() == [4, 4, 4]
    assert torch.equal(z[2:], x[2:])
    # the batched draws only touch the rows they are given
    g = torch.Generator().manual_seed(0)
    rows = torch.tensor([True, False] * 50)
    assert (D.ChannelExchange().sample(rows, g)[~rows] == -1).all()
    assert (D.ChannelExchange().sample(rows, g)[rows] >= 0).all()
    ch, grey = D.ChannelAdapGray(0.5).sample(rows, g)
    assert (ch[~rows] == -1).all() and not grey[~rows].any()
    # k = 3 (one in four) turns grey with p = 0.5: about 1/8 of rows
    ch, grey = D.ChannelAdapGray(0.5).sample(torch.ones(8000, dtype=torch.bool), g)
    assert abs(grey.float().mean() - 0.125) < 0.015 and abs((ch >= 0).float().mean() - 0.75) < 0.02


def test_per_image_and_batched_jitter_share_one_formula():
    g = torch.Generator().manual_seed(1)
    grey = torch.rand(1, 1, 8, 4).expand(6, 3, 8, 4).clone()
    colour = torch.rand(2, 3, 8, 4)
    x = torch.cat([grey, colour])
    jit = D.GreyIntensityJitter(p=1.0, p_invert=0.5)
    on, gamma, contrast, invert = jit.sample(x, g)
    assert on.tolist() == [True] * 6 + [False] * 2    # colour images are never jittered
    y = jit.apply(x, on, gamma, contrast, invert)
    assert torch.equal(y[6:], x[6:])
    for b in range(6):   # row by row, the same formula on one image
        one = jit.apply(x[b:b + 1], on[b:b + 1], gamma[b:b + 1], contrast[b:b + 1], invert[b:b + 1])
        assert torch.allclose(one[0], y[b])
        m = (x[b].clamp(0, 1) ** gamma[b])
        want = ((m - m.mean()) * contrast[b] + m.mean()).clamp(0, 1)
        assert torch.allclose(y[b], 1 - want if invert[b] else want, atol=1e-6)
    ll = D.LowLight(1.0)
    rows = torch.tensor([True] * 4 + [False] * 4)
    out = D.LowLight.apply(x, *ll.sample(rows, x, g))
    assert torch.equal(out[4:], x[4:]) and (out[:4].mean((1, 2, 3)) < x[:4].mean((1, 2, 3))).all()


def test_batch_augmenter_runs_every_step_and_keeps_the_layout():
    aug = D.AugConfig(16, 8, channel_aug=True, channel_aug_mode="add", grey_jitter=True, low_light=0.5,
                      erasing="caj")
    ba = D.BatchAugmenter(aug, "cpu", seed=0)
    imgs = torch.randint(0, 255, (12, 3, 16, 8), dtype=torch.uint8)
    imgs[4:8] = imgs[4:8, :1]                     # thermal rows are grey
    mod = torch.tensor([0] * 4 + [1] * 4 + [0] * 4)
    extra = torch.tensor([False] * 8 + [True] * 4)
    x = ba(imgs, mod, extra)
    assert x.shape == (12, 3, 16, 8) and x.dtype == torch.float32 and torch.isfinite(x).all()
    # the added views are one channel (of the normalised image) copied to all three
    assert torch.equal(x[8:, 0], x[8:, 1]) and torch.equal(x[8:, 1], x[8:, 2])
    ba.reseed(5)
    a = ba(imgs, mod, extra)
    ba.reseed(5)
    assert torch.equal(a, ba(imgs, mod, extra))


def test_added_view_batches_and_dataset(tiny_sysu):
    samples, _ = D.load_train("sysu", tiny_sysu)
    sampler = D.CrossModalIdentitySampler(samples, 2, 2, seed=0, batches=2)
    wrapped = D.AddedViewBatches(sampler)
    batch = next(iter(wrapped))
    assert len(batch) == 12 and [e for _, e in batch] == [False] * 8 + [True] * 4
    assert [i for i, _ in batch[8:]] == [i for i, _ in batch[:4]]        # the RGB images again
    rgb, ir, extra = D.pil_transforms(D.AugConfig(32, 16, channel_aug=True, channel_aug_mode="add"))
    ds = D.ReIDDataset(samples, rgb, ir, extra)
    img, label, mod = ds[batch[8]]
    assert mod == D.RGB and torch.equal(img[0], img[1]) and torch.equal(img[1], img[2])
    with pytest.raises(ValueError, match="not set up"):
        D.ReIDDataset(samples, rgb, ir)[batch[8]]
    with pytest.raises(ValueError, match="channel_aug_mode"):
        D.AugConfig(32, 16, channel_aug_mode="swap")


def test_attributes_csv_parsing_and_errors(tmp_path):
    root = write_regdb(tmp_path / "r", n_train=3, n_test=2, per_id=1, size=(16, 32), seed=4)
    samples, n = D.load_train("regdb", root)
    attrs = D.load_attributes(root, samples, n)
    assert attrs.names[:2] == ["hat", "bag"] and attrs.table.shape == (3, len(attrs.names))
    names, classes, rows = D.read_attributes_csv(root / "attributes.csv")
    for s in samples:   # each training class carries its identity folder's row
        assert attrs.table[s.label].tolist() == rows[D.raw_identity(s.path)]
    bad = tmp_path / "bad"
    bad.mkdir()
    for text, match in (("", "empty"), ("pid,a:2\n1,0\n", "header"), ("id,a:1\n1,0\n", "classes >= 2"),
                        ("id,a:2\n1,2\n", "outside 0..1"), ("id,a:2\n1,0\n1,1\n", "twice"),
                        ("id,a:2\n1,x\n", "integer")):
        (bad / "attributes.csv").write_text(text)
        with pytest.raises(ValueError, match=match):
            D.read_attributes_csv(bad / "attributes.csv")
    (root / "attributes.csv").write_text("id,a:2\n0,1\n")
    with pytest.raises(ValueError, match="no row for identity 1"):
        D.load_attributes(root, samples, n)
    (root / "attributes.csv").unlink()
    with pytest.raises(FileNotFoundError, match="model.attr_heads = false"):
        D.load_attributes(root, samples, n)


def test_vectorised_device_path_and_cpu_row_path_give_the_same_batch():
    """On the GPU the augmenter runs every step over the whole batch (gathers, torch.where, no
    device sync); on the CPU it slices and touches only changed rows. Same draws, same pixels."""
    aug = D.AugConfig(16, 8, pad=2, pad_fill=127, channel_aug=True, grey_jitter=True, low_light=0.5,
                      erasing="torchvision")
    add = D.AugConfig(16, 8, channel_aug=True, channel_aug_mode="add", erasing="caj")
    imgs = torch.randint(0, 255, (24, 3, 16, 8), dtype=torch.uint8)
    imgs[8:16] = imgs[8:16, :1]
    mod = torch.tensor([0] * 8 + [1] * 8 + [0] * 8)
    extra = torch.tensor([False] * 16 + [True] * 8)
    for a in (aug, add):
        out = [D.BatchAugmenter(a, "cpu", seed=3, vectorised=v)(imgs, mod, extra) for v in (True, False)]
        assert torch.allclose(out[0], out[1], atol=1e-6)
