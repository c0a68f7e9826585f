"""Fréchet distance and the streaming float64 feature statistics behind FID.

FID = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)). `S1 S2` is similar to the symmetric
positive semi-definite `R S2 R` with `R = S1^(1/2)`, so the trace of its square root is the sum of
the square roots of the eigenvalues of `R S2 R` (both from `numpy.linalg.eigh`, in float64). This
needs no `scipy.linalg.sqrtm` (whose `disp=` argument pytorch-fid still passes and SciPy 1.18 removed),
never gives an imaginary part, and is symmetric in its two arguments.
"""

from __future__ import annotations

import warnings

import numpy as np


class FeatureStats:
    """Running sums of x and x^T x in float64: mean and covariance without keeping the features."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.n = 0
        self.sum = np.zeros(dim, dtype=np.float64)
        self.sum_outer = np.zeros((dim, dim), dtype=np.float64)

    def update(self, features: np.ndarray) -> None:
        x = np.asarray(features, dtype=np.float64)
        assert x.ndim == 2 and x.shape[1] == self.dim, f"features must be [N, {self.dim}], got {list(x.shape)}"
        self.n += x.shape[0]
        self.sum += x.sum(axis=0)
        self.sum_outer += x.T @ x

    def mean_cov(self, ddof: int = 1) -> tuple[np.ndarray, np.ndarray]:
        if self.n <= ddof:
            raise ValueError(f"need more than {ddof} samples for a covariance, got {self.n}")
        mu = self.sum / self.n
        cov = (self.sum_outer - self.n * np.outer(mu, mu)) / (self.n - ddof)
        return mu, cov


def mean_cov(features: np.ndarray, ddof: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of [N, D] features in float64 (ddof 1 as pytorch-fid and TTUR, 0 as ada)."""
    stats = FeatureStats(np.asarray(features).shape[1])
    stats.update(features)
    return stats.mean_cov(ddof)


def _sqrt_psd(sigma: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh((sigma + sigma.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """The Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shapes do not match: mu {mu1.shape} / {mu2.shape}, sigma {s1.shape} / {s2.shape}")
    root = _sqrt_psd(s1)
    inner = root @ s2 @ root
    eig = np.linalg.eigvalsh((inner + inner.T) / 2)
    tr_covmean = float(np.sqrt(np.clip(eig, 0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def fid_from_features(real: np.ndarray, fake: np.ndarray, ddof: int = 1) -> float:
    """FID between two feature matrices (warns when a set has no more samples than dimensions)."""
    for name, f in (("real", real), ("generated", fake)):
        if f.shape[0] <= f.shape[1]:
            warnings.warn(f"{f.shape[0]} {name} samples for {f.shape[1]}-d features: the covariance is "
                          f"rank-deficient and FID is biased; use more samples than dimensions.", stacklevel=2)
    return frechet_distance(*mean_cov(real, ddof), *mean_cov(fake, ddof))
