"""How many torch threads a CPU training step uses (and what a process of --procs must get)."""

from __future__ import annotations

from typing import Any

import torch

INITIAL_THREADS = torch.get_num_threads()   # before anything changed it (the most a step may use)
SMALL_CONV_WORK = 8_000_000
"""batch * channels^2 * pixels below which a training step uses one CPU thread: in training runs
(32 channels, batch 16, 2 cores, data loader threads beside) one thread was faster at 8 and 16 px;
two threads win clearly at 32 px. docs/train.md has the measurements and their noise."""


def cpu_threads(*, batch: int, channels: int, resolution: int, max_threads: int) -> int:
    """Torch threads for a CPU training step: one for small convolutions, where thread hand-offs
    cost more than they save, otherwise all of them."""
    return 1 if batch * channels * channels * resolution * resolution < SMALL_CONV_WORK else max_threads


def top_channels(model_cfg: Any) -> int:
    """Feature maps at the output resolution (for the CPU thread policy)."""
    if model_cfg.arch == "stylegan2":
        return int(model_cfg.channels(model_cfg.resolution))
    return int(model_cfg.nf(model_cfg.resolution_log2 - 1))


def set_requires_grad(params: list[torch.nn.Parameter], flag: bool) -> None:
    for p in params:
        p.requires_grad_(flag)
