"""LPIPS (Zhang et al. 2018), VGG16 variant, version 0.1: a differentiable perceptual distance.

`LPIPS()(x0, x1)` takes two image batches in [-1, 1] (NCHW, same shape) and returns one distance
per pair [N]. It equals `lpips.LPIPS(net='vgg', version='0.1')` with `normalize=False`: shift and
scale the input to ImageNet statistics, take relu1_2 .. relu5_3 of VGG16, unit-normalise each
feature vector over channels, square the differences, weigh channels with the v0.1 linear layers,
average over space and sum over the five layers.

The v0.1 linear weights ship with sgan (`lpips_vgg_v0.1.npz`, five [1, C, 1, 1] arrays taken from
the `lpips` package, Copyright (c) 2018 Richard Zhang, Phillip Isola, Alexei A. Efros, Eli Shechtman,
Oliver Wang, BSD-2-Clause licence: see LICENSE-lpips.txt beside this file). The VGG16 trunk is
torchvision's ImageNet file `vgg16-397923af.pth`, which the user supplies (sgan.metrics.weights).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from sgan.errors import DetectorError
from sgan.metrics.vgg import LPIPS_CHANNELS, VGG16

LIN_WEIGHTS_FILE = Path(__file__).with_name("lpips_vgg_v0.1.npz")
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


def load_lin_weights(path: str | Path = LIN_WEIGHTS_FILE) -> dict[str, torch.Tensor]:
    """The five linear layers as {"lin{k}.model.1.weight": [1, C, 1, 1]}, checked strictly."""
    try:
        with np.load(path, allow_pickle=False) as data:
            weights = {k: torch.from_numpy(np.array(data[k], dtype=np.float32)) for k in data.files}
    except (OSError, ValueError) as err:
        raise DetectorError(f"{path}: cannot read the LPIPS linear weights ({err}); reinstall sgan.") from None
    expected = {f"lin{k}.model.1.weight": (1, c, 1, 1) for k, c in enumerate(LPIPS_CHANNELS)}
    got = {k: tuple(v.shape) for k, v in weights.items()}
    if got != expected:
        raise DetectorError(f"{path}: LPIPS linear weights have keys/shapes {got}, expected {expected}.")
    return weights


class LPIPS(nn.Module):
    """LPIPS-VGG v0.1. `vgg` holds the trunk (load it with sgan.metrics.weights); the linear heads
    are loaded from the packaged file. Parameters are frozen; gradients flow to the inputs."""

    def __init__(self, vgg: VGG16 | None = None, lin_weights: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        self.vgg = vgg if vgg is not None else VGG16(with_classifier=False)
        lin = lin_weights if lin_weights is not None else load_lin_weights()
        for k in range(len(LPIPS_CHANNELS)):
            self.register_buffer(f"lin{k}", lin[f"lin{k}.model.1.weight"].reshape(1, -1, 1, 1).clone())
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """x0, x1 [N, 3, H, W] in [-1, 1] -> distances [N]."""
        if x0.shape != x1.shape or x0.ndim != 4 or x0.shape[1] != 3:
            raise ValueError(f"LPIPS takes two [N, 3, H, W] batches of one shape, got {list(x0.shape)} and {list(x1.shape)}")
        n = x0.shape[0]
        feats = self.vgg.taps((torch.cat([x0, x1]) - self.shift) / self.scale)
        total = x0.new_zeros(n)
        for k, f in enumerate(feats):
            f = f / (f.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
            diff = (f[:n] - f[n:]).square()
            total = total + (diff * getattr(self, f"lin{k}")).sum(dim=1).mean(dim=(1, 2))
        return total
