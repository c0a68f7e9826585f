"""Per-layer noise maps: list them, draw them, and run the generator with chosen ones.

The synthesis network adds noise after every conv layer: StyleGAN 1 in each `LayerEpilogue`
(a learned per-channel `noise_strength`), StyleGAN2 in each `SynthesisLayer` (one scalar
strength). Both kinds of layer carry `layer_idx`, `resolution` and a `noise_const` buffer
[1, 1, r, r], which is all this module relies on. In noise mode `const` each layer reads its
`noise_const` buffer; `use_noise_maps` swaps those buffers for maps of the caller's choice
(one [N or 1, 1, r, r] tensor per layer, gradients allowed) for the duration of a `with`
block, so the projector can optimise them and the figures can switch layers on and off
without another code path in the network. The original buffers are restored afterwards, even
after an exception.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch

from torch import nn

Generator = nn.Module  # any architecture's generator (sgan.nn.make_generator)


def _is_noise_layer(m: nn.Module) -> bool:
    return "noise_const" in m._buffers and hasattr(m, "layer_idx") and hasattr(m, "resolution")


def noise_layers(G: Generator) -> list[nn.Module]:
    """The noise inputs of G in order (layer_idx 0, 1, ...: 4x4 first; StyleGAN 1 has num_ws of
    them, StyleGAN2 num_ws - 1, since its last style feeds only a ToRGB)."""
    layers = [m for m in G.synthesis.modules() if _is_noise_layer(m)]
    return sorted(layers, key=lambda m: m.layer_idx)


def noise_resolutions(G: Generator) -> list[int]:
    return [m.resolution for m in noise_layers(G)]


def random_noise_maps(G: Generator, n: int, generator: torch.Generator | None = None,
                      device: torch.device | str | None = None) -> list[torch.Tensor]:
    """Fresh N(0, 1) maps, one [n, 1, r, r] tensor per layer, drawn from `generator` in layer order."""
    device = torch.device(device) if device is not None else next(G.parameters()).device
    gen_device = generator.device if generator is not None else device
    return [torch.randn([n, 1, r, r], generator=generator, device=gen_device).to(device) for r in noise_resolutions(G)]


def const_noise_maps(G: Generator) -> list[torch.Tensor]:
    """The model's stored maps (what noise mode `const` uses), cloned."""
    return [m.noise_const.detach().clone() for m in noise_layers(G)]


def select_layers(maps: Sequence[torch.Tensor], keep: Sequence[bool]) -> list[torch.Tensor]:
    """Zero the maps of the layers where keep is False (no noise there)."""
    if len(maps) != len(keep):
        raise ValueError(f"{len(maps)} noise maps but {len(keep)} flags")
    return [m if k else torch.zeros_like(m) for m, k in zip(maps, keep)]


@contextmanager
def use_noise_maps(G: Generator, maps: Sequence[torch.Tensor]) -> Iterator[None]:
    """Within the block, G.synthesis(..., noise_mode="const") uses `maps` (one per layer,
    [1 or N, 1, r, r]) instead of its stored noise."""
    layers = noise_layers(G)
    if len(maps) != len(layers):
        raise ValueError(f"G has {len(layers)} noise inputs, got {len(maps)} maps")
    for layer, m in zip(layers, maps):
        if m.ndim != 4 or m.shape[1] != 1 or m.shape[2:] != (layer.resolution, layer.resolution):
            raise ValueError(f"noise map for layer {layer.layer_idx} must be [N, 1, {layer.resolution}, "
                             f"{layer.resolution}], got {list(m.shape)}")
    saved = [layer._buffers["noise_const"] for layer in layers]
    try:
        for layer, m in zip(layers, maps):
            layer._buffers["noise_const"] = m
        yield
    finally:
        for layer, buf in zip(layers, saved):
            layer._buffers["noise_const"] = buf
