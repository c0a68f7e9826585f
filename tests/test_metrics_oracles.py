"""Independent oracles for the metrics: a brute-force precision/recall, KID by the stylegan2-ada
formula, linear separability against scikit-learn's LinearSVC, and the TF1 bilinear resize of
the default FID mode written from TensorFlow's kernel (float32, width then height)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from sgan.metrics import inception as inc
from sgan.metrics.kid import kid, subset_indices
from sgan.metrics.ls import attribute_entropy, fit_linear_svm, separability
from sgan.metrics.pr import precision_recall

FIXTURES = Path(__file__).parent / "fixtures"


# -- precision / recall: Kynkaanniemi et al. 2019, as plain loops ------------------------------------

def _pr_loops(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float]:
    def radii(points):
        out = []
        for i, p in enumerate(points):
            d = sorted(math.dist(p, q) for j, q in enumerate(points) if j != i)
            out.append(d[k - 1])                              # the k-th nearest other point
        return out

    def inside(manifold, probes):
        r = radii(manifold)
        hits = 0
        for p in probes:
            hits += any(math.dist(p, m) <= rm for m, rm in zip(manifold, r))
        return hits / len(probes)

    real, fake = real.tolist(), fake.tolist()
    return inside(real, fake), inside(fake, real)


@pytest.mark.parametrize("seed, k, shift, scale", [(0, 3, 0.0, 1.0), (1, 3, 0.7, 1.0), (2, 1, 0.3, 0.5),
                                                   (3, 5, 0.0, 2.0)])
def test_precision_recall_equals_brute_force(seed, k, shift, scale):
    rng = np.random.default_rng(seed)
    real = rng.standard_normal((70, 5))
    fake = rng.standard_normal((60, 5)) * scale + shift
    p, r = _pr_loops(real, fake, k)
    res = precision_recall(real, fake, k=k, row_batch=13, col_batch=17)
    assert res["precision"] == pytest.approx(p, abs=1e-12) and res["recall"] == pytest.approx(r, abs=1e-12)
    assert 0 < p < 1 or 0 < r < 1                            # a case that discriminates


# -- KID: stylegan2-ada's kernel_inception_distance.py formula on the same subsets ---------------------

def test_kid_equals_the_ada_formula_on_the_same_subsets():
    rng = np.random.default_rng(5)
    real, fake = rng.standard_normal((90, 7)), rng.standard_normal((80, 7)) * 1.2 + 0.2
    res = kid(real, fake, num_subsets=6, max_subset_size=25, rng=np.random.default_rng(11))
    subsets = subset_indices(90, 80, num_subsets=6, max_subset_size=25, rng=np.random.default_rng(11))
    n, t, m = real.shape[1], 0.0, None
    for ri, fi in subsets:
        x, y = fake[fi], real[ri]
        m = x.shape[0]
        a = (x @ x.T / n + 1) ** 3 + (y @ y.T / n + 1) ** 3
        b = (x @ y.T / n + 1) ** 3
        t += (a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m
    assert res["kid"] == pytest.approx(t / len(subsets) / m, rel=1e-10)


# -- linear separability: the SVM is scikit-learn's LinearSVC ----------------------------------------

def _fixture(seed: int, n: int = 400, d: int = 6, noise: float = 0.6):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    v = rng.standard_normal(d)
    y = x @ v + 0.4 + noise * rng.standard_normal(n) > 0      # linear, with label noise: not separable
    return x, y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_svm_equals_sklearn_linear_svc(seed):
    svm = pytest.importorskip("sklearn.svm")
    x, y = _fixture(seed)
    ref = svm.LinearSVC(C=1.0, loss="squared_hinge", penalty="l2", fit_intercept=True, intercept_scaling=1.0,
                        tol=1e-10, max_iter=100000, dual=True).fit(x, y)
    w, b = fit_linear_svm(x, y, tol=1e-10)
    assert np.allclose(w, ref.coef_[0], rtol=1e-4, atol=1e-5) and b == pytest.approx(ref.intercept_[0], abs=1e-5)
    assert np.array_equal(x @ w + b > 0, ref.predict(x))


def test_linear_separability_equals_the_sklearn_protocol():
    """NVIDIA's linear_separability.py protocol with LinearSVC and a loop-computed H(Y|X)."""
    svm = pytest.importorskip("sklearn.svm")
    rng = np.random.default_rng(7)
    z = rng.standard_normal((600, 5))
    logits = np.stack([z @ rng.standard_normal(5), z[:, 0] ** 2 - 1, z @ rng.standard_normal(5) + rng.standard_normal(600)], 1)
    probs = 1 / (1 + np.exp(-2 * logits))
    keep = 300
    h_ref = []
    for a in range(probs.shape[1]):
        p = probs[:, a]
        idx = np.argsort(-np.maximum(p, 1 - p), kind="stable")[:keep]
        y = p[idx] >= 0.5
        pred = svm.LinearSVC(C=1.0, tol=1e-10, max_iter=100000).fit(z[idx], y).predict(z[idx])
        h = 0.0
        for xv in (False, True):                               # H(Y|X) = sum_x p(x) H(Y | X = x)
            sel = pred == xv
            if sel.sum() == 0:
                continue
            q = y[sel].mean()
            hx = -sum(v * math.log2(v) for v in (q, 1 - q) if v > 0)
            h += sel.mean() * hx
        h_ref.append(h)
    score, hs = separability(z, probs, num_keep=keep)
    assert hs == pytest.approx(h_ref, abs=1e-9) and score == pytest.approx(2 ** sum(h_ref), rel=1e-9)
    assert h_ref[0] < 1e-9 < h_ref[1] and h_ref[2] > 1e-3      # separable, not separable, noisy
    assert attribute_entropy(z, probs[:, 1], keep) == pytest.approx(h_ref[1], abs=1e-9)


# -- the default FID mode: TF1 resize_bilinear (align_corners=False, legacy) -------------------------

def _tf1_resize_bilinear(img: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """tensorflow/core/kernels/resize_bilinear_op.cc, legacy scaler, float32: for output y,
    in = y * (in_h / out_h); top = floor(in); bottom = min(ceil(in), in_h - 1); lerp = in - top;
    the two rows are each interpolated along x first, then blended along y. img [H, W, C]."""
    in_h, in_w, _ = img.shape
    img = img.astype(np.float32)
    sy, sx = np.float32(in_h) / np.float32(out_h), np.float32(in_w) / np.float32(out_w)
    out = np.empty((out_h, out_w, img.shape[2]), np.float32)
    fx = np.arange(out_w, dtype=np.float32) * sx                  # float32, as the kernel
    left, right = np.floor(fx).astype(int), np.minimum(np.ceil(fx).astype(int), in_w - 1)
    lx = (fx - np.floor(fx)).astype(np.float32)[:, None]
    for y in range(out_h):
        fy = np.float32(y) * sy
        top, bottom, ly = int(math.floor(fy)), min(int(math.ceil(fy)), in_h - 1), np.float32(fy - math.floor(fy))
        t = img[top, left] + (img[top, right] - img[top, left]) * lx
        b = img[bottom, left] + (img[bottom, right] - img[bottom, left]) * lx
        out[y] = t + (b - t) * ly
    return out


@pytest.mark.parametrize("in_hw, out_hw", [((5, 7), (11, 3)), ((16, 16), (37, 37)), ((3, 4), (3, 9))])
def test_tf1_resize_matches_an_independent_implementation(in_hw, out_hw):
    img = np.random.default_rng(0).random((*in_hw, 3)).astype(np.float32) * 255
    ours = inc.resize_tf1_bilinear(torch.from_numpy(img).permute(2, 0, 1)[None], out_hw)[0].permute(1, 2, 0).numpy()
    ref = _tf1_resize_bilinear(img, *out_hw)
    assert np.abs(ours - ref).max() < 1e-3 and np.abs(ref).max() > 100


def test_tf_mode_input_equals_the_tf1_resize_of_the_oracle():
    """The default `tf` mode feeds the network (proven equal to pytorch-fid's pool3 in
    tests/test_metrics_inception.py) exactly the TF1 resize (oracle above) of 0..255 images to
    299 x 299, mapped by (x - 128) / 128; the features follow from the network's forward."""
    imgs = (np.load(FIXTURES / "fid_inception_oracle.npz")["input_64"][:2] * 255).round().astype(np.uint8)
    ours = inc.preprocess(torch.from_numpy(imgs), "tf").numpy()
    ref = np.stack([_tf1_resize_bilinear(im.transpose(1, 2, 0), 299, 299).transpose(2, 0, 1) for im in imgs])
    assert ours.shape == (2, 3, 299, 299)
    assert np.abs(ours - (ref - 128.0) / 128.0).max() < 1e-5
    other = inc.preprocess(torch.from_numpy(imgs), "pytorch-fid").numpy()
    assert np.abs(other - (ref - 128.0) / 128.0).max() > 1e-2          # the oracle tells the two modes apart
