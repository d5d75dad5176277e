"""Each loss against values worked out by hand on tiny tensors."""
import math
import random

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


def test_centre_cluster_loss_hand_value():
    # DANet's authors' form: centres over both modalities; ids 0: {0, 2} -> c0 = 1; 1: {5, 7} -> c1 = 6
    f = torch.tensor([[0.0], [2.0], [5.0], [7.0]])
    y = torch.tensor([0, 0, 1, 1])
    # pull: mean |f - c| = 1; push: |c0 - c1| = 5, hinge [10 - 5]+ = 5 for both identities
    assert losses.centre_cluster_loss(f, y, margin=10.0).item() == pytest.approx(1.0 + 5.0, abs=1e-5)
    assert losses.centre_cluster_loss(f, y, margin=0.7).item() == pytest.approx(1.0, abs=1e-5)
    # three identities, unequal counts: id 2 has one sample at 6.5 -> c2 = 6.5
    f3 = torch.cat([f, torch.tensor([[6.5]])])
    y3 = torch.cat([y, torch.tensor([2])])
    # pull = (1+1+1+1+0)/5; push per identity over other-identity *samples*:
    #   id0: others j = 5,7 (c1) x2, 6.5 (c2): hinges [6-5]=1, 1, [6-5.5]=.5 -> 2.5/3
    #   id1: others 0,2 (c0), 6.5 (c2): [6-5]=1, 1, [6-.5]=5.5 -> 7.5/3
    #   id2: others c0 x2, c1 x2: [6-5.5]=.5 x2, [6-.5]=5.5 x2 -> 12/4
    want = 4 / 5 + (2.5 / 3 + 7.5 / 3 + 12 / 4) / 3
    assert losses.centre_cluster_loss(f3, y3, margin=6.0).item() == pytest.approx(want, abs=1e-5)


def test_ema_teacher_update_and_kl_hand_value():
    ema = torch.tensor([[1.0, 0.0]])
    losses.ema_update(ema, torch.tensor([[0.0, 1.0]]), 0.2)
    assert ema.tolist() == [[pytest.approx(0.8), pytest.approx(0.2)]]
    own = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]], requires_grad=True)   # (.5,.5), (.75,.25)
    teacher = torch.tensor([[math.log(3.0), 0.0], [0.0, 0.0]], requires_grad=True)
    # batchmean: (KL((.5,.5)||(.75,.25)) + KL((.75,.25)||(.5,.5))) / 2 rows
    kl1 = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)
    kl2 = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)
    loss = losses.ema_mutual_kl(own, teacher)
    assert loss.item() == pytest.approx((kl1 + kl2) / 2, abs=1e-6)
    loss.backward()
    assert teacher.grad is None and own.grad.abs().sum() > 0    # the teacher gets no gradient


def test_coattention_minmax_is_normalised_and_detached():
    torch.manual_seed(3)
    a = torch.randn(2, 8, 3, 2, requires_grad=True)
    o = torch.randn(2, 8, 3, 2, requires_grad=True)
    _, raw = losses.cmalign(a, o, coatt="raw")
    _, mm = losses.cmalign(a, o, coatt="minmax")
    assert raw.requires_grad and not mm.requires_grad
    flat = mm.flatten(1)
    assert torch.allclose(flat.min(1).values, torch.zeros(2)) and torch.allclose(flat.max(1).values, torch.ones(2))
    # the same map, rescaled per image
    r = raw.detach().flatten(1)
    want = (r - r.min(1, keepdim=True).values) / (r.max(1, keepdim=True).values - r.min(1, keepdim=True).values)
    assert torch.allclose(flat, want, atol=1e-5)
    with pytest.raises(ValueError, match="raw or minmax"):
        losses.cmalign(a, o, coatt="soft")


def test_dense_triplet_mean_reduction_hand_value():
    anchor = torch.zeros(1, 1, 1, 2)
    pos = torch.tensor([0.1, 0.5]).reshape(1, 1, 1, 2)
    neg = torch.tensor([1.0, 0.2]).reshape(1, 1, 1, 2)
    att = torch.tensor([1.0, 0.5]).reshape(1, 1, 1, 2)
    # hinges [0, .6]; A-weighted [0, .3]; mean over 2 positions -> .15 (LbA's code)
    assert losses.dense_triplet_loss(anchor, pos, neg, att, 0.3, "mean").item() == pytest.approx(0.15, abs=1e-6)


def test_lba_random_pairs_stay_in_identity_blocks():
    rng = random.Random(0)
    p, k = 6, 4
    for _ in range(20):
        pos, neg = losses.lba_pairs(p, k, "random", rng)
        blocks = torch.arange(p * k) // k
        assert torch.equal(pos // k, blocks)                      # a positive of the anchor's identity
        for b in range(p):                                        # ... a permutation of its K slots
            assert sorted((pos[b * k:(b + 1) * k] % k).tolist()) == list(range(k))
            nb = (neg[b * k:(b + 1) * k] // k).tolist()
            assert b not in nb and len(set(nb)) == k               # K distinct other identities (P-1 >= K)
    seen = {tuple(losses.lba_pairs(p, k, "random", rng)[1].tolist()) for _ in range(5)}
    assert len(seen) == 5                                          # drawn afresh each batch
    pos, neg = losses.lba_pairs(3, 4, "random", rng)               # P - 1 < K: with replacement
    assert ((neg // 4) != (torch.arange(12) // 4)).all()
    pos, neg = losses.lba_pairs(2, 2, "slot")
    assert pos.tolist() == [0, 1, 2, 3] and neg.tolist() == [2, 3, 0, 1]
