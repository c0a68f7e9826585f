"""Modulated convolution with demodulation (StyleGAN2 §2.2; networks.py `modulated_conv2d`).

Per sample n the weight is w'[o,i,:,:] = w[o,i,:,:] * s[n,i], demodulated by
d[n,o] = rsqrt(sum_{i,kh,kw} w'[o,i,kh,kw]^2 + 1e-8). Two equal ways to compute it:

- unfused ("never"): scale the activations by s, run one ordinary conv with the shared weight,
  scale the outputs by d (the official training path; memory and FLOPs of a plain conv);
- fused ("always"): build the N per-sample weights and run one grouped conv with groups = N
  (the official inference path).

`fused_modconv="auto"` picks per device what benchmarks/modconv.py measured faster (docs/benchmarks.md).
"""

from __future__ import annotations

import torch

from sgan.nn.resample import conv2d_resample

DEMOD_EPS = 1e-8
FUSED_SETTINGS = ("auto", "always", "never")


def demod_coefficients(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """d [N, O] = rsqrt(sum_{i,k,k} (weight[o,i] * styles[n,i])^2 + 1e-8), without building the
    per-sample weights: sum_i s[n,i]^2 * sum_k w[o,i,k]^2. Computed in at least float32 (also under autocast)
    and returned in the dtype of `styles`."""
    dt = torch.promote_types(styles.dtype, torch.float32)
    with torch.autocast(device_type=styles.device.type, enabled=False):
        d = (styles.to(dt).square() @ weight.to(dt).square().sum(dim=(2, 3)).t() + DEMOD_EPS).rsqrt()
    return d.to(styles.dtype)


def use_fused(setting: str, x: torch.Tensor) -> bool:
    """Whether to run the grouped form for input x under `setting` ('auto' follows the measurements:
    the shared-weight form on CPU, where grouped convs are slower at every measured size, and the
    grouped form on CUDA when there is no autograd graph to build, as the official inference path)."""
    if setting == "always":
        return True
    if setting == "never":
        return False
    if setting != "auto":
        raise ValueError(f"fused_modconv must be one of {FUSED_SETTINGS}, got {setting!r}")
    return x.device.type == "cuda" and not torch.is_grad_enabled()


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *, demodulate: bool = True,
                     up: int = 1, padding: int = 0, resample_filter: torch.Tensor | None = None,
                     fused: bool = False, noise: torch.Tensor | None = None, gain: float = 1.0) -> torch.Tensor:
    """x [N, I, H, W], weight [O, I, k, k], styles [N, I] -> gain * (modconv + noise) [N, O, H*up, W*up];
    `noise` (broadcastable to the output) is added after demodulation, as the official code does.
    `gain` lets a caller fold a later positive scale (the activation gain) into the same pass."""
    n, in_ch = x.shape[0], x.shape[1]
    out_ch, _, kh, kw = weight.shape
    if weight.shape[1] != in_ch or styles.shape != (n, in_ch):
        raise ValueError(f"modulated_conv2d: x {list(x.shape)}, weight {list(weight.shape)} and styles "
                         f"{list(styles.shape)} do not fit")
    w = weight.to(x.dtype)
    s = styles.to(x.dtype)
    noise = noise.to(x.dtype) * gain if noise is not None and gain != 1.0 else noise
    if not fused:
        d = demod_coefficients(w, s) if demodulate else None
        x = x * s.reshape(n, -1, 1, 1)
        x = conv2d_resample(x, w, resample_filter, up=up, padding=padding)
        if d is None and gain != 1.0:
            d = x.new_full([n, 1], gain)
        elif d is not None and gain != 1.0:
            d = d * gain
        if d is not None and noise is not None:
            return torch.addcmul(noise.to(x.dtype), x, d.reshape(n, -1, 1, 1))
        if d is not None:
            return x * d.reshape(n, -1, 1, 1)
        return x + noise.to(x.dtype) if noise is not None else x
    wn = w.unsqueeze(0) * s.reshape(n, 1, -1, 1, 1)                    # [N, O, I, k, k]
    if demodulate:
        wn = wn * ((wn.square().sum(dim=(2, 3, 4)) + DEMOD_EPS).rsqrt() * gain).reshape(n, -1, 1, 1, 1)
    elif gain != 1.0:
        wn = wn * gain
    x = x.reshape(1, n * in_ch, *x.shape[2:])
    x = conv2d_resample(x, wn.reshape(n * out_ch, in_ch, kh, kw), resample_filter, up=up, padding=padding, groups=n)
    x = x.reshape(n, out_ch, *x.shape[2:])
    return x + noise.to(x.dtype) if noise is not None else x
