"""PPL: slerp, closed forms on linear toy generators, sampling, noise pairing, crop and trimming."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

from sgan.metrics.ppl import crop_and_downsample, path_lengths, ppl, slerp_unit, trimmed_mean


def sq_l2(x0, x1):
    return (x0 - x1).double().flatten(1).square().sum(1)


class LinearG:
    """G(w) = A w reshaped to an image; identity mapping (or s * z for the isometric case)."""

    def __init__(self, d=16, scale=1.0, seed=0, noise_only=False, tiny=False):
        self.z_dim = self.w_dim = d
        self.num_ws = 1
        self.noise_only, self.tiny = noise_only, tiny
        q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((3 * 8 * 8, d)))
        self.A = torch.from_numpy(scale * q).float()

    def mapping(self, z):
        return z

    def synthesis(self, ws, noise_mode="random", generator=None):
        n = ws.shape[0]
        noise = torch.stack([torch.randn(3, 8, 8, generator=g) for g in generator])
        if self.noise_only:
            return noise
        img = (ws[:, 0] @ self.A.T).view(n, 3, 8, 8)
        return img * 1e-3 if self.tiny else img


def test_slerp_endpoints_norm_and_angle():
    rng = np.random.default_rng(0)
    a, b = torch.from_numpy(rng.standard_normal((5, 32))), torch.from_numpy(rng.standard_normal((5, 32)))
    an, bn = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    zero, one = torch.zeros(5, 1, dtype=torch.float64), torch.ones(5, 1, dtype=torch.float64)
    torch.testing.assert_close(slerp_unit(a, b, zero), an)
    torch.testing.assert_close(slerp_unit(a, b, one), bn)
    t = torch.full((5, 1), 0.3, dtype=torch.float64)
    p, q = slerp_unit(a, b, t), slerp_unit(a, b, t + 0.01)
    torch.testing.assert_close(p.norm(dim=1), torch.ones(5, dtype=torch.float64))
    theta = torch.acos((an * bn).sum(1))
    torch.testing.assert_close(torch.acos((p * q).sum(1).clamp(-1, 1)), 0.01 * theta, rtol=1e-5, atol=1e-7)


def test_w_space_linear_generator_trimmed_chi2_closed_form():
    d, s = 16, 1.0
    res = ppl(LinearG(d, s), sq_l2, space="w", sampling="full", num=20000, batch=2000, seed=1)
    a, b = stats.chi2.ppf([0.01, 0.99], d)
    expect = 2 * s * s * d * (stats.chi2.cdf(b, d + 2) - stats.chi2.cdf(a, d + 2)) / 0.98
    assert res["ppl"] == pytest.approx(expect, rel=0.02)


def test_z_space_isometric_generator_gives_s2_theta2_per_sample():
    s, d = 2.0, 16
    G = LinearG(d, s)
    got = path_lengths(G, sq_l2, space="z", sampling="full", num=64, batch=64, seed=3, epsilon=1e-2)
    draw0 = np.random.default_rng(np.random.SeedSequence([3, 1])).standard_normal((64, d)).astype(np.float32)
    draw1 = np.random.default_rng(np.random.SeedSequence([3, 2])).standard_normal((64, d)).astype(np.float32)
    cos = (draw0 * draw1).sum(1) / np.linalg.norm(draw0, axis=1) / np.linalg.norm(draw1, axis=1)
    np.testing.assert_allclose(got, s * s * np.arccos(cos) ** 2, rtol=1e-3)


def test_end_sampling_uses_t_zero_and_agrees_with_full_on_linear_g():
    G = LinearG(8)
    full = path_lengths(G, sq_l2, space="w", sampling="full", num=32, batch=32, seed=5)
    end = path_lengths(G, sq_l2, space="w", sampling="end", num=32, batch=32, seed=5)
    np.testing.assert_allclose(full, end, rtol=2e-3)

    seen = []

    def record(x0, x1):
        seen.append(x0.clone())
        return sq_l2(x0, x1)

    w0 = np.random.default_rng(np.random.SeedSequence([5, 1])).standard_normal((4, 8)).astype(np.float32)
    # t = 0: the first image of each pair is G(w0) exactly (noise aside), tested with a noise-free view:
    G0 = LinearG(8)
    G0.synthesis = lambda ws, noise_mode, generator: (ws[:, 0] @ G0.A.T).view(-1, 3, 8, 8)
    seen.clear()
    path_lengths(G0, record, space="w", sampling="end", num=4, batch=4, seed=5)
    torch.testing.assert_close(seen[0], (torch.from_numpy(w0) @ G0.A.T).view(4, 3, 8, 8))


def test_noise_only_generator_gives_zero_so_pairs_share_noise():
    res = ppl(LinearG(8, noise_only=True), sq_l2, space="z", sampling="full", num=40, batch=16, seed=0)
    assert res["ppl"] == 0.0


def test_sub_lsb_changes_are_not_quantised_away():
    res = ppl(LinearG(8, tiny=True), sq_l2, space="w", sampling="full", num=40, batch=16, seed=0)
    assert res["ppl"] > 0


def test_crop_indices_and_box_downsample():
    rows = torch.arange(1024, dtype=torch.float64).view(1, 1, 1024, 1).expand(1, 1, 1024, 1024)
    cols = torch.arange(1024, dtype=torch.float64).view(1, 1, 1, 1024).expand(1, 1, 1024, 1024)
    img = torch.cat([rows, cols], 1)
    cropped = crop_and_downsample(img, crop=True, size=4096)
    assert cropped.shape[2:] == (512, 512)
    assert cropped[0, 0, 0, 0] == 384 and cropped[0, 0, -1, 0] == 895
    assert cropped[0, 1, 0, 0] == 256 and cropped[0, 1, 0, -1] == 767
    x = torch.rand(2, 3, 1024, 1024)
    torch.testing.assert_close(crop_and_downsample(x, crop=False), F.avg_pool2d(x, 4))
    # the factor comes after the crop: 1024 px cropped is 512 px, downsampled by 2 to 256
    assert crop_and_downsample(x, crop=True).shape[2:] == (256, 256)


def test_outlier_rule():
    value, kept = trimmed_mean(np.arange(1000))
    assert kept == 982 and value == pytest.approx(499.5)


def test_same_seed_same_value_across_batch_sizes():
    G = LinearG(8)
    a = path_lengths(G, sq_l2, space="z", sampling="full", num=30, batch=30, seed=9)
    b = path_lengths(G, sq_l2, space="z", sampling="full", num=30, batch=7, seed=9)
    np.testing.assert_allclose(a, b, rtol=1e-5)
