"""The fixtures' deterministic weight recipe (tests/fixtures/README.md): every entry from its key name."""

from __future__ import annotations

import math
import zlib

import torch


def fill(name: str, shape) -> torch.Tensor:
    shape = list(shape)
    if name.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    g = torch.Generator().manual_seed(zlib.crc32(name.encode()))
    if name.endswith("running_var"):
        return (1 + 0.1 * torch.rand(shape, generator=g, dtype=torch.float64)).float()
    if name.endswith("running_mean") or name.endswith("bias"):
        return (0.1 * torch.randn(shape, generator=g, dtype=torch.float64)).float()
    if len(shape) == 1:
        return (1 + 0.1 * torch.randn(shape, generator=g, dtype=torch.float64)).float()
    fan_in = math.prod(shape[1:])
    return (torch.randn(shape, generator=g, dtype=torch.float64) * math.sqrt(2 / fan_in)).float()


def filled_state_dict(keys: dict) -> dict:
    """{name: shape} -> {name: tensor} filled by the recipe."""
    return {name: fill(name, shape) for name, shape in keys.items()}
