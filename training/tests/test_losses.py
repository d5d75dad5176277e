"""Each loss against values worked out by hand on tiny tensors."""
import math

import pytest
import torch

from vireid_train import losses


def test_id_loss_label_smoothing_hand_value():
    logits = torch.tensor([[2.0, 0.0, 0.0]])
    z = math.exp(2) + 2
    nll = math.log(z) - 2.0                      # -log p_0
    uniform = (3 * math.log(z) - 2.0) / 3        # mean_c -log p_c
    want = 0.9 * nll + 0.1 * uniform
    assert losses.id_loss(logits, torch.tensor([0]), 0.1).item() == pytest.approx(want, abs=1e-6)
    assert losses.id_loss(logits, torch.tensor([0]), 0.0).item() == pytest.approx(nll, abs=1e-6)


def test_hard_triplet_hand_value():
    f = torch.tensor([[0.0], [2.0], [2.2], [3.0]])
    y = torch.tensor([0, 0, 1, 1])
    # anchors: (pos 2, neg 2.2) (2, .2) (.8, .2) (.8, 1) -> hinges .1 2.1 .9 .1
    assert losses.hard_triplet_loss(f, y, 0.3).item() == pytest.approx(0.8, abs=1e-5)


def test_cross_modality_center_loss_hand_value():
    f = torch.tensor([[0.0], [1.0], [0.2], [0.9]])
    y = torch.tensor([0, 1, 0, 1])
    m = torch.tensor([0, 0, 1, 1])
    # pulls to the other modality's centre: .2 .1 .2 .1; nearest same-modality other-id
    # sample to that centre: .8 .9 .9 .8 -> with rho=1 pushes .2 .1 .1 .2, with rho=.7 none.
    assert losses.cross_modality_center_loss(f, y, m, rho=1.0).item() == pytest.approx(0.3, abs=1e-5)
    assert losses.cross_modality_center_loss(f, y, m, rho=0.7).item() == pytest.approx(0.15, abs=1e-5)


def test_cross_modality_center_uses_mean_of_other_modality():
    f = torch.tensor([[0.0], [1.0], [3.0]])   # rgb id0; ir id0 twice -> centre 2
    y = torch.tensor([0, 0, 0])
    m = torch.tensor([0, 1, 1])
    # i0: |0-2| = 2; i1, i2: centre 0 -> 1 and 3; no negatives
    assert losses.cross_modality_center_loss(f, y, m).item() == pytest.approx(2.0, abs=1e-5)


def test_mutual_learning_kl_hand_value():
    p = torch.tensor([[0.0, 0.0]])                 # (.5, .5)
    q = torch.tensor([[math.log(3.0), 0.0]])       # (.75, .25)
    kl = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    assert losses.kl_rows(p, q).item() == pytest.approx(kl, abs=1e-6)
    assert losses.mutual_learning_loss(p, q, p, p).item() == pytest.approx(kl, abs=1e-6)
    assert losses.mutual_learning_loss(q, q, p, p).item() == pytest.approx(0.0, abs=1e-7)


def test_person_mask_min_max():
    f = torch.zeros(1, 2, 1, 3)
    f[0, :, 0, 0] = torch.tensor([3.0, 4.0])   # norm 5
    f[0, :, 0, 1] = torch.tensor([1.0, 0.0])   # norm 1
    f[0, :, 0, 2] = torch.tensor([0.0, 3.0])   # norm 3
    m = losses.person_mask(f)
    assert m.shape == (1, 1, 1, 3)
    assert torch.allclose(m.flatten(), torch.tensor([1.0, 0.0, 0.5]))


def test_cmalign_shapes_and_masking():
    torch.manual_seed(0)
    a, o = torch.randn(3, 8, 4, 2), torch.randn(3, 8, 4, 2)
    recon, coatt = losses.cmalign(a, o, beta=50.0)
    assert recon.shape == a.shape and coatt.shape == (3, 1, 4, 2)
    mask = losses.person_mask(a)
    # where the anchor's mask is 0 (its weakest position) the anchor is kept untouched
    zero = mask == 0
    assert zero.sum() == 3
    assert torch.equal(recon.masked_select(zero.expand_as(a)), a.masked_select(zero.expand_as(a)))
    # where it is 1 the feature is purely the warped other image's: a convex combination
    prob = losses.matching_probabilities(a, o, 50.0)
    assert torch.allclose(prob.sum(-1), torch.ones(3, 8))
    warped = losses.soft_warp(o, prob)
    one = mask == 1
    assert torch.allclose(recon.masked_select(one.expand_as(a)), warped.masked_select(one.expand_as(a)))
    assert float(coatt.min()) >= 0.0 and float(coatt.max()) <= 1.0


def test_cmalign_identical_inputs_reproduce_input():
    torch.manual_seed(1)
    f = torch.randn(2, 32, 6, 3)
    recon, coatt = losses.cmalign(f, f.clone(), beta=50.0)
    assert torch.allclose(recon, f, atol=1e-4)
    # co-attention of an image with itself is its own mask squared
    assert torch.allclose(coatt, losses.person_mask(f) ** 2, atol=1e-4)


def test_dense_triplet_hand_value():
    anchor = torch.zeros(1, 1, 1, 2)
    pos = torch.tensor([0.1, 0.5]).reshape(1, 1, 1, 2)
    neg = torch.tensor([1.0, 0.2]).reshape(1, 1, 1, 2)
    att = torch.tensor([1.0, 0.5]).reshape(1, 1, 1, 2)
    # hinges [0, .6]; weighted sum .3; / sum(A)=1.5 -> .2
    assert losses.dense_triplet_loss(anchor, pos, neg, att, 0.3).item() == pytest.approx(0.2, abs=1e-6)
