"""`builtin:shapes`: a procedural dataset of anti-aliased geometric shapes, with their labels.

Image `i` of a dataset depends only on `(seed, start + i, variant)`: its random numbers come from
`numpy.random.SeedSequence([seed, index, crc32(variant)])`, so any slice of the dataset can be
rendered alone, in any order, by any number of processes, and the same seed gives the same images
whatever `count` is. Pixels are drawn at the requested size (4x supersampled polygons box-averaged
down), so a 32 px dataset costs a 32 px render, not a 256 px one.

The factors are split the way style mixing separates them: coarse (shape class, position, size,
rotation) and fine (the shape's colour, the background's tint, gradient and texture).

Difficulty lives in `VARIANTS`, plain values only: edit an entry to make a variant easier or harder.
The `default` variant is meant to be learnable by a narrow StyleGAN at 32 px in twenty minutes on
a 2-core CPU, so it is drawn like MNIST digits: one bright, upright, near-centred shape from 4
classes on a near-black background whose faint gradient only tints it. Measured (docs/train.md):
random-colour backgrounds failed in that budget, and so did shapes jittered over the image and
rotated at random, where the generator collapsed to one centred blob. `medium` puts rotated,
jittered shapes on random-colour gradients; `hard` adds textures, up to three shapes, more classes,
two-tone fills and a wider range of sizes.
"""

from __future__ import annotations

import colorsys
import math
import zlib
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

SHAPE_CLASSES = ["circle", "square", "triangle", "star"]
"""Classes of the default variant; `shape_id` indexes `ALL_SHAPE_CLASSES`, which starts with these."""

ALL_SHAPE_CLASSES = SHAPE_CLASSES + ["pentagon", "hexagon", "ring", "cross"]

BACKGROUND_KINDS = ["solid", "gradient", "stripes", "checker", "noise"]
FILL_KINDS = ["solid", "two-tone"]

# Rotational symmetry period of each class in degrees (0: rotation has no visible effect).
SYMMETRY = {"circle": 0.0, "square": 90.0, "triangle": 120.0, "star": 72.0,
            "pentagon": 72.0, "hexagon": 60.0, "ring": 0.0, "cross": 90.0}

# How each numeric label changes when an image is mirrored left-right (every shape here is
# symmetric about its vertical axis, so mirroring one rotated by r gives it rotated by -r).
XFLIP_LABELS = {"cx": "one_minus", "rotation": "negate", "bg_angle": "mirror_angle"}

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {
        "classes": ["circle", "square", "triangle", "star"],
        "shapes_per_image": [1, 1],
        "size": [0.26, 0.36],          # circumradius as a fraction of the image side (coarse)
        "jitter": 0.05,                # largest offset of the centre from the image centre (coarse): near-centred
        "rotation": 0.0,               # fraction of the class's symmetry period drawn (coarse): upright
        "fg_hue": [0.0, 1.0],          # the shape's colour, HSV ranges (fine)
        "fg_saturation": [0.75, 1.0],
        "fg_value": [0.9, 1.0],
        "fill_kinds": ["solid"],
        "bg_kinds": ["gradient"],
        "bg_hue": [0.0, 1.0],          # background tint (fine)
        "bg_saturation": [0.3, 0.7],
        "bg_value": [0.03, 0.10],      # near black
        "bg_contrast": [0.02, 0.08],   # value difference between the gradient's two ends: subtle
        "supersample": 4,
    },
    "medium": {
        "classes": ["circle", "square", "triangle", "star"],
        "shapes_per_image": [1, 1],
        "size": [0.2, 0.34],
        "jitter": 0.2,
        "rotation": 1.0,
        "fg_hue": [0.0, 1.0],
        "fg_saturation": [0.4, 1.0],
        "fg_value": [0.5, 1.0],
        "fill_kinds": ["solid"],
        "bg_kinds": ["solid", "gradient"],
        "bg_hue": [0.0, 1.0],
        "bg_saturation": [0.0, 1.0],
        "bg_value": [0.1, 0.9],
        "bg_contrast": [0.1, 0.5],
        "supersample": 4,
    },
    "hard": {
        "classes": list(ALL_SHAPE_CLASSES),
        "shapes_per_image": [1, 3],
        "size": [0.12, 0.32],
        "jitter": 0.4,
        "rotation": 1.0,
        "fg_hue": [0.0, 1.0],
        "fg_saturation": [0.2, 1.0],
        "fg_value": [0.3, 1.0],
        "fill_kinds": ["solid", "two-tone"],
        "bg_kinds": ["gradient", "stripes", "checker", "noise"],
        "bg_hue": [0.0, 1.0],
        "bg_saturation": [0.0, 1.0],
        "bg_value": [0.1, 0.9],
        "bg_contrast": [0.1, 0.5],
        "supersample": 4,
    },
}

_STAR_INNER = 0.5      # inner / outer radius of the star (fat enough to read at 32 px)
_RING_INNER = 0.6      # hole / outer radius of the ring
_CROSS_ARM = 0.34      # half-width of the cross's arms / its circumradius-ish reach


def render_shapes(count: int, *, seed: int, size: int, variant: str = "default",
                  start: int = 0) -> tuple[np.ndarray, list[dict]]:
    """Render images `start .. start+count-1` of the dataset named by (seed, variant) at `size` px.

    Returns uint8 images [count, size, size, 3] and one attribute dict per image. Positions (`cx`,
    `cy`) and `size` are fractions of the image side; `rotation` is in degrees, inside the class's
    symmetry period; colours are 0..255 RGB lists; `shape_id` indexes `ALL_SHAPE_CLASSES`.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown shapes variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    assert count >= 0 and size >= 1 and seed >= 0 and start >= 0, (count, size, seed, start)
    params = VARIANTS[variant]
    code = zlib.crc32(variant.encode("utf-8"))
    images = np.empty((count, size, size, 3), dtype=np.uint8)
    attrs = []
    for i in range(count):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(start + i), code]))
        images[i], a = _render_one(rng, size, params)
        attrs.append(a)
    return images, attrs


def _uniform(rng: np.random.Generator, bounds) -> float:
    lo, hi = bounds
    return float(lo + (hi - lo) * rng.random())


def _hsv_rgb(h: float, s: float, v: float) -> list[int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return [int(round(r * 255)), int(round(g * 255)), int(round(b * 255))]


@lru_cache(maxsize=8)
def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates in [0, 1], shaped [size, size, 1]."""
    c = (np.arange(size, dtype=np.float32) + 0.5) / size
    return c.reshape(1, size, 1).repeat(size, 0), c.reshape(size, 1, 1).repeat(size, 1)


def _render_one(rng: np.random.Generator, size: int, p: dict[str, Any]) -> tuple[np.ndarray, dict]:
    # Background first (fine factors), then the shapes (coarse factors and their colour).
    bg_kind = str(rng.choice(p["bg_kinds"]))
    bg_hue = _uniform(rng, p["bg_hue"])
    bg_sat = _uniform(rng, p["bg_saturation"])
    bg_val = _uniform(rng, p["bg_value"])
    contrast = _uniform(rng, p["bg_contrast"])
    bg_hue2 = bg_hue if bg_kind in ("solid", "gradient") and p["bg_value"][1] < 0.2 else _uniform(rng, p["bg_hue"])
    val2 = bg_val + contrast if bg_val + contrast <= 1.0 else bg_val - contrast
    c1, c2 = _hsv_rgb(bg_hue, bg_sat, bg_val), _hsv_rgb(bg_hue2, bg_sat, val2)
    angle = float(rng.uniform(-180.0, 180.0))
    canvas = _background(rng, size, bg_kind, c1, c2, angle)

    lo, hi = p["shapes_per_image"]
    n = int(rng.integers(lo, hi + 1))
    shapes = []
    for _ in range(n):
        shapes.append(_draw_shape(rng, canvas, size, p))
    primary = shapes[-1]  # drawn last, so never hidden
    attrs = dict(primary)
    attrs.update({"num_shapes": n, "bg_kind": bg_kind, "bg_kind_id": BACKGROUND_KINDS.index(bg_kind),
                  "bg_color": c1, "bg_color2": c2 if bg_kind != "solid" else c1,
                  "bg_angle": round(angle, 3) if bg_kind != "solid" else 0.0})
    if n > 1:
        attrs["shapes"] = shapes
    return np.rint(canvas).clip(0, 255).astype(np.uint8), attrs


def _background(rng: np.random.Generator, size: int, kind: str, c1: list[int], c2: list[int],
                angle: float) -> np.ndarray:
    """A float32 [size, size, 3] background mixing colours c1 and c2 by a pattern t in [0, 1]."""
    a, b = np.asarray(c1, np.float32), np.asarray(c2, np.float32)
    if kind == "solid":
        return np.broadcast_to(a, (size, size, 3)).astype(np.float32)
    x, y = _grid(size)
    th = math.radians(angle)
    u = (x - 0.5) * math.cos(th) + (y - 0.5) * math.sin(th)  # along the pattern's direction
    if kind == "gradient":
        t = u / math.sqrt(0.5) + 0.5
    elif kind == "stripes":
        cycles = float(rng.uniform(2.5, 6.0))
        t = 0.5 + 0.5 * np.sin(2 * math.pi * cycles * u + float(rng.uniform(0, 2 * math.pi)))
    elif kind == "checker":
        cells = int(rng.integers(3, 8))
        v = -(x - 0.5) * math.sin(th) + (y - 0.5) * math.cos(th)
        t = ((np.floor(u * cells) + np.floor(v * cells)) % 2).astype(np.float32)
    elif kind == "noise":
        coarse = rng.random((5, 5)).astype(np.float32)
        t = np.asarray(Image.fromarray(coarse, "F").resize((size, size), Image.BICUBIC))[..., None].clip(0, 1)
    else:
        raise ValueError(f"unknown background kind {kind!r}")
    return (a + (b - a) * t).astype(np.float32)


def _outline(kind: str, cx: float, cy: float, r: float, rotation: float) -> list[tuple[float, float]]:
    """Polygon vertices (pixels, y down) of a shape of circumradius r, pointing up before rotation."""
    rot = math.radians(rotation)

    def ring(n: int, radius: float, phase_deg: float) -> list[tuple[float, float]]:
        return [(cx + radius * math.cos(math.radians(phase_deg + 360.0 * k / n) + rot),
                 cy + radius * math.sin(math.radians(phase_deg + 360.0 * k / n) + rot)) for k in range(n)]

    if kind == "square":
        return ring(4, r, 45.0)
    if kind == "triangle":
        return ring(3, r, -90.0)
    if kind == "pentagon":
        return ring(5, r, -90.0)
    if kind == "hexagon":
        return ring(6, r, 0.0)
    if kind == "star":
        outer, inner = ring(5, r, -90.0), ring(5, r * _STAR_INNER, -90.0 + 36.0)
        return [pt for pair in zip(outer, inner) for pt in pair]
    if kind == "cross":
        w, cos_r, sin_r = r * _CROSS_ARM, math.cos(rot), math.sin(rot)
        arm = math.sqrt(max(r * r - w * w, 0.0))
        local = [(w, -arm), (w, -w), (arm, -w), (arm, w), (w, w), (w, arm),
                 (-w, arm), (-w, w), (-arm, w), (-arm, -w), (-w, -w), (-w, -arm)]
        return [(cx + px * cos_r - py * sin_r, cy + px * sin_r + py * cos_r) for px, py in local]
    raise ValueError(f"no outline for {kind!r}")


def _draw_shape(rng: np.random.Generator, canvas: np.ndarray, size: int, p: dict[str, Any]) -> dict:
    kind = str(rng.choice(p["classes"]))
    radius = _uniform(rng, p["size"])
    lo_x = max(0.5 - p["jitter"], radius)
    hi_x = min(0.5 + p["jitter"], 1.0 - radius)
    cx = lo_x + (hi_x - lo_x) * float(rng.random()) if hi_x > lo_x else 0.5
    cy = lo_x + (hi_x - lo_x) * float(rng.random()) if hi_x > lo_x else 0.5
    period = SYMMETRY[kind]
    rotation = (float(rng.random()) - 0.5) * period * float(p["rotation"]) if period else 0.0
    hue = _uniform(rng, p["fg_hue"])
    sat, val = _uniform(rng, p["fg_saturation"]), _uniform(rng, p["fg_value"])
    fill = str(rng.choice(p["fill_kinds"]))
    color = _hsv_rgb(hue, sat, val)
    color2 = _hsv_rgb(hue + float(rng.uniform(0.15, 0.5)), sat, val) if fill == "two-tone" else color

    ss = int(p["supersample"])
    big = size * ss
    mask = Image.new("L", (big, big), 0)
    draw = ImageDraw.Draw(mask)
    px, py, pr = cx * big, cy * big, radius * big
    if kind in ("circle", "ring"):
        draw.ellipse([px - pr, py - pr, px + pr, py + pr], fill=255)
        if kind == "ring":
            q = pr * _RING_INNER
            draw.ellipse([px - q, py - q, px + q, py + q], fill=0)
    else:
        draw.polygon(_outline(kind, px, py, pr, rotation), fill=255)
    alpha = np.asarray(mask.reduce(ss) if ss > 1 else mask, dtype=np.float32)[..., None] / 255.0
    fg = np.asarray(color, np.float32)
    if fill == "two-tone":
        x, y = _grid(size)
        t = ((y - (cy - radius)) / (2 * radius)).clip(0, 1)
        fg = fg + (np.asarray(color2, np.float32) - fg) * t
    canvas *= 1.0 - alpha
    canvas += fg * alpha
    return {"shape": kind, "shape_id": ALL_SHAPE_CLASSES.index(kind), "cx": round(cx, 5), "cy": round(cy, 5),
            "size": round(radius, 5), "rotation": round(rotation, 3), "fg_color": color, "fg_hue": round(hue % 1.0, 5),
            "fill_kind_id": FILL_KINDS.index(fill), "fg_color2": color2}


def parse_variant_query(query: str) -> str:
    """`variant=hard` (the part after `?` in `builtin:shapes?variant=hard`) to a variant name."""
    variant = "default"
    for part in filter(None, query.split("&")):
        key, _, value = part.partition("=")
        if key.strip() != "variant":
            raise ValueError(f"unknown option {key.strip()!r}; builtin:shapes takes ?variant=NAME "
                             f"({', '.join(VARIANTS)})")
        variant = value.strip()
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    return variant
