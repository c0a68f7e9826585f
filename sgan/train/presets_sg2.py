"""StyleGAN2 training presets: the `--cfg` specs of NVlabs/stylegan2-ada-pytorch train.py, the
'auto' rule, and the CPU and test recipes.

| preset    | mb | mbstd | fmaps | lr     | gamma | ema kimg | ramp | map |
|-----------|----|-------|-------|--------|-------|----------|------|-----|
| stylegan2 | 32 | 4     | 1     | 0.002  | 10    | 10       | -    | 8   |  (config F)
| paper256  | 64 | 8     | 0.5   | 0.0025 | 1     | 20       | -    | 8   |
| paper512  | 64 | 8     | 1     | 0.0025 | 0.5   | 20       | -    | 8   |
| paper1024 | 32 | 4     | 1     | 0.002  | 2     | 10       | -    | 8   |
| auto      | max(min(gpus*min(4096//res, 32), 64), gpus) | min(mb//gpus, 4) | 1 at res >= 512 else 0.5 |
|           | lr 0.002 at 1024 else 0.0025 | gamma 0.0002*res^2/mb | ema mb*10/32 | ramp 0.05 | map 2 |

fmaps f gives channels min(f*32768 / res, 512). Every preset: Adam (0, 0.99, 1e-8) with the
lazy-regularisation correction, R1 every 16 minibatches, path length weight 2 every 4 (batch
shrink 2, decay 0.01), style mixing 0.9, 25000 kimg, a tick every 4 kimg and a snapshot every
50 ticks (200 kimg). The mb of the table is the global minibatch over all processes.
"""

from __future__ import annotations

from typing import Any

from sgan.errors import UsageError

SG2_PRESETS = ("paper256", "paper512", "paper1024", "stylegan2", "auto", "cpu", "tiny")

# name: (mb, mbstd, fmaps, lr, gamma, ema_kimg, ema_rampup, mapping layers)
PAPER_SPECS: dict[str, tuple[int, int, float, float, float, float, float | None, int]] = {
    "stylegan2": (32, 4, 1.0, 0.002, 10.0, 10.0, None, 8),
    "paper256": (64, 8, 0.5, 0.0025, 1.0, 20.0, None, 8),
    "paper512": (64, 8, 1.0, 0.0025, 0.5, 20.0, None, 8),
    "paper1024": (32, 4, 1.0, 0.002, 2.0, 10.0, None, 8),
}
# The resolution each paper preset was made for (the paper's datasets); other resolutions use `auto`
# or `stylegan2`.
PAPER_RESOLUTION = {"paper256": 256, "paper512": 512, "paper1024": 1024}


def auto_spec(resolution: int, gpus: int) -> dict[str, Any]:
    """The stylegan2-ada-pytorch 'auto' rule (train.py): minibatch, mbstd group, widths, lr, gamma, EMA."""
    if resolution < 4 or resolution & (resolution - 1):
        raise UsageError(f"--resolution {resolution} is not a power of two of at least 4.")
    gpus = max(int(gpus), 1)
    mb = max(min(gpus * min(4096 // resolution, 32), 64), gpus)
    return {
        "mb": mb,
        "mbstd": min(mb // gpus, 4),
        "fmaps": 1.0 if resolution >= 512 else 0.5,
        "lr": 0.002 if resolution >= 1024 else 0.0025,
        "gamma": 0.0002 * resolution ** 2 / mb,
        "ema_kimg": mb * 10 / 32,
        "ema_rampup": 0.05,
        "map": 2,
    }


def _model(fmaps: float, mbstd: int, mapping_layers: int) -> dict[str, Any]:
    return {"channel_base": int(fmaps * 32768), "channel_max": 512,
            "mapping_layers": mapping_layers, "mbstd_group_size": mbstd}


def sg2_preset_config(name: str, *, world_size: int = 1, resolution: int | None = None):
    """The TrainConfig of a StyleGAN2 preset. `auto` and `cpu` need the resolution (gamma and the
    widths follow it); the others take it when given."""
    from sgan.train.config import TrainConfig

    common: dict[str, Any] = dict(
        arch="stylegan2", resolution=resolution, loss="logistic", adam_betas=(0.0, 0.99), adam_eps=1e-8,
        style_mixing_prob=0.9, pl_weight=2.0, pl_decay=0.01, pl_batch_shrink=2, g_reg_interval=4, r1_interval=16,
        total_kimg=25000.0, tick_kimg_base=4.0, snap_kimg=200.0, keep=5, grid_size=64, minibatch_repeats=1,
        fresh_g_latents=True, reset_optimizer=False, mirror=False,
    )
    if name in PAPER_SPECS:
        mb, mbstd, fmaps, lr, gamma, ema, ramp, layers = PAPER_SPECS[name]
        return TrainConfig(preset=name, model=_model(fmaps, mbstd, layers), batch_base=mb, lr_base=lr,
                           r1_gamma=gamma, ema_kimg=ema, ema_rampup=ramp, **common)
    if name == "auto":
        if resolution is None:
            raise UsageError("--preset auto (StyleGAN2) follows the resolution; give --resolution or a dataset.")
        s = auto_spec(resolution, world_size)
        return TrainConfig(preset=name, model=_model(s["fmaps"], s["mbstd"], s["map"]), batch_base=s["mb"],
                           lr_base=s["lr"], r1_gamma=s["gamma"], ema_kimg=s["ema_kimg"], ema_rampup=s["ema_rampup"],
                           **common)
    if name == "cpu":
        # 2 CPU cores, 20 minutes at 32 px: the `cpu` widths of ModelConfig (32 channels, a 2-layer
        # 128-d mapping network), batch 16; gamma, EMA and ramp-up from the 'auto' rule; no path-length
        # regularisation and no style mixing, as the official configuration for 32 px images ('cifar')
        # and sgan's StyleGAN 1 CPU recipe.
        res = resolution or 32
        batch = 16
        common.update(style_mixing_prob=0.0, pl_weight=0.0, total_kimg=100000.0, tick_kimg_base=4.0,
                      snap_kimg=20.0, keep=3)
        return TrainConfig(
            preset=name, minutes=20.0, batch_base=batch, lr_base=0.0025, r1_gamma=0.0002 * res * res / batch,
            ema_kimg=batch * 10 / 32, ema_rampup=0.05, **common)
    if name == "tiny":
        # The smallest model, for tests and smoke runs; the regularisers run often (R1 every 4th, path
        # length every 2nd minibatch) so that a few steps exercise every phase.
        common.update(total_kimg=1.0, tick_kimg_base=0.1, snap_kimg=0.5, keep=2, grid_size=16, r1_interval=4,
                      g_reg_interval=2)
        return TrainConfig(preset=name, batch_base=8, lr_base=0.002, r1_gamma=1.0, ema_kimg=0.5, ema_rampup=0.05,
                           **common)
    raise UsageError(f"--preset {name!r} is not a StyleGAN2 preset; choose {', '.join(SG2_PRESETS)}.")


def lazy_ratio(interval: int) -> float:
    """c = k / (k + 1): the share of Adam steps that are main steps when a regulariser runs every k."""
    return interval / (interval + 1)


def lazy_adam(lr: float, betas: tuple[float, float], interval: int) -> tuple[float, tuple[float, float]]:
    """The lazy-regularisation correction (training_loop.py): lr * c and betas ** c, c = k / (k + 1)."""
    c = lazy_ratio(interval)
    return lr * c, (betas[0] ** c, betas[1] ** c)


def check_sg2(cfg) -> None:
    """StyleGAN2-only checks of a TrainConfig (resolution may still be unknown)."""
    if cfg.preset not in SG2_PRESETS:
        raise UsageError(f"--preset {cfg.preset!r} is not a StyleGAN2 preset; choose {', '.join(SG2_PRESETS)} "
                         "(or --arch stylegan1).")
    if cfg.loss != "logistic":
        raise UsageError(f"--loss {cfg.loss}: StyleGAN2 trains with the non-saturating logistic loss only.")
    r = cfg.resolution
    if cfg.preset in PAPER_RESOLUTION and r is not None and r != PAPER_RESOLUTION[cfg.preset]:
        raise UsageError(f"--preset {cfg.preset} is the paper's {PAPER_RESOLUTION[cfg.preset]} px configuration and "
                         f"cannot build {r} px; use --preset auto or stylegan2 for {r} px.")
    if cfg.g_reg_interval < 1 or cfg.r1_interval < 1:
        raise UsageError("--g-reg-interval and --r1-interval must be at least 1.")
    if cfg.pl_weight < 0 or not 0 <= cfg.pl_decay <= 1 or cfg.pl_batch_shrink < 1:
        raise UsageError("--pl-weight must be >= 0, pl_decay in [0, 1] and pl_batch_shrink >= 1.")


def check_batch(cfg, model_cfg, world_size: int) -> None:
    """Minibatch shapes the networks and regularisers can run (before anything is written)."""
    batch = cfg.batch_at(cfg.resolution, world_size)
    if batch % world_size:
        raise UsageError(f"--batch {batch} does not split evenly over {world_size} processes.")
    local = batch // world_size
    group = min(model_cfg.mbstd_group_size, local) if model_cfg.mbstd_group_size > 1 else 1
    if local % group:
        raise UsageError(f"the minibatch per process ({local}) is not a multiple of the minibatch-stddev group "
                         f"({group}); change --batch.")
    if cfg.pl_weight > 0:
        n_pl = batch // cfg.pl_batch_shrink
        if n_pl < world_size or n_pl % world_size:
            raise UsageError(f"the path-length minibatch (--batch {batch} / {cfg.pl_batch_shrink}) does not split "
                             f"evenly over {world_size} processes; change --batch.")


def describe(cfg, world_size: int = 1) -> dict[str, Any]:
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
