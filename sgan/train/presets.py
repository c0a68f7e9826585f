"""The presets of both architectures, and `configure`: a preset with options applied, the one
policy `sgan train` and scripts share.

StyleGAN (progressive growing)
- `paper`: the official StyleGAN configuration (NVlabs/stylegan train.py): full widths, start
  8 px, 600 kimg stabilise + 600 kimg fade-in per resolution, the minibatch table of the number
  of GPUs (1, 2, 4 or 8), learning rate 0.001 raised from 128 px, Adam (0, 0.99, 1e-8),
  non-saturating logistic + R1 gamma 10, G_ema half-life 10 kimg, style mixing 0.9, optimizer
  reset at each new lod, 25000 kimg.
- `cpu`: a recipe for 2 CPU cores and 20 minutes at 32 px (see docs/train.md for the
  measurements behind it): 32 channels, a 2-layer 128-d mapping network, batch 16, lr 5e-3,
  lazy R1 with a small gamma, no style-mixing regularisation (it kept the generator on one blob
  shape in this budget), fp32 (bfloat16 autocast is 4-9x slower on CPUs without native bf16),
  phases set by wall time (`minutes`).
- `tiny`: the smallest model, for tests and smoke runs.

StyleGAN2: the `--cfg` specs of NVlabs/stylegan2-ada-pytorch train.py, the 'auto' rule, and the
CPU and test recipes.

| preset    | mb | mbstd | fmaps | lr     | gamma | ema kimg | ramp | map |
|-----------|----|-------|-------|--------|-------|----------|------|-----|
| stylegan2 | 32 | 4     | 1     | 0.002  | 10    | 10       | -    | 8   |  (config F)
| paper256  | 64 | 8     | 0.5   | 0.0025 | 1     | 20       | -    | 8   |
| paper512  | 64 | 8     | 1     | 0.0025 | 0.5   | 20       | -    | 8   |
| paper1024 | 32 | 4     | 1     | 0.002  | 2     | 10       | -    | 8   |
| auto      | max(min(gpus*min(4096//res, 32), 64), gpus) | min(mb//gpus, 4) | 1 at res >= 512 else 0.5 |
|           | lr 0.002 at 1024 else 0.0025 | gamma 0.0002*res^2/mb | ema mb*10/32 | ramp 0.05 | map 2 |

fmaps f gives channels min(f*32768 / res, 512). Every StyleGAN2 preset: Adam (0, 0.99, 1e-8) with
the lazy-regularisation correction, R1 every 16 minibatches, path length weight 2 every 4 (batch
shrink 2, decay 0.01), style mixing 0.9, 25000 kimg, a tick every 4 kimg and a snapshot every
50 ticks (200 kimg). The mb of the table is the global minibatch over all processes.
"""

from __future__ import annotations

from typing import Any

from sgan.errors import UsageError
from sgan.train.config import ARCH_ONLY, PRESETS, REGISTRY, SG2_PRESETS, TRAIN_ARCHITECTURES, TrainConfig, option_name

# The official minibatch tables (total over GPUs) by number of GPUs (train.py).
PAPER_BATCH = {
    1: (4, {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4}),
    2: (8, {4: 256, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8}),
    4: (16, {4: 512, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16}),
    8: (32, {4: 512, 8: 256, 16: 128, 32: 64, 64: 32}),
}
PAPER_LR = {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}
PAPER_TICK_KIMG = {4: 160, 8: 140, 16: 120, 32: 100, 64: 80, 128: 60, 256: 40, 512: 30, 1024: 20}

# StyleGAN2 name: (mb, mbstd, fmaps, lr, gamma, ema_kimg, ema_rampup, mapping layers)
PAPER_SPECS: dict[str, tuple[int, int, float, float, float, float, float | None, int]] = {
    "stylegan2": (32, 4, 1.0, 0.002, 10.0, 10.0, None, 8),
    "paper256": (64, 8, 0.5, 0.0025, 1.0, 20.0, None, 8),
    "paper512": (64, 8, 1.0, 0.0025, 0.5, 20.0, None, 8),
    "paper1024": (32, 4, 1.0, 0.002, 2.0, 10.0, None, 8),
}
FINETUNE_AUG_KIMG = 100.0   # --init: ADA's p reacts faster (StyleGAN2-ADA's transfer runs)
TIME_PRESET_PHASES = 5      # --kimg on a time preset: five phases up to 32 px share the kimg


def preset_config(name: str, *, world_size: int = 1, arch: str = "stylegan1",
                  resolution: int | None = None) -> TrainConfig:
    """The TrainConfig of a preset (before any option). StyleGAN2's `auto` and `cpu` follow the
    resolution; StyleGAN's paper preset the number of processes."""
    if arch == "stylegan2":
        return _sg2_preset(name, world_size=world_size, resolution=resolution)
    if arch != "stylegan1":
        raise UsageError(f"--arch {arch!r} is not an architecture; choose {', '.join(TRAIN_ARCHITECTURES)}.")
    if name == "paper":
        gpus = max(g for g in PAPER_BATCH if g <= max(world_size, 1))
        base, table = PAPER_BATCH[gpus]
        return TrainConfig(preset="paper", batch_base=base, batch_dict=dict(table), lr_dict=dict(PAPER_LR),
                           tick_kimg_dict=dict(PAPER_TICK_KIMG), snap_kimg=1000.0)
    if name == "cpu":
        return TrainConfig(
            preset="cpu", start_resolution=8, minutes=20.0, total_kimg=100000.0,
            time_training={8: 0.10, 16: 0.25, 32: 0.0},
            time_transition={16: 0.10, 32: 0.15},
            lod_training_kimg=20.0, lod_transition_kimg=20.0,
            batch_base=16, lr_base=0.005, loss="logistic", r1_gamma=1.0, r1_interval=4,
            ema_kimg=5.0, ema_rampup=None, fresh_g_latents=False, style_mixing_prob=0.0,
            tick_kimg_base=4.0, snap_kimg=20.0, keep=3, grid_size=64,
        )
    if name == "tiny":
        return TrainConfig(
            preset="tiny", start_resolution=8, lod_training_kimg=0.2, lod_transition_kimg=0.2, total_kimg=1.0,
            batch_base=8, lr_base=0.002, loss="logistic", r1_gamma=1.0, r1_interval=1,
            ema_kimg=0.5, tick_kimg_base=0.1, snap_kimg=0.5, keep=2, grid_size=16, minibatch_repeats=1,
        )
    hint = " (it is a StyleGAN2 preset: add --arch stylegan2)" if name in SG2_PRESETS else ""
    raise UsageError(f"--preset {name!r} is not a preset; choose {', '.join(PRESETS)}{hint}.")


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


def _sg2_model(fmaps: float, mbstd: int, mapping_layers: int) -> dict[str, Any]:
    return {"channel_base": int(fmaps * 32768), "channel_max": 512,
            "mapping_layers": mapping_layers, "mbstd_group_size": mbstd}


def _sg2_preset(name: str, *, world_size: int, resolution: int | None) -> TrainConfig:
    common: dict[str, Any] = dict(
        arch="stylegan2", resolution=resolution, loss="logistic", adam_betas=(0.0, 0.99), adam_eps=1e-8,
        style_mixing_prob=0.9, pl_weight=2.0, pl_decay=0.01, pl_batch_shrink=2, g_reg_interval=4, r1_interval=16,
        total_kimg=25000.0, tick_kimg_base=4.0, snap_kimg=200.0, keep=5, grid_size=64, minibatch_repeats=1,
        fresh_g_latents=True, reset_optimizer=False, mirror=False,
    )
    if name in PAPER_SPECS:
        mb, mbstd, fmaps, lr, gamma, ema, ramp, layers = PAPER_SPECS[name]
        return TrainConfig(preset=name, model=_sg2_model(fmaps, mbstd, layers), batch_base=mb, lr_base=lr,
                           r1_gamma=gamma, ema_kimg=ema, ema_rampup=ramp, **common)
    if name == "auto":
        if resolution is None:
            raise UsageError("--preset auto (StyleGAN2) follows the resolution; give --resolution or a dataset.")
        s = auto_spec(resolution, world_size)
        return TrainConfig(preset=name, model=_sg2_model(s["fmaps"], s["mbstd"], s["map"]), batch_base=s["mb"],
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


def configure(preset: str, options: dict[str, Any], *, world_size: int = 1,
              data_resolution: int | None = None) -> tuple[TrainConfig, dict[str, Any]]:
    """The preset's TrainConfig with `options` (TrainConfig field -> value; None: not given) applied,
    and the fields that were given (a resumed run's overrides). This is `sgan train`'s policy:
    - an architecture-only option given for the other architecture is an error;
    - giving a table's base value (batch_base, lr_base, tick_kimg_base) empties its per-resolution table;
    - total_kimg on a time-based preset switches it to the kimg schedule, with phases of total_kimg / 5
      unless the phase lengths are given;
    - init (fine-tuning): ADA's aug_kimg 100, and StyleGAN starts at the final resolution.
    `data_resolution`: the dataset's largest size (the default resolution)."""
    options = {k: v for k, v in options.items() if v is not None}
    unknown = sorted(set(options) - set(REGISTRY))
    if unknown:
        raise UsageError(f"unknown training setting(s): {', '.join(unknown)}.")
    arch = options.get("arch") or "stylegan1"
    other = [option_name(k) for k in options if ARCH_ONLY.get(k, arch) != arch]
    if other and arch == "stylegan2":
        raise UsageError(f"{', '.join(other)}: progressive growing is StyleGAN 1's; StyleGAN2 trains at one "
                         "resolution.")
    resolution = options.get("resolution") or data_resolution
    if "init" in options:
        options.setdefault("aug_kimg", FINETUNE_AUG_KIMG)
        if arch != "stylegan2" and resolution is not None:
            options.setdefault("start_resolution", resolution)
    cfg = preset_config(preset, world_size=world_size, arch=arch, resolution=resolution)
    given = dict(options)
    for name, value in options.items():
        table = REGISTRY[name]["table"]
        if table:   # one value for every resolution
            value = type(getattr(cfg, name))(value)
            setattr(cfg, table, {})
            given[name] = value
        setattr(cfg, name, value)
    if "total_kimg" in options and "minutes" not in options and cfg.minutes is not None:
        cfg.minutes = None  # --kimg switches a time-based preset to the kimg schedule
        given["minutes"] = None
        if "lod_training_kimg" not in options and "lod_transition_kimg" not in options:
            share = cfg.total_kimg / TIME_PRESET_PHASES  # up to 32 px; the rest stabilises the last resolution
            cfg.lod_training_kimg = cfg.lod_transition_kimg = share
    return cfg.validate(), given
