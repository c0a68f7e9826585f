"""The StyleGAN3 synthesis network and generator (networks_stylegan3.py `SynthesisNetwork`, `Generator`).

ws [N, num_ws, w_dim]: ws[:, 0] drives the Fourier input, ws[:, i + 1] layer L_i (the last is ToRGB);
the output is scaled by output_scale (0.25). There are no noise inputs: noise modes are accepted
and change nothing (as in NVIDIA's code). Layers are named L{i}_{size}_{channels} as NVIDIA's, so
state dicts carry over.
"""

from __future__ import annotations

import torch
from torch import nn

from sgan.nn.config import ModelConfig
from sgan.nn.inputs import Generators, check_noise_mode
from sgan.nn.stylegan2.mapping import MappingNetwork
from sgan.nn.stylegan3.design import layer_plan
from sgan.nn.stylegan3.layers import SynthesisInput, SynthesisLayer
from sgan.nn.styles import StyleGenerator


def plan_of(cfg: ModelConfig):
    return layer_plan(resolution=cfg.resolution, num_channels=cfg.num_channels, channel_base=cfg.sg3_channel_base,
                      channel_max=cfg.sg3_channel_max, num_layers=cfg.sg3_num_layers, num_critical=cfg.sg3_num_critical,
                      first_cutoff=cfg.sg3_first_cutoff, first_stopband=cfg.sg3_first_stopband,
                      last_stopband_rel=cfg.sg3_last_stopband_rel, margin_size=cfg.sg3_margin_size,
                      conv_kernel=cfg.sg3_conv_kernel, filter_size=cfg.sg3_filter_size,
                      lrelu_upsampling=cfg.sg3_lrelu_upsampling, radial_filters=cfg.sg3_radial_filters)


class SynthesisNetwork(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.resolution, self.num_channels, self.w_dim = cfg.resolution, cfg.num_channels, cfg.w_dim
        self.num_ws, self.output_scale = cfg.num_ws, cfg.sg3_output_scale
        inp, layers = plan_of(cfg)
        self.input = SynthesisInput(cfg.w_dim, inp)
        self.layer_names = [spec.name for spec in layers]
        for spec in layers:
            setattr(self, spec.name, SynthesisLayer(cfg.w_dim, spec, conv_clamp=cfg.conv_clamp,
                                                    magnitude_ema_beta=cfg.sg3_magnitude_ema_beta))

    def forward(self, ws: torch.Tensor, *, noise_mode: str = "random", generator: Generators = None,
                lod: float = 0.0, update_emas: bool = False) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> images [N, C, R, R]. `noise_mode` and `generator` are accepted for the
        common interface (StyleGAN3 has no noise); `lod` must be 0."""
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        if lod != 0:
            raise ValueError(f"stylegan3 has no progressive growing: lod must be 0, got {lod}")
        check_noise_mode(noise_mode)
        ws = ws.float() if ws.dtype == torch.float64 else ws
        x = self.input(ws[:, 0])
        for i, name in enumerate(self.layer_names):
            x = getattr(self, name)(x, ws[:, i + 1], update_emas=update_emas)
        return x * self.output_scale if self.output_scale != 1 else x

    def output_resolution(self, lod: float = 0.0) -> int:
        return self.resolution

    def noise_inputs(self, lod: float = 0.0) -> list[tuple[int, int]]:
        return []


class Generator(StyleGenerator):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.arch != "stylegan3":
            raise ValueError(f"this is the stylegan3 generator; the config says {cfg.arch!r}")
        self.cfg = cfg
        self.z_dim, self.c_dim, self.w_dim = cfg.z_dim, cfg.c_dim, cfg.w_dim
        self.num_ws, self.resolution = cfg.num_ws, cfg.resolution
        self.mapping = MappingNetwork(z_dim=cfg.z_dim, c_dim=cfg.c_dim, w_dim=cfg.w_dim, num_layers=cfg.mapping_layers,
                                      layer_features=cfg.w_dim, lr_mult=cfg.mapping_lrmul, w_avg_beta=cfg.w_avg_beta)
        self.synthesis = SynthesisNetwork(cfg)
