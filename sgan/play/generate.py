"""Rendering seeds and latents to images: the library behind `sgan generate`.

z is drawn from the seed alone and, in noise mode `random`, so is each image's noise, so a seed
gives the same image at any batch size and on any machine (up to float rounding).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch

from sgan.errors import UsageError
from sgan.latent import noise_generator, z_from_seed
from sgan.nn import Generator
from sgan.nn.inputs import NOISE_MODES
from sgan.viz import to_uint8

PRECISIONS = ("fp32", "bf16")


@dataclass
class Rendered:
    seeds: list[int]
    images: np.ndarray          # uint8 [N, H, W, C]
    ws: torch.Tensor            # float32 [N, num_ws, w_dim] (after truncation)


def autocast_context(device: torch.device, precision: str):
    """bfloat16 autocast on CPU or CUDA when `precision` is bf16, a no-op for fp32."""
    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision!r}: choose fp32 or bf16.")
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def check_render_options(G: Generator, *, truncation_psi: float, truncation_cutoff: int | None, noise_mode: str) -> None:
    if noise_mode not in NOISE_MODES:
        raise UsageError(f"--noise-mode {noise_mode!r}: choose one of {', '.join(NOISE_MODES)}.")
    if not np.isfinite(truncation_psi):
        raise UsageError("--trunc must be a finite number (1 = no truncation, 0.7 = the paper's figures).")
    if truncation_cutoff is not None and truncation_cutoff < 0:
        raise UsageError("--trunc-cutoff must be zero or more (the number of layers truncated from the coarsest).")


@torch.no_grad()
def synthesize(G: Generator, ws: torch.Tensor, *, noise_mode: str = "const", seeds: Sequence[int] | None = None,
               device: torch.device | None = None, precision: str = "fp32") -> torch.Tensor:
    """ws [N, num_ws, w_dim] -> images [N, C, R, R] (float32, about [-1, 1]). In noise mode `random`
    the noise of sample i comes from seeds[i] (or fresh randomness when seeds is None)."""
    if ws.ndim != 3 or ws.shape[1:] != (G.num_ws, G.w_dim):
        raise ValueError(f"ws must be [N, {G.num_ws}, {G.w_dim}], got {list(ws.shape)}")
    device = device or next(G.parameters()).device
    generators = [noise_generator(s) for s in seeds] if (seeds is not None and noise_mode == "random") else None
    with autocast_context(device, precision):
        img = G.synthesis(ws.to(device), noise_mode=noise_mode, generator=generators)
    return img.float()


@torch.no_grad()
def render_seeds(G: Generator, seeds: Sequence[int], *, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                 noise_mode: str = "const", batch_size: int = 16, device: torch.device | None = None,
                 precision: str = "fp32", progress: Callable[[int, int], None] | None = None) -> Rendered:
    """Render one image per seed. Truncation (psi, cutoff) is applied in W towards G.w_avg."""
    if not seeds:
        raise UsageError("no seeds to render; give --seeds such as 0-15.")
    if batch_size < 1:
        raise UsageError("--batch must be at least 1.")
    check_render_options(G, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, noise_mode=noise_mode)
    device = device or next(G.parameters()).device
    images, all_ws = [], []
    for start in range(0, len(seeds), batch_size):
        chunk = list(seeds[start:start + batch_size])
        z = torch.stack([z_from_seed(s, G.z_dim) for s in chunk]).to(device)
        ws = G.map(z, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        img = synthesize(G, ws, noise_mode=noise_mode, seeds=chunk, device=device, precision=precision)
        images.append(to_uint8(img))
        all_ws.append(ws.float().cpu())
        if progress:
            progress(start + len(chunk), len(seeds))
    return Rendered(seeds=list(seeds), images=np.concatenate(images), ws=torch.cat(all_ws))
