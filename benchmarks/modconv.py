"""Modulated convolution: the grouped form against per-sample scaling around one shared conv.

For each (channels, resolution, up) at batch 16: ms per call of both forms of
sgan.nn.stylegan2.modconv.modulated_conv2d, inference (no autograd) and training (forward +
backward), measured alternately in the same run; the `auto` rule in modconv.use_fused follows
these numbers (docs/benchmarks.md).

    python benchmarks/modconv.py --reps 5
    python benchmarks/modconv.py --device cuda --channels 512 256 --res 8 32 128
"""

from __future__ import annotations

import argparse
import itertools
import time

import torch

from sgan.nn.resample import setup_filter
from sgan.nn.stylegan2.modconv import modulated_conv2d


def interleaved(fns: dict, *, reps: int, device: torch.device) -> dict:
    """Best-of-`reps` ms per call of each function, run round-robin so that load from other
    processes hits every variant alike (the machines these run on are shared)."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for fn in fns.values():
        fn()
    best = {k: float("inf") for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            sync()
            start = time.perf_counter()
            fn()
            sync()
            best[k] = min(best[k], time.perf_counter() - start)
    return {k: v * 1e3 for k, v in best.items()}


def bench(ch: int, res: int, up: int, *, batch: int, reps: int, device: torch.device) -> dict:
    x = torch.randn(batch, ch, res // up, res // up, device=device)
    w = torch.randn(ch, ch, 3, 3, device=device, requires_grad=True)
    s = torch.randn(batch, ch, device=device, requires_grad=True)
    f = setup_filter().to(device)
    fns = {}
    for fused in (False, True):
        name = "fused" if fused else "unfused"

        def infer(fused=fused):
            with torch.no_grad():
                modulated_conv2d(x, w, s, up=up, padding=1, resample_filter=f, fused=fused)

        def train(fused=fused):
            xg = x.detach().requires_grad_(True)
            modulated_conv2d(xg, w, s, up=up, padding=1, resample_filter=f, fused=fused).square().mean().backward()

        fns[(name, "infer")], fns[(name, "train")] = infer, train
    return interleaved(fns, reps=reps, device=device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--channels", type=int, nargs="+", default=[32, 128, 512])
    parser.add_argument("--res", type=int, nargs="+", default=[8, 32, 128])
    parser.add_argument("--up", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--reps", type=int, default=5, help="timed calls per variant (the best counts)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"torch {torch.__version__}, {args.device}, {torch.get_num_threads()} threads, batch {args.batch}")
    print("| channels | res | up | unfused infer ms | fused infer ms | unfused train ms | fused train ms |")
    print("|---|---|---|---|---|---|---|")
    for ch, res, up in itertools.product(args.channels, args.res, args.up):
        if ch * ch * res * res > 512 * 512 * 64 * 64:   # skip the sizes a generator never has
            continue
        r = bench(ch, res, up, batch=args.batch, reps=args.reps, device=device)
        print(f"| {ch} | {res} | {up} | {r[('unfused', 'infer')]:.2f} | {r[('fused', 'infer')]:.2f} | "
              f"{r[('unfused', 'train')]:.2f} | {r[('fused', 'train')]:.2f} |", flush=True)


if __name__ == "__main__":
    main()
