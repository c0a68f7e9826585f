"""The projector's perceptual distance: LPIPS-VGG when its weights are there, otherwise a fallback.

- `lpips-vgg`: the learned perceptual metric (Zhang et al. 2018) on VGG16 features, what the
  reference projectors use. Needs the user's VGG16/LPIPS weight files (see `sgan.metrics.lpips`).
- `detector`: LPIPS' recipe (unit-normalised channels, squared differences, uniform weights) over
  the conv stages of sgan's offline detector (a file made by `sgan detector train`).
- `pixel-gradient`: the fallback that needs no weights: at every scale of an image pyramid (the
  image, then 2x2 average-pooled down to 8 px), the mean absolute difference of the pixels and of
  their horizontal and vertical gradients, summed over scales. The gradients keep edges sharp
  where plain MSE blurs; the coarse scales pull colours and layout into place early.

Every loss takes images in [-1, 1], [N, C, H, W], and returns one distance per image [N].
`perceptual_loss(kind, ...)` picks one by name; `auto` tries LPIPS and falls back, and the name of
the loss actually used is recorded in the projection's JSON.
"""

from __future__ import annotations

import os
import torch
import torch.nn.functional as F
from torch import nn

from sgan.errors import DetectorError, UsageError

KINDS = ("auto", "lpips", "pixel-gradient", "detector")


class PixelGradientLoss(nn.Module):
    name = "pixel-gradient"

    def __init__(self, min_size: int = 8) -> None:
        super().__init__()
        self.min_size = min_size

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if x.shape != y.shape or x.ndim != 4:
            raise ValueError(f"images must be equal [N, C, H, W], got {list(x.shape)} and {list(y.shape)}")
        total = x.new_zeros(x.shape[0])
        while True:
            d = x - y
            total = total + d.abs().mean(dim=(1, 2, 3))
            total = total + (d[..., 1:, :] - d[..., :-1, :]).abs().mean(dim=(1, 2, 3))
            total = total + (d[..., :, 1:] - d[..., :, :-1]).abs().mean(dim=(1, 2, 3))
            if x.shape[-1] <= self.min_size:
                return total
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)


def _lpips(weights: str | os.PathLike | None, device: torch.device) -> nn.Module:
    """LPIPS-VGG v0.1 (sgan.metrics.lpips) on the user's torchvision VGG16 file, found as the metrics
    find it (--lpips-weights, $SGAN_VGG16_WEIGHTS, $SGAN_WEIGHTS_DIR, the torch hub cache).
    Raises DetectorError when the file is missing or wrong. Images larger than 256 px are
    area-downsampled to 256 first, as the StyleGAN2-ADA projector does."""
    from sgan.metrics.lpips import LPIPS
    from sgan.metrics.vgg import VGG16
    from sgan.metrics.weights import load_strict, locate, read_state_dict

    try:
        path = locate("vgg16", weights)
    except DetectorError:
        from sgan.metrics.weights import hub_checkpoints_dir

        where = f"--lpips-weights {weights}: no such file" if weights else "not found"
        raise DetectorError(f"LPIPS-VGG needs torchvision's VGG16 weights vgg16-397923af.pth ({where}); pass "
                            f"--lpips-weights PATH, set SGAN_VGG16_WEIGHTS or put the file in {hub_checkpoints_dir()}/, "
                            "or use --loss pixel-gradient.") from None
    vgg = VGG16(with_classifier=False)
    load_strict(vgg, read_state_dict(path, "VGG16"), source=str(path), what="VGG16", optional_prefixes=("classifier.",))
    model = LPIPS(vgg).to(device)

    class LpipsDistance(nn.Module):
        name = "lpips-vgg"

        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            if x.shape[-1] > 256:
                x, y = F.interpolate(x, size=(256, 256), mode="area"), F.interpolate(y, size=(256, 256), mode="area")
            if x.shape[1] == 1:
                x, y = x.expand(-1, 3, -1, -1), y.expand(-1, 3, -1, -1)
            return self.model(x, y)

    return LpipsDistance()


def _detector(path: str | os.PathLike, device: torch.device) -> nn.Module:
    """The offline detector's LPIPS-like distance over its conv stages (sgan.metrics.shapes_detector)."""
    from sgan.metrics.shapes_detector import load_detector_file

    net, _sha = load_detector_file(path)
    net = net.to(device).eval().requires_grad_(False)

    class DetectorDistance(nn.Module):
        name = f"detector:{os.path.basename(str(path))}"

        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return self.net.perceptual_distance(x, y)

    return DetectorDistance()


def perceptual_loss(kind: str = "auto", *, device: torch.device | str = "cpu", lpips_weights: str | os.PathLike | None = None,
                    detector: str | os.PathLike | None = None) -> tuple[nn.Module, str | None]:
    """(loss module with `.name`, a note on any fallback or None)."""
    device = torch.device(device)
    if kind not in KINDS:
        raise UsageError(f"--loss {kind!r}: choose auto, lpips, pixel-gradient or detector.")
    if kind == "detector" or (kind == "auto" and detector is not None):
        if detector is None:
            raise UsageError("--loss detector needs --detector FILE (made by `sgan detector train`).")
        return _detector(detector, device), None
    if kind == "pixel-gradient":
        return PixelGradientLoss().to(device), None
    try:
        return _lpips(lpips_weights, device), None
    except DetectorError:
        if kind == "lpips":
            raise
        return PixelGradientLoss().to(device), ("LPIPS-VGG unavailable (no VGG16 weights vgg16-397923af.pth; give "
                                                "--lpips-weights PATH): using the pixel-gradient loss")
