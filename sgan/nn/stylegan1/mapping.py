"""The mapping network f: Z -> W (StyleGAN §2), with the tracked average of w."""

from __future__ import annotations

import torch
from torch import nn

from sgan.nn.config import ModelConfig
from sgan.nn.inputs import check_labels
from sgan.nn.layers import EqualLinear, pixel_norm


class MappingNetwork(nn.Module):
    """Pixel-norm of z, then `mapping_layers` fully connected layers with leaky ReLU(0.2) and a
    learning-rate multiplier (0.01 in the paper). Keeps `w_avg`, the running mean of w used for
    truncation, updated by the trainer with `update_w_avg` (beta 0.995)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.z_dim, self.w_dim, self.w_avg_beta, self.c_dim = cfg.z_dim, cfg.w_dim, cfg.w_avg_beta, cfg.c_dim
        if cfg.c_dim > 0:  # StyleGAN2-ADA: embed c (linear, w_dim wide); normalise z and it separately
            self.embed = EqualLinear(cfg.c_dim, cfg.w_dim, gain=1.0)
        dims = [cfg.z_dim + (cfg.w_dim if cfg.c_dim > 0 else 0)] + [cfg.mapping_fmaps] * (cfg.mapping_layers - 1) + [cfg.w_dim]
        self.layers = nn.ModuleList(
            EqualLinear(dims[i], dims[i + 1], lrmul=cfg.mapping_lrmul, activation=True)
            for i in range(cfg.mapping_layers)
        )
        self.register_buffer("w_avg", torch.zeros(cfg.w_dim))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """z [N, z_dim] (and c [N, c_dim] when conditional, else None) -> w [N, w_dim]."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [N, {self.z_dim}], got {list(z.shape)}")
        check_labels(c, c_dim=self.c_dim, n=z.shape[0])
        x = pixel_norm(z)
        if self.c_dim > 0:
            x = torch.cat([x, pixel_norm(self.embed(c.to(z.dtype)))], dim=1)
        for layer in self.layers:
            x = layer(x)
        return x

    @torch.no_grad()
    def update_w_avg(self, w: torch.Tensor) -> None:
        """w_avg <- lerp(mean(w), w_avg, beta), as the official G_style does while training."""
        self.w_avg.copy_(w.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
