"""Shared pieces of the CLI: the stderr console, seed lists, progress reporting."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator

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
