"""Density and coverage (Naeem et al. 2020) against a brute-force implementation written out plainly.

    density  = 1/(kM) sum_j sum_i 1[Y_j in B(X_i, NND_k(X_i))]
    coverage = 1/N sum_i 1[exists j: Y_j in B(X_i, NND_k(X_i))]
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from sgan.metrics.pr import density_coverage


def brute_force(real, fake, k):
    n, m = len(real), len(fake)
    radius = []
    for i in range(n):
        others = sorted(math.dist(real[i], real[t]) for t in range(n) if t != i)
        radius.append(others[k - 1])                      # NND_k(X_i): the k-th nearest other real
    inside = 0
    covered = 0
    for i in range(n):
        hits = sum(1 for j in range(m) if math.dist(fake[j], real[i]) <= radius[i])
        inside += hits
        covered += 1 if hits > 0 else 0
    return inside / (k * m), covered / n


@pytest.mark.parametrize("k,n,m,dim,shift", [(5, 60, 45, 3, 0.0), (1, 30, 70, 2, 0.7), (3, 50, 20, 8, 2.0)])
def test_matches_brute_force(k, n, m, dim, shift):
    rng = np.random.default_rng(k * 100 + n)
    real = rng.standard_normal((n, dim))
    fake = rng.standard_normal((m, dim)) * 1.3 + shift
    want_density, want_coverage = brute_force(real.tolist(), fake.tolist(), k)
    # Small row/column batches: the batched loops must give the same numbers.
    got = density_coverage(real, fake, k=k, row_batch=7, col_batch=11)
    assert got["k"] == k
    assert got["density"] == pytest.approx(want_density, abs=1e-12)
    assert got["coverage"] == pytest.approx(want_coverage, abs=1e-12)
    assert density_coverage(real, fake, k=k) == got


def test_a_case_worked_by_hand():
    # Reals on a line at 0, 1, 2, 10; k = 1: radii 1, 1, 1, 8 (ball around 10 reaches 2..18).
    real = np.array([[0.0], [1.0], [2.0], [10.0]])
    fake = np.array([[0.5], [1.5], [30.0]])
    # 0.5 is in the balls of 0 and 1 (and of 2? |2-0.5| = 1.5 > 1: no); 1.5 in those of 1 and 2 (not 10: 8.5 > 8);
    # 30 in none. density = (2 + 2 + 0) / (1 * 3); coverage: balls of 0, 1, 2 hold a sample, 10's does not.
    got = density_coverage(real, fake, k=1)
    assert got["density"] == pytest.approx(4 / 3) and got["coverage"] == pytest.approx(3 / 4)


def test_same_distribution_has_density_near_one_and_full_coverage():
    rng = np.random.default_rng(0)
    real, fake = rng.standard_normal((800, 4)), rng.standard_normal((800, 4))
    got = density_coverage(real, fake, k=5)
    assert 0.85 < got["density"] < 1.15 and got["coverage"] > 0.9
    # One mode dropped (a generator drawing only half the space): coverage falls, density does not.
    half = fake[fake[:, 0] > 0]
    dropped = density_coverage(real, half, k=5)
    assert dropped["coverage"] < 0.65 and dropped["density"] > 0.85


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="one D"):
        density_coverage(np.zeros((10, 3)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="more than 5"):
        density_coverage(np.zeros((5, 3)), np.zeros((5, 3)), k=5)


def test_pr_reports_density_and_coverage_of_its_own_features(shapes16, tiny_checkpoint, tmp_path):
    import json

    from typer.testing import CliRunner

    from sgan.cli import app
    from sgan.metrics import api
    from sgan.metrics.detectors import load_feature_detector
    from sgan.metrics.features import cached_real_features, generated_features, open_dataset
    from sgan.play.classes import load_class_generator

    runner = CliRunner()
    det_path = tmp_path / "det.pt"
    res = runner.invoke(app, ["detector", "train", str(shapes16), "--out", str(det_path), "--epochs", "1", "--batch", "32",
                              "--device", "cpu"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, ["metrics", "pr", str(tiny_checkpoint), "--data", str(shapes16), "--detector", str(det_path),
                              "--num", "24", "--dc-k", "4", "--no-cache", "--device", "cpu", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["dc_k"] == 4 and out["k"] == 3
    G = load_class_generator(tiny_checkpoint, None)
    det = load_feature_detector(str(det_path))
    real, _ = cached_real_features(open_dataset(shapes16, 16), det, num=96, batch=32, device="cpu", cache_dir=None,
                                   use_cache=False)
    fake = generated_features(G, det, num=24, batch=8, seed=0)
    want = density_coverage(real, fake, k=4)
    assert out["density"] == pytest.approx(want["density"], abs=1e-9)
    assert out["coverage"] == pytest.approx(want["coverage"], abs=1e-9)
    lib = api.pr(G, data_path=shapes16, detector=det, num=24, use_cache=False, dc_k=None)
    assert "density" not in lib and lib["precision"] == out["precision"]
    res = runner.invoke(app, ["metrics", "pr", str(tiny_checkpoint), "--data", str(shapes16), "--detector", str(det_path),
                              "--num", "24", "--no-cache", "--device", "cpu"])
    assert res.exit_code == 0 and "density = " in res.output and "coverage = " in res.output
