"""Benchmark `prepare_dataset` against a plain single-process PIL loop, in one run.

    python benchmarks/prepare.py                       # 2,000 generated 512x512 JPEGs -> sizes 4..256
    python benchmarks/prepare.py --count 300 --repeat 1  # a quick look

The images are generated once (deterministically, photo-like 1/f colour noise plus grain, JPEG
quality 90) into --data-dir. Then, on the same files:

- `PIL loop`: one process; for each file decode, convert to RGB, centre-crop, box-resize to
  --max-size, halve with 2x2 box averages down to --min-size, and encode every level as PNG
  (the same zlib settings as sgan) into memory. No database is written, so this baseline does a
  little less than sgan does.
- `sgan, N workers`: `prepare_dataset(folder, out.lmdb, workers=N)`: the same decode, crop,
  resizes and PNG encodes, plus the LMDB writes, the metadata and the manifest.

The configurations run in turn, --repeat rounds; the table shows the median wall time and the
median CPU time per image (this process and its workers; it does not depend on the load). The
load average is printed before and after, since a shared machine makes every wall time noisy.
"""

from __future__ import annotations

import argparse
import io
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sgan.data.images import PNG_COMPRESS_LEVEL, PNG_STRATEGY, pyramid_sizes  # noqa: E402
from sgan.data.prepare import prepare_dataset  # noqa: E402


def photo_like(rng: np.random.Generator, size: int) -> np.ndarray:
    """A colour image with a roughly 1/f spectrum (like natural images) plus sensor-like grain."""
    out = np.zeros((size, size, 3), np.float32)
    for cells, amp in ((4, 1.0), (8, 0.5), (16, 0.25), (32, 0.125), (64, 0.06)):
        small = (rng.random((cells, cells, 3)) * 255).astype(np.uint8)
        out += amp * np.asarray(Image.fromarray(small).resize((size, size), Image.BICUBIC), np.float32)
    out = out / 1.935 + rng.normal(0.0, 3.0, out.shape).astype(np.float32)
    return out.clip(0, 255).astype(np.uint8)


def make_jpegs(folder: Path, count: int, size: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    have = len(list(folder.glob("*.jpg")))
    if have >= count:
        return
    rng = np.random.default_rng(2024)
    for i in range(count):
        arr = photo_like(rng, size)
        if i >= have:
            Image.fromarray(arr).save(folder / f"{i:05d}.jpg", quality=90)


def pil_loop(folder: Path, max_size: int, min_size: int) -> int:
    """The plain single-process loop a script would use (decode, crop, resize, encode)."""
    stored = 0
    sizes = pyramid_sizes(max_size, min_size)
    for path in sorted(folder.glob("*.jpg")):
        with Image.open(path) as img:
            img = img.convert("RGB")
            w, h = img.size
            s = min(w, h)
            img = img.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
            level = img.resize((sizes[0], sizes[0]), Image.BOX)
            for size in sizes:
                if size != sizes[0]:
                    level = level.reduce(2)
                buf = io.BytesIO()
                level.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL, compress_type=PNG_STRATEGY)
                stored += len(buf.getvalue())
    return stored


def _cpu_seconds() -> float:
    """User + system time of this process and of its reaped children (the worker processes)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measured(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one call."""
    cpu = _cpu_seconds()
    wall = timed(fn)
    return wall, _cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--image-size", type=int, default=512)
    parser.add_argument("--max-size", type=int, default=256)
    parser.add_argument("--min-size", type=int, default=4)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts for sgan")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "sgan-bench-jpegs")
    args = parser.parse_args()

    folder = args.data_dir / f"{args.count}x{args.image_size}"
    t = timed(lambda: make_jpegs(folder, args.count, args.image_size))
    print(f"# {args.count} JPEGs {args.image_size}x{args.image_size} in {folder} ({t:.1f} s to make or find)")
    print(f"# cpus {os.cpu_count()}, load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")

    configs = [("PIL loop (1 process, no database)", 1, None)]
    configs += [(f"sgan prepare_dataset, {w} worker{'s' if w > 1 else ''}", w, w)
                for w in (int(x) for x in args.workers.split(","))]
    walls: dict[str, list[float]] = {name: [] for name, _, _ in configs}
    cpus: dict[str, list[float]] = {name: [] for name, _, _ in configs}
    out_root = Path(tempfile.mkdtemp(prefix="sgan-bench-"))
    try:
        for _ in range(args.repeat):  # interleaved, so that changes in the machine's load hit every method
            for name, _, w in configs:
                if w is None:
                    wall, cpu = measured(lambda: pil_loop(folder, args.max_size, args.min_size))
                else:
                    wall, cpu = measured(lambda: prepare_dataset(
                        str(folder), out_root / "out.lmdb", max_size=args.max_size, min_size=args.min_size,
                        workers=w, overwrite=True))
                walls[name].append(wall)
                cpus[name].append(cpu)
    finally:
        shutil.rmtree(out_root, ignore_errors=True)

    base = statistics.median(walls[configs[0][0]])
    print(f"# sizes {args.min_size}..{args.max_size}, PNG zlib level {PNG_COMPRESS_LEVEL} (RLE), "
          f"median of {args.repeat} interleaved runs")
    print("| method | processes | seconds | images/s | vs PIL loop | CPU ms / image |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, procs, _ in configs:
        sec = statistics.median(walls[name])
        cpu_ms = statistics.median(cpus[name]) / args.count * 1000
        print(f"| {name} | {procs} | {sec:.1f} | {args.count / sec:.1f} | {base / sec:.2f}x | {cpu_ms:.1f} |")
    print(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
