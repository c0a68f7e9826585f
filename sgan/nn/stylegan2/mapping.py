"""The StyleGAN2 mapping network (networks.py `MappingNetwork`), also D's label mapping.

z normalised by its second moment (eps 1e-8); with labels (c_dim > 0) c is embedded by a linear
layer, normalised separately and concatenated after z; then `num_layers` fully connected layers
with leaky ReLU 0.2 * sqrt 2 and learning-rate multiplier lr_mult (stored weights N(0,1)/lr_mult).
`w_avg` is the tracked mean of w (beta 0.995) used for truncation.
"""

from __future__ import annotations

import torch
from torch import nn

from sgan.nn.inputs import check_labels
from sgan.nn.layers import SQRT2, EqualLinear, pixel_norm


class MappingNetwork(nn.Module):
    def __init__(self, *, z_dim: int, c_dim: int, w_dim: int, num_layers: int = 8, layer_features: int | None = None,
                 lr_mult: float = 0.01, w_avg_beta: float | None = 0.995) -> None:
        super().__init__()
        if z_dim == 0 and c_dim == 0:
            raise ValueError("a mapping network needs z_dim > 0 or c_dim > 0")
        self.z_dim, self.c_dim, self.w_dim, self.num_layers = z_dim, c_dim, w_dim, num_layers
        self.w_avg_beta = w_avg_beta
        embed_features = w_dim if c_dim else 0
        layer_features = layer_features or w_dim
        dims = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim:
            self.embed = EqualLinear(c_dim, embed_features, gain=1.0)
        for i in range(num_layers):
            setattr(self, f"fc{i}", EqualLinear(dims[i], dims[i + 1], gain=1.0, lrmul=lr_mult, activation=True,
                                                act_gain=SQRT2))
        if w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor | None, c: torch.Tensor | None = None) -> torch.Tensor:
        """z [N, z_dim] (None when z_dim is 0), c [N, c_dim] (None when c_dim is 0) -> w [N, w_dim]."""
        if self.z_dim:
            if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
                raise ValueError(f"z must have shape [N, {self.z_dim}], got {None if z is None else list(z.shape)}")
            n = z.shape[0]
        else:
            n = c.shape[0] if c is not None and c.ndim == 2 else -1
        check_labels(c, c_dim=self.c_dim, n=n)
        parts = []
        if self.z_dim:
            parts.append(pixel_norm(z))
        if self.c_dim:
            parts.append(pixel_norm(self.embed(c.to(self.embed.weight.dtype))))
        x = torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        return x

    @torch.no_grad()
    def update_w_avg(self, w: torch.Tensor) -> None:
        """w_avg <- lerp(mean(w), w_avg, beta), as the official mapping does while training."""
        if self.w_avg_beta is None:
            raise ValueError("this mapping network tracks no w_avg")
        self.w_avg.copy_(w.detach().float().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))

    def extra_repr(self) -> str:
        return f"z_dim={self.z_dim}, c_dim={self.c_dim}, w_dim={self.w_dim}, num_layers={self.num_layers}"
