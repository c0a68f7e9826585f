"""The plan of a run, before anything is written: `plan(cfg, sizes, world_size) -> RunPlan`.

Pure: from the settings, the dataset's sizes and the number of processes it derives the final
resolution, the resolutions and phases of the schedule, the minibatch per resolution, the model
config, the Adam settings (StyleGAN2's lazy-regularisation correction), and it runs every check
of those (sizes present, minibatches that split over the processes and into minibatch-stddev
groups, the path-length minibatch). The training loop, `sgan train --dry-run` and `--procs` use it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from sgan.errors import DataError, UsageError
from sgan.nn import ModelConfig
from sgan.train.config import TrainConfig
from sgan.train.schedule import Phase, build_phases


@dataclass(frozen=True)
class AdamSettings:
    lr: float
    betas: tuple[float, float]
    eps: float


@dataclass(frozen=True)
class RunPlan:
    cfg: TrainConfig                 # a private copy with the resolution (and c_dim) filled in
    model: ModelConfig
    resolutions: tuple[int, ...]     # StyleGAN: start_resolution doubling up; StyleGAN2: one
    phases: tuple[Phase, ...]
    world_size: int

    def batch_at(self, resolution: int) -> int:
        return self.cfg.batch_at(resolution, self.world_size)

    def adam(self, net: str) -> AdamSettings:
        """G's or D's Adam: the config's, with the lazy-regularisation correction for StyleGAN2."""
        cfg = self.cfg
        betas = tuple(cfg.adam_betas)
        if cfg.arch != "stylegan2":
            return AdamSettings(cfg.lr_base, betas, cfg.adam_eps)
        lr, betas = lazy_adam(cfg.lr_base, betas, cfg.g_reg_interval if net == "G" else cfg.r1_interval)
        return AdamSettings(lr, betas, cfg.adam_eps)


def plan(cfg: TrainConfig, sizes: list[int], world_size: int = 1, *, c_dim: int | None = None,
         data: Any = "the dataset") -> RunPlan:
    """The checked plan of `cfg` on a dataset holding `sizes` (named `data` in errors), over
    `world_size` processes; `c_dim`: the number of classes of a --cond run. `cfg` is not changed."""
    cfg = copy.deepcopy(cfg)
    if cfg.resolution is None:
        cfg.resolution = max(sizes)
    cfg.validate()
    if c_dim is not None:
        cfg.model = {**cfg.model, "c_dim": c_dim}
    model = cfg.model_config()
    check_batches(cfg, model, world_size)
    ress = cfg.resolutions()
    missing = [s for s in ress if s not in sizes]
    if missing:
        raise DataError(f"{data} has no {', '.join(f'{s}x{s}' for s in missing)} images "
                        f"(it holds {', '.join(str(s) for s in sizes)}); prepare it again with "
                        f"--min-size {min(ress)} --max-size {max(ress)}, or change --start-resolution/--resolution.")
    if cfg.arch == "stylegan2":
        phases = build_phases(cfg.resolution, cfg.resolution, 0.0, 0.0)
    else:
        training, transition = cfg.phase_lengths()
        phases = build_phases(cfg.start_resolution, cfg.resolution, training, transition)
    return RunPlan(cfg=cfg, model=model, resolutions=tuple(ress), phases=tuple(phases), world_size=world_size)


def check_batches(cfg: TrainConfig, model: ModelConfig, world_size: int) -> None:
    """Minibatch shapes the networks and regularisers can run, at every resolution."""
    if cfg.arch == "stylegan2":
        _check_sg2_batch(cfg, model, world_size)
    else:
        check_minibatch_groups(cfg, model, world_size)


def check_minibatch_groups(cfg: TrainConfig, model: ModelConfig, world_size: int) -> None:
    """Every process's minibatch at every resolution must split into minibatch-stddev groups of
    min(group, minibatch) samples, as the official reshape requires (it fails otherwise)."""
    group = int(getattr(model, "mbstd_group_size", 0) or 0)
    if group <= 1:
        return
    for res in cfg.resolutions():
        total = cfg.batch_at(res, world_size)
        local = total // max(world_size, 1)
        g = min(group, local)
        if local % g:
            fits = [b * world_size for b in range(group, 4 * group + 1, group)]
            per = f" ({local} per process x {world_size})" if world_size > 1 else ""
            raise UsageError(f"--batch {total}{per} at {res} px does not split into minibatch-stddev groups of {g}; "
                             f"use a multiple of {group * world_size} such as {', '.join(map(str, fits[:3]))} "
                             f"(or a value below {group * world_size} that divides evenly).")


def _check_sg2_batch(cfg: TrainConfig, model: ModelConfig, world_size: int) -> None:
    batch = cfg.batch_at(cfg.resolution, world_size)
    if batch % world_size:
        raise UsageError(f"--batch {batch} does not split evenly over {world_size} processes.")
    local = batch // world_size
    group = min(model.mbstd_group_size, local) if model.mbstd_group_size > 1 else 1
    if local % group:
        raise UsageError(f"the minibatch per process ({local}) is not a multiple of the minibatch-stddev group "
                         f"({group}); change --batch.")
    if cfg.pl_weight > 0:
        n_pl = batch // cfg.pl_batch_shrink
        if n_pl < world_size or n_pl % world_size:
            raise UsageError(f"the path-length minibatch (--batch {batch} / {cfg.pl_batch_shrink}) does not split "
                             f"evenly over {world_size} processes; change --batch.")


def lazy_ratio(interval: int) -> float:
    """c = k / (k + 1): the share of Adam steps that are main steps when a regulariser runs every k."""
    return interval / (interval + 1)


def lazy_adam(lr: float, betas: tuple[float, float], interval: int) -> tuple[float, tuple[float, float]]:
    """The lazy-regularisation correction (training_loop.py): lr * c and betas ** c, c = k / (k + 1)."""
    c = lazy_ratio(interval)
    return lr * c, (betas[0] ** c, betas[1] ** c)


def describe(cfg: TrainConfig, world_size: int = 1) -> dict[str, Any]:
    """The resolved values of a StyleGAN2 run (for --dry-run)."""
    batch = cfg.batch_at(cfg.resolution, world_size) if cfg.resolution else cfg.batch_base
    g_lr, g_betas = lazy_adam(cfg.lr_base, tuple(cfg.adam_betas), cfg.g_reg_interval)
    d_lr, d_betas = lazy_adam(cfg.lr_base, tuple(cfg.adam_betas), cfg.r1_interval)
    return {
        "batch": batch, "batch_per_process": batch // max(world_size, 1), "lr": cfg.lr_base,
        "G_adam": {"lr": g_lr, "betas": list(g_betas), "eps": cfg.adam_eps},
        "D_adam": {"lr": d_lr, "betas": list(d_betas), "eps": cfg.adam_eps},
        "r1_gamma": cfg.r1_gamma, "r1_interval": cfg.r1_interval,
        "pl_weight": cfg.pl_weight, "pl_interval": cfg.g_reg_interval, "pl_batch": batch // cfg.pl_batch_shrink,
        "pl_decay": cfg.pl_decay, "style_mixing_prob": cfg.style_mixing_prob,
        "ema_kimg": cfg.ema_kimg, "ema_rampup": cfg.ema_rampup,
        "budget": f"{cfg.minutes:g} minutes" if cfg.by_time else f"{cfg.total_kimg:g} kimg",
    }
