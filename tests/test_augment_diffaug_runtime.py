"""DiffAugment's ops against their definitions; ADA's p heuristic and the augmentation state."""

import pytest
import torch

from sgan.train.augment import Augmentation, adjust_p, diffaug
from sgan.train.augment.runtime import LEAK_WARNING_P


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_policy_parsing():
    assert diffaug.parse_policy("color,translation,cutout") == ("color", "translation", "cutout")
    assert diffaug.parse_policy("translation") == ("translation",)
    for bad in ("", "colour", "color,color"):
        with pytest.raises(ValueError):
            diffaug.parse_policy(bad)


def test_translation_is_a_zero_filled_shift():
    x = torch.randn(3, 3, 16, 16, generator=gen(1))
    shift = torch.tensor([[2, -1], [0, 0], [-2, 2]])
    y = diffaug.translate(x, shift)
    assert torch.equal(y[1], x[1])
    assert torch.equal(y[0, :, :15, 2:], x[0, :, 1:, :14]) and (y[0, :, :, :2] == 0).all() and (y[0, :, 15] == 0).all()
    assert torch.equal(y[2, :, 2:, :14], x[2, :, :14, 2:]) and (y[2, :, :2] == 0).all()


def test_cutout_zeroes_a_half_size_square():
    x = torch.ones(2, 3, 16, 16)
    params = diffaug.sample_params(2, 16, 16, policy="cutout", generator=gen(2))
    y = diffaug.apply_params(x, params)
    zeros = (y[:, 0] == 0).sum(dim=(1, 2))
    assert (zeros <= 64).all() and (zeros > 0).all()
    y = diffaug.cutout(x, torch.tensor([[8, 8], [0, 0]]), torch.tensor([8, 8]))
    assert (y[0, :, 4:12, 4:12] == 0).all() and y[0].sum() == 3 * (256 - 64)
    assert (y[1, :, :4, :4] == 0).all() and y[1].sum() == 3 * (256 - 16)


def test_color_definitions():
    x = torch.randn(4, 3, 8, 8, generator=gen(3))
    params = diffaug.sample_params(4, 8, 8, policy="color", generator=gen(4))
    y = diffaug.apply_params(x, params)
    b, s, c = (params[k].view(-1, 1, 1, 1) for k in ("brightness", "saturation", "contrast"))
    want = x + b
    m = want.mean(dim=1, keepdim=True)
    want = (want - m) * s + m
    m = want.mean(dim=(1, 2, 3), keepdim=True)
    want = (want - m) * c + m
    assert torch.allclose(y, want, atol=1e-6)
    assert ((params["brightness"] >= -0.5) & (params["brightness"] < 0.5)).all()
    assert ((params["contrast"] >= 0.5) & (params["contrast"] < 1.5)).all()


def test_diffaug_r1_double_backward():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 1, 3)
    x = torch.randn(2, 3, 8, 8, requires_grad=True)
    y = diffaug.DiffAugment()(x, generator=gen(5))
    (g,) = torch.autograd.grad(conv(y).sum(), x, create_graph=True)
    g.square().sum().backward()
    assert conv.weight.grad is not None and torch.isfinite(conv.weight.grad).all()


def test_adjust_p_rate_and_clamp():
    # batch 64, interval 4: 256 images per adjustment; 500 kimg to move by 1.
    assert adjust_p(0.0, 1.0, target=0.6, batch=64, interval=4, kimg=500) == pytest.approx(256 / 500_000)
    assert adjust_p(0.5, 0.0, target=0.6, batch=64, interval=4, kimg=500) == pytest.approx(0.5 - 256 / 500_000)
    assert adjust_p(0.0, 0.0, target=0.6, batch=64, interval=4, kimg=500) == 0.0
    assert adjust_p(1.0, 1.0, target=0.6, batch=64, interval=4, kimg=500) == 1.0
    assert adjust_p(0.3, 0.6, target=0.6, batch=64, interval=4, kimg=500) == 0.3


def _feed(aug, real_logits, steps, batch):
    for _ in range(steps):
        aug.update(aug.observe(real_logits, -real_logits), batch=batch)


def test_p_rises_on_an_overfitting_d_and_falls_otherwise():
    messages = []
    aug = Augmentation("ada", kimg=1.0, log=messages.append)  # fast: p moves by 1 per 1000 images
    overfit = torch.full((16, 1), 3.0)  # sign(D(real)) = +1 > 0.6
    _feed(aug, overfit, 8, 16)
    assert aug.rt == 1.0 and aug.p == pytest.approx(2 * 64 / 1000)
    _feed(aug, overfit, 400, 16)
    assert aug.p == 1.0  # clamped
    assert len(messages) == 1 and str(LEAK_WARNING_P) in messages[0]
    healthy = torch.tensor([[1.0], [-1.0]]).repeat(8, 1)  # r_t = 0 < 0.6
    _feed(aug, healthy, 8, 16)
    assert aug.rt == 0.0 and aug.p == pytest.approx(1.0 - 2 * 64 / 1000)
    _feed(aug, healthy, 400, 16)
    assert aug.p == 0.0
    assert aug.gauges()["aug_p"] == 0.0


def test_fixed_p_does_not_move():
    aug = Augmentation("ada", fixed_p=0.3, kimg=1.0)
    _feed(aug, torch.full((8, 1), 2.0), 40, 8)
    assert aug.p == 0.3 and aug.rt == 1.0


def test_state_round_trip_continues_identically():
    a = Augmentation("ada", seed=5, kimg=1.0)
    _feed(a, torch.full((8, 1), 2.0), 6, 8)
    x = torch.randn(8, 3, 16, 16, generator=gen(6))
    a(x)
    state = a.state_dict()
    b = Augmentation("ada", seed=99, kimg=1.0)
    b.load_state_dict(state)
    assert b.p == a.p and b.rt == a.rt and b.batches == a.batches
    assert torch.equal(a(x), b(x))
    _feed(a, torch.full((8, 1), 2.0), 3, 8)
    _feed(b, torch.full((8, 1), 2.0), 3, 8)
    assert a.p == b.p


def test_global_draw_sliced_by_rank_equals_one_process():
    x = torch.randn(8, 3, 16, 16, generator=gen(7))
    for kind in ("ada", "diffaug"):
        one = Augmentation(kind, seed=1, p=0.7)
        full = one(x)
        parts = []
        for rank in range(2):
            r = Augmentation(kind, seed=1, p=0.7)
            sl = slice(rank, 8, 2)
            parts.append((sl, r(x[sl], n_global=8, sl=sl)))
        for sl, part in parts:
            assert torch.allclose(part, full[sl], atol=1e-4)  # float32 sampling positions differ by the pad
