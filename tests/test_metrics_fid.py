"""Fréchet distance and feature statistics: closed forms, invariances, the pytorch-fid oracle values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.linalg

from sgan.metrics.fid import FeatureStats, fid_from_features, frechet_distance, mean_cov

FIXTURES = Path(__file__).parent / "fixtures"


def _spd(rng, d, scale=1.0):
    a = rng.standard_normal((d, d))
    return scale * (a @ a.T / d + 0.1 * np.eye(d))


def _scipy_fd(m1, s1, m2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean).real)


def test_self_distance_is_zero_and_symmetric():
    rng = np.random.default_rng(0)
    m1, m2, s1, s2 = rng.standard_normal(64), rng.standard_normal(64), _spd(rng, 64), _spd(rng, 64)
    assert abs(frechet_distance(m1, s1, m1, s1)) < 1e-8 * np.trace(s1)
    a, b = frechet_distance(m1, s1, m2, s2), frechet_distance(m2, s2, m1, s1)
    assert a == pytest.approx(b, rel=1e-10)


def test_equal_covariance_gives_squared_mean_difference():
    # pytorch-fid's own test (zeros vs ones, identity covariance) at 512-d instead of 2048 to stay fast.
    d = 512
    assert frechet_distance(np.zeros(d), np.eye(d), np.ones(d), np.eye(d)) == pytest.approx(float(d), rel=1e-12)
    rng = np.random.default_rng(1)
    s = _spd(rng, 32)
    m1, m2 = rng.standard_normal(32), rng.standard_normal(32)
    assert frechet_distance(m1, s, m2, s) == pytest.approx(float(((m1 - m2) ** 2).sum()), rel=1e-9, abs=1e-9)


def test_commuting_covariances_closed_form():
    rng = np.random.default_rng(2)
    q, _ = np.linalg.qr(rng.standard_normal((16, 16)))
    l1, l2 = rng.uniform(0.1, 3, 16), rng.uniform(0.1, 3, 16)
    m1, m2 = rng.standard_normal(16), rng.standard_normal(16)
    expect = ((m1 - m2) ** 2).sum() + ((np.sqrt(l1) - np.sqrt(l2)) ** 2).sum()
    got = frechet_distance(m1, q @ np.diag(l1) @ q.T, m2, q @ np.diag(l2) @ q.T)
    assert got == pytest.approx(expect, rel=1e-9)
    # 1-D: (dmu)^2 + (sigma1 - sigma2)^2
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0)


def test_invariances_rotation_shift_scale():
    rng = np.random.default_rng(3)
    m1, m2, s1, s2 = rng.standard_normal(24), rng.standard_normal(24), _spd(rng, 24), _spd(rng, 24)
    base = frechet_distance(m1, s1, m2, s2)
    q, _ = np.linalg.qr(rng.standard_normal((24, 24)))
    assert frechet_distance(q @ m1, q @ s1 @ q.T, q @ m2, q @ s2 @ q.T) == pytest.approx(base, rel=1e-9)
    shift = rng.standard_normal(24)
    assert frechet_distance(m1 + shift, s1, m2 + shift, s2) == pytest.approx(base, rel=1e-9)
    c = 3.0
    assert frechet_distance(c * m1, c * c * s1, c * m2, c * c * s2) == pytest.approx(c * c * base, rel=1e-9)


@pytest.mark.parametrize("d", [64, 256])
def test_agrees_with_scipy_sqrtm_and_eigvals_formula(d):
    rng = np.random.default_rng(d)
    m1, m2, s1, s2 = rng.standard_normal(d), rng.standard_normal(d), _spd(rng, d), _spd(rng, d, 2.0)
    ours = frechet_distance(m1, s1, m2, s2)
    assert ours == pytest.approx(_scipy_fd(m1, s1, m2, s2), rel=1e-6)
    tr = np.sum(np.sqrt(np.linalg.eigvals(s1 @ s2).astype(complex)).real)
    assert ours == pytest.approx(((m1 - m2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr, rel=1e-6)


def test_pytorch_fid_oracle_values():
    data = np.load(FIXTURES / "frechet_oracle.npz")
    for i in range(3):
        x, y, fd = data[f"x{i}"], data[f"y{i}"], float(data[f"fd{i}"])
        ours = frechet_distance(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
        assert ours == pytest.approx(fd, rel=1e-6, abs=1e-9), i
        assert fid_from_features(x, y) == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_samples_converge_to_closed_form():
    rng = np.random.default_rng(4)
    d = 4
    l1, l2 = np.array([1.0, 2.0, 0.5, 1.5]), np.array([2.0, 1.0, 1.0, 0.5])
    mu2 = np.array([1.0, 0, 0, -1.0])
    expect = (mu2 ** 2).sum() + ((np.sqrt(l1) - np.sqrt(l2)) ** 2).sum()
    x = rng.standard_normal((200000, d)) * np.sqrt(l1)
    y = rng.standard_normal((200000, d)) * np.sqrt(l2) + mu2
    assert fid_from_features(x, y) == pytest.approx(expect, abs=0.02)


def test_streaming_stats_match_numpy_for_any_batch():
    rng = np.random.default_rng(5)
    feats = rng.standard_normal((150, 12)) * 3 + 5
    for batch in (1, 7, 64):
        st = FeatureStats(12)
        for i in range(0, 150, batch):
            st.update(feats[i:i + batch])
        for ddof in (0, 1):
            mu, cov = st.mean_cov(ddof)
            np.testing.assert_allclose(mu, feats.mean(0), rtol=1e-10)
            np.testing.assert_allclose(cov, np.cov(feats, rowvar=False, ddof=ddof), rtol=1e-10, atol=1e-10)
    mu, cov = mean_cov(feats)
    np.testing.assert_allclose(cov, np.cov(feats, rowvar=False), rtol=1e-10)


def test_few_samples_warn():
    rng = np.random.default_rng(6)
    with pytest.warns(UserWarning, match="rank-deficient"):
        fid_from_features(rng.standard_normal((10, 16)), rng.standard_normal((40, 16)))


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
