"""Speed of the working tree against an earlier revision, measured side by side in one run.

    python benchmarks/compare.py --baseline 09cc8c1 --res 8,16 --batch 8 --rounds 3

REV is checked out into a temporary git worktree (removed afterwards). Each round runs one
subprocess per tree, in alternating order (A B, B A, A B, ...), each importing its own tree's
`sgan` (PYTHONPATH) and timing, at every resolution, the StyleGAN 1 train step (G and D forward and
backward, regulariser, Adam, EMA; lod 0, fp32) and the generator forward (no grad) on the same
shapes, preset, batch and thread count. A tree's time is the median of its steps within a round and
the best of its rounds; the table gives img/s of both and working/baseline ratios (> 1: faster now),
with the CPU model and its bf16 flags. Timings on a shared machine are noisy: the ratio of
alternated rounds is the number to trust, not the absolute img/s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- worker (runs in each tree)

def worker(args: argparse.Namespace) -> None:
    import torch

    from sgan import distributed as dist_utils
    from sgan.data.prepare import prepare_dataset
    from sgan.train import Hooks, preset_config
    from sgan.train.loop import Trainer

    torch.set_num_threads(args.threads)
    data = Path(args.data)
    if not data.exists():
        prepare_dataset("builtin:shapes", data, max_size=max(args.res), min_size=4, count=64, workers=1)
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for res in args.res:
            cfg = preset_config(args.preset)
            cfg.resolution = cfg.start_resolution = res
            cfg.minutes, cfg.minibatch_repeats = None, 1
            cfg.batch_base, cfg.batch_dict = args.batch, {}
            if hasattr(cfg, "precision"):
                cfg.precision = "fp32"
            else:  # before --precision
                cfg.amp = "none"
            tr = Trainer(cfg, data, Path(tmp) / f"r{res}", device=torch.device("cpu"), info=dist_utils.DistInfo(),
                         hooks=Hooks(), threads=args.threads)
            steps = []
            tr.step(False)  # warm-up
            for _ in range(args.steps):
                t0 = time.perf_counter()
                tr.step(False)
                steps.append(time.perf_counter() - t0)
            z = torch.randn([args.batch, tr.G.z_dim], generator=torch.Generator().manual_seed(0))
            fwd = []
            with torch.no_grad():
                tr.G(z)
                for _ in range(args.steps):
                    t0 = time.perf_counter()
                    tr.G(z)
                    fwd.append(time.perf_counter() - t0)
            out[str(res)] = {"step_s": statistics.median(steps), "forward_s": statistics.median(fwd)}
            tr.stream.close()
    print("RESULT " + json.dumps(out))


# ----------------------------------------------------------------------------- driver

def cpu_description() -> str:
    model, flags, model_found = platform.processor() or "unknown cpu", set(), False
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and not model_found:
                model, model_found = line.split(":", 1)[1].strip(), True
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    shown = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags]
    return f"{model}; {os.cpu_count()} cores; flags: {' '.join(shown) or 'none of avx2/avx512/amx'}"


def run_tree(tree: Path, args: argparse.Namespace, data: Path) -> dict:
    cmd = [sys.executable, str(HERE / "benchmarks" / "compare.py"), "--worker", "--preset", args.preset,
           "--res", ",".join(map(str, args.res)), "--batch", str(args.batch), "--steps", str(args.steps),
           "--threads", str(args.threads), "--data", str(data)]
    env = dict(os.environ, PYTHONPATH=str(tree))
    r = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
    lines = [ln for ln in r.stdout.splitlines() if ln.startswith("RESULT ")]
    if r.returncode != 0 or not lines:
        raise SystemExit(f"the run in {tree} failed:\n{r.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--baseline", help="git revision to compare against (e.g. 09cc8c1)")
    ap.add_argument("--preset", default="cpu", help="StyleGAN 1 training preset whose widths are timed (cpu)")
    ap.add_argument("--res", default="8,16,32", help="resolutions, comma-separated")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=5, help="timed steps (and forwards) per round, median taken")
    ap.add_argument("--rounds", type=int, default=3, help="A/B rounds, alternating order; best round kept")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.res = [int(r) for r in str(args.res).split(",")]
    if args.worker:
        worker(args)
        return
    if not args.baseline:
        ap.error("--baseline REV is required")
    with tempfile.TemporaryDirectory(prefix="sgan-compare-") as tmp:
        base_tree = Path(tmp) / "baseline"
        subprocess.run(["git", "-C", str(HERE), "worktree", "add", "--detach", str(base_tree), args.baseline],
                       check=True, capture_output=True)
        try:
            rev = subprocess.run(["git", "-C", str(base_tree), "rev-parse", "--short", "HEAD"], check=True,
                                 capture_output=True, text=True).stdout.strip()
            trees = {"baseline": base_tree, "working": HERE}
            data = {k: Path(tmp) / f"{k}.lmdb" for k in trees}   # each tree writes its own dataset format
            results: dict[str, list[dict]] = {k: [] for k in trees}
            for rnd in range(args.rounds):
                order = ["baseline", "working"] if rnd % 2 == 0 else ["working", "baseline"]
                for name in order:
                    results[name].append(run_tree(trees[name], args, data[name]))
                print(f"round {rnd + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        finally:
            subprocess.run(["git", "-C", str(HERE), "worktree", "remove", "--force", str(base_tree)],
                           capture_output=True)
            subprocess.run(["git", "-C", str(HERE), "worktree", "prune"], capture_output=True)
    print(f"CPU: {cpu_description()}; torch threads {args.threads}")
    print(f"baseline {args.baseline} ({rev}) vs working tree; preset {args.preset}, batch {args.batch}, fp32, lod 0; "
          f"{args.rounds} alternating rounds x {args.steps} steps (median per round, best round)")
    print()
    print("| res | what | baseline img/s | working img/s | working / baseline | per-round ratios |")
    print("|---|---|---|---|---|---|")
    for res in args.res:
        for key, what in (("step_s", "train step"), ("forward_s", "G forward")):
            a = [r[str(res)][key] for r in results["baseline"]]
            b = [r[str(res)][key] for r in results["working"]]
            rounds = " ".join(f"{x / y:.2f}" for x, y in zip(a, b))
            print(f"| {res} | {what} | {args.batch / min(a):.1f} | {args.batch / min(b):.1f} | "
                  f"{min(a) / min(b):.2f}x | {rounds} |")


if __name__ == "__main__":
    main()
