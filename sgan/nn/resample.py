"""FIR resampling of StyleGAN2 (the [1,3,3,1] filter of `upfirdn2d`), as plain torch ops.

upfirdn2d(x, f, up, down, pad, gain) is defined (NVlabs torch_utils/ops/upfirdn2d.py) as: insert
up-1 zeros after every sample, pad by (pad0, pad1) (negative pads crop), convolve (a true
convolution, i.e. correlation with the flipped filter) with f * gain, keep every down-th sample.
The filter is the normalised outer product of [1,3,3,1] (sum 1).

- `upsample2d`: up 2, pads ((fw+1)//2, (fw-2)//2) = (2, 1), gain 4. Written as one depthwise
  stride-2 transposed convolution with padding 1 (exactly the same sums).
- `downsample2d`: pads ((fw-1)//2, (fw-2)//2) = (1, 1), then stride 2: one depthwise stride-2 conv.
- `conv2d_resample` (conv2d_resample.py): a k x k conv with up 2 is a stride-2 transposed conv
  followed by the FIR (gain 4); with down 2 the FIR comes first, then a stride-2 conv.

Depthwise filtering runs as a grouped conv with groups = C (measured several times faster on CPU
than a single-channel conv over [N*C, 1, H, W]); it is differentiable twice.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def setup_filter(taps: Sequence[float] = (1, 3, 3, 1)) -> torch.Tensor:
    """The 2-d FIR filter: outer product of `taps`, normalised to sum 1 (upfirdn2d.setup_filter)."""
    k = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(k, k)
    return f / f.sum()


def _depthwise(x: torch.Tensor, kernel: torch.Tensor, *, stride: int = 1, padding: int = 0,
               transpose: bool = False) -> torch.Tensor:
    """Apply the same 2-d `kernel` [kh, kw] to every channel of x [N, C, H, W] (correlation)."""
    c = x.shape[1]
    k = kernel.to(dtype=x.dtype, device=x.device)[None, None].expand(c, 1, *kernel.shape)
    return (F.conv_transpose2d if transpose else F.conv2d)(x, k, stride=stride, padding=padding, groups=c)


def filter2d(x: torch.Tensor, f: torch.Tensor, *, pad: Sequence[int] = (0, 0), gain: float = 1.0) -> torch.Tensor:
    """upfirdn2d with up = down = 1: pad (pad0 before, pad1 after, both axes), convolve with f * gain."""
    p0, p1 = pad
    if p0 == p1 and p0 >= 0:
        return _depthwise(x, f.flip([0, 1]) * gain, padding=p0)
    return _depthwise(F.pad(x, [p0, p1, p0, p1]), f.flip([0, 1]) * gain)


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2x upsampling with FIR `f` (gain 4): [N, C, H, W] -> [N, C, 2H, 2W]."""
    fh = f.shape[0]
    if fh != 4:  # the general definition for other filter sizes
        return filter2d(_zero_insert(x), f, pad=((fh + 1) // 2, (fh - 2) // 2), gain=4.0)
    # zero insertion + pad (2, 1) + convolution == transposed conv, stride 2, padding 1, kernel f (unflipped).
    return _depthwise(x, f * 4.0, stride=2, padding=1, transpose=True)


def downsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2x downsampling with FIR `f`: [N, C, H, W] -> [N, C, H/2, W/2]."""
    fh = f.shape[0]
    p0, p1 = (fh - 1) // 2, (fh - 2) // 2
    if p0 == p1:
        return _depthwise(x, f.flip([0, 1]), stride=2, padding=p0)
    return _depthwise(F.pad(x, [p0, p1, p0, p1]), f.flip([0, 1]), stride=2)


def _zero_insert(x: torch.Tensor) -> torch.Tensor:
    n, c, h, w = x.shape
    y = x.new_zeros(n, c, h, 2, w, 2)
    y[:, :, :, 0, :, 0] = x
    return y.reshape(n, c, 2 * h, 2 * w)


def conv2d_resample(x: torch.Tensor, weight: torch.Tensor, f: torch.Tensor | None = None, *, up: int = 1,
                    down: int = 1, padding: int = 0, groups: int = 1) -> torch.Tensor:
    """k x k convolution of x with weight [O, I/groups, k, k], optionally with FIR 2x upsampling
    (transposed conv, then the filter) or 2x downsampling (filter, then strided conv).

    As in NVIDIA's layers (flip_weight = up == 1): without upsampling the kernel is correlated (torch
    conv2d); with up=2 the stride-2 transposed conv applies it as a true convolution (flipped)."""
    if up not in (1, 2) or down not in (1, 2) or (up == 2 and down == 2):
        raise ValueError(f"conv2d_resample supports up=2 or down=2 (not both), got up={up}, down={down}")
    if up == 1 and down == 1:
        return F.conv2d(x, weight, padding=padding, groups=groups)
    if f is None:
        raise ValueError("resampling needs the FIR filter f")
    k = weight.shape[-1]
    fw = f.shape[-1]
    if down == 2:
        if k == 1:  # filter then 1x1 conv (the official fast path)
            return F.conv2d(downsample2d(x, f), weight, groups=groups)
        x = filter2d(x, f, pad=(padding + (fw - 1) // 2, padding + (fw - 2) // 2))
        return F.conv2d(x, weight, stride=2, groups=groups)
    # up == 2: stride-2 transposed conv, then the FIR with the remaining padding and gain 4.
    p0 = padding + (fw + 1) // 2 - (k - 1)
    p1 = padding + (fw - 2) // 2 - (k - 2)
    pt = max(min(-p0, -p1), 0)
    out_ch, in_per_group = weight.shape[0], weight.shape[1]
    if groups == 1:
        wt = weight.transpose(0, 1)
    else:
        wt = weight.reshape(groups, out_ch // groups, in_per_group, k, k).transpose(1, 2)
        wt = wt.reshape(groups * in_per_group, out_ch // groups, k, k)
    x = F.conv_transpose2d(x, wt, stride=2, padding=pt, groups=groups)
    return filter2d(x, f, pad=(p0 + pt, p1 + pt), gain=4.0)
