"""The style-based generator G = synthesis(mapping(z)) with truncation and style mixing."""

from __future__ import annotations

from sgan.nn.config import ModelConfig
from sgan.nn.stylegan1.mapping import MappingNetwork
from sgan.nn.stylegan1.synthesis import SynthesisNetwork
from sgan.nn.styles import StyleGenerator, mix_styles, truncate  # noqa: F401  (re-exported)


class Generator(StyleGenerator):
    """Mapping + synthesis. Most callers need only `forward` or `mapping` + `synthesis`."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.z_dim, self.w_dim, self.num_ws, self.resolution = cfg.z_dim, cfg.w_dim, cfg.num_ws, cfg.resolution
        self.c_dim = cfg.c_dim
        self.mapping = MappingNetwork(cfg)
        self.synthesis = SynthesisNetwork(cfg)
