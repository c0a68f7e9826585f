"""Choosing and loading a detector: `inception`, `vgg16`, `lpips` or an sgan detector file.

- `load_feature_detector(spec)`: a `FeatureDetector` (FID, KID, precision/recall) mapping uint8
  images [N, C, H, W] to float32 features [N, D]. `inception` = pool3 of the FID Inception (2048-d),
  `vgg16` = relu(fc2) of VGG16 (4096-d), a file = the offline detector's penultimate layer.
- `load_distance(spec)`: a PPL distance of two [-1, 1] image batches -> [N]: `lpips` / `vgg16` =
  LPIPS-VGG v0.1, a file = the offline detector's perceptual distance.
- `load_attribute_detector(spec)`: the offline detector for linear separability.
- `load_perceptual_features(spec)`: a differentiable [-1, 1] -> features module (projection losses).

Every detector carries `name` (shown with every result, so that nobody takes the offline
detector's FID for Inception's) and `sha256` of its weight file (in results and cache keys).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from sgan.errors import UsageError
from sgan.metrics import inception as inc
from sgan.metrics.lpips import LPIPS
from sgan.metrics.shapes_detector import ShapesNet, load_detector_file
from sgan.metrics.vgg import VGG16, preprocess_pr
from sgan.metrics.weights import locate, read_state_dict, load_strict, sha256_file

STANDARD = ("inception", "vgg16", "lpips")


class FeatureDetector(nn.Module):
    """uint8 images [N, C, H, W] -> features [N, dim] (float32), no gradients."""

    name: str
    sha256: str
    dim: int
    options: dict
    # Each subclass defines `features(images_uint8) -> [N, dim]`.


class InceptionDetector(FeatureDetector):
    def __init__(self, net: inc.FIDInceptionV3, *, sha256: str, mode: str = "tf", source: str = "") -> None:
        super().__init__()
        if mode not in inc.PREPROCESS_MODES:
            raise UsageError(f"--inception-mode {mode!r}: use one of {', '.join(inc.PREPROCESS_MODES)}.")
        self.net = net.eval().requires_grad_(False)
        self.mode, self.sha256, self.dim = mode, sha256, net.feature_dim
        self.name = f"inception-v3-fid ({mode} resize, sha256 {sha256[:8]})"
        self.options = {"preprocess": mode, "source": source}

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(inc.preprocess(images, self.mode)).float()


class VGGDetector(FeatureDetector):
    def __init__(self, net: VGG16, *, sha256: str, source: str = "") -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.sha256, self.dim = sha256, VGG16.fc2_dim
        self.name = f"vgg16-fc2 (sha256 {sha256[:8]})"
        self.options = {"preprocess": "tf-224-imagenet", "source": source}

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.fc2(preprocess_pr(images)).float()


class ShapesFeatureDetector(FeatureDetector):
    def __init__(self, net: ShapesNet, *, sha256: str, source: str) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.sha256, self.dim = sha256, net.feature_dim
        self.name = shapes_name(source, sha256)
        self.options = {"preprocess": f"area/bilinear to {net.resolution}", "source": source}

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.net.features(images.float() / 127.5 - 1.0).float()


def shapes_name(source: str | os.PathLike, sha256: str) -> str:
    return f"shapes-detector:{Path(source).name} (sha256 {sha256[:8]}; offline, not comparable with Inception)"


def _is_file_spec(spec: str) -> bool:
    return spec not in STANDARD


def _check_spec(spec: str) -> str:
    spec = str(spec).strip()
    if not spec:
        raise UsageError("--detector is empty; use inception, vgg16, lpips or a detector file.")
    return spec


def load_inception(weights: str | os.PathLike | None = None, *, mode: str = "tf",
                   device: torch.device | str = "cpu") -> InceptionDetector:
    path = locate("inception", weights)
    net = inc.FIDInceptionV3()
    load_strict(net, read_state_dict(path, "Inception-v3"), source=str(path), what="FID Inception-v3",
                optional_prefixes=("fc.",))
    return InceptionDetector(net, sha256=sha256_file(path), mode=mode, source=str(path)).to(device)


def load_vgg16(weights: str | os.PathLike | None = None, *, with_classifier: bool = True) -> tuple[VGG16, str, Path]:
    path = locate("vgg16", weights)
    net = VGG16(with_classifier=with_classifier)
    state = read_state_dict(path, "VGG16")
    if not with_classifier:
        state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
    load_strict(net, state, source=str(path), what="torchvision VGG16")
    return net, sha256_file(path), path


def load_feature_detector(spec: str = "inception", *, weights: str | os.PathLike | None = None,
                          inception_mode: str = "tf", device: torch.device | str = "cpu") -> FeatureDetector:
    """The feature extractor named by `spec` (see the module docstring)."""
    spec = _check_spec(spec)
    if spec == "inception":
        return load_inception(weights, mode=inception_mode, device=device)
    if spec in ("vgg16", "lpips"):
        net, sha, path = load_vgg16(weights)
        return VGGDetector(net, sha256=sha, source=str(path)).to(device)
    net, sha = load_detector_file(spec)
    return ShapesFeatureDetector(net, sha256=sha, source=spec).to(device)


class Distance(nn.Module):
    """A PPL distance: two [-1, 1] batches -> [N]; `name` and `sha256` identify it."""

    def __init__(self, fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], module: nn.Module, *, name: str,
                 sha256: str) -> None:
        super().__init__()
        self.module, self._fn, self.name, self.sha256 = module, fn, name, sha256

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        return self._fn(x0, x1)


def load_lpips(weights: str | os.PathLike | None = None, *, device: torch.device | str = "cpu") -> tuple[LPIPS, str]:
    """LPIPS-VGG v0.1 (differentiable) and the sha256 of the VGG16 file it runs on."""
    vgg, sha, _ = load_vgg16(weights, with_classifier=False)
    return LPIPS(vgg).to(device), sha


def load_distance(spec: str = "lpips", *, weights: str | os.PathLike | None = None,
                  device: torch.device | str = "cpu") -> Distance:
    spec = _check_spec(spec)
    if spec == "inception":
        raise UsageError("PPL measures with LPIPS; use --detector lpips (VGG16 weights) or an offline detector file.")
    if spec in ("vgg16", "lpips"):
        module, sha = load_lpips(weights, device=device)
        return Distance(module, module, name=f"lpips-vgg16-v0.1 (sha256 {sha[:8]})", sha256=sha)
    net, sha = load_detector_file(spec)
    net = net.to(device)
    return Distance(net.perceptual_distance, net, name=shapes_name(spec, sha), sha256=sha)


def load_attribute_detector(spec: str, *, device: torch.device | str = "cpu") -> tuple[ShapesNet, str, str]:
    """(network, name, sha256) of the offline detector whose heads give the LS attributes."""
    spec = _check_spec(spec)
    if spec in STANDARD:
        raise UsageError(f"linear separability needs attribute classifiers, which --detector {spec} does not have; "
                         f"train the offline detector (`sgan detector train DATA.lmdb --out shapes-detector.pt`) "
                         f"and pass --detector shapes-detector.pt.")
    net, sha = load_detector_file(spec)
    return net.to(device), shapes_name(spec, sha), sha


def load_perceptual_features(spec: str, *, weights: str | os.PathLike | None = None,
                             device: torch.device | str = "cpu") -> tuple[nn.Module, str]:
    """A frozen, differentiable module mapping [-1, 1] images [N, 3, H, W] to features [N, D], and its
    name: `inception` (pool3), `vgg16` (relu fc2) or an offline detector file (penultimate layer)."""
    spec = _check_spec(spec)
    if spec == "inception":
        det = load_inception(weights, device=device)
        net = det.net

        def fn(x):
            return net(inc.preprocess((x + 1.0) * 127.5, det.mode))
        name = det.name
    elif spec in ("vgg16", "lpips"):
        vgg, sha, _ = load_vgg16(weights)
        vgg = vgg.to(device).eval().requires_grad_(False)

        def fn(x):
            return vgg.fc2(preprocess_pr((x + 1.0) * 127.5))
        name = f"vgg16-fc2 (sha256 {sha[:8]})"
        net = vgg
    else:
        net, sha = load_detector_file(spec)
        net = net.to(device)
        fn, name = net.features, shapes_name(spec, sha)
    return _Wrapped(fn, net), name


class _Wrapped(nn.Module):
    def __init__(self, fn, net: nn.Module) -> None:
        super().__init__()
        self.net, self._fn = net, fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fn(x)
