"""Cost of checking each dataset record's BLAKE2b as training reads it (MultiResolutionDataset
check_records, once per record per process), against reading without the check.

    PYTHONPATH=. python benchmarks/dataset_read_check.py --size 64 --count 512 --repeats 5

First pass: every record is hashed (the checksum record read and parsed too); later passes (epochs)
find the record already checked. The runs alternate (off, on, off, on...) so a loaded machine
affects both alike; the table gives the median ms per item.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from sgan.data.lmdb_dataset import MultiResolutionDataset
from sgan.data.prepare import prepare_dataset


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--count", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "shapes.lmdb"
        prepare_dataset("builtin:shapes", path, max_size=args.size, min_size=args.size, count=args.count, workers=1)
        times: dict[str, list[float]] = {"off": [], "on, first epoch": [], "on, later epoch": []}
        for _ in range(args.repeats):
            for mode in ("off", "on"):
                ds = MultiResolutionDataset(path, resolution=args.size, check_records=(mode == "on"))
                t0 = time.perf_counter()
                for i in range(len(ds)):
                    ds[i]
                first = time.perf_counter() - t0
                if mode == "off":
                    times["off"].append(first)
                    continue
                times["on, first epoch"].append(first)
                t0 = time.perf_counter()
                for i in range(len(ds)):
                    ds[i]
                times["on, later epoch"].append(time.perf_counter() - t0)
        base = statistics.median(times["off"])
        print(f"{args.count} images at {args.size}x{args.size} px, median of {args.repeats}")
        print(f"{'record check':<18} {'ms/item':>8} {'vs off':>7}")
        for name, ts in times.items():
            med = statistics.median(ts)
            print(f"{name:<18} {1000 * med / args.count:8.3f} {med / base:7.2f}x")


if __name__ == "__main__":
    main()
