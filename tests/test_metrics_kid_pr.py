"""KID against a brute-force double loop; precision/recall invariants."""

from __future__ import annotations

import numpy as np
import pytest

from sgan.metrics.kid import kid, mmd2_unbiased, subset_indices
from sgan.metrics.pr import precision_recall


def _brute_mmd2(x, y):
    m, d = x.shape
    k = lambda a, b: (a @ b / d + 1.0) ** 3  # noqa: E731
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return kxx + kyy - 2 * kxy


def test_kid_matches_brute_force_for_fixed_subsets():
    rng = np.random.default_rng(0)
    real, fake = rng.standard_normal((40, 6)), rng.standard_normal((50, 6)) + 0.3
    res = kid(real, fake, num_subsets=3, max_subset_size=12, rng=np.random.default_rng(7))
    subsets = subset_indices(40, 50, num_subsets=3, max_subset_size=12, rng=np.random.default_rng(7))
    brute = np.mean([_brute_mmd2(real[i], fake[j]) for i, j in subsets])
    assert res["kid"] == pytest.approx(brute, rel=1e-10)
    assert mmd2_unbiased(real[:12], fake[:12]) == pytest.approx(_brute_mmd2(real[:12], fake[:12]), rel=1e-10)


def test_kid_is_unbiased_for_one_distribution():
    values = []
    for seed in range(20):
        rng = np.random.default_rng(seed)
        a, b = rng.standard_normal((200, 8)), rng.standard_normal((200, 8))
        values.append(kid(a, b, num_subsets=10, max_subset_size=100, rng=rng)["kid"])
    rng = np.random.default_rng(99)
    shifted = kid(rng.standard_normal((200, 8)), rng.standard_normal((200, 8)) + 0.5, num_subsets=10,
                  max_subset_size=100, rng=rng)["kid"]
    assert abs(np.mean(values)) < 0.1 * shifted
    assert min(values) < 0 < max(values)  # unbiased: it can go negative


def test_pr_of_a_set_against_itself_is_one():
    x = np.random.default_rng(1).standard_normal((120, 5))
    res = precision_recall(x, x.copy())
    assert res["precision"] == 1.0 and res["recall"] == 1.0


def test_pr_mode_collapse():
    rng = np.random.default_rng(2)
    gen, real = 0.1 * rng.standard_normal((200, 16)), 3 * rng.standard_normal((200, 16))
    res = precision_recall(real, gen)
    assert res["precision"] > 0.8 and res["recall"] < 0.3


def test_pr_does_not_depend_on_batches_and_counts_ties_inside():
    rng = np.random.default_rng(3)
    real, gen = rng.standard_normal((150, 4)), rng.standard_normal((130, 4)) * 1.3
    a = precision_recall(real, gen)
    b = precision_recall(real, gen, row_batch=7, col_batch=11)
    assert a == b
    # Points on a line 0,1,2,...: each radius (k=1) is 1; a probe at distance exactly 1 is inside.
    line = np.arange(10, dtype=np.float64)[:, None]
    res = precision_recall(line, np.array([[10.0], [10.5]]), k=1)
    assert res["precision"] == 0.5
