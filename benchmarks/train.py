"""Train-step speed: images/s of one full step (G and D forward and backward, the regulariser,
Adam, EMA) and the GFLOP/s it achieves as a fraction of a bare 3x3 conv2d forward+backward at the
top resolution's shape, measured in the same run.

    python benchmarks/train.py                                # everything (slow for paper widths on a CPU)
    python benchmarks/train.py --res 8,16,32 --presets cpu --losses logistic --amp none,bf16

Each row trains at that resolution with lod 0 (the whole network), batch 16 by default.

StyleGAN2 rows (`--sg2-presets cpu,stylegan2`, the cpu widths and config F; `--sg2-res`): the
official phases Gmain, Greg (path length, every 4th step), Dmain, Dreg (R1, every 16th), timed
as steps with no regulariser, with path length, and with both, and reported per step with the
regularisers amortised: t = t_main + (t_pl - t_main) / 4 + (t_both - t_pl) / 16. GFLOP/step
and the fraction are those of the main phases.

    python benchmarks/train.py --presets none --sg2-presets cpu,stylegan2 --sg2-res 16,32,64

fp32 against bf16 autocast, alternating in one run (`--precision-rounds N`: N rounds, each timing
every row in fp32 then in bf16; the best round of each is shown, and fp32 / bf16): the cpu preset's
whole training step (StyleGAN 1 at 16 and 32 px, StyleGAN2 at 32 px, the preset's batch 16; blocks
of steps that hold each lazy regulariser once per interval) and the paper-width StyleGAN 1 G + D
forward and backward at 16 px, batch 16 (what `--precision auto` times: sgan.train.precision).

    python benchmarks/train.py --precision-rounds 3 --seconds 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from sgan import distributed as dist_utils
from sgan.data.prepare import prepare_dataset
from sgan.train import Hooks, preset_config
from sgan.train.loop import Trainer


def make_trainer(data: Path, out: Path, preset: str, res: int, loss: str, amp: str, batch: int,
                 threads: int | None = None) -> Trainer:
    cfg = preset_config("tiny" if preset == "tiny" else preset)
    cfg.preset = preset
    cfg.resolution = res
    cfg.start_resolution = res
    cfg.minutes = None
    cfg.loss, cfg.precision = loss, ("fp32" if amp == "none" else amp)
    cfg.batch_base, cfg.batch_dict = batch, {}
    cfg.minibatch_repeats = 1
    # threads None: the trainer's own per-resolution choice (one thread for small convolutions)
    return Trainer(cfg, data, out, device=torch.device("cpu"), info=dist_utils.DistInfo(), hooks=Hooks(),
                   threads=threads)


def make_sg2_trainer(data: Path, out: Path, preset: str, res: int, batch: int) -> Trainer:
    cfg = preset_config(preset, arch="stylegan2", resolution=res)
    cfg.minutes = None
    cfg.batch_base = batch
    cfg.pl_weight, cfg.style_mixing_prob = 2.0, 0.9   # the official regularisers, whatever the preset
    return Trainer(cfg, data, out, device=torch.device("cpu"), info=dist_utils.DistInfo(), hooks=Hooks())


def sg2_times(tr: Trainer, seconds: float) -> tuple[float, float, float]:
    """Seconds of a step with no regulariser, with path length, and with path length and R1."""
    out = []
    for step in (1, 4, 0):   # 1: main phases only; 4: + Greg; 0: + Greg + Dreg
        n, t0 = 0, time.perf_counter()
        while n < 2 or time.perf_counter() - t0 < seconds:
            tr.c.step = step
            tr.step(False)
            n += 1
        out.append((time.perf_counter() - t0) / n)
    return out[0], out[1], out[2]


def sg2_flops(tr: Trainer) -> float:
    tr.c.step = 1
    with FlopCounterMode(display=False) as counter:
        tr.step(False)
    return float(counter.get_total_flops())


def step_flops(tr: Trainer) -> float:
    """FLOPs of one step without its gradient penalty (FlopCounterMode cannot follow the
    penalty's autograd.grad), so the achieved GFLOP/s below is a lower bound."""
    gamma, lam = tr.cfg.r1_gamma, tr.cfg.wgan_lambda
    tr.cfg.r1_gamma, tr.cfg.wgan_lambda = 0.0, 0.0
    try:
        with FlopCounterMode(display=False) as counter:
            tr.step(False)
    finally:
        tr.cfg.r1_gamma, tr.cfg.wgan_lambda = gamma, lam
    return float(counter.get_total_flops())


def time_steps(tr: Trainer, seconds: float, min_steps: int) -> float:
    tr.step(False)  # warm-up (and the lazy regulariser's phase)
    n, t0 = 0, time.perf_counter()
    while n < min_steps or time.perf_counter() - t0 < seconds:
        tr.step(False)
        n += 1
    return (time.perf_counter() - t0) / n


def conv_reference(batch: int, channels: int, res: int, amp: str, seconds: float) -> float:
    """GFLOP/s of a bare 3x3 conv2d forward + backward (input and weight grads)."""
    x = torch.randn(batch, channels, res, res, requires_grad=True)
    w = torch.randn(channels, channels, 3, 3, requires_grad=True)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if amp == "bf16" else torch.autocast("cpu", enabled=False)

    def once() -> None:
        with ctx:
            y = F.conv2d(x, w, padding=1)
        y.float().sum().backward()

    once()
    n, t0 = 0, time.perf_counter()
    while n < 3 or time.perf_counter() - t0 < seconds:
        once()
        n += 1
    dt = (time.perf_counter() - t0) / n
    flops = 3 * 2 * batch * channels * channels * 9 * res * res  # forward + 2 backward convs
    return flops / dt / 1e9


def precision_rows(data: Path, tmp: Path, rounds: int, seconds: float) -> None:
    """fp32 against bf16 on the same rows, alternating, one table."""
    from sgan.device import autocast
    from sgan.train.precision import step_probe

    def sg1(preset: str, res: int, precision: str) -> Trainer:
        return make_trainer(data, tmp / "p1", preset, res, "logistic", precision, 16)

    def sg2(res: int, precision: str) -> Trainer:
        cfg = preset_config("cpu", arch="stylegan2", resolution=res)
        cfg.minutes, cfg.precision = None, precision
        return Trainer(cfg, data, tmp / "p2", device=torch.device("cpu"), info=dist_utils.DistInfo(),
                                hooks=Hooks())

    def steps(tr: Trainer, block: int):
        def run() -> None:
            for _ in range(block):
                tr.step(False)
        return run, block

    def probe(tr: Trainer):
        fn = step_probe(tr)[0]

        def run() -> None:
            with autocast(tr.device, tr.cfg.precision):
                fn()
        return run, 1

    rows = [("stylegan1 cpu step", 16, lambda p: steps(sg1("cpu", 16, p), 4)),
            ("stylegan1 cpu step", 32, lambda p: steps(sg1("cpu", 32, p), 4)),
            ("stylegan2 cpu step", 32, lambda p: steps(sg2(32, p), 16)),
            ("stylegan1 paper G+D", 16, lambda p: probe(sg1("paper", 16, p)))]
    print(f"torch {torch.__version__}, capability {torch.backends.cpu.get_cpu_capability()}, "
          f"{torch.get_num_threads()} threads, {rounds} alternating rounds")
    print(f"{'row':20s} {'res':>4s} {'batch':>5s} {'fp32 ms':>9s} {'bf16 ms':>9s} {'fp32/bf16':>9s}")
    for name, res, build in rows:
        fns = {p: build(p) for p in ("fp32", "bf16")}
        best = {p: float("inf") for p in fns}
        for fn, _ in fns.values():
            fn()  # warm-up
        for _ in range(rounds):
            for p, (fn, per) in fns.items():
                n, t0 = 0, time.perf_counter()
                while n < 2 or time.perf_counter() - t0 < seconds:
                    fn()
                    n += 1
                best[p] = min(best[p], (time.perf_counter() - t0) / n / per)
        print(f"{name:20s} {res:4d} {16:5d} {best['fp32'] * 1000:9.1f} {best['bf16'] * 1000:9.1f} "
              f"{best['fp32'] / best['bf16']:9.2f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--res", default="8,16,32,64")
    ap.add_argument("--presets", default="cpu,paper", help="StyleGAN 1 presets; none: no StyleGAN 1 rows")
    ap.add_argument("--sg2-presets", default="cpu,stylegan2", help="StyleGAN2 presets; none: no StyleGAN2 rows")
    ap.add_argument("--sg2-res", default="16,32,64")
    ap.add_argument("--losses", default="logistic,wgan-gp,hinge")
    ap.add_argument("--amp", default="none,bf16")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=3.0, help="time each row at least this long")
    ap.add_argument("--threads", type=int, default=None, help="fix torch's threads (default: the trainer's choice)")
    ap.add_argument("--precision-rounds", type=int, default=0,
                    help="only the fp32 / bf16 table, alternating in this many rounds")
    args = ap.parse_args()
    if args.precision_rounds:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "shapes.lmdb"
            prepare_dataset("builtin:shapes", data, max_size=32, min_size=4, count=256, workers=1)
            precision_rows(data, Path(tmp), args.precision_rounds, args.seconds)
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    resolutions = [int(r) for r in args.res.split(",")]
    sg2_resolutions = [int(r) for r in args.sg2_res.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "shapes.lmdb"
        prepare_dataset("builtin:shapes", data, max_size=max(resolutions + sg2_resolutions), min_size=4, count=256,
                        workers=1)
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}")
        print(f"{'preset':6s} {'res':>4s} {'loss':9s} {'amp':5s} {'img/s':>8s} {'ms/step':>8s} {'GFLOP/step':>10s} "
              f"{'GFLOP/s':>8s} {'conv GFLOP/s':>12s} {'fraction':>8s}")
        for preset in [] if args.presets == "none" else args.presets.split(","):
            for res in resolutions:
                for amp in args.amp.split(","):
                    for loss in args.losses.split(","):
                        torch.set_num_threads(threads)  # the conv reference below always runs on these
                        tr = make_trainer(data, Path(tmp) / "run", preset, res, loss, amp, args.batch, args.threads)
                        flops = step_flops(tr)
                        dt = time_steps(tr, args.seconds, 3)
                        torch.set_num_threads(threads)
                        ref = conv_reference(args.batch, tr.model_cfg.nf(tr.model_cfg.resolution_log2 - 1), res, amp,
                                             args.seconds / 2)
                        gflops = flops / dt / 1e9
                        print(f"{preset:6s} {res:4d} {loss:9s} {amp:5s} {args.batch / dt:8.1f} {dt * 1000:8.1f} "
                              f"{flops / 1e9:10.3f} {gflops:8.1f} {ref:12.1f} {gflops / ref:8.2f}", flush=True)
        if args.sg2_presets != "none":
            print(f"\nStyleGAN2: {'preset':9s} {'res':>4s} {'img/s':>8s} {'ms/step':>8s} {'ms main':>8s} "
                  f"{'ms +pl':>8s} {'ms +pl+r1':>9s} {'GFLOP/main':>10s} {'GFLOP/s':>8s} {'conv GFLOP/s':>12s} "
                  f"{'fraction':>8s}")
        for preset in [] if args.sg2_presets == "none" else args.sg2_presets.split(","):
            for res in sg2_resolutions:
                torch.set_num_threads(threads)
                tr = make_sg2_trainer(data, Path(tmp) / "run2", preset, res, args.batch)
                if args.threads:
                    tr.auto_threads = False
                flops = sg2_flops(tr)
                t_main, t_pl, t_both = sg2_times(tr, args.seconds / 3)
                dt = t_main + (t_pl - t_main) / tr.cfg.g_reg_interval + (t_both - t_pl) / tr.cfg.r1_interval
                torch.set_num_threads(threads)
                ref = conv_reference(args.batch, tr.model_cfg.channels(res), res, "none", args.seconds / 2)
                gflops = flops / t_main / 1e9
                print(f"StyleGAN2: {preset:9s} {res:4d} {args.batch / dt:8.1f} {dt * 1000:8.1f} {t_main * 1000:8.1f} "
                      f"{t_pl * 1000:8.1f} {t_both * 1000:9.1f} {flops / 1e9:10.3f} {gflops:8.1f} {ref:12.1f} "
                      f"{gflops / ref:8.2f}", flush=True)


if __name__ == "__main__":
    main()
