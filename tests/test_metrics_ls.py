"""Linear separability: entropy identities, the SVM, and toy latent spaces with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from sgan.metrics.ls import (attribute_entropy, conditional_entropy_bits, conditional_entropy_of_joint,
                             fit_linear_svm, ls_scores, separability)


def _h(p):
    p = p[p > 0]
    return -(p * np.log2(p)).sum()


def test_conditional_entropy_identities():
    rng = np.random.default_rng(0)
    for _ in range(5):
        j = rng.random((2, 2))
        j /= j.sum()
        assert conditional_entropy_of_joint(j) == pytest.approx(_h(j.ravel()) - _h(j.sum(1)))
    assert conditional_entropy_of_joint(np.diag([0.3, 0.7])) == 0.0
    py = np.array([0.2, 0.8])
    assert conditional_entropy_of_joint(np.outer([0.4, 0.6], py)) == pytest.approx(_h(py))
    assert conditional_entropy_of_joint(np.array([[0.5, 1e-18], [0.0, 0.5]])) >= 0.0  # tiny negatives clipped


def test_svm_separates_separable_data():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((500, 5))
    y = x @ np.array([1.0, -2.0, 0.5, 0, 0]) + 0.3 > 0
    w, b = fit_linear_svm(x, y)
    assert np.mean((x @ w + b > 0) == y) > 0.99


def _probs(logit):
    return 1 / (1 + np.exp(-2 * logit))  # softmax([l, -l])[0]


def test_linearly_separable_attribute_scores_one():
    z = np.random.default_rng(2).standard_normal((2000, 8))
    v = np.random.default_rng(3).standard_normal(8)
    score, hs = separability(z, _probs(3.0 * (z @ v))[:, None])
    assert score == pytest.approx(1.0, abs=1e-3) and hs[0] < 1e-3


def test_label_noise_gives_binary_entropy():
    rng = np.random.default_rng(4)
    z = rng.standard_normal((20000, 4))
    y = z[:, 0] > 0
    flip = rng.random(20000) < 0.1
    p = np.where(y ^ flip, 0.9, 0.1)  # the same confidence for every sample: pruning ignores the noise
    oracle = 2 ** (-(0.1 * np.log2(0.1) + 0.9 * np.log2(0.9)))  # 1.3841
    assert 2 ** conditional_entropy_bits(y, y ^ flip) == pytest.approx(oracle, abs=0.02)
    score, _ = separability(z, p[:, None])
    assert score == pytest.approx(oracle, abs=0.05)  # the fitted SVM adds a little near the boundary


def test_xor_is_about_two_and_attributes_multiply():
    rng = np.random.default_rng(5)
    z = rng.standard_normal((4000, 4))
    xor = np.where(z[:, 0] * z[:, 1] > 0, 0.9, 0.1)
    score, _ = separability(z, xor[:, None])
    assert score == pytest.approx(2.0, abs=0.1)
    noisy = np.where((z[:, 2] > 0) ^ (rng.random(4000) < 0.1), 0.9, 0.1)
    s_noisy, _ = separability(z, noisy[:, None])
    both, _ = separability(z, np.stack([xor, noisy], 1))
    assert both == pytest.approx(score * s_noisy, rel=1e-9)


def test_z_equals_w_under_identity_and_nonlinear_mapping_favours_w():
    rng = np.random.default_rng(6)
    z = rng.standard_normal((3000, 3))
    p = _probs(2.0 * (z @ np.array([1.0, 1.0, 0.0])))[:, None]
    res = ls_scores(z, z.copy(), p, ["a"])
    assert res["ls_z"] == res["ls_w"]
    w = z ** 3                          # the attribute is linear in w, curved in z = w^(1/3)
    pw = _probs(2.0 * (w @ np.array([1.0, 1.0, 0.0]) - 1.0))[:, None]
    res = ls_scores(z, w, pw, ["a"], num_keep=3000)
    assert res["ls_w"] < res["ls_z"]


def test_pruning_keeps_the_most_confident_and_single_class_falls_back():
    z = np.random.default_rng(7).standard_normal((100, 2))
    p = np.where(np.random.default_rng(9).random(100) < 0.5, 0.6, 0.4)  # unconfident, random labels
    z[:30, 0] += np.sign(z[:30, 0]) * 3.0           # 30 confident samples, separable with a wide margin
    p[:30] = np.where(z[:30, 0] > 0, 0.99, 0.01)
    assert attribute_entropy(z, p, 30) == 0.0       # only those 30 are kept
    assert attribute_entropy(z, p, 100) > 0.0       # with all, the random unconfident ones blur it
    assert attribute_entropy(z, np.full(100, 0.9), 50) == 0.0  # one class: perfect prediction assumed


def test_score_is_two_to_the_sum_of_bits():
    pred = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    target = np.array([0, 1, 1, 0, 0, 1, 1, 1])
    h = conditional_entropy_bits(pred, target)
    assert 0 < h < 1
    rng = np.random.default_rng(8)
    z = rng.standard_normal((400, 2))
    p = np.where(rng.random(400) < 0.5, 0.9, 0.1)   # pure noise: H close to 1 bit
    score, hs = separability(z, p[:, None])
    assert score == pytest.approx(2.0 ** hs[0]) and score != pytest.approx(np.e ** hs[0])
