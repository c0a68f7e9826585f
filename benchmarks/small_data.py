"""Small data at equal wall time: no augmentation vs DiffAugment vs ADA.

    python benchmarks/small_data.py DATA.lmdb --out runs/small --minutes 3 [--arms none,diffaug,ada]
        [--quality-data data/shapes.lmdb] [-- EXTRA sgan train OPTIONS]

Trains one run per arm (`sgan train DATA --preset cpu --minutes M --aug ARM`), all else equal, then
prints per arm the last tick's D accuracy on reals and fakes (the overfitting signal: near 1 on
both means D has memorised the reals), ADA's p and r_t, kimg reached, and, with --quality-data (a
large builtin:shapes database), benchmarks/train_quality.py's verdict on the last snapshot
("strict": fraction of samples called a clean shape; "fd": classifier-feature Frechet distance to
held-out reals). Writes OUT/curves.png (acc_real, acc_fake, p, r_t per tick, one column per arm)
and OUT/summary.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np


def run_arm(data: Path, out: Path, arm: str, minutes: float, extra: list[str]) -> None:
    if (out / "latest.json").is_file():
        print(f"{out}: exists, not retrained", flush=True)
        return
    cmd = [sys.executable, "-m", "sgan", "train", str(data), "--out", str(out), "--preset", "cpu",
           "--minutes", str(minutes), "--aug", arm, *extra]
    print(" ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)


def last_stats(out: Path) -> tuple[dict, list[dict]]:
    recs = [json.loads(s) for s in (out / "stats.jsonl").read_text().splitlines() if s.strip()]
    return recs[-1], recs


def quality(run: Path, data: Path) -> dict:
    here = Path(__file__).parent
    res = subprocess.run([sys.executable, str(here / "train_quality.py"), str(run), "--data", str(data),
                          "--samples", "500"], check=True, capture_output=True, text=True)
    lines = [json.loads(s) for s in res.stdout.splitlines() if s.startswith("{")]
    return lines[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--minutes", type=float, default=3.0)
    ap.add_argument("--arms", default="none,diffaug,ada")
    ap.add_argument("--quality-data", type=Path, default=None)
    args, extra = ap.parse_known_args()
    extra = [e for e in extra if e != "--"]
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    summary, curves = {}, {}
    for arm in arms:
        run_arm(args.data, args.out / arm, arm, args.minutes, extra)
        last, recs = last_stats(args.out / arm)
        curves[arm] = recs
        row = {k: last.get(k) for k in ("kimg", "train_seconds", "acc_real", "acc_fake", "aug_p", "aug_rt",
                                         "D_real", "D_fake", "G_loss")}
        if args.quality_data is not None:
            q = quality(args.out / arm, args.quality_data)
            row.update({"strict": q["strict"], "fd": q["fd"], "split": q["split"]})
        summary[arm] = row
        print(json.dumps({"arm": arm, **row}), flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    from sgan.train.plot import plot_series
    from sgan.viz import save_png

    panels = []
    for arm in arms:
        recs = curves[arm]
        x = [r["kimg"] for r in recs]
        series = {k: [r.get(k, float("nan")) for r in recs] for k in ("acc_real", "acc_fake", "aug_rt", "aug_p")}
        panels.append(plot_series(x, series, title=f"--aug {arm}", panel_size=(300, 130)))
    h = max(p.shape[0] for p in panels)
    panels = [np.pad(p, ((0, h - p.shape[0]), (0, 0), (0, 0)), constant_values=255) for p in panels]
    save_png(args.out / "curves.png", np.concatenate(panels, axis=1))
    print(f"wrote {args.out / 'curves.png'} and {args.out / 'summary.json'}")


if __name__ == "__main__":
    main()
