"""The user-set input transform of a StyleGAN3 generator (gen_images.py --translate / --rotate, the visualizer).

`make_transform(translate, rotate)` is the image transform [[cos, sin, tx], [-sin, cos, ty], [0, 0, 1]]
(rotate in degrees about the image centre; translate in image widths: the image spans [-0.5, 0.5] in
the input's coordinates), as gen_images.py builds it; the input layer's `transform` buffer holds its
inverse. `input_transform(G, ...)` sets it for the duration of a `with` block.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator, Sequence

import numpy as np
import torch
from torch import nn


def make_transform(translate: Sequence[float] = (0.0, 0.0), rotate: float = 0.0) -> np.ndarray:
    """The 3x3 float64 image transform for a translation (x, y) and a rotation in degrees."""
    tx, ty = (float(v) for v in translate)
    a = math.radians(float(rotate))
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, s, tx], [-s, c, ty], [0.0, 0.0, 1.0]])


def inverse_transform(translate: Sequence[float] = (0.0, 0.0), rotate: float = 0.0) -> torch.Tensor:
    """The value of the input layer's `transform` buffer for this translation and rotation (float32)."""
    return torch.from_numpy(np.linalg.inv(make_transform(translate, rotate))).float()


def input_layer(G: nn.Module) -> nn.Module:
    layer = getattr(getattr(G, "synthesis", None), "input", None)
    if layer is None or "transform" not in getattr(layer, "_buffers", {}):
        raise ValueError("this generator has no input transform (only StyleGAN3 generators take --translate/--rotate)")
    return layer


@contextlib.contextmanager
def input_transform(G: nn.Module, *, translate: Sequence[float] = (0.0, 0.0), rotate: float = 0.0) -> Iterator[nn.Module]:
    """Render with the image translated by `translate` and rotated by `rotate` degrees, then restore."""
    layer = input_layer(G)
    saved = layer.transform.detach().clone()
    with torch.no_grad():
        layer.transform.copy_(inverse_transform(translate, rotate).to(saved.device))
    try:
        yield G
    finally:
        with torch.no_grad():
            layer.transform.copy_(saved)
