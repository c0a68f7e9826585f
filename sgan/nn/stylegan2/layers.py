"""The StyleGAN2 layers (networks.py): Conv2dLayer, SynthesisLayer, ToRGBLayer and `bias_act`.

Equalized learning rate as in the official code: conv weights N(0, 1) scaled at run time by
1/sqrt(in * k^2); the activation gain (sqrt 2 for leaky ReLU 0.2) multiplies after bias and
activation; `conv_clamp` clips the result to +-conv_clamp * gain.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sgan.nn.inputs import Generators, randn_per_sample
from sgan.nn.layers import SQRT2, EqualLinear
from sgan.nn.resample import conv2d_resample, setup_filter
from sgan.nn.stylegan2.modconv import modulated_conv2d, use_fused


def bias_act(x: torch.Tensor, bias: torch.Tensor | None, *, lrelu: bool, gain: float = 1.0,
             clamp: float | None = None, inplace: bool = False) -> torch.Tensor:
    """x + bias, then leaky ReLU(0.2) (when `lrelu`), times `gain`, clamped to +-clamp (bias_act.py).
    `inplace` (only for a fresh x and without autograd) saves the memory passes of new tensors."""
    if inplace and gain == 1.0 and not torch.is_grad_enabled():
        if bias is not None:
            x.add_(bias.to(x.dtype).reshape(1, -1, 1, 1))
        if lrelu:
            F.leaky_relu_(x, 0.2)
        return x.clamp_(-clamp, clamp) if clamp is not None else x
    if bias is not None:
        x = x + bias.to(x.dtype).reshape(1, -1, 1, 1)
    if lrelu:
        x = F.leaky_relu(x, 0.2)
    if gain != 1.0:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


class Conv2dLayer(nn.Module):
    """k x k conv with equalized LR, optional FIR up/down 2, bias, leaky ReLU * sqrt 2 or linear."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, bias: bool = True,
                 lrelu: bool = True, up: int = 1, down: int = 1, conv_clamp: float | None = None) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.register_buffer("resample_filter", setup_filter(), persistent=False)
        self.weight_gain = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.up, self.down, self.padding = up, down, kernel_size // 2
        self.lrelu, self.act_gain, self.conv_clamp = lrelu, (SQRT2 if lrelu else 1.0), conv_clamp

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = (self.weight * self.weight_gain).to(x.dtype)
        x = conv2d_resample(x, w, self.resample_filter, up=self.up, down=self.down, padding=self.padding)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, lrelu=self.lrelu, gain=self.act_gain * gain, clamp=clamp)

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight.shape
        return f"in={i}, out={o}, k={k}, up={self.up}, down={self.down}, lrelu={self.lrelu}"


class SynthesisLayer(nn.Module):
    """affine(w) -> modulated 3x3 conv (demodulated, optionally up 2) -> + noise * strength -> + bias
    -> leaky ReLU * sqrt 2 -> clamp. Noise: one scalar strength (zero init); `noise_const` [1, 1, r, r]
    is the map used in noise mode 'const' (sgan.play.noise_maps swaps it for chosen maps)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, layer_idx: int, *,
                 up: int = 1, conv_clamp: float | None = None, fused_modconv: str = "auto") -> None:
        super().__init__()
        self.resolution, self.layer_idx, self.up = resolution, layer_idx, up
        self.conv_clamp, self.fused_modconv = conv_clamp, fused_modconv
        self.affine = EqualLinear(w_dim, in_channels, gain=1.0, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 3, 3))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("resample_filter", setup_filter(), persistent=False)
        g = torch.Generator().manual_seed(2000 + layer_idx)
        self.register_buffer("noise_const", torch.randn([1, 1, resolution, resolution], generator=g))

    def forward(self, x: torch.Tensor, w: torch.Tensor, *, noise_mode: str = "random", generator: Generators = None,
                gain: float = 1.0) -> torch.Tensor:
        n = x.shape[0]
        styles = self.affine(w)
        noise = None
        if noise_mode == "random":
            noise = randn_per_sample([1, self.resolution, self.resolution], generator, device=x.device, n=n,
                                     key=self.layer_idx)
            noise = noise * self.noise_strength
        elif noise_mode == "const":
            noise = self.noise_const * self.noise_strength
        # lrelu(a) * g == lrelu(a * g) for g > 0: the activation gain sqrt 2 is folded into the
        # demodulation coefficients, the noise and the bias, so the epilogue is one add and one lrelu.
        act_gain = SQRT2 * gain
        x = modulated_conv2d(x, self.weight, styles, up=self.up, padding=1, resample_filter=self.resample_filter,
                             fused=use_fused(self.fused_modconv, x), noise=noise, gain=act_gain)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias * act_gain, lrelu=True, clamp=clamp, inplace=True)

    def extra_repr(self) -> str:
        o, i, _, _ = self.weight.shape
        return f"in={i}, out={o}, resolution={self.resolution}, up={self.up}, layer_idx={self.layer_idx}"


class ToRGBLayer(nn.Module):
    """1x1 modulated conv without demodulation, weight gain 1/sqrt(in) folded into the styles; + bias."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, *, conv_clamp: float | None = None,
                 fused_modconv: str = "auto") -> None:
        super().__init__()
        self.conv_clamp, self.fused_modconv = conv_clamp, fused_modconv
        self.affine = EqualLinear(w_dim, in_channels, gain=1.0, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.weight_gain = 1.0 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False, fused=use_fused(self.fused_modconv, x))
        return bias_act(x, self.bias, lrelu=False, clamp=self.conv_clamp, inplace=True)
