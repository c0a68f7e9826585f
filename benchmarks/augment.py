"""Cost of augmentation per image: ADA (bgc, at p = 0.2, 0.6 and 1) and DiffAugment, forward alone and
forward + backward (the D step's input gradient), at 32 and 64 px, float32, on this machine.

    python benchmarks/augment.py [--batch 32] [--repeats 20] [--threads N]

Reports microseconds per image (median of the repeats) and the ratio to the cheapest arm, so
numbers from a busy machine still compare arms measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from sgan.train.augment import Augmentation


def bench(aug: Augmentation, x: torch.Tensor, repeats: int, backward: bool) -> float:
    times = []
    for i in range(repeats + 2):
        xi = x.clone().requires_grad_(backward)
        t0 = time.perf_counter()
        y = aug(xi)
        if backward:
            y.square().sum().backward()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    return statistics.median(times) / x.shape[0] * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    arms = [("diffaug", dict(kind="diffaug")), ("ada p=0.2", dict(kind="ada", p=0.2)),
            ("ada p=0.6", dict(kind="ada", p=0.6)), ("ada p=1", dict(kind="ada", p=1.0)),
            ("ada p=1 gather", dict(kind="ada", p=1.0, resampler="gather"))]
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "cpu": platform.processor()}))
    for res in (32, 64):
        x = torch.randn(args.batch, 3, res, res, generator=torch.Generator().manual_seed(0))
        rows = []
        for name, kw in arms:
            kind = kw.pop("kind")
            aug = Augmentation(kind, seed=0, **kw)
            kw["kind"] = kind
            rows.append((name, bench(aug, x, args.repeats, False), bench(aug, x, args.repeats, True)))
        base = min(r[1] for r in rows)
        for name, fwd, both in rows:
            print(json.dumps({"res": res, "arm": name, "us_per_img_fwd": round(fwd, 1),
                              "us_per_img_fwd_bwd": round(both, 1), "fwd_vs_cheapest": round(fwd / base, 2)}))


if __name__ == "__main__":
    main()
