"""Latents: z from seeds, truncation, slerp/lerp, W/W+ .npy files, style-mixing layer ranges.

Layer groups (StyleGAN paper §3.1) are bands of the model's own resolutions; ws index i drives the
layers of 2^(i//2 + 2) px (two styles per resolution). A model with a 64 px layer (num_ws >= 10)
uses the paper's bands: coarse = 4-8 px (ws 0-3), middle = 16-32 px (ws 4-7), fine = 64 px and up
(ws 8 .. num_ws-1). A smaller model keeps its last resolution as fine and the one before as middle:
32 px -> coarse 4-8 (ws 0-3), middle 16 (ws 4-5), fine 32 (ws 6-7); 16 px -> coarse 4 (0-1),
middle 8 (2-3), fine 16 (4-5); 8 px -> coarse 4 (0-1), no middle, fine 8 (2-3); 4 px -> coarse only.
The rule needs num_ws alone, so it serves every architecture with two styles per resolution.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from sgan.errors import DataError, UsageError
from sgan.fileio import atomic_save_npy
from sgan.nn.styles import mix_styles, truncate  # noqa: F401  (re-exported: the latent-space API)

STYLE_GROUPS = ("coarse", "middle", "fine")


def z_from_seed(seed: int, z_dim: int) -> torch.Tensor:
    """z [z_dim] from the seed alone (numpy RandomState, as NVIDIA's generate.py): same on every machine."""
    if seed < 0 or seed >= 2 ** 32:
        raise UsageError(f"seed {seed} is out of range; seeds are 0 .. 2^32-1.")
    return torch.from_numpy(np.random.RandomState(seed).randn(z_dim)).float()


def noise_generator(seed: int) -> torch.Generator:
    """The generator of a seed's noise maps (noise mode `random`), independent of the batch."""
    return torch.Generator().manual_seed(int(seed))


def lerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor) -> torch.Tensor:
    return a + (b - a) * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: float | torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Spherical interpolation along the last dim (used in Z, StyleGAN PPL)."""
    a_n = a / a.norm(dim=-1, keepdim=True)
    b_n = b / b.norm(dim=-1, keepdim=True)
    d = (a_n * b_n).sum(dim=-1, keepdim=True).clamp(-1 + eps, 1 - eps)
    omega = torch.acos(d) * t
    c = b_n - d * a_n
    c = c / c.norm(dim=-1, keepdim=True)
    out = a_n * torch.cos(omega) + c * torch.sin(omega)
    return out * lerp(a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True), t)


def style_groups(num_ws: int) -> dict[str, range]:
    """coarse/middle/fine as ranges of ws indices for a generator with `num_ws` styles (see the
    module notes: the paper's bands from 64 px up, the last resolutions as fine and middle below)."""
    if num_ws < 1:
        raise ValueError(f"num_ws must be positive, got {num_ws}")
    n_res = (num_ws + 1) // 2                     # resolutions 4, 8, ... each driven by two ws
    if n_res >= 5:                                # a 64 px layer exists: the paper's split
        coarse_res, middle_res = 2, 2
    elif n_res >= 3:                              # 16-32 px: ..., middle = one before last, fine = last
        coarse_res, middle_res = n_res - 2, 1
    else:                                         # 4-8 px: coarse = 4 px, fine = 8 px (if any), no middle
        coarse_res, middle_res = 1, 0
    c_end = min(2 * coarse_res, num_ws)
    m_end = min(c_end + 2 * middle_res, num_ws)
    return {"coarse": range(0, c_end), "middle": range(c_end, m_end), "fine": range(m_end, num_ws)}


def style_group_text(num_ws: int) -> str:
    """The groups of a `num_ws` model in words, e.g. 'coarse = ws 0-3 (4-8 px), middle = ws 4-5 (16 px), ...'."""
    def span(r: range) -> str:
        if not r:
            return "none"
        lo_px, hi_px = 2 ** (r[0] // 2 + 2), 2 ** (r[-1] // 2 + 2)
        px = f"{lo_px} px" if lo_px == hi_px else f"{lo_px}-{hi_px} px"
        ws = f"ws {r[0]}" if len(r) == 1 else f"ws {r[0]}-{r[-1]}"
        return f"{ws} ({px})"
    return ", ".join(f"{name} = {span(r)}" for name, r in style_groups(num_ws).items())


def parse_styles(text: str, num_ws: int) -> list[int]:
    """`coarse`, `middle`, `fine`, `A-B`, `N` or a comma list of those -> sorted ws indices."""
    groups = style_groups(num_ws)
    picked: set[int] = set()
    for part in (text or "").split(","):
        part = part.strip().lower()
        if not part:
            continue
        if part in groups:
            if not groups[part]:
                raise UsageError(f"--styles {part}: a {2 ** ((num_ws + 1) // 2 + 1)} px generator has no {part} styles "
                                 f"(its {num_ws} styles: {style_group_text(num_ws)}).")
            picked.update(groups[part])
            continue
        try:
            lo, _, hi = part.partition("-")
            lo_i, hi_i = int(lo), int(hi) if hi else int(lo)
        except ValueError:
            raise UsageError(f"--styles: {part!r} is not coarse, middle, fine, N or A-B.") from None
        if hi_i < lo_i or lo_i < 0 or hi_i >= num_ws:
            raise UsageError(f"--styles: {part!r} must lie within 0-{num_ws - 1} (this generator has {num_ws} styles).")
        picked.update(range(lo_i, hi_i + 1))
    if not picked:
        raise UsageError("--styles is empty; use coarse, middle, fine or a range such as 0-3.")
    return sorted(picked)


def save_latent(path: str | os.PathLike, ws: torch.Tensor | np.ndarray) -> Path:
    """Write a W [w_dim] or W+ [num_ws, w_dim] latent as float32 .npy, atomically."""
    arr = ws.detach().cpu().numpy() if isinstance(ws, torch.Tensor) else np.asarray(ws)
    if arr.ndim not in (1, 2):
        raise ValueError(f"a latent must be [w_dim] or [num_ws, w_dim], got {list(arr.shape)}")
    return atomic_save_npy(path, arr.astype(np.float32))


def load_latent(path: str | os.PathLike, *, num_ws: int, w_dim: int) -> torch.Tensor:
    """Read a .npy latent ([w_dim] or [num_ws, w_dim]) as W+ [num_ws, w_dim] float32."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such latent file; give a .npy written by `sgan generate --save-latents` or `sgan project`.")
    _check_npy_header(p)
    try:
        arr = np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DataError(f"{p}: not a readable .npy latent ({str(err).splitlines()[0] if str(err) else 'bad file'}).") from None
    if not isinstance(arr, np.ndarray) or not np.issubdtype(arr.dtype, np.floating):
        raise DataError(f"{p}: a latent must hold floats, got {getattr(arr, 'dtype', type(arr))}.")
    if arr.ndim == 1:
        if arr.shape[0] != w_dim:
            raise DataError(f"{p}: the latent has {arr.shape[0]} values but this model's w_dim is {w_dim}; "
                            "it comes from another model.")
        arr = np.broadcast_to(arr, (num_ws, w_dim))
    elif arr.ndim == 2:
        if arr.shape[1] != w_dim:
            raise DataError(f"{p}: the latent is {list(arr.shape)} but this model's w_dim is {w_dim}; it comes from another model.")
        if arr.shape[0] != num_ws:
            raise DataError(f"{p}: the latent has {arr.shape[0]} styles but this model has num_ws={num_ws}; "
                            "it comes from a model of another resolution.")
    else:
        raise DataError(f"{p}: a latent must be [w_dim] or [num_ws, w_dim], got shape {list(arr.shape)}.")
    if not np.isfinite(arr).all():
        raise DataError(f"{p}: the latent holds NaN or infinite values.")
    return torch.from_numpy(np.array(arr, dtype=np.float32))


def _check_npy_header(p: Path) -> None:
    """Read only the .npy header and refuse, before any array is allocated, a file that is not an .npy,
    holds Python objects (which would need unpickling) or claims more data than it holds; the shape is
    checked against the model (num_ws, w_dim) after loading."""
    try:
        with open(p, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f, max_header_size=10_000)
            data_bytes = p.stat().st_size - f.tell()
    except (ValueError, OSError, EOFError) as err:
        first = str(err).splitlines()[0] if str(err) else "bad file"
        raise DataError(f"{p}: not a .npy latent ({first}).") from None
    if dtype.hasobject:
        raise DataError(f"{p}: holds Python objects, not a latent of floats; sgan never unpickles .npy files.")
    if int(np.prod(shape, dtype=np.float64)) * dtype.itemsize > data_bytes:
        raise DataError(f"{p}: the header claims {list(shape)} {dtype} but the file holds only {data_bytes} bytes of data.")
