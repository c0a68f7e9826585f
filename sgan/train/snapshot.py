"""A Trainer's snapshot: the checkpoint with its training state, the pointer to it, the fixed-seed
grid of G_ema, the loss plot and the on_snapshot hooks (rank 0)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from sgan.checkpoint import save_checkpoint, write_latest_pointer
from sgan.data.labels import one_hot
from sgan.latent import z_from_seed
from sgan.train.plot import plot_losses
from sgan.train.run import output_error
from sgan.train.scaler import scaler_states
from sgan.train.state import pack
from sgan.viz import to_uint8


@torch.no_grad()
def fakes_grid(tr: Any) -> np.ndarray:
    """G_ema's images of seeds 0..grid_size-1 (seed s shows class s mod c_dim), uint8 [N, r, r, C]."""
    seeds = list(range(tr.cfg.grid_size))
    z = torch.stack([z_from_seed(s, tr.model_cfg.z_dim) for s in seeds]).to(tr.device)
    out = []
    for i in range(0, len(seeds), 16):
        c = None
        if tr.labels is not None:
            c = one_hot([s % tr.labels.c_dim for s in seeds[i:i + 16]], tr.labels.c_dim).to(tr.device)
        ws = tr.G_ema.map(z[i:i + 16], c)
        out.append(to_uint8(tr.G_ema.synthesis(ws, lod=tr.point.lod, noise_mode="const").float()))
    return np.concatenate(out)


def write_snapshot(tr: Any) -> Path:
    """Snapshot, fakes grid, loss plot, pointer, hooks (rank 0)."""
    kimg = tr.c.cur_nimg / 1000.0
    path = tr.run.snapshot_path(tr.c.cur_nimg)
    extra = pack(counters=tr.c, config=tr.cfg.to_dict(), opt_G=tr.opt_G.state_dict(),
                 opt_D=tr.opt_D.state_dict(), world_size=tr.info.world_size,
                 scalers=scaler_states(tr.scalers))
    extra["augment"] = tr.aug.state_dict() | {"tick": tr.stats.d_accuracy_state()}   # the tick's D accuracies
    if tr.labels is not None:
        extra["classes"] = tr.labels.names  # `sgan generate --class NAME`
    try:
        save_checkpoint(path, config=tr.model_cfg, G=tr.G, G_ema=tr.G_ema, D=tr.D, extra=extra)
        write_latest_pointer(tr.run.path, path, kimg=kimg)
    except OSError as err:
        raise output_error(path, err) from None
    tr.run.prune(tr.cfg.keep, path)
    tr.run.save_grid(f"fakes{tr.c.cur_nimg // 1000:06d}.png", tr.fakes_grid(), final_resolution=tr.cfg.resolution)
    records = tr.run.read_stats()
    if records:
        try:
            plot_losses(records, tr.run.path / "losses.png")
        except OSError as err:
            raise output_error(tr.run.path / "losses.png", err) from None
    for hook in tr.hooks.on_snapshot:
        hook(path, kimg)
    return path
