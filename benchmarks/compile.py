"""`sgan train --compile`: eager vs torch.compile'd training steps, alternating in one run.

For each row, two Trainers from the same initialisation: one eager, one with its G and D pieces
compiled (sgan.train.compiled). Prints per row

- compile s: the compiled trainer's first regulariser cycle (every phase variant compiles there)
  minus the eager trainer's time for the same steps;
- eager / compiled ms per step: medians over `--rounds` rounds, each timing one cycle of eager
  steps then one cycle of compiled steps (a cycle: the lazy R1 / path-length interval, so the
  eager R1 passes are amortised as in training);
- ratio eager / compiled and the compiles during the timed rounds (recompiles; must be 0);
- grad rel: ||g_eager - g_compiled|| / ||g_eager|| over G's and D's parameters (the larger) after
  a first step at lr 0 (so every phase sees equal parameters); update rel: the same for the next
  step's parameter updates (the checks of tests/test_train_compile.py at these presets; the run
  fails beyond 1e-3 and 0.05); diff cycle: max |param difference| after the first cycle (GAN
  training amplifies rounding differences from step to step: it grows).

Both trainers of a row compute in one precision, set before compiling (--precision, fp32 by
default; sgan train compiles in fp32 only on a CPU: sgan.train.compiled.LOW_PRECISION_CPU; --precision
bf16 shows why, and its rows do not fail the run). max entries: the most graphs any one piece
compiled (StyleGAN 1: 3 for D's pieces, 1 for G's; StyleGAN2: 2 each; the recompile limit is 8).

StyleGAN 1 rows train with lod 0 at their resolution (the cpu preset: 32 channels, batch 16, lazy
R1 every 4 steps); `--fade` adds a row in the 16 -> 32 px fade-in where lod moves at every step, to
show that it compiles once. StyleGAN2 rows use `--sg2-preset` as it is (cpu: R1 every 16 steps,
no path length). The inductor cache starts empty (a temporary TORCHINDUCTOR_CACHE_DIR) unless
--warm-cache, so the compile time is a first run's.

    python benchmarks/compile.py                          # cpu preset 8, 16, 32 px + fade + StyleGAN2 cpu 32 px
    python benchmarks/compile.py --res 32 --sg2-res none --rounds 5
    python benchmarks/compile.py --res 8 --no-fade --sg2-res none --precision bf16
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--res", default="8,16,32", help="StyleGAN 1 resolutions (lod 0); none: no rows")
    ap.add_argument("--preset", default="cpu", help="StyleGAN 1 preset")
    ap.add_argument("--fade", action=argparse.BooleanOptionalAction, default=True,
                    help="a StyleGAN 1 row in the fade-in to the largest --res (lod changes every step)")
    ap.add_argument("--sg2-res", default="32", help="StyleGAN2 resolutions; none: no rows")
    ap.add_argument("--sg2-preset", default="cpu")
    ap.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                    help="what both trainers compute in (set before compiling)")
    ap.add_argument("--rounds", type=int, default=3, help="alternating eager/compiled rounds per row")
    ap.add_argument("--warm-cache", action="store_true", help="keep inductor's on-disk cache (default: a fresh one)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="sgan-compile-")
    if not args.warm_cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(Path(tmp) / "inductor")   # before torch is imported
    import torch

    from sgan import distributed as dist_utils
    from sgan.data.prepare import prepare_dataset
    from sgan.device import PrecisionChoice
    from sgan.train import Hooks, preset_config
    from sgan.train import compiled as comp
    from sgan.train.loop import Trainer

    res1 = [] if args.res == "none" else [int(r) for r in args.res.split(",")]
    res2 = [] if args.sg2_res == "none" else [int(r) for r in args.sg2_res.split(",")]
    data = Path(tmp) / "shapes.lmdb"
    prepare_dataset("builtin:shapes", data, max_size=max(res1 + res2), min_size=4, count=256, workers=1)

    def sg1(res: int, run: str, fade: bool = False) -> Trainer:
        cfg = preset_config(args.preset)
        cfg.resolution, cfg.minutes = res, None
        cfg.start_resolution = res // 2 if fade else res
        cfg.lod_training_kimg, cfg.lod_transition_kimg = (0.0, 1e3) if fade else (600.0, 600.0)
        cfg.minibatch_repeats = 1     # fade: lod moves at every step
        cfg.precision = args.precision
        tr = Trainer(cfg, data, Path(tmp) / run, device=torch.device("cpu"), info=dist_utils.DistInfo(),
                     hooks=Hooks())
        if fade:
            tr.c.cur_nimg = tr.c.data_position = 100_000    # lod 0.9 and falling
        return tr

    def sg2(res: int, run: str) -> Trainer:
        cfg = preset_config(args.sg2_preset, arch="stylegan2", resolution=res)
        cfg.resolution, cfg.minutes, cfg.precision = res, None, args.precision
        return Trainer(cfg, data, Path(tmp) / run, device=torch.device("cpu"),
                                info=dist_utils.DistInfo(), hooks=Hooks())

    def cycle(tr: Trainer) -> int:
        c = tr.cfg
        return max(c.r1_interval, c.g_reg_interval if tr.model_cfg.arch == "stylegan2" and c.pl_weight > 0 else 1)

    def steps(tr: Trainer, n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            tr.step(False)
        return time.perf_counter() - t0

    def diff(a: Trainer, b: Trainer) -> float:
        worst = 0.0
        for name in ("G", "D", "G_ema"):
            sa, sb = getattr(a, name).state_dict(), getattr(b, name).state_dict()
            assert sa.keys() == sb.keys()
            worst = max([worst] + [float((sa[k].float() - sb[k].float()).abs().max()) for k in sa])
        return worst

    cpu = open("/proc/cpuinfo").read() if os.path.exists("/proc/cpuinfo") else ""
    model = next((ln.split(":", 1)[1].strip() for ln in cpu.splitlines() if ln.startswith("model name")), "?")
    flags = next((set(ln.split(":", 1)[1].split()) for ln in cpu.splitlines() if ln.startswith("flags")), set())
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU {model}, "
          f"flags {' '.join(f for f in ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16') if f in flags) or '-'} "
          f"(family {comp.cpu_family(flags)}); inductor cache {'warm' if args.warm_cache else 'fresh'}; "
          f"precision {args.precision}", flush=True)
    print(f"{'row':22s} {'steps/cycle':>11s} {'compile s':>9s} {'eager ms':>9s} {'compiled ms':>11s} {'ratio':>6s} "
          f"{'recompiles':>10s} {'max entries':>11s} {'grad rel':>8s} {'update rel':>10s} {'diff cycle':>10s}", flush=True)
    rows = [(f"stylegan1 {args.preset} {r}px", lambda run, r=r: sg1(r, run)) for r in res1]
    if args.fade and res1:
        r = max(res1)
        rows.append((f"stylegan1 fade {r // 2}->{r}", lambda run, r=r: sg1(r, run, fade=True)))
    rows += [(f"stylegan2 {args.sg2_preset} {r}px", lambda run, r=r: sg2(r, run)) for r in res2]
    for i, (name, make) in enumerate(rows):
        eager, fast = make(f"e{i}"), make(f"c{i}")
        for tr in (eager, fast):      # one precision for both, before compiling (no probe through compiled code)
            tr.resolve_precision(PrecisionChoice(args.precision, args.precision, {}, "forced"))
        comp.apply_choice(fast, comp.CompileChoice(True, "on", "benchmark"))
        k = cycle(eager)
        with comp.frozen_lr(eager):   # lr 0: every phase's gradients at equal parameters
            t_eager_first = steps(eager, 1)
        with comp.frozen_lr(fast):
            t_fast_first = steps(fast, 1)
        g1 = max(comp.grad_rel_diff(eager.G, fast.G), comp.grad_rel_diff(eager.D, fast.D))
        before = {n: {k: v.detach().clone() for k, v in getattr(eager, n).named_parameters()} for n in ("G", "D")}
        t_eager_first += steps(eager, 1)
        t_fast_first += steps(fast, 1)
        d1 = max(comp.update_rel_diff(getattr(eager, n), getattr(fast, n), before[n]) for n in ("G", "D"))
        t_eager_first += steps(eager, k - 2)
        t_fast_first += steps(fast, k - 2)
        dk = diff(eager, fast)

        def graphs() -> dict[str, int]:
            return {**comp.compile_entries(dict(fast.G.named_modules())),
                    **{f"D.{k}": v for k, v in comp.compile_entries(dict(fast.D.named_modules())).items()}}

        graphs1 = sum(graphs().values())
        te, tc = [], []
        for _ in range(args.rounds):
            te.append(steps(eager, k) / k)
            tc.append(steps(fast, k) / k)
        entries = graphs()
        me, mc = statistics.median(te), statistics.median(tc)
        print(f"{name:22s} {k:11d} {t_fast_first - t_eager_first:9.1f} {me * 1000:9.1f} {mc * 1000:11.1f} "
              f"{me / mc:6.2f} {sum(entries.values()) - graphs1:10d} {max(entries.values(), default=0):11d} {g1:8.1e} {d1:10.2e} {dk:10.2e}", flush=True)
        if args.precision == "fp32" and (g1 > 1e-3 or d1 > 0.05):   # tests/test_train_compile.py: the tolerances
            print(f"  the compiled step differs from the eager one: gradients {g1:.3g} relative, updates "
                  f"{d1:.3g} relative", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
