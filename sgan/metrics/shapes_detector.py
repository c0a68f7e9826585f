"""The offline detector: a small CNN trained by sgan on a labelled database (`builtin:shapes`, or any
database with class labels: folders, dataset.json, `builtin:digits`).

It stands in for Inception / VGG / the CelebA classifiers where those weights cannot be had, so
that every metric runs end to end on a machine without a network. Its numbers are *not* comparable
with papers: results name the detector (`shapes-detector:<file> (sha256 ...)`).

- `features`: the penultimate layer (FID, KID, precision/recall);
- `class_logits`: the class (the shape, the digit, ...; plus `junk` when trained with junk
  images, sgan.metrics.junk); `binary_logits` (shapes only): attribute splits at the training medians
  (position, size, colour); together the attributes of linear separability;
- `perceptual_distance`: LPIPS' recipe without learned weights over the conv stages (PPL).

A detector file holds only tensors and plain values and loads with torch.load(weights_only=True):
`{"format": "sgan-detector", "format_version": 1, "kind": "shapes-cnn", "config": "<JSON>",
"state_dict": {...}}`.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sgan.errors import DetectorError
from sgan.fileio import atomic_write
from sgan.metrics.weights import load_strict, sha256_file

FORMAT = "sgan-detector"
FORMAT_VERSION = 1
KIND = "shapes-cnn"
JUNK = "junk"   # the name of the extra class of corrupted images (sgan.metrics.junk), when trained with one


class ShapesNet(nn.Module):
    """Images in [-1, 1] (any size; resized to `resolution`) -> features, class and attribute logits.

    config: resolution, channels [c0, c1, c2], feature_dim, class_names [K], binary
    [{"name", "source", "threshold"}], plus training notes (held-out accuracy, dataset)."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self.config = dict(config)
        r = int(config["resolution"])
        c0, c1, c2 = (int(c) for c in config["channels"])
        if r < 8 or r & (r - 1):
            raise DetectorError(f"detector resolution {r} must be a power of two from 8 up.")
        self.resolution = r
        self.class_names = list(config["class_names"])
        self.binary_names = [b["name"] for b in config["binary"]]
        self.feature_dim = int(config["feature_dim"])
        self.stages = nn.ModuleList()
        cin = 3
        for c in (c0, c1, c2):
            self.stages.append(nn.ModuleList([nn.Conv2d(cin, c, 3, padding=1), nn.Conv2d(c, c, 3, stride=2, padding=1)]))
            cin = c
        self.fc = nn.Linear(c2 * (r // 8) ** 2, self.feature_dim)
        self.class_head = nn.Linear(self.feature_dim, len(self.class_names))
        with warnings.catch_warnings():  # a class dataset has no attributes: a zero-output head
            warnings.simplefilter("ignore")
            self.binary_head = nn.Linear(self.feature_dim, len(self.binary_names))

    @property
    def junk_index(self) -> int | None:
        """Index of the junk class in `class_names` (the last one), or None when it was trained without."""
        name = self.config.get("junk_class")
        return self.class_names.index(name) if name and name in self.class_names else None

    @property
    def real_class_names(self) -> list[str]:
        """The dataset's classes (`class_names` without the junk class)."""
        j = self.junk_index
        return [c for i, c in enumerate(self.class_names) if i != j]

    @property
    def attribute_names(self) -> list[str]:
        """The binary attributes of linear separability: one per class (one-vs-rest), then the splits."""
        return [f"is_{c}" for c in self.class_names] + self.binary_names

    @property
    def ls_attributes(self) -> list[int]:
        """Indices into `attribute_names` used by linear separability (those read reliably when trained)."""
        skip = set(self.config.get("ls_exclude", []))
        return [i for i, name in enumerate(self.attribute_names) if name not in skip]

    def init_weights(self, generator: torch.Generator) -> None:
        """He-normal weights and zero biases from `generator` (no global RNG)."""
        with torch.no_grad():
            for name, p in self.named_parameters():
                if name.endswith("bias"):
                    p.zero_()
                else:
                    fan_in = math.prod(p.shape[1:])
                    p.copy_(torch.randn(p.shape, generator=generator) * math.sqrt(2.0 / fan_in))

    def _resize(self, x: torch.Tensor) -> torch.Tensor:
        assert x.ndim == 4 and x.shape[1] in (1, 3), f"expected [N, 1 or 3, H, W] images, got {list(x.shape)}"
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        if x.shape[2:] == (self.resolution, self.resolution):
            return x
        if x.shape[2] >= self.resolution and x.shape[3] >= self.resolution:
            return F.interpolate(x, size=(self.resolution, self.resolution), mode="area")
        return F.interpolate(x, size=(self.resolution, self.resolution), mode="bilinear", align_corners=False)

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The activation after each stage ([-1, 1] input)."""
        x = self._resize(x)
        out = []
        for conv, down in self.stages:
            x = F.leaky_relu(down(F.leaky_relu(conv(x), 0.2)), 0.2)
            out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """x [N, 3, H, W] in [-1, 1] -> (features [N, F], class logits [N, K], binary logits [N, A])."""
        h = self.taps(x)[-1]
        feats = F.relu(self.fc(h.flatten(1)))
        return feats, self.class_head(feats), self.binary_head(feats)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward(x)[0]

    def attribute_probs(self, x: torch.Tensor) -> torch.Tensor:
        """Probability of each attribute of `attribute_names` being true [N, K + A]."""
        _, cls, binary = self.forward(x)
        return torch.cat([cls.softmax(dim=1), torch.sigmoid(binary)], dim=1)

    def perceptual_distance(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """LPIPS' recipe with uniform channel weights over the stages: [N] distances of [-1, 1] images."""
        n = x0.shape[0]
        total = x0.new_zeros(n)
        for f in self.taps(torch.cat([x0, x1])):
            f = f / (f.square().sum(dim=1, keepdim=True).sqrt() + 1e-10)
            total = total + (f[:n] - f[n:]).square().sum(dim=1).mean(dim=(1, 2))
        return total


def save_detector(path: str | os.PathLike, net: ShapesNet) -> Path:
    """Write the detector file atomically (tensors and plain values only)."""
    payload = {"format": FORMAT, "format_version": FORMAT_VERSION, "kind": KIND,
               "config": json.dumps(net.config, sort_keys=True),
               "state_dict": {k: v.detach().cpu().clone() for k, v in net.state_dict().items()}}
    return atomic_write(path, lambda f: torch.save(payload, f))


def is_detector_file(path: str | os.PathLike) -> bool:
    return Path(path).is_file()


def load_detector_file(path: str | os.PathLike) -> tuple[ShapesNet, str]:
    """(network in eval mode, sha256 of the file); a one-line DetectorError for anything else."""
    p = Path(path)
    if not p.is_file():
        raise DetectorError(f"{p}: no such detector file; train one with `sgan detector train DATA.lmdb --out {p}` "
                            f"or use --detector inception / vgg16.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:
        raise DetectorError(f"{p}: not an sgan detector file ({type(err).__name__}); train one with "
                            f"`sgan detector train DATA.lmdb --out FILE`.") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DetectorError(f"{p}: not an sgan detector file (it has no format '{FORMAT}'); for Inception or VGG16 "
                            f"weights use --detector inception|vgg16 --detector-weights {p}.")
    if not isinstance(data.get("format_version"), int) or data["format_version"] > FORMAT_VERSION:
        raise DetectorError(f"{p}: detector format version {data.get('format_version')} is newer than this sgan "
                            f"reads ({FORMAT_VERSION}); upgrade sgan.")
    if data.get("kind") != KIND:
        raise DetectorError(f"{p}: unknown detector kind {data.get('kind')!r}; this sgan knows '{KIND}'.")
    try:
        config = json.loads(data["config"])
        net = ShapesNet(config)
    except (KeyError, ValueError, TypeError) as err:
        raise DetectorError(f"{p}: the detector file is damaged ({err}); train it again.") from None
    load_strict(net, data.get("state_dict") or {}, source=str(p), what="shapes-detector")
    net.eval().requires_grad_(False)
    return net, sha256_file(p)
