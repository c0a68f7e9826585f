"""Latent arithmetic: w = w_a + lambda (w_c - w_b).

Moves latent a by the difference between b and c, e.g. a neutral and a smiling projection of
the same face transfer the smile onto another face (the vector arithmetic of Radford et al.
2016 and Image2StyleGAN, in W+). `styles` restricts the change to some layers (coarse, middle,
fine or a range), leaving the others exactly as in a.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from sgan.errors import UsageError


def edit_latent(base: torch.Tensor, source: torch.Tensor, target: torch.Tensor, strength: float = 1.0,
                styles: Sequence[int] | None = None) -> torch.Tensor:
    """W+ [num_ws, w_dim] latents a (base), b (source), c (target) -> a + strength (c - b),
    applied to the ws indices in `styles` (all when None)."""
    if base.ndim != 2 or base.shape != source.shape or base.shape != target.shape:
        raise UsageError(f"the latents must have the same [num_ws, w_dim] shape, got {list(base.shape)}, "
                         f"{list(source.shape)} and {list(target.shape)}.")
    if not np.isfinite(strength):
        raise UsageError("--strength must be a finite number.")
    delta = (target - source) * strength
    if styles is not None:
        keep = torch.zeros(base.shape[0], 1, dtype=torch.bool, device=base.device)
        keep[list(styles)] = True
        delta = torch.where(keep, delta, torch.zeros_like(delta))
    return base + delta


def edit_sweep(base: torch.Tensor, source: torch.Tensor, target: torch.Tensor, strengths: Sequence[float],
               styles: Sequence[int] | None = None) -> torch.Tensor:
    """[len(strengths), num_ws, w_dim]: one edited latent per strength."""
    if not strengths:
        raise UsageError("the strength sweep is empty.")
    return torch.stack([edit_latent(base, source, target, s, styles) for s in strengths])


def parse_sweep(text: str) -> list[float]:
    """`-2,2,9` -> 9 strengths evenly from -2 to 2 (like numpy.linspace)."""
    parts = [p.strip() for p in (text or "").split(",")]
    try:
        lo, hi, n = float(parts[0]), float(parts[1]), int(parts[2])
        if len(parts) != 3:
            raise ValueError
    except (ValueError, IndexError):
        raise UsageError(f"--sweep {text!r}: write START,STOP,COUNT such as -2,2,9.") from None
    if n < 2 or n > 64 or not (np.isfinite(lo) and np.isfinite(hi)):
        raise UsageError(f"--sweep {text!r}: COUNT must lie in 2-64 and START, STOP be finite.")
    return [float(x) for x in np.linspace(lo, hi, n)]


def strength_label(x: float) -> str:
    return f"lambda={x:+.2f}".replace("+0.00", "0")
