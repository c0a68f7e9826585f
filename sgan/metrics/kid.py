"""Kernel Inception Distance (Binkowski et al. 2018), the protocol of stylegan2-ada.

Cubic polynomial kernel k(x, y) = (x.y / d + 1)^3; `num_subsets` subsets of m = min(n_real, n_gen,
`max_subset_size`) samples drawn without replacement from each set; per subset the unbiased MMD^2
(within-set terms over m(m-1) pairs, the cross term over m^2); KID is the mean over subsets
(it can be slightly negative).
"""

from __future__ import annotations

import numpy as np


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    d = x.shape[1]
    return (x @ y.T / d + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 of two equal-size samples under the cubic kernel."""
    m = x.shape[0]
    a = polynomial_kernel(x, x) + polynomial_kernel(y, y)
    b = polynomial_kernel(x, y)
    return float((a.sum() - np.diag(a).sum()) / (m - 1) / m - 2.0 * b.sum() / m / m)


def subset_indices(n_real: int, n_gen: int, *, num_subsets: int, max_subset_size: int,
                   rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    m = min(n_real, n_gen, max_subset_size)
    return [(rng.choice(n_real, m, replace=False), rng.choice(n_gen, m, replace=False)) for _ in range(num_subsets)]


def kid(real: np.ndarray, fake: np.ndarray, *, num_subsets: int = 100, max_subset_size: int = 1000,
        rng: np.random.Generator) -> dict:
    """KID of [N, D] features; returns {"kid": mean, "kid_std": std over subsets, "subset_size": m}."""
    real = np.asarray(real, np.float64)
    fake = np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be [N, D] with one D, got {list(real.shape)} and {list(fake.shape)}")
    if min(real.shape[0], fake.shape[0]) < 2:
        raise ValueError("KID needs at least 2 samples in each set")
    values = [mmd2_unbiased(real[i], fake[j])
              for i, j in subset_indices(real.shape[0], fake.shape[0], num_subsets=num_subsets,
                                         max_subset_size=max_subset_size, rng=rng)]
    return {"kid": float(np.mean(values)), "kid_std": float(np.std(values)),
            "subset_size": int(min(real.shape[0], fake.shape[0], max_subset_size)), "num_subsets": num_subsets}
