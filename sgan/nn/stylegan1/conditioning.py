"""Class conditioning for StyleGAN 1, the StyleGAN2-ADA way (networks.py MappingNetwork and
DiscriminatorEpilogue): G's mapping embeds c with a linear layer and normalises z and the embedding
separately before concatenating them; D maps c through its own mapping network (the embedding,
normalised, then `mapping_layers` layers, cmap_dim wide) and scores sum(out * cmap) / sqrt(cmap_dim).
Unconditional networks (c_dim 0) have none of these parameters."""

from __future__ import annotations

import torch
from torch import nn

from sgan.nn.config import ModelConfig
from sgan.nn.layers import EqualLinear, pixel_norm


def check_c(c: torch.Tensor | None, c_dim: int, n: int) -> bool:
    """True when c is to be used; raises for a missing or misshapen label."""
    if c_dim == 0:
        if c is not None and c.numel() > 0:
            raise ValueError(f"this network is unconditional (c_dim 0) but got a label of shape {list(c.shape)}")
        return False
    if c is None:
        raise ValueError(f"this network is conditional: pass c with shape [N, {c_dim}] (one-hot classes)")
    if c.ndim != 2 or c.shape != (n, c_dim):
        raise ValueError(f"c must have shape [{n}, {c_dim}], got {list(c.shape)}")
    return True


class LabelMapping(nn.Module):
    """D's label mapping: c [N, c_dim] -> cmap [N, cmap_dim]."""

    def __init__(self, cfg: ModelConfig, cmap_dim: int) -> None:
        super().__init__()
        self.embed = EqualLinear(cfg.c_dim, cmap_dim, gain=1.0)
        self.layers = nn.ModuleList(EqualLinear(cmap_dim, cmap_dim, lrmul=cfg.mapping_lrmul, activation=True)
                                    for _ in range(cfg.mapping_layers))

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        x = pixel_norm(self.embed(c.float()))
        for layer in self.layers:
            x = layer(x)
        return x
