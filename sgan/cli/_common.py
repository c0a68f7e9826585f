"""Shared pieces of the CLI: the stderr console, seed lists, float checks, progress reporting."""

from __future__ import annotations

import itertools
import math
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from sgan.errors import UsageError

console = Console(stderr=True)


SEED_MAX = 2 ** 32 - 1          # seeds index numpy RandomState: 0 .. 2^32-1
MAX_LIST = 100_000              # the most values a command that holds them all may be given


class IntRanges(Sequence[int]):
    """`0-3,7` as a lazy sequence of ranges: len() and iteration without building a list, so
    `0-4294967295` costs nothing until values are used."""

    def __init__(self, parts: list[range]):
        self.parts = parts
        self._len = sum(len(r) for r in parts)

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[int]:
        for r in self.parts:
            yield from r

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            return list(itertools.islice(self, *index.indices(self._len)))
        if index < 0:
            index += self._len
        if not 0 <= index < self._len:
            raise IndexError(index)
        for r in self.parts:
            if index < len(r):
                return r[index]
            index -= len(r)
        raise IndexError(index)

    def batches(self, size: int) -> Iterator[list[int]]:
        """Consecutive lists of at most `size` values."""
        it = iter(self)
        while chunk := list(itertools.islice(it, size)):
            yield chunk


def parse_int_ranges(text: str, *, option: str = "--seeds", max_value: int = SEED_MAX) -> IntRanges:
    """Parse `0-3,7,10-11` lazily (ranges inclusive, order kept); values in 0 .. max_value."""
    if text is None or not text.strip():
        raise UsageError(f"{option} is empty; give numbers and ranges such as 0-15,42.")
    parts: list[range] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                cut = part.index("-", 1)
                lo, hi = int(part[:cut]), int(part[cut + 1:])
                if hi < lo:
                    raise UsageError(f"{option}: the range {part!r} runs backwards; write {hi}-{lo}.")
            else:
                lo = hi = int(part)
        except ValueError:
            raise UsageError(f"{option}: {part!r} is not a number or range; use a list such as 0-15,42.") from None
        if lo < 0:
            raise UsageError(f"{option}: values must be zero or more.")
        if hi > max_value:
            raise UsageError(f"{option}: {hi} is above the largest allowed value {max_value}.")
        parts.append(range(lo, hi + 1))
    return IntRanges(parts)


def parse_int_list(text: str, *, option: str = "--seeds", max_count: int = MAX_LIST) -> list[int]:
    """Parse `0-3,7,10-11` into [0, 1, 2, 3, 7, 10, 11] (ranges inclusive, order kept), for commands
    that hold every value at once: more than `max_count` values is an error before any list is built."""
    values = parse_int_ranges(text, option=option)
    if len(values) > max_count:
        raise UsageError(f"{option} names {len(values)} values; this command takes at most {max_count}.")
    return list(values)


def check_float(value: float, option: str, *, lo: float | None = None, hi: float | None = None,
                lo_open: bool = False, hi_open: bool = False) -> float:
    """`value` if it is a finite number within [lo, hi] (open ends with lo_open/hi_open), else a
    one-line UsageError naming `option` and the range."""
    def describe() -> str:
        if lo is None and hi is None:
            return "a finite number"
        left = "any" if lo is None else ("above " if lo_open else "at least ") + f"{lo:g}"
        right = None if hi is None else ("below " if hi_open else "at most ") + f"{hi:g}"
        if lo is None:
            return f"a finite number {right}"
        return f"a finite number {left}" + (f" and {right}" if right else "")
    ok = isinstance(value, (int, float)) and math.isfinite(value)
    if ok and lo is not None:
        ok = value > lo if lo_open else value >= lo
    if ok and hi is not None:
        ok = value < hi if hi_open else value <= hi
    if not ok:
        raise UsageError(f"{option} must be {describe()}, got {value}.")
    return value


def finite(*, lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False):
    """A Typer option callback that checks a float option at the door (before the command runs):
    `typer.Option(0.7, "--trunc", callback=finite())`, `callback=finite(lo=0, lo_open=True)`."""
    def callback(param: typer.CallbackParam, value: float | None) -> float | None:
        if value is None:
            return value
        name = max(param.opts, key=len) if param.opts else f"--{param.name}"
        return check_float(value, name, lo=lo, hi=hi, lo_open=lo_open, hi_open=hi_open)

    return callback


def at_least(lo: int):
    """A Typer option callback for an integer option with a lower bound, checked at the door as a
    one-line error (Typer's own `min=` prints a framed usage box): `callback=at_least(1)`."""
    def callback(param: typer.CallbackParam, value: int | None) -> int | None:
        if value is not None and value < lo:
            name = max(param.opts, key=len) if param.opts else f"--{param.name}"
            raise UsageError(f"{name} must be at least {lo}, got {value}.")
        return value

    return callback


ProgressFn = Callable[[int, int], None]


@contextmanager
def progress_bar(description: str, total: int, *, unit: str = "img", min_interval_s: float = 5.0) -> Iterator[ProgressFn]:
    """Yield `report(done, total)`: a rich bar with ETA on a terminal, plain periodic lines otherwise."""
    if console.is_terminal:
        columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
        start = time.perf_counter()
        with Progress(*columns, console=console, transient=False) as progress:
            task = progress.add_task(description, total=total, rate="")

            def report(done: int, total_now: int) -> None:
                rate = done / max(time.perf_counter() - start, 1e-9)
                progress.update(task, completed=done, total=total_now, rate=f"{rate:.1f} {unit}/s")

            yield report
        return
    start = last = time.perf_counter()

    def report_plain(done: int, total_now: int) -> None:
        nonlocal last
        now = time.perf_counter()
        if done >= total_now or now - last >= min_interval_s:
            last = now
            rate = done / max(now - start, 1e-9)
            print(f"{description}: {done}/{total_now} {unit} ({rate:.1f} {unit}/s, {now - start:.0f} s)", file=sys.stderr)

    yield report_plain


PRECISION_HELP = ("fp32 (the default: the same images and scores on every machine and at every --batch), or, for "
                  "speed, bf16 autocast, fp16 (CUDA only) or auto (times fp32, bf16 where the hardware has native "
                  "bfloat16, and fp16 on CUDA on this model at start and takes the fastest that agrees with fp32, so "
                  "the result then depends on the machine). Outputs record the precision that made them.")
PRECISION_DEFAULT = "fp32"   # inference: results must not depend on the machine (training keeps auto)


def pick_precision(precision: str, G, device, *, batch: int = 4, say: bool = True, train: bool = False):
    """Resolve --precision once, when the work starts (every input already checked: a bad input must
    stay one line). `auto` times G's forward at up to 4 images (with its backward when `train`) with
    sgan.device.choose_precision; where it timed something, its choice and timings go to stderr.
    Returns the PrecisionChoice (`fp32` and the other concrete names are taken as given)."""
    from sgan.device import check_precision, choose_precision, generator_probe

    requested = check_precision(precision, device)
    run = generator_probe(G, batch=max(1, min(batch, 4)), train=train) if requested == "auto" else None
    choice = choose_precision(device, run, requested=requested)
    if say and choice.timings_ms:
        print(choice.summary(), file=sys.stderr, flush=True)
    return choice


def check_out_dir(path: Path, option: str = "--outdir") -> Path:
    """A folder the command may write into (it is created when the first file is written): a one-line
    error where it is a file, sits under a file, or its nearest existing folder is not writable."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path} is a file; give a folder (it is created if needed).")
    _check_writable_ancestor(path, option)
    return path


def check_out_file(path: Path, option: str = "--out", *, suffixes: tuple[str, ...] = ()) -> Path:
    """A file the command may write (atomically, replacing it): a one-line error where it is a folder,
    has another suffix than `suffixes`, or cannot be created in its folder."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder; give a file name such as {path / ('out' + (suffixes[0] if suffixes else ''))}.")
    if suffixes and path.suffix.lower() not in suffixes:
        raise UsageError(f"{option} {path}: the file name must end in {' or '.join(suffixes)}.")
    _check_writable_ancestor(path.parent, option)
    return path


def _check_writable_ancestor(folder: Path, option: str) -> None:
    probe = Path(folder)
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UsageError(f"{option} {folder}: {probe} is a file, so the folder cannot be made there.")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {folder}: {probe} is not writable; choose another place.")
