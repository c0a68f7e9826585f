"""The StyleGAN2 synthesis network (networks.py `SynthesisBlock`, `SynthesisNetwork`).

Blocks b4, b8, ..., bR. b4 holds the learned constant [C, 4, 4] (randn init) and conv1; every other
block conv0 (3x3, up 2: stride-2 transposed conv + [1,3,3,1] FIR) and conv1. Architectures:

- 'skip' (default): every block has a ToRGB; img = upsample2d(img) + torgb(x);
- 'resnet': x = (skip(x) + conv1(conv0(x))) * sqrt(0.5) with skip a 1x1 up-2 conv without bias;
  only the last block has a ToRGB.

Styles: each conv takes one w; a block's ToRGB shares the w of the next block's first conv, so
num_ws = 2 * log2(R) - 2. Noise inputs: one per conv (layer_idx 0 .. num_ws - 2).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sgan.nn.config import ModelConfig
from sgan.nn.inputs import Generators, check_noise_mode
from sgan.nn.memory import to_memory_format
from sgan.nn.resample import setup_filter, upsample2d
from sgan.nn.stylegan2.layers import Conv2dLayer, SynthesisLayer, ToRGBLayer

SQRT_HALF = math.sqrt(0.5)


class SynthesisBlock(nn.Module):
    def __init__(self, cfg: ModelConfig, resolution: int, first_layer_idx: int, *, is_last: bool) -> None:
        super().__init__()
        out_ch = cfg.channels(resolution)
        in_ch = cfg.channels(resolution // 2) if resolution > 4 else 0
        self.resolution, self.architecture, self.is_last = resolution, cfg.g_architecture, is_last
        kw = dict(conv_clamp=cfg.conv_clamp, fused_modconv=cfg.fused_modconv)
        if in_ch == 0:
            self.const = nn.Parameter(torch.randn(out_ch, 4, 4))
        else:
            self.conv0 = SynthesisLayer(in_ch, out_ch, cfg.w_dim, resolution, first_layer_idx, up=2, **kw)
        self.conv1 = SynthesisLayer(out_ch, out_ch, cfg.w_dim, resolution, first_layer_idx + (in_ch != 0), **kw)
        self.num_conv = 1 if in_ch == 0 else 2
        self.memory_format = cfg.memory_format
        self.num_torgb = 0
        if is_last or cfg.g_architecture == "skip":
            self.torgb = ToRGBLayer(out_ch, cfg.num_channels, cfg.w_dim, **kw)
            self.num_torgb = 1
        if in_ch != 0 and cfg.g_architecture == "resnet":
            self.skip = Conv2dLayer(in_ch, out_ch, 1, bias=False, lrelu=False, up=2)
        self.register_buffer("resample_filter", setup_filter(), persistent=False)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, *, noise_mode: str,
                generator: Generators) -> tuple[torch.Tensor, torch.Tensor | None]:
        """ws [N, num_conv + num_torgb, w_dim]."""
        kw = dict(noise_mode=noise_mode, generator=generator)
        if x is None:
            x = self.const.to(ws.dtype).unsqueeze(0).expand(ws.shape[0], -1, -1, -1)
            x = to_memory_format(x, self.memory_format)   # every later op keeps the layout
            x = self.conv1(x, ws[:, 0], **kw)
        elif self.architecture == "resnet":
            y = self.skip(x, gain=SQRT_HALF)
            x = self.conv0(x, ws[:, 0], **kw)
            x = y + self.conv1(x, ws[:, 1], gain=SQRT_HALF, **kw)
        else:
            x = self.conv0(x, ws[:, 0], **kw)
            x = self.conv1(x, ws[:, 1], **kw)
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.num_torgb:
            y = self.torgb(x, ws[:, self.num_conv])
            img = y if img is None else img + y
        return x, img


class SynthesisNetwork(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.resolution, self.resolution_log2 = cfg.resolution, cfg.resolution_log2
        self.num_ws, self.w_dim, self.num_channels = cfg.num_ws, cfg.w_dim, cfg.num_channels
        self.block_resolutions = [2 ** i for i in range(2, cfg.resolution_log2 + 1)]
        layer_idx = 0
        for res in self.block_resolutions:
            block = SynthesisBlock(cfg, res, layer_idx, is_last=res == cfg.resolution)
            setattr(self, f"b{res}", block)
            layer_idx += block.num_conv
        if layer_idx + 1 != self.num_ws:
            raise AssertionError(f"{layer_idx} convs do not fit num_ws {self.num_ws}")

    def forward(self, ws: torch.Tensor, *, noise_mode: str = "random", generator: Generators = None,
                lod: float = 0.0) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> images [N, C, R, R], values about [-1, 1]. StyleGAN2 does not grow
        progressively: `lod` must be 0 (it is accepted so both architectures share one signature)."""
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        if lod != 0:
            raise ValueError(f"stylegan2 has no progressive growing: lod must be 0, got {lod}")
        check_noise_mode(noise_mode)
        x = img = None
        w_idx = 0
        for res in self.block_resolutions:
            block = getattr(self, f"b{res}")
            x, img = block(x, img, ws[:, w_idx:w_idx + block.num_conv + block.num_torgb],
                           noise_mode=noise_mode, generator=generator)
            w_idx += block.num_conv
        return img

    def output_resolution(self, lod: float = 0.0) -> int:
        return self.resolution

    def noise_inputs(self, lod: float = 0.0) -> list[tuple[int, int]]:
        """[(layer key, resolution)] of the noise maps a forward pass draws in noise mode `random`,
        in draw order (sgan.nn.inputs.draw_noise_maps)."""
        return [(layer.layer_idx, layer.resolution) for layer in self.modules() if isinstance(layer, SynthesisLayer)]
