"""The training configuration: one typed dataclass, presets, validation, JSON round trip.

Presets
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

`arch` "stylegan2" selects the StyleGAN2 loop (sgan.train.loop_sg2) and its presets
(sgan.train.presets_sg2: paper256, paper512, paper1024, stylegan2, auto, cpu, tiny).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from sgan.errors import UsageError
from sgan.nn import ModelConfig
from sgan.train.losses import LOSSES

# The official minibatch tables (total over GPUs) by number of GPUs (train.py).
PAPER_BATCH = {
    1: (4, {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4}),
    2: (8, {4: 256, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8}),
    4: (16, {4: 512, 8: 256, 16: 128, 32: 64, 64: 32, 128: 16}),
    8: (32, {4: 512, 8: 256, 16: 128, 32: 64, 64: 32}),
}
PAPER_LR = {128: 0.0015, 256: 0.002, 512: 0.003, 1024: 0.003}
PAPER_TICK_KIMG = {4: 160, 8: 140, 16: 120, 32: 100, 64: 80, 128: 60, 256: 40, 512: 30, 1024: 20}
PRESETS = ("paper", "cpu", "tiny")
TRAIN_ARCHITECTURES = ("stylegan1", "stylegan2")   # stylegan2: sgan.train.loop_sg2, presets in presets_sg2
AMP_MODES = ("none", "bf16")           # the old --amp values: none -> fp32, bf16 -> bf16
TRAIN_PRECISIONS = ("auto", "fp32", "bf16", "fp16")
TIME_GROWING_SHARE = 0.6   # --minutes without a preset time split: growing takes 60% (the cpu recipe's share)


@dataclass
class TrainConfig:
    """Everything that decides a training run (stored in the run folder as config.json)."""

    preset: str = "paper"
    arch: str = "stylegan1"                # stylegan1: progressive growing (this loop); stylegan2: fixed resolution
    model: dict[str, Any] = field(default_factory=dict)   # ModelConfig overrides (resolution filled in)
    resolution: int | None = None          # final resolution; default: the dataset's largest size
    # schedule (progressive growing)
    start_resolution: int = 8
    lod_training_kimg: float = 600.0       # stabilise each resolution this long
    lod_transition_kimg: float = 600.0     # fade each new resolution in over this long
    total_kimg: float = 25000.0
    minutes: float | None = None           # if set: phases and the end by wall time (seconds of training)
    # res -> share of `minutes` stabilising / fading in. Used when they cover every phase of the run;
    # otherwise the phases share 60% of the time in proportion to their kimg lengths (TIME_GROWING_SHARE).
    time_training: dict[int, float] = field(default_factory=dict)
    time_transition: dict[int, float] = field(default_factory=dict)
    # minibatch and learning rate tables (total over ranks)
    batch_base: int = 4
    batch_dict: dict[int, int] = field(default_factory=dict)
    lr_base: float = 0.001
    lr_dict: dict[int, float] = field(default_factory=dict)
    minibatch_repeats: int = 4             # the schedule (lod, batch, lr) advances every this many steps
    reset_optimizer: bool = True           # new Adam state when floor/ceil of lod change (official)
    adam_betas: tuple[float, float] = (0.0, 0.99)
    adam_eps: float = 1e-8
    # losses and regularisation
    loss: str = "logistic"
    r1_gamma: float = 10.0
    r1_interval: int = 1                   # lazy R1: every this many steps, scaled by the interval
    wgan_lambda: float = 10.0
    wgan_target: float = 1.0
    wgan_drift: float = 0.001
    style_mixing_prob: float = 0.9
    # StyleGAN2 only: path-length regularisation (every g_reg_interval steps; r1_interval is D's interval)
    pl_weight: float = 2.0
    pl_decay: float = 0.01
    pl_batch_shrink: int = 2
    g_reg_interval: int = 4
    fresh_g_latents: bool = True           # the G step draws new z (official); False reuses the D step's fakes
    # G_ema
    ema_kimg: float = 10.0
    ema_rampup: float | None = None
    # data
    mirror: bool = False
    # bookkeeping
    tick_kimg_base: float = 160.0
    tick_kimg_dict: dict[int, float] = field(default_factory=dict)
    snap_kimg: float = 100.0               # write a snapshot every this many kimg
    keep: int = 5                          # keep this many snapshots (0: all)
    grid_size: int = 64                    # number of fixed-z samples in fakesKKKKKK.png
    seed: int = 0
    precision: str = "auto"                # auto (timed at start: sgan.device.choose_precision), fp32, bf16, fp16
    tf32: bool = True                      # CUDA: TF32 for fp32 matmuls/convs (False: exact fp32, sgan.device.configure_cuda)
    compile: str = "auto"                  # torch.compile G and D: auto (where it pays, sgan.train.compiled), on, off
    max_bad_steps: int = 8                 # consecutive non-finite steps before rolling back
    max_rollbacks: int = 3                 # rollbacks before giving up
    # augmentation, labels, fine-tuning (sgan.train.augment, .conditioning, .finetune; checked in .options)
    aug: str = "none"                      # none, ada or diffaug: augment every image D sees
    aug_pipe: str = "bgc"                  # ADA pipeline: blit, geom, color, bg, bgc
    aug_policy: str = "color,translation,cutout"   # DiffAugment policy
    aug_target: float = 0.6                # ADA: target of r_t = E[sign(D(real))]
    aug_p: float | None = None             # ADA: a fixed p (no heuristic)
    aug_interval: int = 4                  # ADA: adjust p every this many minibatches
    aug_kimg: float = 500.0                # ADA: p can move by 1 in this many kimg
    cond: bool = False                     # class-conditional G and D (labels from the dataset)
    freeze_d: int = 0                      # FreezeD: D's highest-resolution layers kept fixed
    init: str | None = None                # start from this checkpoint's weights (fresh optimizer)
    init_ema: bool = False                 # --init: G starts from the source's G_ema

    # -- derived ---------------------------------------------------------------------------

    def model_config(self) -> ModelConfig:
        if self.resolution is None:
            raise UsageError("the training resolution is not known yet; pass --resolution or a dataset.")
        if self.arch == "stylegan2":  # cpu / tiny widths, else config F overridden by the preset's self.model
            model_preset = self.preset if self.preset in ("cpu", "tiny") else "paper"
            base = ModelConfig.preset(model_preset, self.resolution, arch="stylegan2").to_dict()
        else:
            model_preset = "paper" if self.preset == "paper" else self.preset
            base = ModelConfig.preset(model_preset, self.resolution).to_dict()
        unknown = sorted(set(self.model) - set(base))
        if unknown:
            raise UsageError(f"unknown model setting(s) {', '.join(unknown)}; known: {', '.join(sorted(base))}.")
        base.update(self.model)
        base["resolution"] = self.resolution
        try:
            return ModelConfig.from_dict(base)
        except ValueError as err:
            raise UsageError(f"bad model setting: {err}") from None

    def batch_at(self, resolution: int, world_size: int = 1) -> int:
        b = int(self.batch_dict.get(resolution, self.batch_base))
        return max(b - b % world_size, world_size)

    def lr_at(self, resolution: int) -> float:
        return float(self.lr_dict.get(resolution, self.lr_base))

    def tick_kimg_at(self, resolution: int) -> float:
        return float(self.tick_kimg_dict.get(resolution, self.tick_kimg_base))

    @property
    def by_time(self) -> bool:
        return self.minutes is not None

    def phase_lengths(self) -> tuple[Any, Any]:
        """(training, transition) phase lengths: kimg, or seconds with `minutes`."""
        if not self.by_time:
            return self.lod_training_kimg, self.lod_transition_kimg
        total = self.minutes * 60.0
        ress = [self.start_resolution]
        while ress[-1] < self.resolution:
            ress.append(ress[-1] * 2)
        covered = (all(r in self.time_training for r in ress[:-1]) and all(r in self.time_transition for r in ress[1:]))
        if covered:   # the preset's own time split (cpu at 8 -> 32 px)
            share_train, share_trans = self.time_training, self.time_transition
        else:         # every other preset or size: the growing phases share TIME_GROWING_SHARE of the
            # time in proportion to their kimg lengths; the last resolution stabilises for the rest
            t_kimg, x_kimg = self.lod_training_kimg, self.lod_transition_kimg
            phases_kimg = (len(ress) - 1) * (t_kimg + x_kimg)
            scale = TIME_GROWING_SHARE / phases_kimg if phases_kimg > 0 else 0.0
            share_train = {r: t_kimg * scale for r in ress[:-1]}
            share_trans = {r: x_kimg * scale for r in ress[1:]}
        train = {r: share_train.get(r, 0.0) * total for r in ress}
        trans = {r: share_trans.get(r, 0.0) * total for r in ress}
        return train, trans

    # -- checks and JSON -------------------------------------------------------------------

    def validate(self) -> "TrainConfig":
        def bad(msg: str) -> UsageError:
            return UsageError(msg)

        for key in ("batch_dict", "lr_dict", "tick_kimg_dict", "time_training", "time_transition"):
            setattr(self, key, {int(k): v for k, v in getattr(self, key).items()})  # JSON gives str keys

        if self.arch not in TRAIN_ARCHITECTURES:
            raise bad(f"--arch {self.arch!r} is not an architecture; choose {', '.join(TRAIN_ARCHITECTURES)}.")
        if self.model.get("arch", self.arch) != self.arch:
            raise bad(f"the model setting arch={self.model['arch']!r} contradicts --arch {self.arch}.")
        if self.arch == "stylegan2":
            from sgan.train.presets_sg2 import check_sg2

            check_sg2(self)
        elif self.preset not in PRESETS:
            from sgan.train.presets_sg2 import SG2_PRESETS

            hint = " (it is a StyleGAN2 preset: add --arch stylegan2)" if self.preset in SG2_PRESETS else ""
            raise bad(f"--preset {self.preset!r} is not a preset; choose {', '.join(PRESETS)}{hint}.")
        if self.loss not in LOSSES:
            raise bad(f"--loss {self.loss!r} is not a loss; choose {', '.join(LOSSES)}.")
        if self.precision not in TRAIN_PRECISIONS:
            raise bad(f"--precision {self.precision!r}: choose {', '.join(TRAIN_PRECISIONS)}.")
        r, s = self.resolution, self.start_resolution
        for name, v in (("--resolution", r), ("--start-resolution", s)):
            if v is not None and (v < 4 or v & (v - 1)):
                raise bad(f"{name} {v} is not a power of two of at least 4.")
        if r is not None and r < 8:
            raise bad(f"--resolution {r}: StyleGAN trains at 8 px or more.")
        if r is not None and s > r:
            raise bad(f"--start-resolution {s} is above the final resolution {r}; lower it.")
        if self.by_time and not self.minutes > 0:
            raise bad(f"--minutes must be positive, got {self.minutes}.")
        if not self.total_kimg > 0:
            raise bad(f"--kimg must be positive, got {self.total_kimg}.")
        if self.batch_base < 1 or any(v < 1 for v in self.batch_dict.values()):
            raise bad("--batch must be at least 1.")
        if not self.lr_base > 0 or any(not v > 0 for v in self.lr_dict.values()):
            raise bad("--lr must be positive.")
        if self.r1_interval < 1 or self.minibatch_repeats < 1:
            raise bad("--r1-interval and minibatch repeats must be at least 1.")
        if self.r1_gamma < 0 or not 0 <= self.style_mixing_prob <= 1:
            raise bad("--r1-gamma must be >= 0 and --mixing in [0, 1].")
        if self.snap_kimg <= 0 or self.keep < 0 or self.grid_size < 1:
            raise bad("--snap must be positive, --keep >= 0 and the grid at least 1 image.")
        if self.ema_kimg < 0:
            raise bad("--ema-kimg must be >= 0.")
        if not all(math.isfinite(v) and v >= 0 for v in (self.lod_training_kimg, self.lod_transition_kimg)):
            raise bad("phase lengths must be finite and >= 0.")
        from sgan.train.options import validate_extras

        validate_extras(self)
        return self

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["adam_betas"] = list(self.adam_betas)
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)} | {"amp"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UsageError(f"unknown training setting(s): {', '.join(unknown)}.")
        d = dict(data)
        if "amp" in d:  # configs and snapshots written before --precision: amp none/bf16
            amp = d.pop("amp")
            d.setdefault("precision", "fp32" if amp in (None, "none") else amp)
        for key in ("batch_dict", "lr_dict", "tick_kimg_dict", "time_training", "time_transition"):
            if key in d and d[key] is not None:
                d[key] = {int(k): v for k, v in d[key].items()}
        if "adam_betas" in d:
            d["adam_betas"] = tuple(d["adam_betas"])
        return cls(**d)


def preset_config(name: str, *, world_size: int = 1, arch: str = "stylegan1",
                  resolution: int | None = None) -> TrainConfig:
    """The TrainConfig of a preset (before command-line overrides); StyleGAN2 presets in presets_sg2."""
    if arch == "stylegan2":
        from sgan.train.presets_sg2 import sg2_preset_config

        return sg2_preset_config(name, world_size=world_size, resolution=resolution)
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
    from sgan.train.presets_sg2 import SG2_PRESETS

    hint = " (it is a StyleGAN2 preset: add --arch stylegan2)" if name in SG2_PRESETS else ""
    raise UsageError(f"--preset {name!r} is not a preset; choose {', '.join(PRESETS)}{hint}.")
