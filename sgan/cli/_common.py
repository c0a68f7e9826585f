"""Shared pieces of the CLI: the stderr console, seed lists, float checks, progress reporting."""

from __future__ import annotations

import math
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from sgan.errors import UsageError

console = Console(stderr=True)


def parse_int_list(text: str, *, option: str = "--seeds") -> list[int]:
    """Parse `0-3,7,10-11` into [0, 1, 2, 3, 7, 10, 11] (ranges inclusive, order kept)."""
    if text is None or not text.strip():
        raise UsageError(f"{option} is empty; give numbers and ranges such as 0-15,42.")
    values: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            if "-" in part[1:]:
                cut = part.index("-", 1)
                lo, hi = int(part[:cut]), int(part[cut + 1:])
                if hi < lo:
                    raise UsageError(f"{option}: the range {part!r} runs backwards; write {hi}-{lo}.")
                values.extend(range(lo, hi + 1))
            else:
                values.append(int(part))
        except ValueError:
            raise UsageError(f"{option}: {part!r} is not a number or range; use a list such as 0-15,42.") from None
    if any(v < 0 for v in values):
        raise UsageError(f"{option}: values must be zero or more.")
    return values


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
