"""The synthesis network g: W+ -> image (StyleGAN §2, networks_stylegan.py `G_synthesis`).

Learned constant 4x4 input; two 3x3 convs per resolution, the first after upsampling (not at
4x4); after each conv the epilogue: noise (learned per-channel weight, zero init) -> bias ->
leaky ReLU -> instance norm -> style modulation (AdaIN, x * (1 + s) + b). Upsampling is
nearest then [1,2,1] blur. One ToRGB per resolution; progressive growing blends the upsampled
RGB of the lower resolution with the new block's RGB.

`lod` (level of detail) is log2(R / current resolution), fractional during a fade-in: at
lod = k + f (0 < f < 1) the output, at R / 2^k px, is lerp(upsample(rgb_low), rgb_new, 1 - f).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from sgan.nn.adain import lrelu_instance_norm_adain
from sgan.nn.config import ModelConfig, use_fused_updown
from sgan.nn.inputs import NOISE_MODES, Generators, randn_per_sample  # noqa: F401  (re-exported)
from sgan.nn.layers import Blur, EqualConv2d, EqualLinear, upscale2d
from sgan.nn.memory import to_memory_format, use_channels_last

class LayerEpilogue(nn.Module):
    """noise -> bias -> lrelu -> instance norm -> style modulation (AdaIN).

    `fused_norm` (class default True): in float32, lrelu + instance norm + AdaIN run as one autograd
    function with a hand-written backward (sgan.nn.adain; same numbers within fp32 rounding, fewer
    memory passes); False: autograd's graph of the separate ops (what other dtypes always use)."""

    fused_norm = True

    def __init__(self, channels: int, w_dim: int, resolution: int, layer_idx: int, *, eps: float = 1e-8,
                 add_bias: bool = True) -> None:
        super().__init__()
        self.resolution, self.layer_idx = resolution, layer_idx
        self.eps, self.add_bias = eps, add_bias          # add_bias False: the block adds `bias` before its blur
        self.noise_strength = nn.Parameter(torch.zeros(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        # The affine A: 2*channels outputs (scale, bias); scale bias-initialised to 1 (x * (s + 1) + b).
        bias_init = torch.cat([torch.ones(channels), torch.zeros(channels)])
        self.affine = EqualLinear(w_dim, 2 * channels, gain=1.0, bias_init=bias_init)
        g = torch.Generator().manual_seed(1000 + layer_idx)
        self.register_buffer("noise_const", torch.randn([1, 1, resolution, resolution], generator=g))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str, generator: Generators,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        # `noise` [N, 1, r, r]: the map to use in noise mode `random` instead of a fresh draw.
        # Written for few memory passes (the convolutions should be nearly all the time):
        # noise and bias in one add, leaky ReLU, one statistics pass, then instance norm and
        # AdaIN folded into a single x * a + b with per-sample, per-channel a and b.
        n = x.shape[0]
        strength, bias = self.noise_strength.view(1, -1, 1, 1), self.bias.view(1, -1, 1, 1)
        if not self.add_bias:
            bias = torch.zeros_like(bias)
        if noise_mode == "random":
            if noise is None:
                noise = randn_per_sample([1, self.resolution, self.resolution], generator, device=x.device, n=n,
                                         key=self.layer_idx)
            x = torch.addcmul(x + bias.to(x.dtype), noise.to(x.dtype), strength.to(x.dtype))
        elif noise_mode == "const":
            x = x + (self.noise_const * strength + bias).to(x.dtype)
        else:
            x = x + bias.to(x.dtype)
        style = self.affine(w).float()                   # [N, 2C]: scale (bias-initialised to 1), shift
        scale, shift = style.view(n, 2, -1, 1, 1).unbind(1)
        if self.fused_norm and x.dtype == torch.float32:
            return lrelu_instance_norm_adain(x, scale, shift, self.eps)
        x = torch.nn.functional.leaky_relu(x, 0.2)
        var, mean = torch.var_mean(x.float(), dim=(2, 3), keepdim=True, unbiased=False)
        a = scale * torch.rsqrt(var + self.eps)              # instance norm then AdaIN: (x - mean) / std * scale + shift
        b = shift - mean * a
        return torch.addcmul(b.to(x.dtype), x, a.to(x.dtype))


class SynthesisBlock(nn.Module):
    """The two conv layers of one resolution (4x4: the constant and one conv)."""

    def __init__(self, cfg: ModelConfig, res_log2: int) -> None:
        super().__init__()
        resolution = 2 ** res_log2
        in_ch, out_ch = cfg.nf(res_log2 - 2), cfg.nf(res_log2 - 1)
        first = 2 * (res_log2 - 2)                       # index of this block's first style input
        self.res_log2, self.resolution = res_log2, resolution
        if res_log2 == 2:
            init = torch.ones if cfg.const_init == "ones" else torch.randn
            self.const = nn.Parameter(init(1, out_ch, 4, 4))
            self.conv0 = None
        else:
            fused = use_fused_updown(cfg.fused_updown, channels=max(in_ch, out_ch), resolution=resolution,
                                     channels_last=use_channels_last(cfg.memory_format, torch.device("cpu")))
            self.conv0 = EqualConv2d(in_ch, out_ch, 3, bias=False, up=2 if fused else 1)
            self.fused_up = fused
            self.blur = Blur(out_ch)
        self.bias_before_blur = cfg.upconv_bias_before_blur and res_log2 > 2
        self.noise_shared = cfg.noise_shared_per_block
        self.memory_format = cfg.memory_format
        self.epi0 = LayerEpilogue(out_ch, cfg.w_dim, resolution, first, eps=cfg.instance_norm_eps,
                                  add_bias=not self.bias_before_blur)
        self.conv1 = EqualConv2d(out_ch, out_ch, 3, bias=False)
        self.epi1 = LayerEpilogue(out_ch, cfg.w_dim, resolution, first + 1, eps=cfg.instance_norm_eps)

    def forward(self, x: torch.Tensor | None, w0: torch.Tensor, w1: torch.Tensor, noise_mode: str,
                generator: Generators) -> torch.Tensor:
        if self.conv0 is None:
            x = self.const.expand(w0.shape[0], -1, -1, -1)
            if w0.dtype != torch.float16:  # float16 keeps the 4x4 layer in fp32: its gradient through 1/std of a
                x = x.to(w0.dtype)          # near-constant input overflows float16 (fp16 training, loss scaling)
            x = to_memory_format(x, self.memory_format)   # every later op keeps the layout
        else:
            x = self.conv0(x) if self.fused_up else self.conv0(upscale2d(x))
            if self.bias_before_blur:
                x = x + self.epi0.bias.view(1, -1, 1, 1).to(x.dtype)
            x = self.blur(x)
        noise = None
        if self.noise_shared and noise_mode == "random":  # one map for both layers (rosinality)
            noise = randn_per_sample([1, self.resolution, self.resolution], generator, device=x.device, n=x.shape[0],
                                     key=self.epi0.layer_idx)
        x = self.epi0(x, w0, noise_mode, generator, noise)
        x = self.conv1(x)
        return self.epi1(x, w1, noise_mode, generator, noise)


class ToRGB(nn.Module):
    def __init__(self, in_channels: int, num_channels: int) -> None:
        super().__init__()
        self.conv = EqualConv2d(in_channels, num_channels, 1, gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class SynthesisNetwork(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.resolution, self.resolution_log2 = cfg.resolution, cfg.resolution_log2
        self.num_ws, self.w_dim = cfg.num_ws, cfg.w_dim
        self.blocks = nn.ModuleList(SynthesisBlock(cfg, r) for r in range(2, cfg.resolution_log2 + 1))
        self.torgbs = nn.ModuleList(ToRGB(cfg.nf(r - 1), cfg.num_channels) for r in range(2, cfg.resolution_log2 + 1))

    def output_resolution(self, lod: float) -> int:
        """The resolution of the images produced at `lod`."""
        return 2 ** (self.resolution_log2 - math.floor(lod))

    def noise_inputs(self, lod: float = 0.0) -> list[tuple[int, int]]:
        """[(layer key, resolution)] of the noise maps a forward pass at `lod` draws in noise mode
        `random`, in draw order (sgan.nn.inputs.draw_noise_maps)."""
        top = self.resolution_log2 - math.floor(lod)
        out = []
        for block in self.blocks:
            if block.res_log2 <= top:
                epis = [block.epi0] if block.noise_shared else [block.epi0, block.epi1]
                out += [(epi.layer_idx, block.resolution) for epi in epis]
        return out

    def forward(self, ws: torch.Tensor, *, lod: float = 0.0, noise_mode: str = "random",
                generator: Generators = None) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> images [N, C, r, r], r = output_resolution(lod), values about [-1, 1]."""
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {list(ws.shape)}")
        if not 0.0 <= lod <= self.resolution_log2 - 2:
            raise ValueError(f"lod must lie in [0, {self.resolution_log2 - 2}], got {lod}")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        top = self.resolution_log2 - math.floor(lod)     # log2 of the output resolution
        alpha = 1.0 - (lod - math.floor(lod))            # weight of the newest block's RGB
        x, img = None, None
        for block, torgb in zip(self.blocks, self.torgbs):
            r = block.res_log2
            if r > top:
                break
            x = block(x, ws[:, 2 * r - 4], ws[:, 2 * r - 3], noise_mode, generator)
            if r == top - 1 and alpha < 1.0:
                img = torgb(x)
            elif r == top:
                new = torgb(x)
                img = new if img is None else torch.lerp(upscale2d(img), new, alpha)
        return img
