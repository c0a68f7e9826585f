"""StyleGAN 1's leaky ReLU -> instance norm -> AdaIN as one autograd function with a hand-written backward.

y = (lrelu(x) - mean) * rsqrt(var + eps) * scale + shift, mean and var per sample and channel over
the pixels. At the cpu preset's widths (32 channels) the convolutions are cheap and the element-wise
passes of these ops are a large part of a step; autograd's graph of them (var_mean's Welford kernel,
then its backward, addcmul's and leaky_relu's backward, each a pass over the activations with its own
temporaries) costs about 20 memory passes. This computes the statistics in two passes (mean, then
the sum of squares of x - mean, as accurate as var_mean) and the whole backward in about 8:

    dL/dscale = sum(g * xc) * rstd,  dL/dshift = sum(g)           (xc = lrelu(x) - mean)
    dL/dy0    = a g + k1 xc + k0,    a = scale * rstd, k1 = -sum(g xc) scale rstd^3 / HW, k0 = -a sum(g) / HW
    dL/dx     = dL/dy0 * (1 where y0 > 0 else 0.2)

float32 only (the other dtypes take autograd's path in LayerEpilogue), first derivatives only (nothing
differentiates StyleGAN 1's generator twice). benchmarks/step_profile.py measures it; tests/test_nn_adain.py
checks it against autograd and float64.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

SLOPE = 0.2


class LreluInstanceNormAdain(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float) -> torch.Tensor:
        y0 = F.leaky_relu(x, SLOPE)
        mean = y0.mean(dim=(2, 3), keepdim=True)
        xc = y0 - mean
        var = xc.square().mean(dim=(2, 3), keepdim=True)
        rstd = torch.rsqrt(var + eps)
        a = scale * rstd
        ctx.save_for_backward(y0, xc, a, rstd, scale)
        return torch.addcmul(shift, xc, a)

    @staticmethod
    @once_differentiable
    def backward(ctx, g: torch.Tensor):
        y0, xc, a, rstd, scale = ctx.saved_tensors
        hw = g.shape[2] * g.shape[3]
        gs = g.sum(dim=(2, 3), keepdim=True)
        gxc = (g * xc).sum(dim=(2, 3), keepdim=True)               # dL/da
        k1 = gxc * scale * rstd.pow(3) * (-1.0 / hw)                # 2/HW * dL/dvar
        gy0 = torch.addcmul(a * gs * (-1.0 / hw), xc, k1).addcmul_(g, a)
        gx = torch.ops.aten.leaky_relu_backward(gy0, y0, SLOPE, True)
        return gx, gxc * rstd, gs, None


def lrelu_instance_norm_adain(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, eps: float) -> torch.Tensor:
    """x [N, C, H, W] float32, scale and shift [N, C, 1, 1] float32 -> (lrelu(x) normalised) * scale + shift."""
    if x.dtype != torch.float32 or scale.dtype != torch.float32 or shift.dtype != torch.float32:
        raise ValueError(f"lrelu_instance_norm_adain is float32 only, got {x.dtype}, {scale.dtype}, {shift.dtype}")
    if x.ndim != 4 or scale.shape != (x.shape[0], x.shape[1], 1, 1) or shift.shape != scale.shape:
        raise ValueError(f"x must be [N, C, H, W] and scale, shift [N, C, 1, 1], got {list(x.shape)}, "
                         f"{list(scale.shape)}, {list(shift.shape)}")
    return LreluInstanceNormAdain.apply(x, scale, shift, eps)
