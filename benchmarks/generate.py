"""Generator forward speed on this machine, against the ceiling of a bare 3x3 conv2d.

For each architecture, resolution and width preset: images/s of G (mapping + synthesis, batch 16,
fp32 and bf16 autocast), the GFLOP/s it achieves (conv and linear FLOPs counted by
torch.utils.flop_counter), and that as a fraction of the GFLOP/s a bare 3x3 conv2d reaches at the
width, resolution and batch of the generator's last block, measured in the same run.

    python benchmarks/generate.py                      # StyleGAN 1, all resolutions, both presets
    python benchmarks/generate.py --res 16 32 64 --presets cpu --seconds 2
    python benchmarks/generate.py --arch stylegan2 --res 16 32 64 128 256 --presets cpu paper --fused never always

`--fused` is the StyleGAN 1 up/down fusion (auto/never) or the StyleGAN2 modulated conv form
(auto/never: per-sample scaling around a shared conv; always: one grouped conv).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import time

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from sgan.play.generate import autocast_context
from sgan.nn import ModelConfig, make_generator


def timed(fn, *, seconds: float, min_reps: int = 2) -> float:
    """Seconds per call: one warm-up, then repeat until `seconds` have passed (at least min_reps)."""
    fn()
    reps, start = 0, time.perf_counter()
    while reps < min_reps or time.perf_counter() - start < seconds:
        fn()
        reps += 1
    return (time.perf_counter() - start) / reps


def best_of_interleaved(fn_a, fn_b, *, seconds: float, min_reps: int = 3) -> tuple[float, float]:
    """Seconds per call of two functions, each the best of calls made alternately until `seconds`
    have passed (at least min_reps each): on a shared machine, load hits both alike and the best
    call is the one least disturbed."""
    fn_a(), fn_b()
    best_a = best_b = float("inf")
    reps, start = 0, time.perf_counter()
    while reps < min_reps or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn_a()
        t1 = time.perf_counter()
        fn_b()
        t2 = time.perf_counter()
        best_a, best_b = min(best_a, t1 - t0), min(best_b, t2 - t1)
        reps += 1
    return best_a, best_b


def count_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@torch.no_grad()
def bench(arch: str, preset: str, res: int, *, batch: int, precision: str, seconds: float, fused: str,
          best_of: bool = False) -> dict:
    cfg = ModelConfig.preset(preset, res, arch=arch)
    if arch == "stylegan2":
        cfg = dataclasses.replace(cfg, fused_modconv=fused)
        width = cfg.channels(res)
    else:
        cfg = dataclasses.replace(cfg, fused_updown="never" if fused == "never" else "auto")
        width = cfg.nf(cfg.resolution_log2 - 1)
    G = make_generator(cfg).eval().requires_grad_(False)
    z = torch.randn(batch, cfg.z_dim)
    device = torch.device("cpu")

    def run_g():
        with autocast_context(device, precision):
            G(z, noise_mode="const")

    x = torch.randn(batch, width, res, res)
    w = torch.randn(width, width, 3, 3)

    def run_conv():
        with autocast_context(device, precision):
            F.conv2d(x, w, padding=1)

    g_flops, conv_flops = count_flops(run_g), count_flops(run_conv)
    if best_of:
        g_s, conv_s = best_of_interleaved(run_g, run_conv, seconds=2 * seconds)
    else:
        g_s, conv_s = timed(run_g, seconds=seconds), timed(run_conv, seconds=seconds)
    g_rate, conv_rate = g_flops / g_s / 1e9, conv_flops / conv_s / 1e9
    return {"arch": arch, "preset": preset, "fused": fused, "res": res, "width": width, "precision": precision, "img_s": batch / g_s,
            "gflop_per_img": g_flops / batch / 1e9, "g_gflops": g_rate, "conv_gflops": conv_rate,
            "fraction": g_rate / conv_rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", nargs="+", default=["stylegan1"], choices=["stylegan1", "stylegan2"])
    parser.add_argument("--res", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256])
    parser.add_argument("--presets", nargs="+", default=["cpu", "paper"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--fused", nargs="+", default=["auto"], choices=["auto", "never", "always"],
                        help="stylegan1: auto fuses up/downsampling into (transposed) convs, never: nearest/avg-pool + conv; "
                             "stylegan2: the modulated conv form (never: shared conv, always: grouped conv)")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--best-of", action="store_true",
                        help="time G and the conv alternately and keep the best call of each (for shared machines)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    timing = "best call of alternating G/conv calls" if args.best_of else "mean over --seconds"
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, {timing}")
    header = "| arch | preset | fused | res | last width | precision | img/s | GFLOP/img | G GFLOP/s | conv3x3 GFLOP/s | fraction |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for arch, preset, res, precision, fused in itertools.product(args.arch, args.presets, args.res, args.precisions,
                                                                 args.fused):
        r = bench(arch, preset, res, batch=args.batch, precision=precision, seconds=args.seconds, fused=fused,
                  best_of=args.best_of)
        print(f"| {r['arch']} | {r['preset']} | {r['fused']} | {r['res']} | {r['width']} | {r['precision']} | {r['img_s']:.1f} | "
              f"{r['gflop_per_img']:.3f} | {r['g_gflops']:.1f} | {r['conv_gflops']:.1f} | {r['fraction']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
