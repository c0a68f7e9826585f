"""Style mixing (StyleGAN §3.1, Figure 3): copy the styles of some layers from another latent.

Layer groups. StyleGAN 1/2 (sgan.latent.style_groups): bands of the model's resolutions, two ws per
resolution. StyleGAN3 has no resolutions to group by: ws[0] drives the Fourier input (bandwidth
f_c = 2) and ws[i + 1] layer L_i, whose cutoff f_c grows geometrically from 2 to R/2 over the
non-critical layers (then stays); a layer with cutoff f_c carries what an image of 2 f_c px can hold.
So the same bands apply to 2 f_c: coarse = 2 f_c <= 8 px, middle <= 32 px, fine above; models under
64 px keep, as for StyleGAN2, the top octave (2 f_c > R/2) as fine and the one below (> R/4) as middle.
"""

from __future__ import annotations

import numpy as np
import torch

from sgan.errors import UsageError
from sgan.latent import parse_styles, style_group_text, style_groups
from sgan.viz import image_grid

GROUPS = ("coarse", "middle", "fine")


def sg3_style_groups(bands: list[float], resolution: int) -> dict[str, range]:
    """coarse/middle/fine ws ranges of a StyleGAN3 model from each ws's band 2 f_c in px (ws 0: the
    input's bandwidth, then every layer's output cutoff; non-decreasing) and its resolution."""
    if not bands or any(b2 < b1 for b1, b2 in zip(bands, bands[1:])):
        raise ValueError(f"bands must be a non-empty non-decreasing list, got {bands}")
    coarse_max, middle_max = min(8.0, resolution / 4), min(32.0, resolution / 2)
    tol = 1 + 1e-6                                  # cutoffs such as 4 are computed as 2 * 16 ** (1/4)
    c_end = max(1, sum(b <= coarse_max * tol for b in bands))   # the input always counts as coarse
    m_end = max(c_end, sum(b <= middle_max * tol for b in bands))
    return {"coarse": range(0, c_end), "middle": range(c_end, m_end), "fine": range(m_end, len(bands))}


def sg3_bands(G) -> list[float]:
    """2 f_c in px for each of a StyleGAN3 generator's ws (input bandwidth, then each layer's cutoff)."""
    syn = G.synthesis
    return [2 * float(syn.input.bandwidth)] + [2 * float(getattr(syn, n).spec.out_cutoff) for n in syn.layer_names]


def is_stylegan3(G) -> bool:
    return getattr(getattr(G, "cfg", None), "arch", None) == "stylegan3"


def model_style_groups(G) -> dict[str, range]:
    """The coarse/middle/fine ws ranges of generator G, whatever its architecture (module notes)."""
    if is_stylegan3(G):
        return sg3_style_groups(sg3_bands(G), G.resolution)
    return style_groups(G.num_ws)


def model_style_group_text(G) -> str:
    """G's groups in words: 'coarse = ws 0-4 (to 8 px), ...' (StyleGAN3: by band 2 f_c)."""
    if not is_stylegan3(G):
        return style_group_text(G.num_ws)
    bands = sg3_bands(G)

    def span(r: range) -> str:
        if not r:
            return "none"
        ws = f"ws {r[0]}" if len(r) == 1 else f"ws {r[0]}-{r[-1]}"
        return f"{ws} (2 f_c {bands[r[0]]:.3g}-{bands[r[-1]]:.3g} px)"
    return ", ".join(f"{name} = {span(r)}" for name, r in model_style_groups(G).items())


def parse_model_styles(text: str, G) -> list[int]:
    """sgan.latent.parse_styles for generator G: `coarse`, `middle`, `fine` are G's groups (for
    StyleGAN3 the bands of the module notes), `A-B` and `N` ws indices."""
    if not is_stylegan3(G):
        return parse_styles(text, G.num_ws)
    groups = model_style_groups(G)
    parts = []
    for part in (text or "").split(","):
        key = part.strip().lower()
        if key in groups:
            r = groups[key]
            if not r:
                raise UsageError(f"--styles {key}: this StyleGAN3 model has no {key} styles ({model_style_group_text(G)}).")
            part = f"{r[0]}-{r[-1]}"
        parts.append(part)
    return parse_styles(",".join(parts), G.num_ws)


def mix_by_groups(*, coarse: torch.Tensor, middle: torch.Tensor | None = None, fine: torch.Tensor | None = None,
                  groups: dict[str, range] | None = None, groups_text: str | None = None) -> torch.Tensor:
    """W+ [num_ws, w_dim] latents per layer group -> one W+ latent. A group not given takes the
    latent of the next coarser group given (fine falls back to middle, middle to coarse). `groups`:
    the model's (model_style_groups(G)); default sgan.latent.style_groups(num_ws), StyleGAN 1/2's."""
    if coarse.ndim != 2:
        raise ValueError(f"latents must be [num_ws, w_dim], got {list(coarse.shape)}")
    for name, t in (("middle", middle), ("fine", fine)):
        if t is not None and t.shape != coarse.shape:
            raise UsageError(f"the {name} latent is {list(t.shape)} but the coarse one is {list(coarse.shape)}.")
    if groups is None:
        groups = style_groups(coarse.shape[0])
        groups_text = style_group_text(coarse.shape[0])
    if sum(len(r) for r in groups.values()) != coarse.shape[0]:
        raise ValueError(f"the groups {groups} do not cover the {coarse.shape[0]} styles")
    if middle is None and fine is None:
        raise UsageError("give --middle or --fine as well: with --coarse alone nothing is mixed.")
    for name, t in (("middle", middle), ("fine", fine)):
        if t is not None and not groups[name]:
            raise UsageError(f"--{name} selects no layer on this model ({groups_text or groups}); "
                             "give the latent to another group or use `--rows/--cols --styles A-B`.")
    middle = coarse if middle is None else middle
    fine = middle if fine is None else fine
    out = coarse.clone()
    out[list(groups["middle"])] = middle[list(groups["middle"])]
    out[list(groups["fine"])] = fine[list(groups["fine"])]
    return out


def mix_rows_cols(row_ws: torch.Tensor, col_ws: torch.Tensor, styles: list[int]) -> torch.Tensor:
    """Figure 3: for each row latent and column latent, the row's W+ with `styles` taken from the
    column. row_ws [R, num_ws, w_dim], col_ws [C, num_ws, w_dim] -> [R, C, num_ws, w_dim]."""
    if row_ws.ndim != 3 or col_ws.ndim != 3 or row_ws.shape[1:] != col_ws.shape[1:]:
        raise ValueError(f"row and column ws must be [*, num_ws, w_dim] alike, got {list(row_ws.shape)} and {list(col_ws.shape)}")
    grid = row_ws.unsqueeze(1).repeat(1, col_ws.shape[0], 1, 1)
    grid[:, :, styles] = col_ws.unsqueeze(0)[:, :, styles].expand(row_ws.shape[0], -1, -1, -1)
    return grid


def assemble_mix_grid(row_images: np.ndarray, col_images: np.ndarray, cells: np.ndarray) -> np.ndarray:
    """The paper's layout: a blank corner, the column sources along the top, the row sources down
    the left, and cell (r, c) = row r with column c's styles. cells: uint8 [R, C, H, W, 3]."""
    n_rows, n_cols = cells.shape[:2]
    h, w, ch = cells.shape[2:]
    blank = np.zeros((1, h, w, ch), dtype=np.uint8)
    tiles = [blank, col_images]
    for r in range(n_rows):
        tiles += [row_images[r:r + 1], cells[r]]
    return image_grid(np.concatenate(tiles), cols=n_cols + 1)
