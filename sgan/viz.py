"""Images: tensors to uint8, grids, and PNG files (numpy + PIL, no torchvision)."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from sgan.fileio import atomic_write_bytes


def to_uint8(images: torch.Tensor, *, drange: tuple[float, float] = (-1.0, 1.0)) -> np.ndarray:
    """images [N, C, H, W] in `drange` -> uint8 [N, H, W, C] (rounded, clipped), as the official tools."""
    if images.ndim != 4:
        raise ValueError(f"images must be [N, C, H, W], got {list(images.shape)}")
    lo, hi = drange
    x = (images.detach().float() - lo) * (255.0 / (hi - lo))
    x = x.round().clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def image_grid(images: np.ndarray, *, cols: int | None = None, pad: int = 0, pad_value: int = 0) -> np.ndarray:
    """uint8 [N, H, W, C] -> one [rows*H, cols*W, C] image, row by row."""
    if images.ndim != 4:
        raise ValueError(f"images must be [N, H, W, C], got {list(images.shape)}")
    n, h, w, c = images.shape
    cols = cols or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    canvas = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), pad_value, dtype=np.uint8)
    for i in range(n):
        r, k = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + k * (w + pad)
        canvas[y:y + h, x:x + w] = images[i]
    return canvas


def upscale_nearest(image: np.ndarray, factor: int) -> np.ndarray:
    """Make small images visible: repeat each pixel `factor` times along H and W."""
    return image if factor <= 1 else image.repeat(factor, axis=0).repeat(factor, axis=1)


def png_bytes(image: np.ndarray, *, text: Mapping[str, Any] | None = None) -> bytes:
    """uint8 [H, W, C] (C = 1, 3 or 4) or [H, W] -> PNG bytes; `text` becomes the file's text chunks
    (tEXt, or iTXt for values outside Latin-1), one per key: strings as they are, other values as JSON."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    info = None
    if text:
        info = PngInfo()
        for key, value in text.items():
            if value is None:
                continue
            if not 0 < len(key) < 80 or not key.isascii():
                raise ValueError(f"a PNG text key must be 1-79 ASCII characters, got {key!r}")
            info.add_text(key, value if isinstance(value, str) else json.dumps(value))
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def save_png(path: str | os.PathLike, image: np.ndarray, *, text: Mapping[str, Any] | None = None) -> Path:
    """Write a uint8 [H, W, C] image as PNG, atomically, with `text` chunks (see png_bytes): sgan's
    commands put what made the image there (sgan.play.provenance)."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise ValueError(f"image must be uint8 [H, W, C], got {image.dtype} {list(image.shape)}")
    return atomic_write_bytes(path, png_bytes(image, text=text))


def read_png_text(path: str | os.PathLike) -> dict[str, str]:
    """The text chunks of a PNG file (what `Image.open(path).text` shows)."""
    with Image.open(path) as img:
        img.load()
        return dict(getattr(img, "text", {}) or {})
