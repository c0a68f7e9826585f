"""Improved precision and recall (Kynkaanniemi et al. 2019): k-NN manifolds in feature space.

The manifold of a set is the union of balls around its points, each with the radius of the
distance to its k-th nearest neighbour in the same set (the point itself excluded). Precision is
the fraction of generated points inside the real manifold, recall the fraction of real points inside
the generated one; a point on a ball's surface counts as inside. Distances are computed in row and
column batches, so memory stays bounded and results do not depend on the batch sizes.
"""

from __future__ import annotations

import numpy as np
import torch


def _distances(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    # Squared distances in float64 through the norms, then clipped (as the TF reference).
    d = a.square().sum(1, keepdim=True) - 2.0 * a @ b.T + b.square().sum(1).unsqueeze(0)
    return d.clamp_min(0.0)


def knn_radii(features: torch.Tensor, k: int = 3, *, row_batch: int = 1000, col_batch: int = 10000) -> torch.Tensor:
    """Squared distance of each point to its k-th nearest other point [N]."""
    n = features.shape[0]
    if n <= k:
        raise ValueError(f"precision/recall with k={k} needs more than {k} samples per set, got {n}")
    radii = torch.empty(n, dtype=torch.float64, device=features.device)
    for i in range(0, n, row_batch):
        rows = features[i:i + row_batch]
        d = torch.cat([_distances(rows, features[j:j + col_batch]) for j in range(0, n, col_batch)], dim=1)
        radii[i:i + row_batch] = d.kthvalue(k + 1, dim=1).values   # the 0 distance to itself is the 1st
    return radii


def coverage(manifold: torch.Tensor, radii: torch.Tensor, probes: torch.Tensor, *, row_batch: int = 1000,
             col_batch: int = 10000) -> float:
    """Fraction of `probes` within the k-NN ball of some point of `manifold`."""
    inside = torch.zeros(probes.shape[0], dtype=torch.bool, device=probes.device)
    for i in range(0, probes.shape[0], row_batch):
        rows = probes[i:i + row_batch]
        hit = torch.zeros(rows.shape[0], dtype=torch.bool, device=probes.device)
        for j in range(0, manifold.shape[0], col_batch):
            d = _distances(rows, manifold[j:j + col_batch])
            hit |= (d <= radii[j:j + col_batch].unsqueeze(0)).any(dim=1)
        inside[i:i + row_batch] = hit
    return float(inside.double().mean())


def precision_recall(real: np.ndarray, fake: np.ndarray, *, k: int = 3, row_batch: int = 1000,
                     col_batch: int = 10000, device: torch.device | str = "cpu") -> dict:
    """{"precision", "recall"} of [N, D] feature sets."""
    r = torch.as_tensor(np.asarray(real), dtype=torch.float64, device=device)
    f = torch.as_tensor(np.asarray(fake), dtype=torch.float64, device=device)
    if r.ndim != 2 or f.ndim != 2 or r.shape[1] != f.shape[1]:
        raise ValueError(f"features must be [N, D] with one D, got {list(r.shape)} and {list(f.shape)}")
    kw = {"row_batch": row_batch, "col_batch": col_batch}
    precision = coverage(r, knn_radii(r, k, **kw), f, **kw)
    recall = coverage(f, knn_radii(f, k, **kw), r, **kw)
    return {"precision": precision, "recall": recall, "k": k}


# ----------------------------------------------------------------------------- density and coverage

def density_coverage(real: np.ndarray, fake: np.ndarray, *, k: int = 5, row_batch: int = 1000,
                     col_batch: int = 10000, device: torch.device | str = "cpu") -> dict:
    """Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics for
    Generative Models") of [N, D] real features X and [M, D] generated features Y:

        density  = 1/(k M) sum_j sum_i 1[Y_j in B(X_i, NND_k(X_i))]
        coverage = 1/N sum_i 1[exists j: Y_j in B(X_i, NND_k(X_i))]

    with B(x, r) the closed ball of radius r around x and NND_k(X_i) the distance from X_i to its
    k-th nearest other real point. Only the real manifold is used, so neither number is fooled by
    generated outliers: density counts how many real balls hold each sample (1 on average when
    the two sets are drawn from one distribution; above 1 when samples crowd where the reals are
    dense), coverage the share of real balls that hold at least one sample. Returns
    {"density", "coverage", "k"}."""
    r = torch.as_tensor(np.asarray(real), dtype=torch.float64, device=device)
    f = torch.as_tensor(np.asarray(fake), dtype=torch.float64, device=device)
    if r.ndim != 2 or f.ndim != 2 or r.shape[1] != f.shape[1]:
        raise ValueError(f"features must be [N, D] with one D, got {list(r.shape)} and {list(f.shape)}")
    if f.shape[0] < 1:
        raise ValueError("density/coverage needs at least one generated sample")
    radii = knn_radii(r, k, row_batch=row_batch, col_batch=col_batch)
    inside_count = torch.zeros((), dtype=torch.float64, device=r.device)
    covered = torch.zeros(r.shape[0], dtype=torch.bool, device=r.device)
    for i in range(0, r.shape[0], row_batch):
        rows, rad = r[i:i + row_batch], radii[i:i + row_batch].unsqueeze(1)
        for j in range(0, f.shape[0], col_batch):
            hit = _distances(rows, f[j:j + col_batch]) <= rad     # [real rows, fake cols]
            inside_count += hit.sum()
            covered[i:i + row_batch] |= hit.any(dim=1)
    return {"density": float(inside_count) / (k * f.shape[0]), "coverage": float(covered.double().mean()), "k": k}
