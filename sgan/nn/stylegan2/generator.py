"""The StyleGAN2 generator G = synthesis(mapping(z, c)) with truncation (networks.py `Generator`)."""

from __future__ import annotations

import torch
from torch import nn

from sgan.nn.config import ModelConfig
from sgan.nn.inputs import Generators
from sgan.nn.stylegan2.mapping import MappingNetwork
from sgan.nn.stylegan2.synthesis import SynthesisNetwork
from sgan.nn.styles import truncate


class Generator(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.arch != "stylegan2":
            raise ValueError(f"this is the stylegan2 generator; the config says {cfg.arch!r}")
        self.cfg = cfg
        self.z_dim, self.c_dim, self.w_dim = cfg.z_dim, cfg.c_dim, cfg.w_dim
        self.num_ws, self.resolution = cfg.num_ws, cfg.resolution
        self.mapping = MappingNetwork(z_dim=cfg.z_dim, c_dim=cfg.c_dim, w_dim=cfg.w_dim, num_layers=cfg.mapping_layers,
                                      layer_features=cfg.mapping_fmaps, lr_mult=cfg.mapping_lrmul,
                                      w_avg_beta=cfg.w_avg_beta)
        self.synthesis = SynthesisNetwork(cfg)

    @property
    def w_avg(self) -> torch.Tensor:
        return self.mapping.w_avg

    def map(self, z: torch.Tensor, c: torch.Tensor | None = None, *, truncation_psi: float = 1.0,
            truncation_cutoff: int | None = None) -> torch.Tensor:
        """z [N, z_dim], c [N, c_dim] or None -> ws [N, num_ws, w_dim], w broadcast to every layer, then truncated."""
        w = self.mapping(z, c)
        ws = w.unsqueeze(1).expand(-1, self.num_ws, -1)
        return truncate(ws, self.w_avg, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, *, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "random", generator: Generators = None,
                lod: float = 0.0) -> torch.Tensor:
        """z [N, z_dim] (c [N, c_dim] when conditional) -> images [N, C, R, R] in about [-1, 1]."""
        ws = self.map(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode, generator=generator, lod=lod)
