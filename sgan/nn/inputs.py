"""What the networks take besides weights: noise modes, per-sample noise draws, class labels."""

from __future__ import annotations

from typing import Sequence

import torch

NOISE_MODES = ("random", "const", "none")
# A generator, one per sample, None (the global one), or noise maps drawn ahead {layer key: [n, 1, r, r]}
# (draw_noise_maps; what a torch.compile'd forward takes, as it cannot trace torch.Generator objects).
Generators = torch.Generator | Sequence[torch.Generator] | dict[int, torch.Tensor] | None


def randn_per_sample(shape: Sequence[int], generator: Generators, *, device: torch.device, n: int,
                     key: int | None = None) -> torch.Tensor:
    """Draw [n, *shape] normal noise. With a list of generators (one per sample) each sample's
    noise depends only on its own generator, so results do not depend on the batch size. With a
    dict of maps drawn ahead, the map of layer `key` (checked against [n, *shape])."""
    if isinstance(generator, dict):
        noise = generator[key]
        if noise.shape != (n, *shape):
            raise ValueError(f"noise map {key} has shape {list(noise.shape)}, expected {[n, *shape]}")
        return noise.to(device)
    if generator is None or isinstance(generator, torch.Generator):
        gen_device = generator.device if generator is not None else device
        return torch.randn([n, *shape], generator=generator, device=gen_device).to(device)
    if len(generator) != n:
        raise ValueError(f"expected {n} generators (one per sample), got {len(generator)}")
    return torch.stack([torch.randn(list(shape), generator=g, device=g.device) for g in generator]).to(device)


def draw_noise_maps(layers: Sequence[tuple[int, int]], generator: Generators, *, device: torch.device,
                    n: int) -> dict[int, torch.Tensor]:
    """{key: [n, 1, r, r]} for `layers` [(key, r)] (a synthesis network's `noise_inputs(lod)`), drawn
    in ascending key order, the order of the forward pass: exactly the maps randn_per_sample draws
    from the same generators inside that forward."""
    if isinstance(generator, dict):
        return generator
    return {key: randn_per_sample([1, r, r], generator, device=device, n=n) for key, r in sorted(layers)}


def check_noise_mode(noise_mode: str) -> None:
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")


def check_labels(c: torch.Tensor | None, *, c_dim: int, n: int) -> None:
    """c must be None for an unconditional network (c_dim 0) and [n, c_dim] for a conditional one."""
    if c_dim == 0:
        if c is not None:
            raise ValueError("this network is unconditional (c_dim 0): pass c=None")
        return
    if c is None:
        raise ValueError(f"this network is conditional (c_dim {c_dim}): pass labels c [N, {c_dim}]")
    if c.ndim != 2 or c.shape != (n, c_dim):
        raise ValueError(f"c must have shape [{n}, {c_dim}], got {list(c.shape)}")
