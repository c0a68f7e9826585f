"""Class conditioning for StyleGAN 1, the StyleGAN2-ADA way (networks.py MappingNetwork and
DiscriminatorEpilogue): G's mapping embeds c with a linear layer and normalises z and the embedding
separately before concatenating them (mapping.py); D maps c through its own mapping network (the
embedding, normalised, then `d_mapping_layers` layers cmap_dim wide, learning-rate multiplier
`mapping_lrmul`) and scores sum(out * cmap) / sqrt(cmap_dim), cmap_dim = the 4x4 width by default.
Unconditional networks (c_dim 0) have none of these parameters."""

from __future__ import annotations

import torch
from torch import nn

from sgan.nn.config import ModelConfig
from sgan.nn.layers import EqualLinear, pixel_norm


class LabelMapping(nn.Module):
    """D's label mapping: c [N, c_dim] -> cmap [N, cmap_dim]."""

    def __init__(self, cfg: ModelConfig, cmap_dim: int) -> None:
        super().__init__()
        self.embed = EqualLinear(cfg.c_dim, cmap_dim, gain=1.0)
        self.layers = nn.ModuleList(EqualLinear(cmap_dim, cmap_dim, lrmul=cfg.mapping_lrmul, activation=True)
                                    for _ in range(cfg.d_mapping_layers))

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        x = pixel_norm(self.embed(c.float()))
        for layer in self.layers:
            x = layer(x)
        return x
