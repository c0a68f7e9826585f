"""The StyleGAN3 layers (networks_stylegan3.py): the Fourier-feature input and the synthesis layer.

SynthesisInput: `channels` Fourier features of frequencies drawn in a disc of radius `bandwidth`
(buffer `freqs` [C, 2], phases `phases` [C]), sampled on a size x size grid at `sampling_rate` and
rotated / translated per sample by a learned affine of w0 (t = (cos, sin, tx, ty), the rotation part
normalised); `transform` [3, 3] is a user-set inverse transform of the image (identity by default;
`sgan.nn.stylegan3.transform` builds it for a translation and rotation). Frequencies pushed out of
band by the transform fade out linearly; a learned C x C matrix mixes the features.

SynthesisLayer: modulated conv (weights and styles pre-normalised by their RMS, then demodulated;
the input scaled by magnitude_ema^-1/2; ToRGB: 1x1, styles times 1/sqrt(in), no demodulation), conv
padding k - 1 on every side, then the filtered leaky ReLU with the layer's filters and padding,
gain sqrt 2 (ToRGB: linear, gain 1), clamped to +-conv_clamp.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from sgan.nn.layers import EqualLinear
from sgan.nn.stylegan3.design import InputSpec, LayerSpec, lowpass_filter
from sgan.nn.stylegan3.filtered_lrelu import filtered_lrelu

SQRT2 = math.sqrt(2.0)


class SynthesisInput(nn.Module):
    def __init__(self, w_dim: int, spec: InputSpec) -> None:
        super().__init__()
        self.w_dim, self.channels, self.size = w_dim, spec.channels, spec.size
        self.sampling_rate, self.bandwidth = spec.sampling_rate, spec.bandwidth
        freqs = torch.randn([spec.channels, 2])                 # uniform in the disc: Gaussian direction, radius law
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * spec.bandwidth
        phases = torch.rand([spec.channels]) - 0.5
        self.weight = nn.Parameter(torch.randn([spec.channels, spec.channels]))
        self.affine = EqualLinear(w_dim, 4, gain=1.0, bias_init=torch.tensor([1.0, 0.0, 0.0, 0.0]))
        with torch.no_grad():
            self.affine.weight.zero_()                          # starts as the identity transform
        self.register_buffer("transform", torch.eye(3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", phases)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        """w [N, w_dim] -> features [N, channels, size, size]."""
        n = w.shape[0]
        t = self.affine(w)
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        cos, sin, tx, ty = t.unbind(dim=1)
        zero, one = torch.zeros_like(cos), torch.ones_like(cos)
        rot = torch.stack([cos, -sin, zero, sin, cos, zero, zero, zero, one], dim=1).view(n, 3, 3)
        shift = torch.stack([one, zero, -tx, zero, one, -ty, zero, zero, one], dim=1).view(n, 3, 3)
        m = rot @ shift @ self.transform.to(w.dtype).unsqueeze(0)          # [N, 3, 3]
        freqs = self.freqs.to(w.dtype).unsqueeze(0)                        # [1, C, 2]
        phases = self.phases.to(w.dtype).unsqueeze(0) + (freqs @ m[:, :2, 2:]).squeeze(2)
        freqs = freqs @ m[:, :2, :2]                                       # [N, C, 2]
        amp = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        # sample centres (i + 1/2 - size/2) / sampling_rate, as affine_grid(align_corners=False) places them
        pos = (torch.arange(self.size, device=w.device, dtype=w.dtype) + 0.5 - self.size / 2) / self.sampling_rate
        gx = pos.view(1, 1, -1, 1)                                         # x varies along width
        gy = pos.view(1, -1, 1, 1)
        arg = gx * freqs[:, None, None, :, 0] + gy * freqs[:, None, None, :, 1] + phases[:, None, None, :]
        x = torch.sin(arg * (2 * math.pi)) * amp[:, None, None, :]         # [N, H, W, C]
        x = x @ (self.weight / math.sqrt(self.channels)).t().to(x.dtype)
        return x.permute(0, 3, 1, 2)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, size={self.size}, sampling_rate={self.sampling_rate:g}, bandwidth={self.bandwidth:g}"


class SynthesisLayer(nn.Module):
    def __init__(self, w_dim: int, spec: LayerSpec, *, conv_clamp: float | None = 256,
                 magnitude_ema_beta: float = 0.999) -> None:
        super().__init__()
        self.spec, self.w_dim, self.conv_clamp, self.magnitude_ema_beta = spec, w_dim, conv_clamp, magnitude_ema_beta
        self.is_torgb, self.in_channels, self.out_channels = spec.is_torgb, spec.in_channels, spec.out_channels
        k = spec.conv_kernel
        self.affine = EqualLinear(w_dim, spec.in_channels, gain=1.0, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn([spec.out_channels, spec.in_channels, k, k]))
        self.bias = nn.Parameter(torch.zeros([spec.out_channels]))
        self.register_buffer("magnitude_ema", torch.ones([]))
        up = lowpass_filter(spec.up_taps, cutoff=spec.in_cutoff, width=spec.in_half_width * 2,
                            fs=spec.tmp_sampling_rate)
        down = lowpass_filter(spec.down_taps, cutoff=spec.out_cutoff, width=spec.out_half_width * 2,
                              fs=spec.tmp_sampling_rate, radial=spec.down_radial)
        self.register_buffer("up_filter", up)          # None (identity) registers nothing in the state dict
        self.register_buffer("down_filter", down)

    def forward(self, x: torch.Tensor, w: torch.Tensor, *, update_emas: bool = False) -> torch.Tensor:
        """x [N, in_channels, in_size, in_size], w [N, w_dim] -> [N, out_channels, out_size, out_size]."""
        s = self.spec
        if x.ndim != 4 or x.shape[1:] != (s.in_channels, s.in_size, s.in_size) or w.shape != (x.shape[0], self.w_dim):
            raise ValueError(f"{s.name}: x {list(x.shape)} and w {list(w.shape)} do not fit "
                             f"[N, {s.in_channels}, {s.in_size}, {s.in_size}] and [N, {self.w_dim}]")
        if update_emas:
            with torch.no_grad():
                self.magnitude_ema.copy_(x.detach().float().square().mean().lerp(self.magnitude_ema,
                                                                                  self.magnitude_ema_beta))
        styles = self.affine(w)
        weight = self.weight.to(x.dtype)
        gain = self.magnitude_ema.rsqrt().to(x.dtype)
        if self.is_torgb:
            styles = styles * (1.0 / math.sqrt(s.in_channels * s.conv_kernel ** 2))
            coef = gain.expand(x.shape[0], s.out_channels)
        else:
            weight = weight * weight.square().mean(dim=[1, 2, 3], keepdim=True).rsqrt()
            styles = styles * styles.square().mean(dim=1, keepdim=True).rsqrt()   # per sample (see demodulation)
            coef = demodulation(weight, styles) * gain
        x = x * styles.to(x.dtype).reshape(x.shape[0], -1, 1, 1)
        x = F.conv2d(x, weight, padding=s.conv_kernel - 1)
        x = x * coef.to(x.dtype).reshape(x.shape[0], -1, 1, 1)
        return filtered_lrelu(x, up_filter=self.up_filter, down_filter=self.down_filter, bias=self.bias,
                              up=s.up_factor, down=s.down_factor, padding=s.padding,
                              gain=1.0 if self.is_torgb else SQRT2, slope=1.0 if self.is_torgb else 0.2,
                              clamp=self.conv_clamp)

    def extra_repr(self) -> str:
        s = self.spec
        return (f"{s.name}: in={s.in_channels}x{s.in_size}, out={s.out_channels}x{s.out_size}, "
                f"rates {s.in_sampling_rate}->{s.tmp_sampling_rate}->{s.out_sampling_rate}, "
                f"cutoff {s.in_cutoff:.3g}->{s.out_cutoff:.3g}, k={s.conv_kernel}, radial={s.down_radial}")


def demodulation(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """[N, O] = rsqrt(sum_{i,k,k} (weight[o, i] styles[n, i])^2 + 1e-8), without per-sample weights.
    NVIDIA's code pre-normalises the styles by their RMS over the whole batch; demodulation cancels
    any positive scale of the styles except against the 1e-8, so sgan normalises per sample, which
    keeps each image independent of the batch it is rendered in."""
    return (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()
