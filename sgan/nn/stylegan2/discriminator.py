"""The StyleGAN2 discriminator (networks.py `DiscriminatorBlock`, `DiscriminatorEpilogue`, `Discriminator`).

Blocks bR, ..., b8, each: (fromrgb 1x1 at the top block, or at every block for 'skip') -> conv0 3x3
-> conv1 3x3 down 2 (FIR, then stride-2 conv). 'resnet' (default) adds a 1x1 down-2 skip without
bias and scales both branches by sqrt(0.5); 'skip' downsamples the image with the FIR and adds
fromrgb at every block; 'orig' is the plain chain. Epilogue b4: minibatch stddev (group min(4, N),
1 feature) -> conv 3x3 -> fc (C*16 -> C) -> out (C -> 1, or C -> cmap_dim). With labels (projection
discriminator) a label mapping network gives cmap and the score is sum(out * cmap) / sqrt(cmap_dim).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sgan.nn.config import ModelConfig
from sgan.nn.inputs import check_labels
from sgan.nn.layers import SQRT2, EqualLinear, minibatch_stddev
from sgan.nn.memory import to_memory_format
from sgan.nn.resample import downsample2d, setup_filter
from sgan.nn.stylegan2.layers import Conv2dLayer
from sgan.nn.stylegan2.mapping import MappingNetwork

SQRT_HALF = math.sqrt(0.5)


class DiscriminatorBlock(nn.Module):
    def __init__(self, cfg: ModelConfig, resolution: int) -> None:
        super().__init__()
        self.resolution, self.architecture = resolution, cfg.d_architecture
        tmp_ch, out_ch = cfg.channels(resolution), cfg.channels(resolution // 2)
        self.has_fromrgb = resolution == cfg.resolution or cfg.d_architecture == "skip"
        clamp = cfg.conv_clamp
        if self.has_fromrgb:
            self.fromrgb = Conv2dLayer(cfg.num_channels, tmp_ch, 1, conv_clamp=clamp)
        self.conv0 = Conv2dLayer(tmp_ch, tmp_ch, 3, conv_clamp=clamp)
        self.conv1 = Conv2dLayer(tmp_ch, out_ch, 3, down=2, conv_clamp=clamp)
        if cfg.d_architecture == "resnet":
            self.skip = Conv2dLayer(tmp_ch, out_ch, 1, bias=False, lrelu=False, down=2)
        self.register_buffer("resample_filter", setup_filter(), persistent=False)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.has_fromrgb:
            y = self.fromrgb(img)
            x = y if x is None else x + y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        if self.architecture == "resnet":
            y = self.skip(x, gain=SQRT_HALF)
            x = self.conv0(x)
            x = y + self.conv1(x, gain=SQRT_HALF)
        else:
            x = self.conv1(self.conv0(x))
        return x, img


class DiscriminatorEpilogue(nn.Module):
    def __init__(self, cfg: ModelConfig, cmap_dim: int) -> None:
        super().__init__()
        ch = cfg.channels(4)
        self.architecture, self.cmap_dim = cfg.d_architecture, cmap_dim
        self.mbstd_group_size, self.mbstd_num_features = cfg.mbstd_group_size, cfg.mbstd_num_features
        self.mbstd_whole_batch = cfg.mbstd_whole_batch    # ADA's mbstd_group_size=None: one group, the whole batch
        if cfg.d_architecture == "skip":
            self.fromrgb = Conv2dLayer(cfg.num_channels, ch, 1, conv_clamp=cfg.conv_clamp)
        self.conv = Conv2dLayer(ch + cfg.mbstd_num_features, ch, 3, conv_clamp=cfg.conv_clamp)
        self.fc = EqualLinear(ch * 16, ch, gain=1.0, activation=True, act_gain=SQRT2)
        self.out = EqualLinear(ch, cmap_dim or 1, gain=1.0)

    def forward(self, x: torch.Tensor, img: torch.Tensor | None, cmap: torch.Tensor | None) -> torch.Tensor:
        if self.architecture == "skip":
            x = x + self.fromrgb(img)
        if self.mbstd_num_features > 0:
            group = x.shape[0] if self.mbstd_whole_batch else self.mbstd_group_size
            x = minibatch_stddev(x, group, self.mbstd_num_features)
        x = self.conv(x)
        x = self.out(self.fc(x.flatten(1)))
        if cmap is not None:
            x = (x * cmap).sum(dim=1, keepdim=True) * (1.0 / math.sqrt(self.cmap_dim))
        return x


class Discriminator(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.arch != "stylegan2":
            raise ValueError(f"this is the stylegan2 discriminator; the config says {cfg.arch!r}")
        self.cfg = cfg
        self.c_dim, self.resolution, self.num_channels = cfg.c_dim, cfg.resolution, cfg.num_channels
        self.block_resolutions = [2 ** i for i in range(cfg.resolution_log2, 2, -1)]
        for res in self.block_resolutions:
            setattr(self, f"b{res}", DiscriminatorBlock(cfg, res))
        self.cmap_dim = 0
        if cfg.c_dim:
            self.cmap_dim = cfg.cmap_dim or cfg.channels(4)
            self.mapping = MappingNetwork(z_dim=0, c_dim=cfg.c_dim, w_dim=self.cmap_dim,
                                          num_layers=cfg.d_mapping_layers, lr_mult=cfg.mapping_lrmul, w_avg_beta=None)
        self.b4 = DiscriminatorEpilogue(cfg, self.cmap_dim)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, *, lod: float = 0.0) -> torch.Tensor:
        """img [N, C, R, R], c [N, c_dim] or None -> logits [N, 1]. `lod` must be 0 (no progressive growing)."""
        r = self.resolution
        if img.ndim != 4 or img.shape[1:] != (self.num_channels, r, r):
            raise ValueError(f"img must have shape [N, {self.num_channels}, {r}, {r}], got {list(img.shape)}")
        if lod != 0:
            raise ValueError(f"stylegan2 has no progressive growing: lod must be 0, got {lod}")
        check_labels(c, c_dim=self.c_dim, n=img.shape[0])
        x = None
        img = to_memory_format(img, self.cfg.memory_format)   # every later op keeps the layout
        for res in self.block_resolutions:
            x, img = getattr(self, f"b{res}")(x, img)
        cmap = self.mapping(None, c) if self.c_dim else None
        return self.b4(x, img, cmap)
