"""The training configuration: one typed dataclass whose fields carry the option registry.

Every field's metadata (`option(...)`) says how `sgan train` spells it (`flag`), whether a resumed
run may change it (`resumable`), which architecture alone uses it (`only`), and whether giving it
replaces a per-resolution table (`table`). The CLI's flags, the resumable overrides, the
architecture-only options and the option names in error messages all derive from it (`FLAGS`,
`RESUMABLE`, `ARCH_ONLY`, `option_name`). The presets' values live in sgan.train.presets (config
never imports presets); the checks that need the dataset or the number of processes in
sgan.train.plan.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from sgan.errors import UsageError
from sgan.nn import ModelConfig
from sgan.train.augment import AUG_KINDS, PIPES
from sgan.train.augment.diffaug import parse_policy
from sgan.train.compiled import check_compile
from sgan.train.losses import LOSSES

TRAIN_ARCHITECTURES = ("stylegan1", "stylegan2")
# The preset names of each architecture (their tables: sgan.train.presets).
PRESETS = ("paper", "cpu", "tiny")
SG2_PRESETS = ("paper256", "paper512", "paper1024", "stylegan2", "auto", "cpu", "tiny")
# The resolution each StyleGAN2 paper preset was made for (the paper's datasets); other resolutions
# use `auto` or `stylegan2`.
PAPER_RESOLUTION = {"paper256": 256, "paper512": 512, "paper1024": 1024}
AMP_MODES = ("none", "bf16")           # the old --amp values: none -> fp32, bf16 -> bf16
TRAIN_PRECISIONS = ("auto", "fp32", "bf16", "fp16")
TIME_GROWING_SHARE = 0.6   # --minutes without a preset time split: growing takes 60% (the cpu recipe's share)
TABLES = ("batch_dict", "lr_dict", "tick_kimg_dict", "time_training", "time_transition")  # int keys


def option(default: Any = dataclasses.MISSING, *, factory: Any = dataclasses.MISSING, flag: str | None = None,
           cli: bool = True, resumable: bool = False, only: str | None = None, table: str | None = None) -> Any:
    """A TrainConfig field with its registry entry: `flag` (default `--name-with-dashes`), `cli`
    (False: a library-only setting), `resumable` (a resumed run takes the new value), `only` (the
    one architecture that uses it), `table` (giving it empties this per-resolution table)."""
    meta = {"flag": flag, "cli": cli, "resumable": resumable, "only": only, "table": table}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    """Everything that decides a training run (stored in the run folder as config.json)."""

    preset: str = option("paper", cli=False)      # set by --preset, before the overrides
    arch: str = option("stylegan1")               # stylegan1: progressive growing; stylegan2: fixed resolution
    model: dict[str, Any] = option(factory=dict, cli=False)   # ModelConfig overrides (resolution filled in)
    resolution: int | None = option(None)         # final resolution; default: the dataset's largest size
    # schedule (progressive growing)
    start_resolution: int = option(8, only="stylegan1")
    lod_training_kimg: float = option(600.0, flag="--phase-kimg", only="stylegan1")   # stabilise each resolution
    lod_transition_kimg: float = option(600.0, flag="--fade-kimg", only="stylegan1")  # fade each one in
    total_kimg: float = option(25000.0, flag="--kimg", resumable=True)
    minutes: float | None = option(None, resumable=True)   # if set: phases and the end by wall time
    # res -> share of `minutes` stabilising / fading in. Used when they cover every phase of the run;
    # otherwise the phases share 60% of the time in proportion to their kimg lengths (TIME_GROWING_SHARE).
    time_training: dict[int, float] = option(factory=dict, cli=False)
    time_transition: dict[int, float] = option(factory=dict, cli=False)
    # minibatch and learning rate tables (total over ranks)
    batch_base: int = option(4, flag="--batch", table="batch_dict")
    batch_dict: dict[int, int] = option(factory=dict, cli=False)
    lr_base: float = option(0.001, flag="--lr", table="lr_dict")
    lr_dict: dict[int, float] = option(factory=dict, cli=False)
    minibatch_repeats: int = option(4, cli=False)   # the schedule (lod, batch, lr) advances every this many steps
    reset_optimizer: bool = option(True, flag="--reset-optimizer/--keep-optimizer", only="stylegan1")
    adam_betas: tuple[float, float] = option((0.0, 0.99), cli=False)
    adam_eps: float = option(1e-8, cli=False)
    # losses and regularisation
    loss: str = option("logistic")
    r1_gamma: float = option(10.0)
    r1_interval: int = option(1)                  # lazy R1: every this many steps, scaled by the interval
    wgan_lambda: float = option(10.0, cli=False)
    wgan_target: float = option(1.0, cli=False)
    wgan_drift: float = option(0.001, cli=False)
    style_mixing_prob: float = option(0.9, flag="--mixing")
    # StyleGAN2 only: path-length regularisation (every g_reg_interval steps; r1_interval is D's interval)
    pl_weight: float = option(2.0)
    pl_decay: float = option(0.01, cli=False)
    pl_batch_shrink: int = option(2, cli=False)
    g_reg_interval: int = option(4)
    # the G step draws new z (official); False reuses the D step's fakes
    fresh_g_latents: bool = option(True, flag="--fresh-g-latents/--reuse-fakes", only="stylegan1")
    # G_ema
    ema_kimg: float = option(10.0)
    ema_rampup: float | None = option(None)
    # data
    mirror: bool = option(False)
    # bookkeeping
    tick_kimg_base: float = option(160.0, flag="--tick", table="tick_kimg_dict")
    tick_kimg_dict: dict[int, float] = option(factory=dict, cli=False)
    snap_kimg: float = option(100.0, flag="--snap", resumable=True)   # a snapshot every this many kimg
    keep: int = option(5, resumable=True)         # keep this many snapshots (0: all)
    grid_size: int = option(64, cli=False)        # number of fixed-z samples in fakesKKKKKK.png
    seed: int = option(0)
    # auto (timed at start: sgan.device.choose_precision), fp32, bf16, fp16
    precision: str = option("auto", resumable=True)
    # CUDA: TF32 for fp32 matmuls/convs (False: exact fp32, sgan.device.configure_cuda)
    tf32: bool = option(True, resumable=True)
    compile: str = option("auto", resumable=True)   # torch.compile G and D: auto, on, off (sgan.train.compiled)
    max_bad_steps: int = option(8, flag="max_bad_steps (library)", cli=False, resumable=True)  # before a rollback
    max_rollbacks: int = option(3, flag="max_rollbacks (library)", cli=False, resumable=True)  # before giving up
    # augmentation, labels, fine-tuning (sgan.train.augment, .conditioning, .finetune)
    aug: str = option("none")                     # none, ada or diffaug: augment every image D sees
    aug_pipe: str = option("bgc")                 # ADA pipeline: blit, geom, color, bg, bgc
    aug_policy: str = option("color,translation,cutout")   # DiffAugment policy
    aug_target: float = option(0.6)               # ADA: target of r_t = E[sign(D(real))]
    aug_p: float | None = option(None)            # ADA: a fixed p (no heuristic)
    aug_interval: int = option(4, cli=False)      # ADA: adjust p every this many minibatches
    aug_kimg: float = option(500.0)               # ADA: p can move by 1 in this many kimg
    cond: bool = option(False)                    # class-conditional G and D (the dataset's labels)
    freeze_d: int = option(0)                     # FreezeD: D's highest-resolution layers kept fixed
    init: str | None = option(None)               # start from this checkpoint's weights (fresh optimizer)
    init_ema: bool = option(False)                # --init: G starts from the source's G_ema

    def __post_init__(self) -> None:
        for key in TABLES:   # JSON gives str keys
            setattr(self, key, {int(k): v for k, v in (getattr(self, key) or {}).items()})
        self.adam_betas = tuple(self.adam_betas)

    # -- derived ---------------------------------------------------------------------------

    def replace(self, **changes: Any) -> "TrainConfig":
        """A copy with `changes` (field names) applied."""
        return dataclasses.replace(self, **changes)

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

    def resolutions(self) -> list[int]:
        """The resolutions the run trains at: start_resolution doubling to resolution (StyleGAN2: one)."""
        if self.arch == "stylegan2":
            return [self.resolution]
        out = [self.start_resolution]
        while out[-1] < self.resolution:
            out.append(out[-1] * 2)
        return out

    def phase_lengths(self) -> tuple[Any, Any]:
        """(training, transition) phase lengths: kimg, or seconds with `minutes`."""
        if not self.by_time:
            return self.lod_training_kimg, self.lod_transition_kimg
        total = self.minutes * 60.0
        ress = self.resolutions()
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
        """Checks of the settings alone (the dataset's and the processes' in sgan.train.plan)."""
        _check_arch(self)
        _check_numbers(self)
        _check_extras(self)
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
        for key in TABLES:
            if key in d and d[key] is None:
                d.pop(key)
        return cls(**d)


# -- the registry, derived from the fields' metadata ------------------------------------------

REGISTRY: dict[str, dict[str, Any]] = {f.name: dict(f.metadata) for f in dataclasses.fields(TrainConfig)}


def option_name(name: str) -> str:
    """The command-line option of a TrainConfig field (`batch_base` -> `--batch`)."""
    return REGISTRY.get(name, {}).get("flag") or "--" + name.replace("_", "-")


# CLI parameter (the flag without dashes: `phase_kimg`) -> TrainConfig field, for every option of `sgan train`
FLAGS = {option_name(n).split("/")[0].lstrip("-").replace("-", "_"): n for n, m in REGISTRY.items() if m["cli"]}
RESUMABLE = tuple(n for n, m in REGISTRY.items() if m["resumable"])   # a resumed run takes these anew
ARCH_ONLY = {n: m["only"] for n, m in REGISTRY.items() if m["only"]}   # field -> the one architecture using it


def _check_arch(cfg: TrainConfig) -> None:
    if cfg.arch not in TRAIN_ARCHITECTURES:
        raise UsageError(f"--arch {cfg.arch!r} is not an architecture; choose {', '.join(TRAIN_ARCHITECTURES)}.")
    if cfg.model.get("arch", cfg.arch) != cfg.arch:
        raise UsageError(f"the model setting arch={cfg.model['arch']!r} contradicts --arch {cfg.arch}.")
    if cfg.arch == "stylegan1":
        if cfg.preset not in PRESETS:
            hint = " (it is a StyleGAN2 preset: add --arch stylegan2)" if cfg.preset in SG2_PRESETS else ""
            raise UsageError(f"--preset {cfg.preset!r} is not a preset; choose {', '.join(PRESETS)}{hint}.")
        return
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


def _check_numbers(cfg: TrainConfig) -> None:
    def bad(msg: str) -> UsageError:
        return UsageError(msg)

    if cfg.loss not in LOSSES:
        raise bad(f"--loss {cfg.loss!r} is not a loss; choose {', '.join(LOSSES)}.")
    if cfg.precision not in TRAIN_PRECISIONS:
        raise bad(f"--precision {cfg.precision!r}: choose {', '.join(TRAIN_PRECISIONS)}.")
    r, s = cfg.resolution, cfg.start_resolution
    for name, v in (("--resolution", r), ("--start-resolution", s)):
        if v is not None and (v < 4 or v & (v - 1)):
            raise bad(f"{name} {v} is not a power of two of at least 4.")
    if r is not None and r < 8:
        raise bad(f"--resolution {r}: StyleGAN trains at 8 px or more.")
    if r is not None and s > r:
        raise bad(f"--start-resolution {s} is above the final resolution {r}; lower it.")
    if cfg.by_time and not cfg.minutes > 0:
        raise bad(f"--minutes must be positive, got {cfg.minutes}.")
    if not cfg.total_kimg > 0:
        raise bad(f"--kimg must be positive, got {cfg.total_kimg}.")
    if cfg.batch_base < 1 or any(v < 1 for v in cfg.batch_dict.values()):
        raise bad("--batch must be at least 1.")
    if not cfg.lr_base > 0 or any(not v > 0 for v in cfg.lr_dict.values()):
        raise bad("--lr must be positive.")
    if cfg.r1_interval < 1 or cfg.minibatch_repeats < 1:
        raise bad("--r1-interval and minibatch repeats must be at least 1.")
    if cfg.r1_gamma < 0 or not 0 <= cfg.style_mixing_prob <= 1:
        raise bad("--r1-gamma must be >= 0 and --mixing in [0, 1].")
    if cfg.snap_kimg <= 0 or cfg.keep < 0 or cfg.grid_size < 1:
        raise bad("--snap must be positive, --keep >= 0 and the grid at least 1 image.")
    if cfg.ema_kimg < 0:
        raise bad("--ema-kimg must be >= 0.")
    if not all(math.isfinite(v) and v >= 0 for v in (cfg.lod_training_kimg, cfg.lod_transition_kimg)):
        raise bad("phase lengths must be finite and >= 0.")


def _check_extras(cfg: TrainConfig) -> None:
    """Augmentation, labels and fine-tuning."""
    if cfg.aug not in AUG_KINDS:
        raise UsageError(f"--aug {cfg.aug!r}: choose {', '.join(AUG_KINDS)}.")
    if cfg.aug_pipe not in PIPES:
        raise UsageError(f"--aug-pipe {cfg.aug_pipe!r}: choose {', '.join(PIPES)}.")
    try:
        parse_policy(cfg.aug_policy)
    except ValueError as err:
        raise UsageError(f"--aug-policy: {err}.") from None
    if not (math.isfinite(cfg.aug_target) and 0 < cfg.aug_target < 1):
        raise UsageError(f"--aug-target {cfg.aug_target}: choose a value above 0 and below 1 (ADA: 0.6).")
    if cfg.aug_p is not None and not 0 <= cfg.aug_p <= 1:
        raise UsageError(f"--aug-p {cfg.aug_p}: p is a probability in [0, 1].")
    if cfg.aug_interval < 1 or not cfg.aug_kimg > 0:
        raise UsageError("the ADA interval must be >= 1 and its kimg > 0.")
    if cfg.aug_p is not None and cfg.aug != "ada":
        raise UsageError("--aug-p sets ADA's probability; add --aug ada.")
    if cfg.freeze_d < 0:
        raise UsageError(f"--freeze-d {cfg.freeze_d} must be >= 0.")
    if cfg.init_ema and not cfg.init:
        raise UsageError("--init-ema needs --init CKPT.")
    cfg.compile = check_compile(cfg.compile)
