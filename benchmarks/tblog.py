"""What the TensorBoard events cost a training run (sgan.train.tblog): one tick's scalars + flush, and one
snapshot grid + flush, as sgan writes it (the PNG file's bytes as they are) and as torch's
SummaryWriter.add_image would (a second PNG encoding of the array).

    python benchmarks/tblog.py [--repeats 30] [--cells 8] [--cell 64]

The grid is a real-looking one: random shapes on a flat background, `cells` x `cells` cells of `cell` px
(the cpu preset's 64 seeds at 32 px, upscaled to 64: 8 x 8 of 64 px). The arms run round-robin, so load
from other processes spreads over all of them; medians and maxima in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def fake_grid(cells: int, cell: int, seed: int = 0) -> np.ndarray:
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (cells * (cell + 1) + 1, cells * (cell + 1) + 1), (40, 40, 40))
    draw = ImageDraw.Draw(img)
    for i in range(cells * cells):
        x0, y0 = (i % cells) * (cell + 1) + 1, (i // cells) * (cell + 1) + 1
        draw.rectangle([x0, y0, x0 + cell - 1, y0 + cell - 1], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
        a, b = sorted(rng.integers(0, cell, 2))
        draw.ellipse([x0 + a // 2, y0 + a // 2, x0 + b, y0 + b], fill=tuple(int(v) for v in rng.integers(0, 255, 3)))
    return np.asarray(img)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--cells", type=int, default=8)
    ap.add_argument("--cell", type=int, default=64)
    args = ap.parse_args()

    from sgan.train.tblog import EventLog
    from sgan.viz import save_png

    folder = Path(tempfile.mkdtemp(prefix="sgan-tblog-bench-"))
    log = EventLog.open(folder)
    if log is None:
        raise SystemExit("tensorboard is not installed: pip install 'sgan[tensorboard]'")
    grid = fake_grid(args.cells, args.cell)
    png = save_png(folder / "fakes000000.png", grid)
    record = {k: 0.5 for k in ("tick", "step", "resolution", "lod", "alpha", "batch", "lr", "sec_per_kimg",
                               "images_per_s", "tick_seconds", "train_seconds", "skipped_steps", "rollbacks",
                               "memory_mb", "aug_p", "aug_rt", "acc_real", "acc_fake", "G_loss", "D_real",
                               "D_fake", "D_r1")}

    def torch_add_image(i: int) -> None:
        log.writer.add_image("Images/fakes_add_image", grid, global_step=i, dataformats="HWC")
        log.writer.flush()

    arms = {
        f"tick: scalars ({len(record) + 1} values) + flush": lambda i: log.scalars({**record, "kimg": i / 1000}),
        "grid from its PNG file + flush (sgan)": lambda i: log.image("fakes", png, step=i),
        "grid via SummaryWriter.add_image + flush": torch_add_image,
        "(for scale) the grid's own save_png": lambda i: save_png(folder / "again.png", grid),
    }
    times: dict[str, list[float]] = {name: [] for name in arms}
    for i in range(args.repeats + 1):
        for name, fn in arms.items():
            t0 = time.perf_counter()
            fn(i)
            if i:  # the first round warms up
                times[name].append(1000 * (time.perf_counter() - t0))
    log.close()
    print(f"grid {grid.shape[1]}x{grid.shape[0]} px, PNG {png.stat().st_size // 1024} KiB; {args.repeats} repeats\n")
    print("| write | median ms | max ms |")
    print("|---|---:|---:|")
    for name, ts in times.items():
        print(f"| {name} | {statistics.median(ts):.2f} | {max(ts):.2f} |")


if __name__ == "__main__":
    main()
