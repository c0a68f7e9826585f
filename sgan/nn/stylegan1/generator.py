"""The style-based generator G = synthesis(mapping(z)) with truncation and style mixing."""

from __future__ import annotations

import torch
from torch import nn

from sgan.nn.config import ModelConfig
from sgan.nn.stylegan1.mapping import MappingNetwork
from sgan.nn.stylegan1.synthesis import Generators, SynthesisNetwork
from sgan.nn.styles import mix_styles, truncate  # noqa: F401  (re-exported)


class Generator(nn.Module):
    """Mapping + synthesis. Most callers need only `forward` or `mapping` + `synthesis`."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.z_dim, self.w_dim, self.num_ws, self.resolution = cfg.z_dim, cfg.w_dim, cfg.num_ws, cfg.resolution
        self.c_dim = cfg.c_dim
        self.mapping = MappingNetwork(cfg)
        self.synthesis = SynthesisNetwork(cfg)

    @property
    def w_avg(self) -> torch.Tensor:
        return self.mapping.w_avg

    def map(self, z: torch.Tensor, c: torch.Tensor | None = None, *, truncation_psi: float = 1.0,
            truncation_cutoff: int | None = None) -> torch.Tensor:
        """z [N, z_dim] (c [N, c_dim] if conditional) -> ws [N, num_ws, w_dim], w broadcast to every layer, then truncated."""
        w = self.mapping(z, c)
        ws = w.unsqueeze(1).expand(-1, self.num_ws, -1)
        return truncate(ws, self.w_avg, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, *, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "random",
                generator: Generators = None, lod: float = 0.0) -> torch.Tensor:
        """z [N, z_dim] (c [N, c_dim] if conditional) -> images [N, C, r, r] in about [-1, 1]."""
        ws = self.map(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, lod=lod, noise_mode=noise_mode, generator=generator)
