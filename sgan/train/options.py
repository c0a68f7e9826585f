"""Checks of the training options for augmentation, labels and fine-tuning (TrainConfig.validate)."""

from __future__ import annotations

import math
from typing import Any

from sgan.errors import UsageError


def validate_extras(cfg: Any) -> None:
    from sgan.train.augment import AUG_KINDS, PIPES
    from sgan.train.augment.diffaug import parse_policy

    if cfg.aug not in AUG_KINDS:
        raise UsageError(f"--aug {cfg.aug!r}: choose {', '.join(AUG_KINDS)}.")
    if cfg.aug_pipe not in PIPES:
        raise UsageError(f"--aug-pipe {cfg.aug_pipe!r}: choose {', '.join(PIPES)}.")
    try:
        parse_policy(cfg.aug_policy)
    except ValueError as err:
        raise UsageError(f"--aug-policy: {err}.") from None
    if not (math.isfinite(cfg.aug_target) and 0 < cfg.aug_target < 1):
        raise UsageError(f"--aug-target {cfg.aug_target}: choose a value between 0 and 1 (ADA: 0.6).")
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
    from sgan.train.compiled import check_compile

    cfg.compile = check_compile(cfg.compile)
