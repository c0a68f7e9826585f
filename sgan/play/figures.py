"""The StyleGAN paper's figures as labelled grids (Karras et al. 2019).

- Figure 8, truncation sweep: rows are seeds, columns psi in {1, 0.7, 0.5, 0, -0.5, -1};
  w' = w_avg + psi (w - w_avg) on the first `cutoff` styles.
- Figure 4, stochastic variation: one w under several noise draws, then the per-pixel standard
  deviation over many draws (bright = the pixels that noise changes: hair, texture, edges).
- Figure 5, noise in all / no / fine / coarse layers: the same w and the same noise maps, with
  the maps of some layers switched off. The paper splits at 64 px (coarse 4-32 px, fine 64 px and
  up); models smaller than 128 px split at half their resolution so both groups exist.

- StyleGAN3 (Karras et al. 2021), input transforms: rows are seeds, columns one input rotation or
  translation each (gen_images.py's --rotate / --translate); StyleGAN3 has no noise inputs, so
  Figures 4 and 5 are refused for it.

Labels are drawn with Pillow's default font (ASCII text: it has no Greek letters).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from sgan.device import autocast_module
from sgan.errors import UsageError
from sgan.latent import noise_generator, z_from_seed
from sgan.nn import Generator
from sgan.play.noise_maps import noise_resolutions, random_noise_maps, select_layers, use_noise_maps
from sgan.viz import to_uint8, upscale_nearest
from sgan.nn.stylegan3 import input_transform
from sgan.nn.styles import truncate

DEFAULT_PSIS = (1.0, 0.7, 0.5, 0.0, -0.5, -1.0)
NOISE_COLUMNS = ("all", "none", "fine", "coarse")   # the order of the paper's Figure 5 (a)-(d)


# ----------------------------------------------------------------------------- labelled grids

def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def auto_cell_scale(cell: int, min_cell: int = 128) -> int:
    """Enlarge small images (nearest neighbour) so that labels stay readable next to them."""
    return max(1, -(-min_cell // cell)) if cell < min_cell else 1


def labelled_grid(cells: np.ndarray, *, col_labels: Sequence[str] | None = None, row_labels: Sequence[str] | None = None,
                  scale: int = 0, pad: int = 2, background: int = 255, font_size: int = 14) -> np.ndarray:
    """cells uint8 [R, C, H, W, 3 or 1] -> one RGB image with a label above every column and left of
    every row. scale 0 = automatic enlargement of small cells."""
    if cells.ndim != 5 or cells.dtype != np.uint8:
        raise ValueError(f"cells must be uint8 [rows, cols, H, W, C], got {cells.dtype} {list(cells.shape)}")
    if cells.shape[-1] == 1:
        cells = np.repeat(cells, 3, axis=-1)
    n_rows, n_cols, h, w = cells.shape[:4]
    if col_labels is not None and len(col_labels) != n_cols:
        raise ValueError(f"{len(col_labels)} column labels for {n_cols} columns")
    if row_labels is not None and len(row_labels) != n_rows:
        raise ValueError(f"{len(row_labels)} row labels for {n_rows} rows")
    scale = scale or auto_cell_scale(min(h, w))
    h, w = h * scale, w * scale
    font = _font(font_size)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_size(text: str) -> tuple[int, int]:
        box = measure.textbbox((0, 0), text, font=font)
        return box[2] - box[0], box[3] - box[1]

    top = (max(text_size(t)[1] for t in col_labels) + 2 * pad + 2) if col_labels else 0
    left = (max(text_size(t)[0] for t in row_labels) + 3 * pad) if row_labels else 0
    width = left + n_cols * (w + pad) + pad
    height = top + n_rows * (h + pad) + pad
    canvas = np.full((height, width, 3), background, dtype=np.uint8)
    for r in range(n_rows):
        for c in range(n_cols):
            y, x = top + pad + r * (h + pad), left + pad + c * (w + pad)
            canvas[y:y + h, x:x + w] = upscale_nearest(cells[r, c], scale)
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    ink = (0, 0, 0) if background > 127 else (255, 255, 255)
    for c, text in enumerate(col_labels or []):
        tw, _ = text_size(text)
        x = left + pad + c * (w + pad) + max(0, (w - tw) // 2)
        draw.text((x, pad), text, font=font, fill=ink)
    for r, text in enumerate(row_labels or []):
        _, th = text_size(text)
        y = top + pad + r * (h + pad) + max(0, (h - th) // 2)
        draw.text((pad, y), text, font=font, fill=ink)
    return np.asarray(image)


def format_number(x: float) -> str:
    return f"{x:g}"


# ----------------------------------------------------------------------------- the figures

@dataclass
class Figure:
    cells: np.ndarray               # uint8 [rows, cols, H, W, C]
    col_labels: list[str]
    row_labels: list[str]
    info: dict

    def render(self, *, scale: int = 0) -> np.ndarray:
        return labelled_grid(self.cells, col_labels=self.col_labels, row_labels=self.row_labels, scale=scale)


def _seed_ws(G: Generator, seeds: Sequence[int]) -> torch.Tensor:
    if not seeds:
        raise UsageError("no seeds given; use --seeds such as 0-5.")
    device = next(G.parameters()).device
    z = torch.stack([z_from_seed(s, G.z_dim) for s in seeds]).to(device)
    return G.map(z)


def _cast(G: Generator, precision: str):
    """G.synthesis under `precision` autocast (fp32: as it is), returning float32."""
    return autocast_module(G.synthesis, next(G.parameters()).device, precision)


def check_psis(psis: Sequence[float]) -> None:
    if not psis:
        raise UsageError("--psi is empty; give values such as 1,0.7,0.5,0,-0.5,-1.")
    if any(not np.isfinite(p) for p in psis):
        raise UsageError("--psi values must be finite numbers.")


@torch.no_grad()
def truncation_figure(G: Generator, seeds: Sequence[int], *, psis: Sequence[float] = DEFAULT_PSIS,
                      truncation_cutoff: int | None = 8, noise_mode: str = "const", precision: str = "fp32") -> Figure:
    """Figure 8: one row per seed, one column per psi (towards G.w_avg, on the first `cutoff` styles).
    `precision`: fp32 (the default: the same figure on every machine), bf16 or fp16 autocast."""

    check_psis(psis)
    ws = _seed_ws(G, seeds)                                        # untruncated
    rows = []
    with _cast(G, precision):
        for seed, w in zip(seeds, ws):
            batch = torch.cat([truncate(w[None], G.w_avg, truncation_psi=p, truncation_cutoff=truncation_cutoff) for p in psis])
            gens = [noise_generator(seed) for _ in psis] if noise_mode == "random" else None
            rows.append(to_uint8(G.synthesis(batch, noise_mode=noise_mode, generator=gens)))
    return Figure(np.stack(rows), [f"psi={format_number(p)}" for p in psis], [f"seed {s}" for s in seeds],
                  {"figure": "truncation", "psi": [float(p) for p in psis], "seeds": list(seeds),
                   "truncation_cutoff": truncation_cutoff, "noise_mode": noise_mode})


@torch.no_grad()
def variation_figure(G: Generator, seeds: Sequence[int], *, generator: torch.Generator, shown: int = 4,
                     samples: int = 100, truncation_psi: float = 0.7, truncation_cutoff: int | None = 8,
                     batch: int = 16, progress: Callable[[int, int], None] | None = None,
                     precision: str = "fp32") -> Figure:
    """Figure 4: per seed, `shown` images under different noise draws, then the per-pixel standard
    deviation over `samples` draws (mean over colour channels, scaled so the row's largest is white).
    Noise draws come from `generator` (the first `shown` draws are the pictures)."""
    check_variation(shown=shown, samples=samples)
    check_has_noise(G, "variation")
    with _cast(G, precision):
        return _variation(G, seeds, generator=generator, shown=shown, samples=samples, truncation_psi=truncation_psi,
                          truncation_cutoff=truncation_cutoff, batch=batch, progress=progress)


def check_has_noise(G: Generator, figure: str) -> None:
    """Figures 4 and 5 show what the noise inputs do; a model without them (StyleGAN3) is refused."""
    if not noise_resolutions(G):
        raise UsageError(f"figure {figure} shows the effect of the noise inputs, and this {G.cfg.arch} model has none "
                         "(StyleGAN3's synthesis is deterministic); try `sgan figure truncation` or `sgan figure transform`.")


def check_variation(*, shown: int, samples: int) -> None:
    if shown < 1 or samples < 2 or shown > samples:
        raise UsageError(f"need 1 <= --show <= --samples and --samples >= 2 (got --show {shown}, --samples {samples}).")


def _variation(G: Generator, seeds: Sequence[int], *, generator: torch.Generator, shown: int, samples: int,
               truncation_psi: float, truncation_cutoff: int | None, batch: int,
               progress: Callable[[int, int], None] | None) -> Figure:
    ws = _seed_ws(G, seeds)

    ws = truncate(ws, G.w_avg, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
    rows, peaks = [], []
    done, total = 0, samples * len(seeds)
    for w in ws:
        shown_imgs, total_sum, total_sq = [], None, None
        for start in range(0, samples, batch):
            n = min(batch, samples - start)
            maps = random_noise_maps(G, n, generator)
            with use_noise_maps(G, maps):
                img = G.synthesis(w[None].expand(n, -1, -1), noise_mode="const").double()
            have = sum(len(x) for x in shown_imgs)
            if have < shown:
                shown_imgs.append(img[: shown - have])
            s, sq = img.sum(0), img.square().sum(0)
            total_sum = s if total_sum is None else total_sum + s
            total_sq = sq if total_sq is None else total_sq + sq
            done += n
            if progress:
                progress(done, total)
        mean = total_sum / samples
        var = (total_sq / samples - mean.square()).clamp_min(0) * samples / (samples - 1)
        std = var.sqrt().mean(0)                                    # [H, W]
        peak = float(std.max())
        peaks.append(peak)
        std_img = (std / max(peak, 1e-12) * 255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
        pics = to_uint8(torch.cat(shown_imgs).float())
        std_rgb = np.repeat(std_img[:, :, None], pics.shape[-1], axis=2)
        rows.append(np.concatenate([pics, std_rgb[None]]))
    cols = [f"noise {i + 1}" for i in range(shown)] + [f"std of {samples}"]
    return Figure(np.stack(rows), cols, [f"seed {s}" for s in seeds],
                  {"figure": "variation", "seeds": list(seeds), "samples": samples, "shown": shown,
                   "std_max": peaks, "truncation_psi": truncation_psi, "truncation_cutoff": truncation_cutoff})


def default_fine_from(resolution: int) -> int:
    """The paper's split for Figure 5 (fine = 64 px and up), or half the resolution for small models."""
    return min(64, resolution // 2)


def noise_layer_masks(G: Generator, fine_from: int) -> dict[str, list[bool]]:
    """Which noise inputs each column of Figure 5 keeps."""
    check_has_noise(G, "noise")
    res = noise_resolutions(G)
    if fine_from not in set(res) or fine_from == min(res):
        raise UsageError(f"--fine-from {fine_from}: choose a layer resolution above 4 of this {G.resolution} px "
                         f"model ({', '.join(str(r) for r in sorted(set(res)) if r > 4)}).")
    return {"all": [True] * len(res), "none": [False] * len(res),
            "fine": [r >= fine_from for r in res], "coarse": [r < fine_from for r in res]}


def check_noise_columns(G: Generator, fine_from: int | None, columns: Sequence[str]) -> tuple[int, dict[str, list[bool]]]:
    """(the fine layers' first resolution, each column's noise mask); a one-line error for a bad one."""
    fine_from = fine_from or default_fine_from(G.resolution)
    masks = noise_layer_masks(G, fine_from)
    unknown = [c for c in columns if c not in masks]
    if unknown or not columns:
        raise UsageError(f"noise figure columns must be among {', '.join(NOISE_COLUMNS)}, got {list(columns)}.")
    return fine_from, masks


@torch.no_grad()
def noise_figure(G: Generator, seeds: Sequence[int], *, fine_from: int | None = None, truncation_psi: float = 0.7,
                 truncation_cutoff: int | None = 8, columns: Sequence[str] = NOISE_COLUMNS,
                 precision: str = "fp32") -> Figure:
    """Figure 5: per seed, noise in all layers, none, fine layers only, coarse layers only (the same
    noise maps, drawn from the seed, switched off per layer)."""

    fine_from, masks = check_noise_columns(G, fine_from, columns)
    ws = truncate(_seed_ws(G, seeds), G.w_avg, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
    rows = []
    with _cast(G, precision):
        for seed, w in zip(seeds, ws):
            maps = random_noise_maps(G, 1, noise_generator(seed))
            imgs = []
            for col in columns:
                with use_noise_maps(G, select_layers(maps, masks[col])):
                    imgs.append(G.synthesis(w[None], noise_mode="const"))
            rows.append(to_uint8(torch.cat(imgs)))
    coarse_to = max(r for r in noise_resolutions(G) if r < fine_from)
    names = {"all": "noise: all", "none": "noise: none", "fine": f"fine ({fine_from}px+)", "coarse": f"coarse (4-{coarse_to}px)" if coarse_to > 4 else "coarse (4px)"}
    return Figure(np.stack(rows), [names[c] for c in columns], [f"seed {s}" for s in seeds],
                  {"figure": "noise", "seeds": list(seeds), "columns": list(columns), "fine_from": fine_from,
                   "truncation_psi": truncation_psi, "truncation_cutoff": truncation_cutoff})


TRANSFORM_AXES = ("rotate", "translate-x", "translate-y")


@torch.no_grad()
def transform_figure(G: Generator, seeds: Sequence[int], *, axis: str = "rotate",
                     values: Sequence[float] = (0.0, 15.0, 30.0, 45.0, 90.0), truncation_psi: float = 1.0,
                     truncation_cutoff: int | None = None, precision: str = "fp32") -> Figure:
    """StyleGAN3's equivariance at a glance: one row per seed, one column per input transform (gen_images.py's
    --rotate DEG, or --translate X,0 / 0,Y in image widths along `axis`); the w of a row is fixed."""

    if getattr(G.cfg, "arch", None) != "stylegan3":
        raise UsageError(f"figure transform moves the input of a StyleGAN3 model; this model is {G.cfg.arch}.")
    if axis not in TRANSFORM_AXES:
        raise UsageError(f"--axis {axis!r}: choose {', '.join(TRANSFORM_AXES)}.")
    if not values or any(not np.isfinite(v) for v in values):
        raise UsageError("--values must be finite numbers, e.g. 0,15,30,45,90.")
    ws = truncate(_seed_ws(G, seeds), G.w_avg, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
    columns = []
    with _cast(G, precision):
        for v in values:
            shift = (v, 0.0) if axis == "translate-x" else (0.0, v) if axis == "translate-y" else (0.0, 0.0)
            with input_transform(G, translate=shift, rotate=v if axis == "rotate" else 0.0):
                columns.append(to_uint8(G.synthesis(ws, noise_mode="const")))
    unit = " deg" if axis == "rotate" else ""
    name = {"rotate": "rot", "translate-x": "x", "translate-y": "y"}[axis]
    return Figure(np.stack(columns, axis=1), [f"{name} {format_number(v)}{unit}" for v in values],
                  [f"seed {s}" for s in seeds],
                  {"figure": "transform", "axis": axis, "values": [float(v) for v in values], "seeds": list(seeds),
                   "truncation_psi": truncation_psi, "truncation_cutoff": truncation_cutoff})
