"""GANSpace: principal components of W (Härkönen et al., NeurIPS 2020).

Sample many z ~ N(0, I), map them to w (no truncation), and take the eigenvectors of the sample
covariance of w, largest variance first. Each component's score is its explained variance ratio,
its eigenvalue over the total variance (the trace), so the scores of the kept components sum to at
most 1. The covariance is accumulated in float64 batch by batch, so memory does not grow with the
number of samples. A conditional model without a fixed class draws a uniform class per sample.
Components are flipped so that each one's largest-magnitude entry is positive.
"""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from sgan.errors import UsageError
from sgan.play.directions import Directions
from sgan.play.directions_sefa import fix_signs


@torch.no_grad()
def sample_w(G, *, num_samples: int, rng: np.random.Generator, batch: int = 1000,
             device: torch.device | str = "cpu") -> Iterator[tuple[torch.Tensor, np.ndarray | None]]:
    """Yield (w [B, w_dim] float64 on the CPU, classes [B] or None) for `num_samples` z from `rng`."""
    c_dim = int(getattr(G, "c_dim", 0) or 0) if getattr(G, "class_index", None) is None else 0
    done = 0
    while done < num_samples:
        n = min(batch, num_samples - done)
        z = torch.from_numpy(rng.standard_normal((n, G.z_dim)).astype(np.float32)).to(device)
        classes = rng.integers(0, c_dim, size=n) if c_dim else None
        c = torch.nn.functional.one_hot(torch.from_numpy(classes), c_dim).float().to(device) if c_dim else None
        w = G.mapping(z, c) if c is not None else G.mapping(z)
        yield w.double().cpu(), classes
        done += n


def ganspace(G, *, num_samples: int, rng: np.random.Generator, layers: Sequence[int], num: int | None = None,
             batch: int = 1000, device: torch.device | str = "cpu", checkpoint_sha256: str = "",
             progress: Callable[[int, int], None] | None = None) -> Directions:
    """The `num` (all w_dim when None) leading principal components of w over `num_samples` samples;
    `layers` only records where the directions are to be applied (w is the same for every layer)."""
    if num_samples < 2:
        raise UsageError(f"--samples must be at least 2 for a covariance, got {num_samples}.")
    if num is not None and num < 1:
        raise UsageError(f"--num must be at least 1, got {num}.")
    total = torch.zeros(G.w_dim, dtype=torch.float64)
    outer = torch.zeros(G.w_dim, G.w_dim, dtype=torch.float64)
    shift = None           # the first batch's mean: centring on it keeps the sums well conditioned
    seen = 0
    for w, _ in sample_w(G, num_samples=num_samples, rng=rng, batch=batch, device=device):
        if shift is None:
            shift = w.mean(dim=0)
        x = w - shift
        total += x.sum(dim=0)
        outer += x.T @ x
        seen += len(w)
        if progress:
            progress(seen, num_samples)
    mean = total / seen
    cov = (outer - seen * torch.outer(mean, mean)) / (seen - 1)
    values, vectors = torch.linalg.eigh(cov)
    order = torch.argsort(values, descending=True)
    values = values[order].clamp_min(0.0)
    ratio = values / values.sum().clamp_min(1e-300)
    k = G.w_dim if num is None else min(num, G.w_dim)
    comps = vectors[:, order][:, :k].T.numpy()
    return Directions(directions=fix_signs(comps), scores=ratio[:k].numpy(), method="ganspace", layers=list(layers),
                      names=[f"ganspace-{i}" for i in range(k)], checkpoint_sha256=checkpoint_sha256,
                      w_dim=G.w_dim, num_ws=G.num_ws)
