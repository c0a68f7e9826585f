"""`sgan train --procs`: real training runs of 1 process against N single-thread processes.

Each row is a real `sgan train` run (the cpu preset unless --preset, StyleGAN 1 with --start-resolution
= --resolution so the whole run trains at that resolution; `--arch stylegan2` for StyleGAN2) and
reads images/s from its stats.jsonl, leaving out the first tick (start-up, caching the dataset).
The modes alternate within each repeat, so a machine whose load changes hurts them alike; the
table reports each mode's median and its ratio to the first mode.

    python benchmarks/procs.py                                  # cpu preset, 8/16/32 px, 1 vs 2 processes
    python benchmarks/procs.py --res 16 --modes 1,1t2,2 --repeats 3
    python benchmarks/procs.py --arch stylegan2 --res 16,32
    python benchmarks/procs.py --preset paper --res 8 --batch 16 --scale 0.05    # the paper's widths

Modes: `1` one process with sgan's own thread choice (one thread at 8-16 px, all cores above),
`1tK` one process with --threads K, `N` --procs N (one thread each), `auto` --procs auto.

`--data-wait`: the same runs with timers around RealStream.batch and the gradient all-reduce in
every training process (started through sgan.train.procs.launch, as `sgan train --procs N` does):
how long a step waits for its reals, how long the first call at a resolution takes (it decodes the
whole dataset at that resolution into memory; every process decodes its own copy), and how long
the all-reduces of a step take (the transfer plus waiting for the slower rank).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# kimg and tick (kimg) per resolution: about 10-20 s of training each on a 2-core CPU at the cpu preset
RUN_KIMG = {8: (1.6, 0.32), 16: (0.8, 0.16), 32: (0.32, 0.064), 64: (0.08, 0.016)}


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env


def _mode_args(mode: str) -> list[str]:
    if mode == "1":
        return []
    if mode.startswith("1t"):
        return ["--threads", mode[2:]]
    if mode == "auto" or mode.isdigit():
        return ["--procs", mode]
    raise SystemExit(f"unknown mode {mode!r}: 1, 1tK, N or auto")


def train_args(data: Path, out: Path, res: int, args: argparse.Namespace) -> list[str]:
    kimg, tick = RUN_KIMG.get(res, (0.08, 0.016))
    kimg, tick = kimg * args.scale, tick * args.scale
    a = ["train", str(data), "--out", str(out), "--preset", args.preset, "--resolution", str(res), "--kimg",
         f"{kimg:g}", "--tick", f"{tick:g}", "--snap", "100000", "--device", "cpu", "--precision", "fp32"]
    if args.batch:
        a += ["--batch", str(args.batch)]
    if args.arch == "stylegan2":
        a += ["--arch", "stylegan2"]
    else:
        a += ["--start-resolution", str(res)]
    return a


def images_per_s(out: Path) -> tuple[float, str]:
    """Images per second of training time after the first tick (which holds the start-up)."""
    recs = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines() if line.strip()]
    if len(recs) < 2:
        raise SystemExit(f"{out}: fewer than 2 ticks; raise --scale")
    a, b = recs[0], recs[-1]
    rate = (b["kimg"] - a["kimg"]) * 1000.0 / (b["train_seconds"] - a["train_seconds"])
    cfg = json.loads((out / "config.json").read_text())
    threads = cfg["device"] if "--threads" in cfg["command_line"] or cfg["world_size"] > 1 else "sgan's thread choice"
    return rate, f"{cfg['world_size']} x {threads}"


def run_once(data: Path, tmp: Path, res: int, mode: str, args: argparse.Namespace, tag: str) -> tuple[float, str]:
    out = tmp / f"run-{tag}"
    cmd = [sys.executable, "-m", "sgan", *train_args(data, out, res, args), *_mode_args(mode)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return images_per_s(out)


# -- --data-wait: a timer around RealStream.batch inside each training process ----------------

CHILD, LAUNCH = "--timed-child", "--launch-timed"


def timed_child(report_dir: str, argv: list[str]) -> None:
    """Run `sgan <argv>` with RealStream.batch timed; write the timings of this rank to report_dir."""
    import atexit

    from sgan import distributed
    from sgan.cli import main
    from sgan.train import reals

    reduce_s = [0.0]
    # per RealStream.batch call: (global batch, wall at start, CPU time at start, all-reduce seconds so far, call seconds)
    calls: list[tuple[int, float, float, float, float]] = []
    real_batch = reals.RealStream.batch

    def batch(self, position, batch, resolution):
        t0, c0 = time.perf_counter(), time.process_time()
        try:
            return real_batch(self, position, batch, resolution)
        finally:
            calls.append((batch, t0, c0, reduce_s[0], time.perf_counter() - t0))

    reals.RealStream.batch = batch
    real_reduce = distributed.all_reduce_mean_

    def all_reduce_mean_(flat, info):   # the gradient all-reduce: transfer + waiting for the slower rank
        t0 = time.perf_counter()
        try:
            return real_reduce(flat, info)
        finally:
            reduce_s[0] += time.perf_counter() - t0

    distributed.all_reduce_mean_ = all_reduce_mean_

    def write() -> None:
        rank = os.environ.get("RANK", "0")
        step_b = statistics.mode([c[0] for c in calls])
        steps = [c for c in calls if c[0] == step_b]   # rank 0 also reads the reals grid
        first = [c for c in calls if c[4] > 0.5][:1] or calls[:1]   # the call that cached the dataset
        # steady state: from the 4th step to the last (the first steps wait for the other ranks' caching)
        a, b, n = steps[3], steps[-1], len(steps) - 4
        Path(report_dir, f"rank{rank}.json").write_text(json.dumps({
            "rank": int(rank), "first_s": first[0][4],
            "steady_mean_ms": 1000 * statistics.fmean(c[4] for c in steps[3:]),
            "steady_max_ms": 1000 * max(c[4] for c in steps[3:]),
            "reduce_ms": 1000 * (b[3] - a[3]) / n, "wall_ms": 1000 * (b[1] - a[1]) / n,
            "cpu_ms": 1000 * (b[2] - a[2]) / n}))

    atexit.register(write)
    sys.argv = ["sgan", *argv]
    main()


def data_wait(data: Path, tmp: Path, res: int, mode: str, args: argparse.Namespace, tag: str) -> list[dict]:
    out, reports = tmp / f"wait-{tag}", tmp / f"reports-{tag}"
    reports.mkdir()
    argv = train_args(data, out, res, args)
    prefix = [sys.executable, str(Path(__file__).resolve()), CHILD, str(reports)]
    n = int(mode) if mode.isdigit() else 1
    if n > 1:   # a parent process that launches the timed children as `sgan train --procs N` would
        cmd = [sys.executable, str(Path(__file__).resolve()), LAUNCH, str(n), *prefix, "--", *argv]
    else:
        cmd = prefix + argv + _mode_args(mode)
    proc = subprocess.run(cmd, env=_env(), cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"--data-wait run {tag} failed:\n{proc.stderr[-2000:]}")
    return [json.loads(p.read_text()) for p in sorted(reports.glob("rank*.json"))]


def launch_timed(n: int, rest: list[str]) -> int:
    from sgan.train.procs import ProcsChoice, launch

    cut = rest.index("--")
    return launch(rest[cut + 1:], ProcsChoice(n, str(n), "benchmark"), cpu=True, threads=None, prefix=rest[:cut])


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == CHILD:
        timed_child(sys.argv[2], sys.argv[3:])
        return
    if len(sys.argv) > 2 and sys.argv[1] == LAUNCH:
        sys.exit(launch_timed(int(sys.argv[2]), sys.argv[3:]))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--res", default="8,16,32")
    ap.add_argument("--modes", default="1,2", help="comma list: 1, 1tK (--threads K), N (--procs N), auto")
    ap.add_argument("--repeats", type=int, default=2, help="alternating rounds (each mode once per round)")
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--arch", default="stylegan1", choices=("stylegan1", "stylegan2"))
    ap.add_argument("--batch", type=int, default=None, help="global minibatch (default: the preset's; paper's follows N)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the kimg of every run")
    ap.add_argument("--count", type=int, default=2000, help="images in the benchmark dataset")
    ap.add_argument("--data", type=Path, default=None, help="an existing LMDB instead of a fresh builtin:shapes one")
    ap.add_argument("--data-wait", action="store_true", help="time RealStream.batch inside the training processes")
    args = ap.parse_args()
    resolutions = [int(r) for r in args.res.split(",")]
    modes = args.modes.split(",")
    for m in modes:
        _mode_args(m)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        data = args.data
        if data is None:
            from sgan.data.prepare import prepare_dataset

            data = tmp / "shapes.lmdb"
            prepare_dataset("builtin:shapes", data, max_size=max(resolutions), min_size=4, count=args.count, workers=1)
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout if sys.platform.startswith("linux") else ""
        model = next((ln.split(":", 1)[1].strip() for ln in lscpu.splitlines() if ln.startswith("Model name")), "?")
        flags = next((ln.split(":", 1)[1].split() for ln in lscpu.splitlines() if ln.startswith("Flags")), [])
        shown = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
        import torch

        print(f"{model}, {os.cpu_count()} CPUs, flags {' '.join(shown) or '-'}; torch {torch.__version__}; "
              f"{args.arch} preset {args.preset}; load average {os.getloadavg()[0]:.1f} at start")
        if args.data_wait:
            print(f"{'res':>4s} {'mode':>5s} {'rank':>4s} {'first batch s':>13s} {'data ms/step':>12s} "
                  f"{'max ms':>7s} {'all-reduce ms/step':>18s} {'step ms':>8s} {'CPU ms/step':>11s}")
            for res in resolutions:
                for mode in modes:
                    for rep in data_wait(data, tmp, res, mode, args, f"{res}-{mode}"):
                        print(f"{res:4d} {mode:>5s} {rep['rank']:4d} {rep['first_s']:13.2f} {rep['steady_mean_ms']:12.3f} "
                              f"{rep['steady_max_ms']:7.2f} {rep['reduce_ms']:18.2f} {rep['wall_ms']:8.1f} "
                              f"{rep['cpu_ms']:11.1f}", flush=True)
            return
        rates: dict[tuple[int, str], list[float]] = {}
        what: dict[tuple[int, str], str] = {}
        for res in resolutions:
            for r in range(args.repeats):
                for mode in (modes if r % 2 == 0 else modes[::-1]):   # ABBA: neither mode always goes first
                    rate, desc = run_once(data, tmp, res, mode, args, f"{res}-{mode}-{r}")
                    rates.setdefault((res, mode), []).append(rate)
                    what[(res, mode)] = desc
                    print(f"  {res:3d} px  mode {mode:>4s}  {rate:7.1f} img/s  ({desc})", flush=True)
        print(f"\n| res | mode | processes x device | img/s (median of {args.repeats}) | runs | ratio to mode {modes[0]} |")
        print("|---|---|---|---|---|---|")
        for res in resolutions:
            base = statistics.median(rates[(res, modes[0])])
            for mode in modes:
                med = statistics.median(rates[(res, mode)])
                runs = ", ".join(f"{x:.0f}" for x in rates[(res, mode)])
                print(f"| {res} | {mode} | {what[(res, mode)]} | {med:.1f} | {runs} | {med / base:.2f} |")
        print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
