"""NVIDIA's seed convention for noise (StyleGAN2 TensorFlow `run_generator.py generate-images`).

For each seed: rnd = numpy.random.RandomState(seed); z = rnd.randn(1, z_dim); then every noise map
in layer order (noise0, noise1, ...) = rnd.randn(1, 1, r, r). sgan's z_from_seed already draws z
that way, so the maps are the same stream continued. Noise mode `numpy` in `sgan generate`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from sgan.play.noise_maps import noise_resolutions


def numpy_seed_noise(G: nn.Module, seeds: Sequence[int], device: torch.device | str | None = None) -> list[torch.Tensor]:
    """One [len(seeds), 1, r, r] float32 map per noise layer of G, drawn after z from RandomState(seed)."""
    per_seed = []
    for seed in seeds:
        rnd = np.random.RandomState(seed)
        rnd.randn(1, G.z_dim)                            # z comes first in the stream
        per_seed.append([rnd.randn(1, 1, r, r) for r in noise_resolutions(G)])
    device = device if device is not None else next(G.parameters()).device
    return [torch.from_numpy(np.concatenate([maps[i] for maps in per_seed])).float().to(device)
            for i in range(len(per_seed[0]))] if per_seed else []
