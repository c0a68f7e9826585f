"""TensorBoard event files in the run folder, when the `tensorboard` extra is installed.

Every numeric value of a stats.jsonl record is a scalar at step cur_nimg (kimg * 1000, as
StyleGAN2-ADA logs), the sample grids are images, and the records of metric-NAME.jsonl (the
`--metrics` computed at each snapshot) are scalars at their snapshot's step. Each process that
opens the folder (a fresh run, each resume) writes its own events file beside the earlier ones;
TensorBoard reads them as one run. Events are a convenience: a failed write becomes one warning line
and training goes on without them.

    tags:  Loss/G_loss, Loss/D_real, ...        the loss terms of the tick (means)
           Augment/aug_p, Augment/aug_rt, ...   ADA's p and r_t, D's sign accuracies
           Timing/sec_per_kimg, ...             speed, seconds, memory
           Progress/kimg, Progress/lod, ...     everything else of the record
           Metrics/fid5k/fid, ...               each numeric value of each metric record
           Images/fakes, Images/reals           the fixed-seed grid at each snapshot, the reals once
"""

from __future__ import annotations

import atexit
import json
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from sgan.checkpoint import LATEST_POINTER

MISSING_NOTE = ("note: TensorBoard is not installed, so this run writes no event files "
                "(pip install 'sgan[tensorboard]' to get them; stats.jsonl has the same values).")
_note_said = False   # the note once per process, however many runs or resumes it trains

TIMING = {"sec_per_kimg", "images_per_s", "tick_seconds", "train_seconds", "memory_mb"}
AUGMENT_PREFIXES = ("aug_", "acc_")
FAKES_RE = re.compile(r"^fakes(\d{6,})\.png$")


def tag_for(key: str) -> str:
    """The TensorBoard tag of a stats.jsonl key (the key itself, under its group)."""
    if key.startswith(AUGMENT_PREFIXES):
        return f"Augment/{key}"
    if key in TIMING:
        return f"Timing/{key}"
    if "loss" in key.lower() or key.startswith(("G_", "D_")) or key == "pl_mean":
        return f"Loss/{key}"
    return f"Progress/{key}"


def numeric_items(record: dict[str, Any]) -> list[tuple[str, float]]:
    """The finite numbers of a record (not booleans, strings or lists), in its order."""
    out = []
    for k, v in record.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            out.append((k, float(v)))
    return out


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


class EventLog:
    """A SummaryWriter on the run folder, or nothing (no tensorboard, or a write failed)."""

    def __init__(self, writer: Any, run_dir: Path) -> None:
        self.writer, self.run_dir = writer, run_dir
        self._metric_offsets: dict[str, int] = {}
        self._last_tick_nimg: int | None = None

    @classmethod
    def open(cls, run_dir: str | Path) -> "EventLog | None":
        """An EventLog on `run_dir`, or None with the one-line note when tensorboard is missing
        (said once per process). A resumed run's events drop the previous process's steps after the
        newest snapshot (latest.json), the ones this run trains again."""
        global _note_said
        run_dir = Path(run_dir)
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            if not _note_said:
                _note_said = True
                _say(MISSING_NOTE)
            return None
        except Exception as err:  # noqa: BLE001 (a broken installation: events off, training on)
            _say(f"warning: TensorBoard cannot be imported ({type(err).__name__}: {err}); this run writes no event files.")
            return None
        resumed = _resumed_nimg(run_dir)
        try:
            writer = SummaryWriter(log_dir=str(run_dir), purge_step=None if resumed is None else resumed + 1,
                                   flush_secs=60)
        except Exception as err:  # noqa: BLE001 (events must never stop training)
            _say(f"warning: cannot write TensorBoard events in {run_dir} ({err}); training goes on without them.")
            return None
        log = cls(writer, run_dir)
        if resumed is not None:
            log.skip_existing_metrics()   # the earlier processes logged them
        atexit.register(log.close)         # an interrupted run still closes its file
        return log

    # -- writes -----------------------------------------------------------------------------

    def scalars(self, record: dict[str, Any], step: int | None = None) -> None:
        """Every numeric value of a stats.jsonl record at `step` (default: its kimg * 1000), then the
        metric records written since the last call; then a flush (one per tick)."""
        if self.writer is None:
            return
        step = _nimg(record) if step is None else int(step)
        if self._last_tick_nimg is not None and step <= self._last_tick_nimg:   # a rollback trains these again
            self._guard(lambda: self._restart_at(step))
        self._last_tick_nimg = step
        wall = time.time()
        self._guard(lambda: [self.writer.add_scalar(tag_for(k), v, global_step=step, walltime=wall)
                             for k, v in numeric_items(record)])
        self.metrics()
        self._guard(lambda: self.writer.flush())

    def metric(self, name: str, record: dict[str, Any], step: int | None = None) -> None:
        """One metric result (a metric-NAME.jsonl record) as Metrics/NAME/KEY scalars."""
        if self.writer is None:
            return
        step = _nimg(record) if step is None else int(step)
        self._guard(lambda: [self.writer.add_scalar(f"Metrics/{name}/{k}", v, global_step=step)
                             for k, v in numeric_items(record) if k != "kimg"])

    def metrics(self) -> None:
        """The records appended to the folder's metric-NAME.jsonl files since the last call."""
        if self.writer is None:
            return
        for path in sorted(self.run_dir.glob("metric-*.jsonl")):
            name = path.name[len("metric-"):-len(".jsonl")]
            start = self._metric_offsets.get(name, 0)
            try:
                with open(path, "rb") as f:
                    f.seek(start)
                    chunk = f.read()
            except OSError:
                continue
            end = chunk.rfind(b"\n") + 1   # whole lines only: a line being written waits for the next call
            self._metric_offsets[name] = start + end
            for line in chunk[:end].splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                kimg = record.get("kimg") if isinstance(record, dict) else None
                if isinstance(kimg, (int, float)) and not isinstance(kimg, bool) and math.isfinite(kimg):
                    self.metric(name, record)

    def skip_existing_metrics(self) -> None:
        """Start reading metric files at their current ends (a resume: the earlier records are logged)."""
        for path in self.run_dir.glob("metric-*.jsonl"):
            try:
                self._metric_offsets[path.name[len("metric-"):-len(".jsonl")]] = path.stat().st_size
            except OSError:
                pass

    def image(self, name: str, image: str | Path | np.ndarray, step: int = 0) -> None:
        """A PNG file (its bytes as they are: no second encoding) or a uint8 [H, W, C] array as
        Images/NAME at `step`, then a flush."""
        if self.writer is None:
            return
        self._guard(lambda: self._add_png(f"Images/{name}", *_png(image), step=int(step)))
        self._guard(lambda: self.writer.flush())

    def _restart_at(self, step: int) -> None:
        """A SessionLog START at `step`: TensorBoard drops the points at this step and later logged before."""
        from tensorboard.compat.proto.event_pb2 import Event, SessionLog

        self.writer._get_file_writer().add_event(Event(session_log=SessionLog(status=SessionLog.START)), step,
                                                 time.time())

    def _add_png(self, tag: str, data: bytes, width: int, height: int, channels: int, *, step: int) -> None:
        from tensorboard.compat.proto.summary_pb2 import Summary

        img = Summary.Image(height=height, width=width, colorspace=channels, encoded_image_string=data)
        self.writer._get_file_writer().add_summary(Summary(value=[Summary.Value(tag=tag, image=img)]), step,
                                                   time.time())

    def grid(self, path: str | Path) -> None:
        """A grid the run folder just saved (reals.png, fakesKKKKKK.png)."""
        path = Path(path)
        if FAKES_RE.match(path.name):
            self.image("fakes", path, step=self._grid_step(path.name))
        elif path.name == "reals.png":
            self.image("reals", path, step=0)

    def close(self) -> None:
        """The last metric records, then flush and close (idempotent)."""
        if self.writer is None:
            return
        self.metrics()
        writer, self.writer = self.writer, None
        atexit.unregister(self.close)
        try:
            writer.close()
        except Exception as err:  # noqa: BLE001
            _say(f"warning: TensorBoard events in {self.run_dir} may be incomplete ({err}).")

    # -- helpers ------------------------------------------------------------------------------

    def _grid_step(self, file_name: str) -> int:
        """fakesKKKKKK.png is at the last tick's step when that tick is in kimg KKKKKK, else at KKKKKK * 1000."""
        m = FAKES_RE.match(file_name)
        kimg = int(m.group(1)) if m else 0
        last = self._last_tick_nimg
        return last if last is not None and last // 1000 == kimg else kimg * 1000

    def _guard(self, fn) -> None:
        """Run a write; a failure says one warning line and turns the events off for this run."""
        if self.writer is None:
            return
        try:
            fn()
        except Exception as err:  # noqa: BLE001 (events must never stop training)
            writer, self.writer = self.writer, None
            _say(f"warning: cannot write TensorBoard events in {self.run_dir} ({err}); training goes on without them.")
            try:
                writer.close()
            except Exception:  # noqa: BLE001
                pass


def _png(image: str | Path | np.ndarray) -> tuple[bytes, int, int, int]:
    """PNG bytes, width, height, channels: a file as it is, an array encoded fast (zlib level 1)."""
    import io

    from PIL import Image

    if isinstance(image, (str, Path)):
        data = Path(image).read_bytes()
        with Image.open(io.BytesIO(data)) as im:
            return data, im.width, im.height, len(im.getbands())
    if image.ndim == 2:
        image = image[:, :, None]
    assert image.ndim == 3 and image.dtype == np.uint8 and image.shape[2] in (1, 3, 4), \
        f"image: uint8 [H, W, 1|3|4], got {image.dtype} {list(image.shape)}"
    buf = io.BytesIO()
    Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(buf, format="PNG", compress_level=1)
    return buf.getvalue(), image.shape[1], image.shape[0], image.shape[2]


def _nimg(record: dict[str, Any]) -> int:
    return int(round(float(record.get("kimg", 0.0)) * 1000))


def _resumed_nimg(run_dir: Path) -> int | None:
    """cur_nimg of the newest snapshot (latest.json), when the folder already has one."""

    try:
        kimg = json.loads((run_dir / LATEST_POINTER).read_text()).get("kimg")
    except (OSError, ValueError, AttributeError):
        return None
    return int(round(float(kimg) * 1000)) if isinstance(kimg, (int, float)) else None
