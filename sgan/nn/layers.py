"""Equalized-learning-rate layers and the fixed filters of StyleGAN (pure PyTorch).

Equalized learning rate (ProGAN §4.1; networks_stylegan.py `get_weight`): weights are stored
as N(0, 1/lrmul) and scaled at run time by gain / sqrt(fan_in) * lrmul; biases are stored
divided by lrmul and scaled by lrmul.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

SQRT2 = math.sqrt(2.0)


class EqualLinear(nn.Module):
    """Fully connected layer with equalized learning rate and an optional leaky ReLU(0.2).

    StyleGAN 1 folds the activation gain sqrt(2) into `gain`; StyleGAN2 (FullyConnectedLayer) uses
    gain 1 and multiplies after the bias and activation: `gain=1.0, act_gain=SQRT2`."""

    def __init__(self, in_features: int, out_features: int, *, gain: float = SQRT2, lrmul: float = 1.0,
                 bias_init: float | torch.Tensor = 0.0, activation: bool = False, act_gain: float = 1.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lrmul)
        self.bias = nn.Parameter(torch.full([out_features], 1.0) * torch.as_tensor(bias_init, dtype=torch.float32) / lrmul)
        self.weight_gain = gain / math.sqrt(in_features) * lrmul
        self.bias_gain = lrmul
        self.activation = activation
        self.act_gain = act_gain  # multiplies the output after the activation (StyleGAN2's bias_act gain)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight * self.weight_gain, self.bias * self.bias_gain)
        if self.activation:
            x = F.leaky_relu(x, 0.2)
        return x * self.act_gain if self.act_gain != 1.0 else x

    def extra_repr(self) -> str:
        return f"in={self.weight.shape[1]}, out={self.weight.shape[0]}, act={self.activation}"


class EqualConv2d(nn.Module):
    """k x k convolution with equalized learning rate; `up=2` is a fused nearest-upsample + conv
    (a stride-2 transposed convolution with the 4x4 kernel that sums the shifted 3x3 kernels, as
    the official `upscale2d_conv2d`), `down=2` a fused conv + 2x2 average pool (`conv2d_downscale2d`)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, gain: float = SQRT2,
                 bias: bool = True, up: int = 1, down: int = 1) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        self.weight_gain = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.up, self.down, self.padding = up, down, kernel_size // 2

    fused_bias = True   # False: the bias as a separate add after the conv (the old form; benchmarks/step_profile.py -sb)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The bias goes into the convolution call (one pass fewer, its gradient from the conv's backward,
        # and under autocast the output stays in the conv's dtype instead of promoting to float32).
        w = self.weight * self.weight_gain
        b = self.bias if self.fused_bias else None
        if self.up == 2:
            # nearest-upsample then conv == transposed conv of the 4x4 kernel w00+w01+w10+w11 (shifted).
            w = F.pad(w, [1, 1, 1, 1])
            w = w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]
            x = F.conv_transpose2d(x, w.flip([2, 3]).transpose(0, 1), b, stride=2, padding=1)
        elif self.down == 2:
            # conv then 2x2 average pool == stride-2 conv of the averaged 4x4 kernel.
            w = F.pad(w, [1, 1, 1, 1])
            w = (w[:, :, 1:, 1:] + w[:, :, :-1, 1:] + w[:, :, 1:, :-1] + w[:, :, :-1, :-1]) * 0.25
            x = F.conv2d(x, w, b, stride=2, padding=1)
        else:
            x = F.conv2d(x, w, b, padding=self.padding)
        if self.bias is not None and b is None:
            x = x + self.bias.view(1, -1, 1, 1)
        return x

    def extra_repr(self) -> str:
        o, i, k, _ = self.weight.shape
        return f"in={i}, out={o}, k={k}, up={self.up}, down={self.down}"


class Blur(nn.Module):
    """The [1, 2, 1] x [1, 2, 1] / 16 low-pass filter, as a depthwise conv (works under autocast)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        k = torch.outer(k, k)
        self.register_buffer("kernel", (k / k.sum()).expand(channels, 1, 3, 3).contiguous(), persistent=False)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.kernel.to(x.dtype), padding=1, groups=self.channels)


def upscale2d(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Nearest-neighbour upsampling (the official `upscale2d`)."""
    if factor == 1:
        return x
    n, c, h, w = x.shape
    if not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):  # keep NHWC (the same copy)
        y = x.permute(0, 2, 3, 1).view(n, h, 1, w, 1, c).expand(n, h, factor, w, factor, c)
        return y.reshape(n, h * factor, w * factor, c).permute(0, 3, 1, 2)
    return x.view(n, c, h, 1, w, 1).expand(n, c, h, factor, w, factor).reshape(n, c, h * factor, w * factor)


def downscale2d(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Box-filter downsampling (the official `downscale2d`, an average pool)."""
    return x if factor == 1 else F.avg_pool2d(x, factor)


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Normalize each vector to unit RMS over dim 1 (ProGAN pixelwise feature normalization)."""
    return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + eps)


def instance_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-sample, per-channel zero mean and unit variance over the spatial dims (official epsilon)."""
    x = x - x.mean(dim=(2, 3), keepdim=True)
    return x * torch.rsqrt(x.square().mean(dim=(2, 3), keepdim=True) + eps)


def lerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    return a + (b - a) * t


def minibatch_stddev(x: torch.Tensor, group_size: int = 4, num_features: int = 1) -> torch.Tensor:
    """Append `num_features` channels holding the standard deviation over groups of samples
    (ProGAN §3; sample i is in group i mod (N / G), as the official reshape does; eps 1e-8)."""
    n, c, h, w = x.shape
    g = min(group_size, n)
    if n % g:
        raise ValueError(f"the minibatch ({n}) must be divisible by the mbstd group size ({g})")
    f = num_features
    y = x.reshape(g, -1, f, c // f, h, w).float()        # [G, M, F, c, H, W]
    y = y - y.mean(dim=0)
    y = (y.square().mean(dim=0) + 1e-8).sqrt()          # [M, F, c, H, W]
    y = y.mean(dim=(2, 3, 4))                            # [M, F]
    y = y.reshape(-1, f, 1, 1).repeat(g, 1, h, w).to(x.dtype)   # [N, F, H, W]
    return torch.cat([x, y], dim=1)
