"""G_ema: the exponential moving average of G's weights (StyleGAN `Gs`, G_smoothing_kimg 10).

beta = 0.5 ** (batch / (half_life_kimg * 1000)) per step, so the half-life is counted in images
and does not depend on the batch size. The optional ramp-up (StyleGAN2-ADA `ema_rampup`) caps the
half-life at `rampup * cur_nimg` early on, so a short run's G_ema is not dominated by the random
initialisation. Buffers (w_avg, constant noise) are copied, as the official `beta_nontrainable=0`.
"""

from __future__ import annotations

import torch
from torch import nn


def ema_beta(batch: int, half_life_kimg: float, *, cur_nimg: int = 0, rampup: float | None = None) -> float:
    half_life_nimg = half_life_kimg * 1000.0
    if rampup is not None and rampup > 0:
        half_life_nimg = min(half_life_nimg, cur_nimg * rampup)
    if half_life_nimg <= 0:
        return 0.0
    return 0.5 ** (batch / half_life_nimg)


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, beta: float) -> None:
    """ema <- lerp(model, ema, beta) for parameters; buffers copied."""
    ema_params = [p for p in ema.parameters()]
    params = [p.detach() for p in model.parameters()]
    if beta == 0.0:
        torch._foreach_copy_(ema_params, params)
    else:
        torch._foreach_lerp_(ema_params, params, 1.0 - beta)
    for b_ema, b in zip(ema.buffers(), model.buffers()):
        b_ema.copy_(b)
