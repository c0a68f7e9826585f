"""Where a narrow training step's time goes: bare convolutions against the whole G+D step, in fp32 and
bf16, NCHW and channels_last, with the share of convolutions vs element-wise ops (torch.profiler).

    python benchmarks/step_profile.py                                   # the issue-18 table
    python benchmarks/step_profile.py --channels 32 --res 16 --sg2-res none --variants fp32-nchw,fp32-cl
    python benchmarks/step_profile.py --threads 1 --rounds 5 --no-profile

Tables (batch 16, forward + backward, best of --rounds; the variants alternate inside every round,
so a shared machine's load hurts them alike and their ratios are what to read):

1. a bare 3x3 conv [16, C, 32, 32] -> [16, C, 32, 32] (input and weight gradients), per --channels;
2. the whole cpu-preset G+D step of StyleGAN 1 at each --res and of StyleGAN2 at each --sg2-res: G
   forward from z (lod 0), D on the fakes and on reals, the logistic losses, one backward through
   both (no optimizer, no regulariser), the networks' `memory_format` set per variant;
3. per step row and variant, the profiler's self CPU time split into convolutions (forward and
   backward, including the depthwise blur / FIR filters) and the rest, the rest by kind.

Variants: fp32-nchw, fp32-cl, bf16-nchw, bf16-cl (bf16: torch.autocast; emulated, so slow, on CPUs
without avx512_bf16 / amx_bf16); a `-ag` suffix (fp32-nchw-ag, ...) runs StyleGAN 1's epilogue as
autograd's graph of the separate ops instead of sgan.nn.adain's fused function (LayerEpilogue.fused_norm),
and a `-sb` suffix adds the convolutions' biases as separate adds (EqualConv2d.fused_bias False),
to measure those levers:

    python benchmarks/step_profile.py --channels none --sg2-res none --variants fp32-nchw-ag,fp32-nchw,fp32-cl-ag,fp32-cl

The first line names the CPU, its flags and torch's capability.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import time

import torch
import torch.nn.functional as F

from sgan.nn.config import ModelConfig
from sgan.nn.factory import make_discriminator, make_generator
from sgan.nn.layers import EqualConv2d
from sgan.nn.stylegan1.synthesis import LayerEpilogue

VARIANTS = ("fp32-nchw", "fp32-cl", "bf16-nchw", "bf16-cl")
KINDS = ("conv", "norm/stats", "activation", "copy/cast", "other element-wise", "other")


def cpu_line() -> str:
    model, flags = platform.processor() or "cpu", set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and model in ("", "cpu", "x86_64"):
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:
        pass
    shown = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_bf16") if f in flags]
    return (f"{model}; flags {' '.join(shown) or 'unknown'}; torch {torch.__version__} capability "
            f"{torch.backends.cpu.get_cpu_capability()}; {torch.get_num_threads()} threads")


def autocast(variant: str):
    if variant.startswith("bf16"):
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def base_variant(variant: str) -> str:
    """fp32-cl-ag-sb -> fp32-cl (the lever suffixes removed)."""
    return "-".join(variant.split("-")[:2])


def layout(variant: str) -> str:
    return "channels_last" if base_variant(variant).endswith("-cl") else "contiguous"


CLOCK = time.perf_counter


def best_ms(fns: dict[str, callable], rounds: int, calls: int) -> dict[str, float]:
    """Best time of one call per variant; each round runs every variant `calls` times, alternating."""
    for fn in fns.values():
        fn()
    best = {k: float("inf") for k in fns}
    for r in range(rounds):
        order = list(fns) if r % 2 == 0 else list(reversed(fns))
        for k in order:
            for _ in range(calls):
                t0 = CLOCK()
                fns[k]()
                best[k] = min(best[k], CLOCK() - t0)
    return {k: v * 1000 for k, v in best.items()}


def conv_call(channels: int, variant: str, batch: int):
    g = torch.Generator().manual_seed(0)
    fmt = torch.channels_last if layout(variant) == "channels_last" else torch.contiguous_format
    x = torch.randn(batch, channels, 32, 32, generator=g).contiguous(memory_format=fmt).requires_grad_()
    w = (torch.randn(channels, channels, 3, 3, generator=g) / (3 * channels ** 0.5)).requires_grad_()

    def once() -> None:
        with autocast(variant):
            y = F.conv2d(x, w, padding=1)
        y.float().sum().backward()
    return once


def step_call(arch: str, res: int, variant: str, batch: int):
    """One G+D forward and backward of the cpu preset (the same weights in every variant)."""
    cfg = ModelConfig.preset("cpu", res, arch=arch)
    cfg = ModelConfig.from_dict({**cfg.to_dict(), "memory_format": layout(variant)})
    torch.manual_seed(0)
    G, D = make_generator(cfg), make_discriminator(cfg)
    g = torch.Generator().manual_seed(1)
    z = torch.randn(batch, cfg.z_dim, generator=g)
    real = torch.rand(batch, cfg.num_channels, res, res, generator=g) * 2 - 1
    fused_norm, fused_bias = "-ag" not in variant, "-sb" not in variant

    def once() -> None:
        LayerEpilogue.fused_norm, EqualConv2d.fused_bias = fused_norm, fused_bias
        with autocast(variant):
            fake = G(z)
            loss = F.softplus(D(fake)).mean() + F.softplus(-D(real)).mean()
        loss.backward()
    return once


def kind_of(name: str) -> str:
    n = name.lower()
    if "conv" in n:
        return "conv"
    if any(k in n for k in ("var_mean", "mean", "sum", "rsqrt", "norm")):
        return "norm/stats"
    if any(k in n for k in ("leaky_relu", "softplus", "relu")):
        return "activation"
    if any(k in n for k in ("copy", "_to_copy", "to_dense", "contiguous", "clone")):
        return "copy/cast"
    if any(k in n for k in ("add", "mul", "sub", "div", "lerp", "where", "neg", "fill", "zero")):
        return "other element-wise"
    return "other"


def profile_shares(fn, steps: int) -> dict[str, float]:
    """Fractions of the ATen ops' self CPU time per kind (autograd wrappers and Python left out)."""
    from torch.profiler import ProfilerActivity, profile

    fn()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            fn()
    totals = {k: 0.0 for k in KINDS}
    for ev in prof.key_averages():
        if ev.key.startswith("aten::"):
            totals[kind_of(ev.key)] += ev.self_cpu_time_total
    total = sum(totals.values()) or 1.0
    return {k: v / total for k, v in totals.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", default="32,64,128", help="bare-conv widths; none: no conv table")
    ap.add_argument("--res", default="16,32", help="StyleGAN 1 step resolutions; none: no rows")
    ap.add_argument("--sg2-res", default="32", help="StyleGAN2 step resolutions; none: no rows")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds (best time kept)")
    ap.add_argument("--calls", type=int, default=2, help="calls per variant and round")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--profile-steps", type=int, default=2)
    ap.add_argument("--no-profile", action="store_true")
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: the process's CPU time (with --threads 1 it leaves out the time other jobs hold the core)")
    args = ap.parse_args()
    global CLOCK
    CLOCK = time.process_time if args.clock == "cpu" else time.perf_counter
    if args.threads:
        torch.set_num_threads(args.threads)
    variants = args.variants.split(",")
    unknown = sorted(v for v in variants if base_variant(v) not in VARIANTS or set(v.split("-")[2:]) - {"ag", "sb"})
    if unknown:
        raise SystemExit(f"unknown variants {', '.join(unknown)}; known: {', '.join(VARIANTS)}, each with -ag and/or -sb")
    base = variants[0]

    def ints(text: str) -> list[int]:
        return [] if text == "none" else [int(v) for v in text.split(",")]

    print(cpu_line())
    print(f"batch {args.batch}, forward + backward, {args.clock} clock, best of {args.rounds} rounds x {args.calls} calls, "
          f"variants alternating; ratio = {base} / variant")
    head = " ".join(f"{v + ' ms':>14s}" for v in variants)
    if ints(args.channels):
        print(f"\n{'bare 3x3 conv':22s} {head} " + " ".join(f"{'x ' + v:>12s}" for v in variants[1:]))
    for c in ints(args.channels):
        ms = best_ms({v: conv_call(c, v, args.batch) for v in variants}, args.rounds, args.calls * 2)
        print(f"{f'{c} ch, 32 px':22s} " + " ".join(f"{ms[v]:14.2f}" for v in variants) + " "
              + " ".join(f"{ms[base] / ms[v]:12.2f}" for v in variants[1:]), flush=True)
    rows = [("stylegan1", r) for r in ints(args.res)] + [("stylegan2", r) for r in ints(args.sg2_res)]
    if rows:
        print(f"\n{'cpu preset G+D step':22s} {head} " + " ".join(f"{'x ' + v:>12s}" for v in variants[1:]))
    shares = {}
    for arch, res in rows:
        fns = {v: step_call(arch, res, v, args.batch) for v in variants}
        ms = best_ms(fns, args.rounds, args.calls)
        print(f"{f'{arch} {res} px':22s} " + " ".join(f"{ms[v]:14.2f}" for v in variants) + " "
              + " ".join(f"{ms[base] / ms[v]:12.2f}" for v in variants[1:]), flush=True)
        if not args.no_profile:
            for v in variants:
                shares[(arch, res, v)] = profile_shares(fns[v], args.profile_steps)
    if shares:
        print(f"\nshare of ATen self CPU time ({args.profile_steps} steps each)")
        print(f"{'step':16s} {'variant':10s} " + " ".join(f"{k:>18s}" for k in KINDS))
        for (arch, res, v), s in shares.items():
            print(f"{f'{arch} {res} px':16s} {v:10s} " + " ".join(f"{100 * s[k]:17.1f}%" for k in KINDS), flush=True)


if __name__ == "__main__":
    main()
