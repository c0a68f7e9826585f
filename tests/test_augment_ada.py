"""ADA's pipeline against the definitions of its ops (stylegan2-ada-formats.md §2.1)."""

import math

import pytest
import torch
import torch.nn.functional as F

from sgan.train.augment import ada
from sgan.train.augment.resample import SYM6, bilinear_sample, downsample2x, sym6_filter, upsample2x

ONLY = {op: 0.0 for op in ada.PIPES["bgc"]}


def only(*ops):
    m = dict(ONLY)
    m.update({op: 1.0 for op in ops})
    return m


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def images(n=6, c=3, r=16, seed=1, dtype=torch.float64):
    return torch.randn(n, c, r, r, generator=gen(seed), dtype=dtype)


def test_identity_at_p0():
    x = images()
    for pipe in ada.PIPES:
        params = ada.sample_params(x.shape[0], p=0.0, pipe=pipe, generator=gen())
        assert ada.apply_params(x, params) is x


def test_draws_do_not_depend_on_p():
    g1, g2 = gen(3), gen(3)
    ada.sample_params(8, p=0.0, generator=g1)
    ada.sample_params(8, p=0.9, generator=g2)
    assert torch.equal(g1.get_state(), g2.get_state())


def test_xflip_is_exact():
    x = images()
    params = ada.sample_params(6, p=1.0, pipe="blit", generator=gen(), multipliers=only("xflip"))
    y = ada.apply_params(x, params)
    assert params["flip"].sum() > 0 and params["flip"].sum() < 6
    for i in range(6):
        want = x[i].flip(-1) if params["flip"][i] else x[i]
        assert torch.equal(y[i], want)


def test_rotate90_is_exact():
    """Parameter k rotates by k quarter turns clockwise on screen: torch.rot90(x, -k)."""
    x = images(n=12)
    params = ada.sample_params(12, p=1.0, pipe="blit", generator=gen(2), multipliers=only("rotate90"))
    y = ada.apply_params(x, params)
    assert len(set(params["rot90"].tolist())) == 4
    for i in range(12):
        assert torch.equal(y[i], torch.rot90(x[i], -int(params["rot90"][i]), dims=(1, 2)))


def _shift_reflect(img, dx, dy):
    """out[y, x] = in[y - dy, x - dx] with reflect fill: pad by reflection, then crop."""
    c, h, w = img.shape
    pad = max(abs(dx), abs(dy))
    big = F.pad(img[None], [pad, pad, pad, pad], mode="reflect")[0]
    return big[:, pad - dy:pad - dy + h, pad - dx:pad - dx + w]


def test_integer_translation_is_exact_with_reflect_fill():
    x = images(n=8, r=16)
    params = ada.sample_params(8, p=1.0, pipe="blit", generator=gen(4), multipliers=only("xint"))
    y = ada.apply_params(x, params)
    shifts = torch.round(params["xint"] * 16).long()
    assert shifts.abs().max() <= 2 and shifts.abs().sum() > 0  # xint_max 0.125 of 16 px
    for i in range(8):
        assert torch.equal(y[i], _shift_reflect(x[i], int(shifts[i, 0]), int(shifts[i, 1])))


def test_integer_shift_through_the_resampler_is_exact():
    """The sym6 up/down pair is the identity on the upsampled grid: a pure integer translation
    through the geometric path reproduces the shifted image (interior) to float precision."""
    x = images(n=2, r=16)
    G = ada.translate2d(torch.tensor([-2.0, 0.0], dtype=torch.float64), torch.tensor([1.0, 0.0], dtype=torch.float64))
    y = ada.apply_geom(x, G)
    assert torch.allclose(y[0, :, :-1, 2:], x[0, :, 1:, :-2], atol=1e-9)
    assert torch.allclose(y[1], x[1], atol=1e-9)


def test_sym6_is_orthogonal_and_up_down_is_identity():
    h = torch.tensor(SYM6, dtype=torch.float64)
    assert abs(float(h.sum()) - math.sqrt(2)) < 1e-12
    for j in range(1, 6):
        assert abs(float((h[:-2 * j] * h[2 * j:]).sum())) < 1e-11
    x = images(n=1, r=8)
    f = sym6_filter(dtype=torch.float64)
    u = upsample2x(F.pad(x, [6, 6, 6, 6]), f)
    assert u.shape[-1] == 2 * 20
    # sample t of the grid sits at upsampled index t - 6 + 2*6 (the 6 px margin)
    idx = torch.arange(2 * (8 + 6), dtype=torch.float64) + 6.0
    my, mx = torch.meshgrid(idx, idx, indexing="ij")
    v = bilinear_sample(u, mx[None], my[None], method="gather")
    assert torch.allclose(downsample2x(v, f, crop=1), x, atol=1e-10)


def test_resamplers_agree():
    x = images(n=3, dtype=torch.float32)
    params = ada.sample_params(3, p=1.0, pipe="geom", generator=gen(5))
    a = ada.apply_params(x, params, resampler="grid_sample")
    b = ada.apply_params(x, params, resampler="gather")
    assert torch.allclose(a, b, atol=1e-4)


def test_rotation_probability_split():
    """Pre- and post-rotation each fire with 1 - sqrt(1 - p): P(either) = p."""
    n, p = 20000, 0.5
    params = ada.sample_params(n, p=p, pipe="geom", generator=gen(6), multipliers=only("rotate"))
    rotated = (params["geom"][:, 0, 1].abs() > 1e-12).double().mean()
    assert abs(float(rotated) - p) < 0.015


def _blob(r, cx, cy, sigma):
    yy, xx = torch.meshgrid(torch.arange(r, dtype=torch.float64), torch.arange(r, dtype=torch.float64), indexing="ij")
    return torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma ** 2)), xx, yy


def test_geom_scale_and_rotation_move_content_where_they_should():
    """A 2x scale doubles a centred blob's width about the centre; a quarter turn moves an
    off-centre blob to the rotated position (sub-pixel: the resampler is unbiased)."""
    x, xx, yy = _blob(32, 15.5, 15.5, 3.0)
    s = torch.tensor([2.0], dtype=torch.float64)
    y = ada.apply_geom(x[None, None], ada.scale2d(1 / s, 1 / s))[0, 0]
    ref, _, _ = _blob(32, 15.5, 15.5, 6.0)
    assert (y - ref).abs().max() < 0.01
    x, xx, yy = _blob(32, 11.5, 15.5, 2.0)
    y = ada.apply_geom(x[None, None], ada.rotate2d(torch.tensor([math.pi / 2], dtype=torch.float64)))[0, 0]
    m = y.sum()
    assert abs(float((y * xx).sum() / m) - 15.5) < 0.01 and abs(float((y * yy).sum() / m) - 19.5) < 0.01


def test_color_matrix_keeps_luma_under_hue_rotation():
    theta = torch.linspace(-math.pi, math.pi, 7, dtype=torch.float64)
    R = ada.hue_rotation_matrix(theta)
    v = ada.LUMA_AXIS
    assert torch.allclose(v @ R, v.expand(7, 4), atol=1e-12)
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(4, dtype=torch.float64).expand(7, 4, 4), atol=1e-12)
    x = images(n=8)
    params = ada.sample_params(8, p=1.0, pipe="color", generator=gen(7), multipliers=only("hue"))
    y = ada.apply_params(x, params)
    assert not torch.allclose(y, x)
    assert torch.allclose(y.mean(dim=1), x.mean(dim=1), atol=1e-12)


def test_lumaflip_is_an_involution_that_negates_luma():
    M = ada.luma_flip_matrix(torch.ones(1, dtype=torch.float64))[0]
    assert torch.allclose(M @ M, torch.eye(4, dtype=torch.float64), atol=1e-12)
    x = images(n=8)
    params = ada.sample_params(8, p=1.0, pipe="color", generator=gen(8), multipliers=only("lumaflip"))
    flipped = ada.luma_flip_matrix(torch.ones(8, dtype=torch.float64))
    y = ada.apply_color(x, flipped)
    assert torch.allclose(y.mean(dim=1), -x.mean(dim=1), atol=1e-12)
    assert torch.allclose(y - y.mean(dim=1, keepdim=True), x - x.mean(dim=1, keepdim=True), atol=1e-12)
    assert torch.allclose(ada.apply_color(y, flipped), x, atol=1e-12)
    assert set(params["color"][:, 0, 0].round(decimals=6).tolist()) <= {1.0, round(1 - 2 / 3, 6)}


def test_brightness_contrast_saturation_definitions():
    x = images(n=4)
    b = torch.tensor([0.3, -0.1, 0.0, 0.5], dtype=torch.float64)
    T = ada._eye(4, 4)
    T[:, :3, 3] = b.view(-1, 1)
    assert torch.allclose(ada.apply_color(x, T), x + b.view(-1, 1, 1, 1))
    s = torch.tensor([0.0, 1.0, 2.0, 0.5], dtype=torch.float64)
    y = ada.apply_color(x, ada.saturation_matrix(s))
    mean = x.mean(dim=1, keepdim=True)
    assert torch.allclose(y, mean + (x - mean) * s.view(-1, 1, 1, 1), atol=1e-12)


def test_one_channel_colour_is_the_row_mean():
    x = images(n=4, c=1)
    params = ada.sample_params(4, p=1.0, pipe="color", generator=gen(9))
    y = ada.apply_params(x, params)
    C = params["color"]
    rgb = ada.apply_color(x.expand(4, 3, 16, 16), C)
    assert torch.allclose(y[:, 0], rgb.mean(dim=1), atol=1e-12)


def test_full_pipeline_shapes_and_determinism():
    x = images(n=4, dtype=torch.float32)
    pipe = ada.AdaPipeline("bgc")
    a = pipe(x, p=0.8, generator=gen(10))
    b = pipe(x, p=0.8, generator=gen(10))
    assert a.shape == x.shape and torch.equal(a, b) and torch.isfinite(a).all()
    with pytest.raises(ValueError):
        ada.AdaPipeline("nope")


def test_grid_sample_double_backward_probe():
    """The probe the issue asks for: does this torch's grid_sample have a second derivative w.r.t.
    its input? (torch 2.13 on CPU: yes.) The gather resampler always has one; both must agree."""
    x = images(n=2, c=3, r=8, dtype=torch.float64).requires_grad_(True)
    mx = torch.rand(2, 8, 8, generator=gen(11), dtype=torch.float64) * 7
    my = torch.rand(2, 8, 8, generator=gen(12), dtype=torch.float64) * 7
    w = torch.randn(4, 3, 3, 3, generator=gen(13), dtype=torch.float64, requires_grad=True)
    grads = {}
    for method in ("grid_sample", "gather"):
        out = F.conv2d(bilinear_sample(x, mx, my, method=method), w).square().sum()
        (g,) = torch.autograd.grad(out, x, create_graph=True)
        (gw,) = torch.autograd.grad(g.square().sum(), w)
        grads[method] = gw
    assert torch.allclose(grads["grid_sample"], grads["gather"], rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("resampler", ["grid_sample", "gather"])
def test_r1_through_the_augmentation(resampler):
    """R1: create_graph grad of D(aug(x)) w.r.t. x, then backward into D's weights."""
    torch.manual_seed(0)
    D = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.LeakyReLU(0.2),
                            torch.nn.Conv2d(8, 1, 3, padding=1), torch.nn.Flatten(), torch.nn.LazyLinear(1))
    x = images(n=4, dtype=torch.float32).requires_grad_(True)
    D(x)  # materialise the lazy layer
    pipe = ada.AdaPipeline("bgc", resampler=resampler)
    params = pipe.sample(4, p=1.0, generator=gen(14))
    logits = D(pipe.apply(x, params))
    (g,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    penalty = g.square().flatten(1).sum(1).mean()
    penalty.backward()
    grads = [p.grad for p in D.parameters() if p.grad is not None]  # the last bias does not enter R1
    assert D[0].weight.grad is not None and len(grads) >= 4
    assert all(torch.isfinite(gr).all() for gr in grads)
    assert sum(float(gr.abs().sum()) for gr in grads) > 0
