"""Resampling for ADA's geometric ops: the sym6 antialiasing filter, 2x up/down FIR filtering and
bilinear sampling with a second derivative (R1 through the augmentation needs one).

The filter is the 12-tap low-pass filter of the Symlet-6 wavelet (ADA's `Hz_geom`; the values are
those of PyWavelets' `Wavelet('sym6').dec_lo`), normalised to sum 1. It is orthogonal to its own
shifts by even offsets, so upsampling by 2 (zero insertion, true convolution with 2 f per axis)
followed by downsampling by 2 (correlation with f, every other sample) is exactly the identity:
an image sampled on the upsampled grid at integer positions comes back unchanged.

`bilinear_sample` reads an image at fractional pixel indices, zero outside. Two implementations,
equal to float precision (tested): `grid_sample` (torch's kernel; in torch 2.13 its backward has a
derivative itself on CPU, probed in tests/test_augment_ada.py) and `gather` (four gathers and
weights, plain differentiable index ops, so any order of derivative exists on any device).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148)
TAPS = len(SYM6)
HZ_PAD = TAPS // 4  # 3: margin (in input pixels) the filters need around the output image
RESAMPLERS = ("grid_sample", "gather")


def sym6_filter(device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    f = torch.tensor(SYM6, dtype=torch.float64)
    return (f / f.sum()).to(device=device, dtype=dtype)


def _fir_1d(x: torch.Tensor, f: torch.Tensor, dim: int, *, stride: int = 1) -> torch.Tensor:
    """Correlate every channel of x [N, C, H, W] with the 1-D filter f along dim 2 (H) or 3 (W),
    keeping every `stride`-th output (a depthwise conv: one group per channel)."""
    c = x.shape[1]
    k = (f.view(1, 1, -1, 1) if dim == 2 else f.view(1, 1, 1, -1)).to(x.dtype).expand(c, 1, -1, -1)
    return F.conv2d(x, k, stride=(stride, 1) if dim == 2 else (1, stride), groups=c)


def _up_1d(x: torch.Tensor, g: torch.Tensor, dim: int) -> torch.Tensor:
    """u[m] = sum_k x[k] g[5 + m - 2k] along `dim` (zero insertion + convolution with the 12-tap g),
    length 2L, computed polyphase: u[2i] uses g's odd taps, u[2i+1] its even taps, each as a
    6-tap depthwise correlation (grouped transposed convs are slow on CPUs)."""
    pads = [0, 0, 0, 0]
    out = []
    for taps, (lo, hi) in ((g[1::2], (3, 2)), (g[0::2], (2, 3))):
        if dim == 3:
            pads = [lo, hi, 0, 0]
        else:
            pads = [0, 0, lo, hi]
        out.append(_fir_1d(F.pad(x, pads), taps.flip(0), dim))
    both = torch.stack(out, dim=dim + 1)  # [..., L, 2, ...] -> interleaved
    shape = list(x.shape)
    shape[dim] *= 2
    return both.reshape(shape)


def upsample2x(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> [N, C, 2H, 2W]: zero insertion, then true convolution with 2 f per axis
    (the zero-inserted signal padded by 6 before and 5 after): u[m] = sum_k x[k] 2 f[5 + m - 2k]."""
    g = 2.0 * f
    return _up_1d(_up_1d(x, g, 3), g, 2)


def downsample2x(x: torch.Tensor, f: torch.Tensor, *, crop: int) -> torch.Tensor:
    """[N, C, T, T] -> correlation with f per axis after cropping `crop` samples each side, every
    other sample kept. With T = 2 (W + 2 HZ_PAD) and crop 1 the result is W x W."""
    x = x[:, :, crop:x.shape[2] - crop, crop:x.shape[3] - crop]
    return _fir_1d(_fir_1d(x, f, 3, stride=2), f, 2, stride=2)


def bilinear_sample(img: torch.Tensor, mx: torch.Tensor, my: torch.Tensor, *, method: str = "grid_sample") -> torch.Tensor:
    """img [N, C, H, W] read at fractional pixel indices mx, my [N, Ho, Wo] (pixel i is at i),
    bilinear, zero outside -> [N, C, Ho, Wo]."""
    n, c, h, w = img.shape
    if mx.shape != my.shape or mx.ndim != 3 or mx.shape[0] != n:
        raise ValueError(f"mx and my must be [N, Ho, Wo] with N = {n}, got {list(mx.shape)} and {list(my.shape)}")
    if method == "grid_sample":
        grid = torch.stack([mx * (2.0 / (w - 1)) - 1.0, my * (2.0 / (h - 1)) - 1.0], dim=-1).to(img.dtype)
        return F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    if method != "gather":
        raise ValueError(f"method must be one of {', '.join(RESAMPLERS)}, got {method!r}")
    x0, y0 = mx.floor(), my.floor()
    fx, fy = (mx - x0).to(img.dtype), (my - y0).to(img.dtype)
    x0, y0 = x0.long(), y0.long()
    flat = img.reshape(n, c, h * w)
    out = 0
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xi, yi = x0 + dx, y0 + dy
            inside = ((xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)).to(img.dtype)
            idx = (yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).reshape(n, 1, -1).expand(n, c, -1)
            vals = flat.gather(2, idx).reshape(n, c, *mx.shape[1:])
            out = out + vals * (wx * wy * inside).unsqueeze(1)
    return out


def _phase() -> float:
    f = torch.tensor(SYM6, dtype=torch.float64)
    return float((torch.arange(TAPS, dtype=torch.float64) * f).sum() / f.sum()) - (TAPS // 2 - 1)


PHASE = _phase()
"""Where input pixel k lands on the upsampled grid: index 2k + PHASE (the filter's centre of mass
minus 5; 0.098 for sym6, 0.5 for a symmetric 12-tap filter). Sampling and the output grid use the
same offset, so integer shifts stay exact whatever it is; the centre of mass makes scales and
rotations unbiased (with 0.5 a 2x zoom moved a centred blob by 0.19 px)."""
