"""A loss plot drawn with PIL (no matplotlib): one panel per loss term against kimg."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from sgan.viz import save_png

COLORS = [(31, 119, 180), (214, 39, 40), (44, 160, 44), (255, 127, 14), (148, 103, 189), (140, 86, 75)]


def _fmt(v: float) -> str:
    return f"{v:.3g}"


def plot_series(x: Sequence[float], series: dict[str, Sequence[float]], *, title: str = "",
                panel_size: tuple[int, int] = (420, 180)) -> np.ndarray:
    """uint8 [H, W, 3]: one panel per series (name -> values), stacked vertically, shared x."""
    w, h = panel_size
    names = [n for n in series if len(series[n]) == len(x) and len(x) > 0]
    rows = max(len(names), 1)
    img = Image.new("RGB", (w, h * rows + 20), "white")
    draw = ImageDraw.Draw(img)
    draw.text((6, 4), title, fill=(0, 0, 0))
    left, right, top_pad, bottom_pad = 52, 10, 22, 20
    xs = np.asarray(x, dtype=np.float64)
    x0, x1 = (float(xs.min()), float(xs.max())) if len(xs) else (0.0, 1.0)
    if x1 <= x0:
        x1 = x0 + 1.0
    for row, name in enumerate(names):
        ys = np.asarray(series[name], dtype=np.float64)
        finite = np.isfinite(ys)
        oy = 20 + row * h
        box = (left, oy + top_pad, w - right, oy + h - bottom_pad)
        draw.rectangle(box, outline=(120, 120, 120))
        draw.text((left, oy + 4), name, fill=COLORS[row % len(COLORS)])
        if not finite.any():
            continue
        y0, y1 = float(ys[finite].min()), float(ys[finite].max())
        if y1 - y0 < 1e-12:
            y0, y1 = y0 - 0.5, y1 + 0.5
        draw.text((4, box[1]), _fmt(y1), fill=(0, 0, 0))
        draw.text((4, box[3] - 10), _fmt(y0), fill=(0, 0, 0))
        draw.text((box[0], box[3] + 4), _fmt(x0), fill=(0, 0, 0))
        draw.text((box[2] - 40, box[3] + 4), f"{_fmt(x1)} kimg", fill=(0, 0, 0))

        def px(xv: float, yv: float) -> tuple[float, float]:
            return (box[0] + (xv - x0) / (x1 - x0) * (box[2] - box[0]),
                    box[3] - (yv - y0) / (y1 - y0) * (box[3] - box[1]))

        pts = [px(xv, yv) for xv, yv, ok in zip(xs, ys, finite) if ok and math.isfinite(xv)]
        if len(pts) == 1:
            draw.ellipse([pts[0][0] - 2, pts[0][1] - 2, pts[0][0] + 2, pts[0][1] + 2], fill=COLORS[row % len(COLORS)])
        else:
            draw.line(pts, fill=COLORS[row % len(COLORS)], width=2)
    return np.asarray(img)


def plot_losses(records: list[dict], path: str | Path, *, keys: Sequence[str] | None = None) -> Path:
    """Plot the loss terms of stats.jsonl records (one per tick) to a PNG."""
    x = [float(r.get("kimg", 0.0)) for r in records]
    keys = keys or sorted({k for r in records for k in r
                           if k.startswith(("G_", "D_")) or k in ("lod", "aug_p", "aug_rt", "acc_real", "acc_fake")})
    series = {k: [float(r.get(k, float("nan"))) for r in records] for k in keys}
    return save_png(path, plot_series(x, series, title="sgan train: losses per tick"))
