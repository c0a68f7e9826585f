"""The filtered leaky ReLU of StyleGAN3 (Karras et al. 2021, Sec. 3.2): bias, upsample by `up` with a
low-pass filter, leaky ReLU times gain, clamp, low-pass filter and downsample by `down`.

The definition (NVIDIA's upfirdn2d convention): upsampling inserts up - 1 zeros after every sample,
pads (or, negative, crops) the result by `padding` = (x_lo, x_hi, y_lo, y_hi), then convolves with
the filter times up per axis; downsampling convolves with its filter (no padding) and keeps every
down-th sample from the first. 1-D filters are separable (x then y); a 2-D filter is applied as is.

Two exact forms, picked per size by `FORM_MATMUL_MAX` and the down filter (benchmarks/sg3_filtered_lrelu.py):

- `matmul`: each separable step along one axis is one matrix product with the [out, in] operator
  matrix of zero insertion + padding + filter + decimation, so nothing is computed on inserted zeros
  or on samples that decimation throws away, and the work is one large GEMM instead of depthwise
  convolutions. Its cost grows with in x out per row, so it is used for small images;
- `conv`: polyphase upsampling as a depthwise transposed convolution with stride up (no zeros
  multiplied) and decimating filters as depthwise convolutions with stride down (only the kept
  samples computed), for any size.

A radial (2-D) downsampling filter is a depthwise 2-D convolution with stride down in both forms.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The matmul form while the upsampled row is at most this long. Measured on a 2-core Ice Lake (avx512, loaded):
# matmul up to 1.15-2x faster than the (channels-last) conv form at 76-172 samples, conv 1.1-1.6x faster at 300, 2.2x at
# 556. Layers with a radial down filter (config R) always take the conv form: it was 1.3x faster there at 104-168.
FORM_MATMUL_MAX = 256
FORMS = ("auto", "matmul", "conv")


def upfir_matrix(n: int, f: torch.Tensor | None, *, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0),
                 gain: float = 1.0) -> torch.Tensor:
    """The [out, n] matrix of one axis of upfirdn: zero insertion by `up`, padding (lo, hi), convolution
    with gain * f, keeping every `down`-th sample."""
    k = 1 if f is None else f.shape[0]
    full = n * up + pad[0] + pad[1] - k + 1
    if full < 1:
        raise ValueError(f"upfir: {n} samples up {up} with padding {pad} are shorter than the {k}-tap filter")
    m = torch.arange(0, full, down, device=None if f is None else f.device).view(-1, 1)
    t = up * torch.arange(n, device=m.device).view(1, -1) + pad[0] - m   # filter tap that meets input i at output m
    taps = torch.ones(1, device=m.device) if f is None else f
    valid = (t >= 0) & (t < k)
    return torch.where(valid, taps.flip(0)[t.clamp(0, k - 1)] * gain, taps.new_zeros(()))


def _axis_conv_up(x: torch.Tensor, f: torch.Tensor, *, up: int, pad: tuple[int, int], dim: int) -> torch.Tensor:
    """Upsample along dim 2 (y) or 3 (x) as a polyphase transposed convolution, then pad or crop."""
    n, c = x.shape[:2]
    k = f.shape[0]
    shape = (1, k) if dim == 3 else (k, 1)
    stride = (1, up) if dim == 3 else (up, 1)
    w = (f * up).to(x.dtype).reshape(1, 1, *shape).expand(c, 1, *shape)
    y = F.conv_transpose2d(x, w, stride=stride, groups=c)
    length = x.shape[dim] * up + pad[0] + pad[1] - k + 1
    start = k - 1 - pad[0]                         # output m reads transposed-conv sample m + start
    lo, hi = max(-start, 0), max(start + length - y.shape[dim], 0)
    y = y.narrow(dim, max(start, 0), length - lo - hi)
    if lo or hi:
        y = F.pad(y, (lo, hi, 0, 0) if dim == 3 else (0, 0, lo, hi))
    return y


def _axis_conv_down(x: torch.Tensor, f: torch.Tensor, *, down: int, dim: int) -> torch.Tensor:
    c, k = x.shape[1], f.shape[0]
    shape = (1, k) if dim == 3 else (k, 1)
    stride = (1, down) if dim == 3 else (down, 1)
    w = f.flip(0).to(x.dtype).reshape(1, 1, *shape).expand(c, 1, *shape)
    return F.conv2d(x, w, stride=stride, groups=c)


def _down_2d(x: torch.Tensor, f: torch.Tensor, *, down: int) -> torch.Tensor:
    c = x.shape[1]
    w = f.flip([0, 1]).to(x.dtype).reshape(1, 1, *f.shape).expand(c, 1, *f.shape)
    return F.conv2d(x, w, stride=down, groups=c)


def _lrelu_gain_clamp(x: torch.Tensor, *, slope: float, gain: float, clamp: float | None) -> torch.Tensor:
    """lrelu(x, slope) * gain, clamped to +-clamp; in place when no gradient is needed (x is a fresh tensor)."""
    inplace = not (torch.is_grad_enabled() and x.requires_grad)
    if slope != 1:
        x = F.leaky_relu_(x, slope) if inplace else F.leaky_relu(x, slope)
    if gain != 1:
        x = x.mul_(gain) if inplace else x * gain
    if clamp is not None:
        x = x.clamp_(-clamp, clamp) if inplace else x.clamp(-clamp, clamp)
    return x


def filtered_lrelu(x: torch.Tensor, *, up_filter: torch.Tensor | None, down_filter: torch.Tensor | None,
                   bias: torch.Tensor | None, up: int = 1, down: int = 1, padding: tuple[int, int, int, int] = (0, 0, 0, 0),
                   gain: float = 2 ** 0.5, slope: float = 0.2, clamp: float | None = None,
                   form: str = "auto") -> torch.Tensor:
    """x [N, C, H, W] -> [N, C, H', W'] (see the module docstring); `form` auto, matmul or conv."""
    if x.ndim != 4:
        raise ValueError(f"filtered_lrelu: x must be [N, C, H, W], got {list(x.shape)}")
    if up_filter is not None and up_filter.ndim != 1:
        raise ValueError("filtered_lrelu: the upsampling filter must be 1-D (separable)")
    if form not in FORMS:
        raise ValueError(f"filtered_lrelu: form must be one of {FORMS}, got {form!r}")
    px0, px1, py0, py1 = (int(p) for p in padding)
    if bias is not None:
        x = x + bias.to(x.dtype).reshape(1, -1, 1, 1)
    if up_filter is None and up == 1 and not any(padding):
        x = x.clone() if bias is None else x           # the in-place activation below must not touch the input
    elif form == "matmul" or up_filter is None or (form == "auto" and max(x.shape[2:]) * up <= FORM_MATMUL_MAX
                                                   and (down_filter is None or down_filter.ndim == 1)):
        mx = upfir_matrix(x.shape[3], up_filter, up=up, pad=(px0, px1), gain=up).to(x.dtype)
        my = upfir_matrix(x.shape[2], up_filter, up=up, pad=(py0, py1), gain=up).to(x.dtype)
        x = torch.matmul(my, torch.matmul(x, mx.t()))
    else:
        x = x.contiguous(memory_format=torch.channels_last)    # depthwise convs run faster channels-last
        x = _axis_conv_up(x, up_filter, up=up, pad=(px0, px1), dim=3)
        x = _axis_conv_up(x, up_filter, up=up, pad=(py0, py1), dim=2)
    x = _lrelu_gain_clamp(x, slope=slope, gain=gain, clamp=clamp)
    if down_filter is None:
        return x[:, :, ::down, ::down] if down > 1 else x
    if down_filter.ndim == 2:
        x = x.contiguous(memory_format=torch.channels_last)
        return _down_2d(x, down_filter, down=down).contiguous()
    if form == "matmul" or (form == "auto" and max(x.shape[2:]) <= FORM_MATMUL_MAX):
        mx = upfir_matrix(x.shape[3], down_filter, down=down).to(x.dtype)
        my = upfir_matrix(x.shape[2], down_filter, down=down).to(x.dtype)
        return torch.matmul(my, torch.matmul(x, mx.t()))
    x = _axis_conv_down(x.contiguous(memory_format=torch.channels_last), down_filter, down=down, dim=3)
    return _axis_conv_down(x, down_filter, down=down, dim=2).contiguous()
