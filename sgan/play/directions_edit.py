"""Moving latents along a direction: ws' = ws + s * d on the chosen ws indices (`sgan edit --direction`).

The seed's W+ latent is made as `sgan generate` makes it (z from the seed, mapped, truncated), then
the direction d (a unit vector in W) is added with strength s to the ws indices in `layers` only;
strength 0 leaves the latent, and so the image, exactly as generate renders it. Strengths are in
units of the direction (d has length 1; for scale, a GANSpace component's standard deviation is
sqrt(eigenvalue), which `sgan directions` prints).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from sgan.errors import UsageError
from sgan.latent import z_from_seed
from sgan.play.video import Animation
from sgan.play.generate import synthesize
from sgan.viz import to_uint8

MAX_STEPS = 64


def parse_strengths(text: str, steps: int | None) -> list[float]:
    """`-3..3` with `steps` (default 7) -> evenly spaced strengths; `1.5` -> [1.5]; `-2,0,2` -> that list."""
    text = (text or "").strip()
    if steps is not None and not 1 <= steps <= MAX_STEPS:
        raise UsageError(f"--steps must lie in 1-{MAX_STEPS}, got {steps}.")
    try:
        if ".." in text:
            lo_text, _, hi_text = text.partition("..")
            lo, hi = float(lo_text), float(hi_text)
            n = 7 if steps is None else steps
            values = [lo] if n == 1 else [float(x) for x in np.linspace(lo, hi, n)]
        else:
            values = [float(p) for p in text.split(",")]
            if steps is not None and len(values) != 1:
                raise UsageError("--steps goes with a range --strength A..B, not a list.")
            if steps is not None and steps > 1:
                raise UsageError(f"--steps {steps} needs a range such as --strength -3..3.")
    except ValueError:
        raise UsageError(f"--strength {text!r}: write a number (1.5), a range A..B such as -3..3 (with --steps N), "
                         "or a list such as -2,0,2.") from None
    if not values or not all(np.isfinite(values)) or len(values) > MAX_STEPS:
        raise UsageError(f"--strength {text!r}: every strength must be a finite number (at most {MAX_STEPS}).")
    return values


def move_along(ws: torch.Tensor, direction: torch.Tensor, strengths: Sequence[float],
               layers: Sequence[int]) -> torch.Tensor:
    """ws [N, num_ws, w_dim], direction [w_dim] -> [N, S, num_ws, w_dim]: ws + s * d on `layers`."""
    if ws.ndim != 3 or direction.shape != (ws.shape[2],):
        raise ValueError(f"ws [N, num_ws, w_dim] and direction [w_dim] expected, got {list(ws.shape)} and "
                         f"{list(direction.shape)}")
    mask = torch.zeros(ws.shape[1], 1, dtype=ws.dtype, device=ws.device)
    mask[list(layers)] = 1
    s = torch.as_tensor(list(strengths), dtype=ws.dtype, device=ws.device).view(1, -1, 1, 1)
    step = mask * direction.to(ws.device, ws.dtype).view(1, -1)       # [num_ws, w_dim], zero off `layers`
    out = ws.unsqueeze(1) + s * step
    zero = (s == 0).expand_as(out)
    return torch.where(zero, ws.unsqueeze(1).expand_as(out), out)     # strength 0: the latent itself, bit for bit


@torch.no_grad()
def seed_ws(G, seeds: Sequence[int], *, truncation_psi: float, truncation_cutoff: int | None) -> torch.Tensor:
    """The W+ latents [N, num_ws, w_dim] of `seeds`, as sgan generate makes them."""
    device = next(G.parameters()).device
    z = torch.stack([z_from_seed(s, G.z_dim) for s in seeds]).to(device)
    return G.map(z, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)


@torch.no_grad()
def render_strip(G, seeds: Sequence[int], direction: torch.Tensor, strengths: Sequence[float], layers: Sequence[int], *,
                 truncation_psi: float, truncation_cutoff: int | None, noise_mode: str = "const",
                 precision: str = "fp32") -> np.ndarray:
    """uint8 [len(seeds), len(strengths), H, W, C]: each seed's image moved by each strength. The
    noise of a row is its seed's (as sgan generate draws it), so strength 0 is generate's image."""

    device = next(G.parameters()).device
    ws = seed_ws(G, seeds, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
    moved = move_along(ws, direction.to(device), strengths, layers)
    rows = [to_uint8(synthesize(G, row, noise_mode=noise_mode, seeds=[seed] * len(strengths), device=device,
                                precision=precision)) for seed, row in zip(seeds, moved)]
    return np.stack(rows)


def sweep_animation(ws: torch.Tensor, direction: torch.Tensor, *, lo: float, hi: float, layers: Sequence[int],
                    num_frames: int, cols: int) -> Animation:
    """Every seed (ws [cells, num_ws, w_dim]) moving from strength 0 to `hi`, back through 0 to `lo`
    and back to 0 (a cosine, so it loops seamlessly); one grid cell per seed."""
    if num_frames < 2:
        raise UsageError("the sweep video needs at least 2 frames; raise --seconds or --fps.")
    phase = np.arange(num_frames) / num_frames
    wave = np.sin(2 * np.pi * phase)                                   # 0 -> 1 -> 0 -> -1 -> 0
    strengths = np.where(wave >= 0, wave * hi, -wave * lo)
    cells = ws.shape[0]

    def source(indices: Sequence[int]) -> tuple[torch.Tensor, None]:
        moved = move_along(ws, direction, [float(strengths[i]) for i in indices], layers)   # [cells, B, ...]
        return moved.transpose(0, 1).flatten(0, 1), None

    return Animation(source, num_frames, cells, cols, f"direction sweep {lo:g} .. {hi:g}")


def strength_text(s: float) -> str:
    return f"s={s:+.2f}".replace("+0.00", "0")
