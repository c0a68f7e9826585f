"""The StyleGAN2 generator G = synthesis(mapping(z, c)) with truncation (networks.py `Generator`)."""

from __future__ import annotations

from sgan.nn.config import ModelConfig
from sgan.nn.stylegan2.mapping import MappingNetwork
from sgan.nn.stylegan2.synthesis import SynthesisNetwork
from sgan.nn.styles import StyleGenerator


class Generator(StyleGenerator):
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
