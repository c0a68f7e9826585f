"""Fused or separate up/down-sampling convolutions, per resolution (the rule behind `fused_updown auto`).

    python benchmarks/updown.py --channels 512 --res 8,16,32,64,128 --threads 1
    python benchmarks/updown.py --channels 32 --res 8,16,32 --threads 1 --channels-last

StyleGAN 1's G upsamples then convolves (3x3), D convolves then 2x2-average-pools; each pair can
also run fused, as one stride-2 transposed convolution with a 4x4 kernel (G) or one stride-2
convolution with a 4x4 kernel (D), which is exactly equal and does fewer FLOPs but goes through
other kernels. This times both forms of each, forward + backward (input and weight gradients),
at batch 16, the given widths and each output (G) / input (D) resolution; the two forms alternate
and the best of --reps is kept, which filters out most of a shared machine's noise. Prints
ms per call and separate / fused (above 1: fused is faster). `--channels-last`: the activations in
channels_last (ModelConfig.memory_format; what `auto` picks on AVX-512 CPUs).
"""

from __future__ import annotations

import argparse
import time

import torch

from sgan.nn.layers import EqualConv2d, downscale2d, upscale2d


CLOCK = time.perf_counter


def best_ms(fn, reps: int) -> float:
    fn()
    best = float("inf")
    for _ in range(reps):
        t0 = CLOCK()
        fn()
        best = min(best, CLOCK() - t0)
    return best * 1000


def pair(channels: int, res: int, batch: int, kind: str, fmt: torch.memory_format = torch.contiguous_format):
    """(fused call, separate call) of G's up-conv (output res) or D's conv-down (input res)."""
    torch.manual_seed(0)
    if kind == "up":
        x = torch.randn(batch, channels, res // 2, res // 2).contiguous(memory_format=fmt).requires_grad_()
        fused, sep = EqualConv2d(channels, channels, 3, up=2), EqualConv2d(channels, channels, 3)
        sep.load_state_dict(fused.state_dict())
        return (lambda: fused(x).sum().backward()), (lambda: sep(upscale2d(x)).sum().backward())
    x = torch.randn(batch, channels, res, res).contiguous(memory_format=fmt).requires_grad_()
    fused, sep = EqualConv2d(channels, channels, 3, down=2), EqualConv2d(channels, channels, 3)
    sep.load_state_dict(fused.state_dict())
    return (lambda: fused(x).sum().backward()), (lambda: downscale2d(sep(x)).sum().backward())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", type=int, default=512)
    ap.add_argument("--res", default="8,16,32,64,128")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--reps", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--channels-last", action="store_true", help="activations in channels_last")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: the process's CPU time (with --threads 1 it leaves out the time other jobs hold the core)")
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"{args.channels} channels, fp32, {'channels_last' if args.channels_last else 'NCHW'}, forward + backward, "
          f"{args.clock} clock, best of {args.reps}")
    print(f"{'res':>4s} | {'G up fused':>10s} {'separate':>9s} {'sep/fused':>9s} | {'D down fused':>12s} "
          f"{'separate':>9s} {'sep/fused':>9s}")
    for res in [int(r) for r in args.res.split(",")]:
        row = []
        for kind in ("up", "down"):
            fused, sep = pair(args.channels, res, args.batch, kind, fmt)
            t_f, t_s = float("inf"), float("inf")
            for _ in range(2):   # alternate the two forms
                t_f = min(t_f, best_ms(fused, args.reps // 2 or 1))
                t_s = min(t_s, best_ms(sep, args.reps // 2 or 1))
            row.append((t_f, t_s))
        (uf, us), (df, ds) = row
        print(f"{res:4d} | {uf:10.2f} {us:9.2f} {us / uf:9.2f} | {df:12.2f} {ds:9.2f} {ds / df:9.2f}", flush=True)


if __name__ == "__main__":
    main()
