"""The discriminator mirroring G (networks_stylegan.py `D_basic`).

FromRGB (1x1 conv, leaky ReLU) per resolution; per resolution a 3x3 conv, the [1,2,1] blur and a
3x3 conv with 2x downsampling; at 4x4 minibatch standard deviation (groups of 4, 1 feature), a 3x3
conv, a dense layer and the 1-d output. During a fade-in the input also takes the skip path:
downscale2d -> FromRGB of the lower resolution, blended with weight 1 - alpha.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sgan.nn.config import ModelConfig, use_fused_updown
from sgan.nn.inputs import check_labels
from sgan.nn.stylegan1.conditioning import LabelMapping
from sgan.nn.layers import Blur, EqualConv2d, EqualLinear, downscale2d, minibatch_stddev  # noqa: F401
from sgan.nn.memory import to_memory_format, use_channels_last


class FromRGB(nn.Module):
    def __init__(self, num_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = EqualConv2d(num_channels, out_channels, 1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.conv(img), 0.2)


class DiscriminatorBlock(nn.Module):
    def __init__(self, cfg: ModelConfig, res_log2: int) -> None:
        super().__init__()
        self.res_log2 = res_log2
        ch0, ch1 = cfg.nf(res_log2 - 1), cfg.nf(res_log2 - 2)
        mid = ch1 if cfg.d_widen_first else ch0          # rosinality widens in the first conv
        fused = use_fused_updown(cfg.fused_updown, channels=max(mid, ch1), resolution=2 ** res_log2,
                                 channels_last=use_channels_last(cfg.memory_format, torch.device("cpu")))
        self.conv0 = EqualConv2d(ch0, mid, 3)
        self.blur = Blur(mid)
        self.conv1 = EqualConv2d(mid, ch1, 3, down=2 if fused else 1)
        self.fused_down = fused

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv0(x), 0.2)
        x = self.blur(x)
        x = self.conv1(x) if self.fused_down else downscale2d(self.conv1(x))
        return F.leaky_relu(x, 0.2)


class DiscriminatorEpilogue(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.mbstd_group_size, self.mbstd_num_features = cfg.mbstd_group_size, cfg.mbstd_num_features
        self.mbstd_whole_batch = cfg.mbstd_whole_batch
        ch = cfg.nf(1)
        self.conv = EqualConv2d(ch + cfg.mbstd_num_features, ch, 3)
        self.fc = EqualLinear(ch * 16, cfg.nf(0), activation=True)
        self.cmap_dim = (cfg.cmap_dim or cfg.nf(1)) if cfg.c_dim > 0 else 0  # projection head (StyleGAN2-ADA)
        self.out = EqualLinear(cfg.nf(0), max(self.cmap_dim, 1), gain=1.0)

    def forward(self, x: torch.Tensor, cmap: torch.Tensor | None = None) -> torch.Tensor:
        if self.mbstd_whole_batch:
            x = minibatch_stddev(x, x.shape[0], self.mbstd_num_features)
        elif self.mbstd_group_size > 1:
            x = minibatch_stddev(x, self.mbstd_group_size, self.mbstd_num_features)
        x = F.leaky_relu(self.conv(x), 0.2)
        x = self.out(self.fc(x.flatten(1)))
        if cmap is not None:  # score = sum(out * cmap) / sqrt(cmap_dim)
            x = (x * cmap.to(x.dtype)).sum(dim=1, keepdim=True) * (1.0 / math.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.c_dim = cfg.c_dim
        self.resolution, self.resolution_log2 = cfg.resolution, cfg.resolution_log2
        # Index i of fromrgbs / blocks is resolution 2^(i + 2); blocks exist from 8x8 up.
        self.fromrgbs = nn.ModuleList(FromRGB(cfg.num_channels, cfg.nf(r - 1)) for r in range(2, cfg.resolution_log2 + 1))
        self.blocks = nn.ModuleList(DiscriminatorBlock(cfg, r) for r in range(3, cfg.resolution_log2 + 1))
        self.epilogue = DiscriminatorEpilogue(cfg)
        if cfg.c_dim > 0:
            self.mapping = LabelMapping(cfg, self.epilogue.cmap_dim)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, *, lod: float = 0.0) -> torch.Tensor:
        """img [N, C, r, r] with r = R / 2^floor(lod) (c: None) -> scores [N, 1]."""
        top = self.resolution_log2 - math.floor(lod)
        expected = 2 ** top
        if img.ndim != 4 or img.shape[1] != self.cfg.num_channels or img.shape[2:] != (expected, expected):
            raise ValueError(f"img must have shape [N, {self.cfg.num_channels}, {expected}, {expected}] at lod {lod}, "
                             f"got {list(img.shape)}")
        check_labels(c, c_dim=self.c_dim, n=img.shape[0])
        cmap = self.mapping(c) if self.c_dim > 0 else None
        alpha = 1.0 - (lod - math.floor(lod))
        img = to_memory_format(img, self.cfg.memory_format)   # every later op keeps the layout
        x = self.fromrgbs[top - 2](img)
        for r in range(top, 2, -1):
            x = self.blocks[r - 3](x)
            if r == top and alpha < 1.0:
                x = torch.lerp(self.fromrgbs[r - 3](downscale2d(img)), x, alpha)
        return self.epilogue(x, cmap)
