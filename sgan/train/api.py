"""What the CLI and scripts call: `train(cfg, data, out)`, with `configure` (sgan.train.presets) for
a preset plus options exactly as `sgan train` applies them.

    from sgan.train import configure, train
    cfg, given = configure("cpu", {"total_kimg": 50})
    train(cfg, "data/shapes.lmdb", "runs/shapes", resume_overrides=given)
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from sgan.device import resolve_device
from sgan.train.config import TrainConfig
from sgan.train.driver import run_training
from sgan.train.hooks import Hooks, TrainResult
from sgan.train.procs import ProcsChoice


def train(cfg: TrainConfig, data: str | Path, out: str | Path, *, resume: str | None = None,
          device: str = "auto", hooks: Hooks | None = None, command_line: list[str] | None = None,
          resume_overrides: dict[str, Any] | None = None, threads: int | None = None,
          procs: ProcsChoice | None = None) -> TrainResult:
    """Train StyleGAN on the LMDB `data`, writing the run folder `out`; see docs/train.md.

    `resume`: `auto` or a snapshot / run folder; `resume_overrides`: the settings given for this start
    (`configure`'s second value: the resumable ones replace the run's own). `threads`: torch CPU
    threads for every step; None picks per resolution (sgan.train.threads.cpu_threads). `procs`: how
    `--procs` chose this run's processes (config.json and the first line say why)."""
    return run_training(cfg, Path(data), Path(out), resume=resume, device=resolve_device(device), hooks=hooks or Hooks(),
                        command_line=command_line or list(sys.argv), resume_overrides=resume_overrides or {},
                        threads=threads, procs=procs)
