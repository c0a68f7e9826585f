"""Does a conditional model produce the class it is asked for? The offline shapes detector judges.

    python benchmarks/cond_accuracy.py runs/cond --detector shapes-detector.pt [--num 200] [--trunc 1]

For every class k, `--num` images are generated with --class k (seeds 0..num-1, no truncation by
default); the detector (`sgan detector train`) classifies them; the fraction classified as k is
printed per class, with the confusion matrix (rows: requested class, columns: detected class).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from sgan.checkpoint import build_generator, load_checkpoint
from sgan.metrics.conditional import class_accuracy
from sgan.metrics.shapes_detector import load_detector_file
from sgan.play.classes import class_names


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--detector", type=Path, required=True)
    ap.add_argument("--num", type=int, default=200)
    ap.add_argument("--trunc", type=float, default=1.0)
    args = ap.parse_args()
    torch.manual_seed(0)
    ckpt = load_checkpoint(args.run)
    G = build_generator(ckpt)
    names = class_names(ckpt.extra, G.c_dim)
    det, _sha = load_detector_file(args.detector)
    res = class_accuracy(G, names, det, num=args.num, truncation_psi=args.trunc,
                         detector_classes=list(det.config.get("class_names", [])) or None)
    res["checkpoint"] = str(ckpt.path)
    res["kimg"] = ckpt.extra.get("counters", {}).get("cur_nimg", 0) / 1000
    print(json.dumps(res))


if __name__ == "__main__":
    main()
