"""The run folder: config.json, stats.jsonl, log.txt, grids, the loss plot, snapshots and their
pointer; and the signal handling that turns Ctrl-C / SIGTERM into a clean stop.

    runs/NAME/
      config.json              resolved training + model config, command line, versions, device
      log.txt                  the plain progress lines
      stats.jsonl              one JSON object per tick (append-only)
      reals.png                real images at the final resolution
      fakes000000.png ...      the fixed-seed grid (seeds 0..N-1, as `sgan generate --seeds`)
      losses.png               the loss plot, redrawn at each snapshot
      snapshot-000020.pt ...   the last --keep snapshots (G, G_ema, D and the training state)
      latest.json              the newest complete snapshot (written after it)
      events.out.tfevents.*    TensorBoard events, one file per process (with the tensorboard extra; sgan.train.tblog)
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
from pathlib import Path
from typing import Any

import numpy as np

from sgan.checkpoint import LATEST_POINTER
from sgan.errors import SganError
from sgan.fileio import append_jsonl, atomic_write_json
from sgan.viz import image_grid, save_png, upscale_nearest
from sgan.train.tblog import EventLog

SNAPSHOT_RE = re.compile(r"^snapshot-(\d{6,})\.pt$")


class OutputError(SganError):
    """The run folder cannot be written."""


class TrainingInterrupted(SganError):
    """SIGINT / SIGTERM stopped training after a snapshot; exit 130 / 143."""

    def __init__(self, message: str, signum: int, snapshot: Path | None) -> None:
        super().__init__(message)
        self.signum, self.snapshot = signum, snapshot
        self.exit_code = 128 + signum


class TrainingDiverged(SganError):
    """Losses or gradients stayed non-finite after the allowed rollbacks."""


def output_error(path: Path, err: OSError) -> OutputError:
    import errno

    reason = err.strerror or str(err)
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free some space or choose another --out folder"
    elif err.errno in (errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
        hint = "something else is in the way there; choose another --out folder"
    elif err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = "it is not writable; fix its permissions or choose another --out folder"
    else:
        hint = "choose another --out folder"
    return OutputError(f"cannot write {path}: {reason}; {hint}.")


class RunFolder:
    """Writes of the run folder (rank 0 only)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self._events: Any = False   # sgan.train.tblog.EventLog (or None), opened by the first write of a run

    def events(self) -> Any:
        """The run's TensorBoard events (sgan.train.tblog.EventLog), or None without tensorboard."""
        if self._events is False:

            self._events = EventLog.open(self.path)
        return self._events

    def close(self) -> None:
        """The end of the run: the TensorBoard events are flushed and closed."""
        if self._events:
            self._events.close()

    def create(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            probe = self.path / ".sgan-write-test"
            probe.write_bytes(b"ok")
            probe.unlink()
        except OSError as err:
            raise output_error(self.path, err) from None

    def has_run(self) -> bool:
        return (self.path / LATEST_POINTER).is_file() or bool(self.snapshots())

    def reset_untrained(self) -> bool:
        """If the folder's only progress is the kimg-0 snapshot (a run that stopped before its first
        training snapshot), remove the run's files so a fresh run can use the folder; else False."""
        pointer = self.path / LATEST_POINTER
        try:
            kimg = json.loads(pointer.read_text()).get("kimg")
        except (OSError, ValueError, AttributeError):
            return False
        snaps = self.snapshots()
        if kimg != 0 or [p.name for p in snaps] != ["snapshot-000000.pt"]:
            return False
        runs_files = [*self.path.glob("fakes*.png"), *self.path.glob("events.out.tfevents.*")]
        for p in [pointer, *snaps, *runs_files] + [self.path / n for n in ("stats.jsonl", "log.txt",
                                                                          "losses.png", "reals.png")]:
            try:
                p.unlink()
            except FileNotFoundError:
                pass
        return True

    def snapshots(self) -> list[Path]:
        if not self.path.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in self.path.iterdir() if (m := SNAPSHOT_RE.match(p.name))]
        return [p for _, p in sorted(found)]

    def snapshot_path(self, cur_nimg: int) -> Path:
        return self.path / f"snapshot-{cur_nimg // 1000:06d}.pt"

    def write_json(self, name: str, obj: Any) -> None:
        try:
            atomic_write_json(self.path / name, obj)
        except OSError as err:
            raise output_error(self.path / name, err) from None

    def append_stats(self, record: dict[str, Any]) -> None:
        try:
            append_jsonl(self.path / "stats.jsonl", record)
        except OSError as err:
            raise output_error(self.path / "stats.jsonl", err) from None
        if self.events():
            self._events.scalars(record)   # and the metric records written since the last tick

    def read_stats(self) -> list[dict[str, Any]]:
        p = self.path / "stats.jsonl"
        if not p.is_file():
            return []
        out = []
        for line in p.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue  # a line cut by a crash
        return out

    def log(self, line: str) -> None:
        self.events()   # a run's first write: the events file opens (or the no-tensorboard note, once)
        try:
            with open(self.path / "log.txt", "a", encoding="utf-8") as f:
                f.write(line.rstrip("\n") + "\n")
        except OSError as err:
            raise output_error(self.path / "log.txt", err) from None

    def save_grid(self, name: str, images: np.ndarray, *, final_resolution: int) -> Path:
        """uint8 [N, r, r, C] -> a grid PNG, nearest-upscaled to the final resolution and to >= 64 px cells."""
        r = images.shape[1]
        factor = max(final_resolution // r, 1) * max(64 // max(final_resolution, 1), 1)
        cols = int(np.ceil(np.sqrt(len(images))))
        grid = upscale_nearest(image_grid(images, cols=cols, pad=1), factor)
        try:
            saved = save_png(self.path / name, grid)
        except OSError as err:
            raise output_error(self.path / name, err) from None
        if self.events():
            self._events.grid(saved)   # the PNG's bytes as they are
        return saved

    def prune(self, keep: int, protect: Path) -> None:
        """Delete all but the newest `keep` snapshots (never `protect`, the one just pointed at)."""
        if keep <= 0:
            return
        snaps = self.snapshots()
        for p in snaps[:-keep]:
            if p != protect:
                try:
                    p.unlink()
                except OSError:
                    pass


class StopSignals:
    """SIGINT / SIGTERM only set a flag; the loop stops at the next step boundary. A second
    signal while saving is ignored (the snapshot write is atomic anyway). Main thread only."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is None:
            self.signum = signum

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()
