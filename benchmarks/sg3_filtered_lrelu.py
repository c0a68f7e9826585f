"""sgan's StyleGAN3 filtered leaky ReLU beside NVIDIA's CPU path (`_filtered_lrelu_ref`), timed in one run.

    git clone https://github.com/NVlabs/stylegan3 /tmp/stylegan3
    python benchmarks/sg3_filtered_lrelu.py --repo /tmp/stylegan3 --res 64,256 --cfg t,r --batch 2 --threads 2

NVIDIA's torch_utils/ops/filtered_lrelu.py is imported at run time from --repo (nothing of theirs is in
sgan). On a CPU their `filtered_lrelu()` dispatches to `_filtered_lrelu_ref` (upfirdn2d's reference
path: zero insertion, a full-rate separable convolution, bias_act, a full-rate convolution and then
decimation), so that is the function timed. Their dnnlib imports `requests` (and some torch_utils
modules `pkg_resources`) for URLs only; empty stand-ins are installed when those are missing.

Every layer of the StyleGAN3 generator at --res with the official widths (channel_base 32768,
channel_max 512; config R doubled, radial down filters), with the layer's own filters, factors and
padding, on the tensor its modulated conv hands over ([batch, out_channels, in_size + k - 1, ...]).
Rounds alternate NVIDIA / sgan auto / sgan matmul / sgan conv; each cell is the best round. Prints
one table per config and resolution (ms per call), the ratio to NVIDIA's, the max |difference|
from NVIDIA's output, and the sum over the network.
"""

from __future__ import annotations

import argparse
import sys
import time
import types
from pathlib import Path

import torch

from sgan.nn.stylegan3 import filtered_lrelu as ours
from sgan.nn.stylegan3.design import layer_plan, lowpass_filter


def load_theirs(repo: Path):
    if not (repo / "torch_utils" / "ops" / "filtered_lrelu.py").is_file():
        raise SystemExit(f"{repo}: no torch_utils/ops/filtered_lrelu.py here; pass a clone of NVlabs/stylegan3.")
    for name in ("requests", "pkg_resources"):
        try:
            __import__(name)
        except ImportError:
            stub = types.ModuleType(name)
            stub.parse_version = lambda v: tuple(int(p) for p in v.split("+")[0].split(".")[:3] if p.isdigit())
            sys.modules[name] = stub
    sys.path.insert(0, str(repo))
    from torch_utils.ops import filtered_lrelu as theirs  # noqa: E402

    return theirs


def best_ms(fn, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1000


def run(theirs, *, cfg: str, res: int, batch: int, rounds: int) -> None:
    mult = 2 if cfg == "r" else 1
    _, layers = layer_plan(resolution=res, num_channels=3, channel_base=32768 * mult, channel_max=512 * mult,
                           conv_kernel=1 if cfg == "r" else 3, radial_filters=cfg == "r")
    print(f"\nStyleGAN3-{cfg.upper()} {res} px, batch {batch}, {torch.get_num_threads()} threads (ms per call, best of {rounds})")
    print(f"{'layer':<12} {'input':>18} {'up/down':>7} {'NVIDIA ref':>10} {'sgan auto':>9} {'matmul':>8} {'conv':>8} "
          f"{'ref/auto':>8} {'max|d|':>8}")
    totals = [0.0, 0.0, 0.0, 0.0]
    gen = torch.Generator().manual_seed(0)
    for spec in layers:
        fu = lowpass_filter(spec.up_taps, cutoff=spec.in_cutoff, width=2 * spec.in_half_width, fs=spec.tmp_sampling_rate)
        fd = lowpass_filter(spec.down_taps, cutoff=spec.out_cutoff, width=2 * spec.out_half_width,
                            fs=spec.tmp_sampling_rate, radial=spec.down_radial)
        size = spec.in_size + spec.conv_kernel - 1
        x = torch.randn(batch, spec.out_channels, size, size, generator=gen)
        b = torch.randn(spec.out_channels, generator=gen)
        gain, slope = (1.0, 1.0) if spec.is_torgb else (2 ** 0.5, 0.2)
        kw = dict(up=spec.up_factor, down=spec.down_factor, padding=list(spec.padding), gain=gain, slope=slope, clamp=256)
        with torch.no_grad():
            ref = theirs._filtered_lrelu_ref(x, fu=fu, fd=fd, b=b, **kw)
            calls = [lambda: theirs._filtered_lrelu_ref(x, fu=fu, fd=fd, b=b, **kw)]
            calls += [lambda f=form: ours.filtered_lrelu(x, up_filter=fu, down_filter=fd, bias=b, form=f, **kw)
                      for form in ("auto", "matmul", "conv")]
            diff = (ours.filtered_lrelu(x, up_filter=fu, down_filter=fd, bias=b, **kw) - ref).abs().max().item()
            times = [float("inf")] * 4
            for _ in range(rounds):                       # alternate the four, keep each one's best
                for i, call in enumerate(calls):
                    times[i] = min(times[i], best_ms(call, 1))
        totals = [t + s for t, s in zip(totals, times)]
        shape = "x".join(str(v) for v in x.shape[1:])
        print(f"{spec.name:<12} {shape:>18} {spec.up_factor}/{spec.down_factor:<5} {times[0]:>10.2f} {times[1]:>9.2f} "
              f"{times[2]:>8.2f} {times[3]:>8.2f} {times[0] / times[1]:>7.2f}x {diff:>8.1e}")
    print(f"{'network':<12} {'':>18} {'':>7} {totals[0]:>10.1f} {totals[1]:>9.1f} {totals[2]:>8.1f} {totals[3]:>8.1f} "
          f"{totals[0] / totals[1]:>7.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repo", type=Path, required=True, help="a clone of NVlabs/stylegan3")
    ap.add_argument("--res", default="64,256", help="output resolutions, comma-separated")
    ap.add_argument("--cfg", default="t,r", help="configs: t, r or t,r")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    theirs = load_theirs(args.repo.resolve())
    print(f"torch {torch.__version__}, CPU capability {torch.backends.cpu.get_cpu_capability()}, "
          f"sgan matmul form up to {ours.FORM_MATMUL_MAX} samples per upsampled row")
    for cfg in args.cfg.split(","):
        for res in (int(r) for r in args.res.split(",")):
            run(theirs, cfg=cfg.strip().lower(), res=res, batch=args.batch, rounds=args.rounds)


if __name__ == "__main__":
    main()
