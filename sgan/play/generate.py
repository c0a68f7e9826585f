"""Rendering seeds and latents to images: the library behind `sgan generate`.

z is drawn from the seed alone and, in noise mode `random`, so is each image's noise, so a seed
gives the same image at any batch size and on any machine (up to float rounding).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from sgan.device import autocast, check_precision
from sgan.errors import UsageError
from sgan.latent import noise_generator, z_from_seed
from sgan.nn import Generator
from sgan.nn.inputs import NOISE_MODES
from sgan.play.noise_maps import use_noise_maps
from sgan.play.seed_noise import numpy_seed_noise
from sgan.viz import to_uint8

PRECISIONS = ("fp32", "bf16", "fp16")   # concrete ones; `auto` is resolved by sgan.device.choose_precision


@dataclass
class Rendered:
    seeds: list[int]
    images: np.ndarray          # uint8 [N, H, W, C]
    ws: torch.Tensor            # float32 [N, num_ws, w_dim] (after truncation)


def autocast_context(device: torch.device, precision: str):
    """bfloat16 (or, on CUDA, float16) autocast when `precision` says so, a no-op for fp32."""
    if precision not in PRECISIONS:
        raise UsageError(f"--precision {precision!r}: choose fp32, bf16 or fp16 (resolve auto with "
                         "sgan.device.choose_precision first).")
    return autocast(device, check_precision(precision, device))


SEED_NOISE_MODE = "numpy"   # the noise maps of a seed from numpy RandomState(seed) after z (NVIDIA StyleGAN2)


DEFAULT_SAMPLING = {"truncation_psi": 0.7, "truncation_cutoff": 8, "noise_mode": "const"}


def sampling_options(G: Generator, *, truncation_psi: float | None = None, truncation_cutoff: int | None = None,
                     noise_mode: str | None = None) -> tuple[float, int | None, str, dict]:
    """Each option the caller gave (not None), else the sampling default of the tool an imported model
    came from (`G.sampling_defaults`, from the checkpoint's import record: NVIDIA's generate scripts'
    psi, cutoff and noise), else sgan's (psi 0.7 on 8 layers, const noise). Returns the three values and
    the source defaults that were used. A resolved cutoff of None means every layer."""
    source = dict(getattr(G, "sampling_defaults", None) or {})
    given = {"truncation_psi": truncation_psi, "truncation_cutoff": truncation_cutoff, "noise_mode": noise_mode}
    used, out = {}, {}
    for key, value in given.items():
        if value is not None:
            out[key] = value
        elif key in source:
            out[key] = used[key] = source[key]
        else:
            out[key] = DEFAULT_SAMPLING[key]
    return out["truncation_psi"], out["truncation_cutoff"], out["noise_mode"], used


def check_render_options(G: Generator, *, truncation_psi: float, truncation_cutoff: int | None, noise_mode: str) -> None:
    if noise_mode not in NOISE_MODES + (SEED_NOISE_MODE,):
        raise UsageError(f"--noise-mode {noise_mode!r}: choose one of {', '.join(NOISE_MODES + (SEED_NOISE_MODE,))}.")
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
    if noise_mode == SEED_NOISE_MODE:
        if seeds is None:
            raise UsageError(f"noise mode {SEED_NOISE_MODE} needs seeds.")
        with autocast_context(device, precision), use_noise_maps(G, numpy_seed_noise(G, seeds, device)):
            return G.synthesis(ws.to(device), noise_mode="const").float()
    with autocast_context(device, precision):
        img = G.synthesis(ws.to(device), noise_mode=noise_mode, generator=generators)
    return img.float()


def iter_render_seeds(G: Generator, seeds: Sequence[int] | Iterable[int], *, truncation_psi: float = 1.0,
                      truncation_cutoff: int | None = None, noise_mode: str = "const", batch_size: int = 16,
                      device: torch.device | None = None, precision: str = "fp32") -> Iterator[Rendered]:
    """Render `seeds` lazily, one Rendered per batch of `batch_size`: memory stays flat however many
    seeds there are (`seeds` may be any iterable, e.g. a lazy range)."""
    if batch_size < 1:
        raise UsageError("--batch must be at least 1.")
    check_render_options(G, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, noise_mode=noise_mode)
    if getattr(G, "c_dim", 0) and getattr(G, "class_index", None) is None:  # not fixed by sgan.play.classes
        raise UsageError(f"this model is class-conditional ({G.c_dim} classes); pass --class NAME or INDEX "
                         "(from Python: sgan.play.classes.with_class, or G(z, c) with a one-hot c [N, c_dim]).")
    device = device or next(G.parameters()).device
    it = iter(seeds)
    while chunk := list(itertools.islice(it, batch_size)):
        with torch.no_grad():
            z = torch.stack([z_from_seed(s, G.z_dim) for s in chunk]).to(device)
            ws = G.map(z, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
            img = synthesize(G, ws, noise_mode=noise_mode, seeds=chunk, device=device, precision=precision)
        yield Rendered(seeds=chunk, images=to_uint8(img), ws=ws.float().cpu())


def render_seeds(G: Generator, seeds: Sequence[int], *, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                 noise_mode: str = "const", batch_size: int = 16, device: torch.device | None = None,
                 precision: str = "fp32", progress: Callable[[int, int], None] | None = None) -> Rendered:
    """Render one image per seed, all in memory (`iter_render_seeds` streams). Truncation (psi,
    cutoff) is applied in W towards G.w_avg."""
    if not seeds:
        raise UsageError("no seeds to render; give --seeds such as 0-15.")
    parts: list[Rendered] = []
    done = 0
    for part in iter_render_seeds(G, seeds, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                                  noise_mode=noise_mode, batch_size=batch_size, device=device, precision=precision):
        parts.append(part)
        done += len(part.seeds)
        if progress:
            progress(done, len(seeds))
    return Rendered(seeds=[s for p in parts for s in p.seeds], images=np.concatenate([p.images for p in parts]),
                    ws=torch.cat([p.ws for p in parts]))
