"""What a caller of sgan.train.train passes in (Hooks) and gets back (TrainResult)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

if TYPE_CHECKING:   # for the annotations only
    from sgan.train.loop import Trainer
    from sgan.train.run import RunFolder

SnapshotHook = Callable[[Path, float], None]
StepHook = Callable[["Trainer"], None]


@dataclass
class Hooks:
    on_snapshot: list[SnapshotHook] = field(default_factory=list)   # (snapshot path, kimg), rank 0
    on_step: list[StepHook] = field(default_factory=list)           # before each step (tests, fault injection)
    report: Callable[[dict[str, Any]], None] | None = None           # live status (progress bar), rank 0
    log: Callable[[str], None] | None = None                         # messages for the user, rank 0


@dataclass
class TrainResult:
    run_dir: Path
    snapshot: Path | None
    kimg: float
    steps: int
    seconds: float


def log_to(hooks: Hooks, run: RunFolder) -> Callable[[str], None]:
    """A message for the user (the progress output) that also goes into the run's log.txt."""
    def say(line: str) -> None:
        run.log(line)
        if hooks.log is not None:
            hooks.log(line)
    return say
