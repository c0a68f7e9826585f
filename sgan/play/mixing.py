"""Style mixing (StyleGAN §3.1, Figure 3): copy the styles of some layers from another latent."""

from __future__ import annotations

import numpy as np
import torch

from sgan.errors import UsageError
from sgan.latent import style_group_text, style_groups
from sgan.viz import image_grid


def mix_by_groups(*, coarse: torch.Tensor, middle: torch.Tensor | None = None, fine: torch.Tensor | None = None) -> torch.Tensor:
    """W+ [num_ws, w_dim] latents per layer group -> one W+ latent. A group not given takes the
    latent of the next coarser group given (fine falls back to middle, middle to coarse)."""
    if coarse.ndim != 2:
        raise ValueError(f"latents must be [num_ws, w_dim], got {list(coarse.shape)}")
    for name, t in (("middle", middle), ("fine", fine)):
        if t is not None and t.shape != coarse.shape:
            raise UsageError(f"the {name} latent is {list(t.shape)} but the coarse one is {list(coarse.shape)}.")
    groups = style_groups(coarse.shape[0])
    if middle is None and fine is None:
        raise UsageError("give --middle or --fine as well: with --coarse alone nothing is mixed.")
    for name, t in (("middle", middle), ("fine", fine)):
        if t is not None and not groups[name]:
            raise UsageError(f"--{name} selects no layer on this model ({style_group_text(coarse.shape[0])}); "
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
