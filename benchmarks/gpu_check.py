"""Every CUDA path of sgan in one run, end to end from the CLI, with a table of what passed.

    python benchmarks/gpu_check.py                     # on a GPU machine: everything, under 8 minutes on one GPU
    make gpu-check                                     # the same
    python benchmarks/gpu_check.py --device cpu        # the same checks on the CPU, small (CUDA-only ones skipped)
    python benchmarks/gpu_check.py --device cpu --quick --in-process   # a subset, under a minute (the test)
    python benchmarks/gpu_check.py --only train-sg2-fp16,metric-fid --out /tmp/gc --json gc.json

What runs (each row of the table is one check; a check that needs another's output runs it first):

- `train-sg1-*` / `train-sg2-*`: `sgan train --preset tiny` a few steps, StyleGAN 1 with progressive growing
  (8 px up to the final resolution, through every fade-in) and StyleGAN2, in fp32 with TF32 (the default),
  fp32 `--no-tf32`, bf16 and fp16 (loss scaling; StyleGAN2 with conv_clamp 256); each checks the exit code,
  that every loss in stats.jsonl is finite, the final resolution and lod, the recorded precision / TF32 /
  conv_clamp in config.json and that latest.json names a snapshot that loads with weights_only=True.
- `resume-sg1` / `resume-sg2`: `--resume auto` on a copy of the fp32 run with a larger `--kimg`: kimg advances,
  config.json records the second start.
- `torchrun`: `torchrun --standalone --nproc-per-node N -m sgan train` (N = the GPU count; nccl on CUDA,
  gloo with two CPU processes in --device cpu mode); `nccl`: a one-rank NCCL group (all-reduce and broadcast)
  in this process, because one GPU gives torchrun a world size of 1, which sgan runs without a process group.
- `generate-*`, `mix`, `project-*`, `video`: the commands on the fp32 snapshots; generate's images are
  compared with the same command on the CPU (grey levels; in --device cpu mode: with another --batch).
- `detector`, `metric-*`: `sgan detector train` on the builtin:shapes database, then fid, kid, pr, ppl, ls
  with it; fid and kid are compared with the CPU's value (--device cpu: with another --batch).
- `import-*`: every fixture of tests/fixtures/import/ (read from its JSON), `sgan import`, then the generator
  run on the device against the CPU result: max|d| / max|ref| under 1e-4 in fp32 with TF32 off (reported
  also with TF32 on, bound 3e-2); docs/benchmarks.md says why. In --device cpu mode the same code compares
  one image at a time against the batch of 4.
- `auto-sg1` / `auto-sg2`: `--precision auto --compile auto`, reporting what they chose and why;
  `generate-auto`: `sgan generate --precision auto`; `compile-sg2`: `--compile on` (CUDA only).

The table goes to stdout (and --json FILE), progress to stderr, every command's output to
OUT/logs/. Exit status 1 if any check failed; a failure row names the command, its exit code and
the last lines it printed, and the log file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))      # the two modules beside this file
from gpu_check_base import Ctx, Failed, Row, Sizes, Skipped, say  # noqa: E402
from gpu_check_steps import (c_compile, c_dataset, c_detector, c_dry_run, c_generate_auto, c_mix,  # noqa: E402
                             c_nccl, c_torchrun, c_video, fixture_names, make_auto, make_generate, make_import,
                             make_metric, make_project, make_resume, make_train)

# ====================================================================== registry, runner, table

def registry() -> dict[str, Callable]:
    checks: dict[str, Callable] = {"dataset": c_dataset, "dry-run": c_dry_run}
    for arch in ("sg1", "sg2"):
        for precision, tf32 in (("fp32", True), ("fp32", False), ("bf16", True), ("fp16", True)):
            name, fn = make_train(arch, precision, tf32)
            checks[name] = fn
    for arch in ("sg1", "sg2"):
        name, fn = make_resume(arch)
        checks[name] = fn
    checks["torchrun"], checks["nccl"] = c_torchrun, c_nccl
    for arch in ("sg1", "sg2"):
        name, fn = make_generate(arch)
        checks[name] = fn
    checks["generate-auto"], checks["mix"] = c_generate_auto, c_mix
    checks["detector"] = c_detector
    for arch in ("sg1", "sg2"):
        name, fn = make_project(arch)
        checks[name] = fn
    checks["video"] = c_video
    for metric in ("fid", "kid", "pr", "ppl", "ls"):
        name, fn = make_metric(metric)
        checks[name] = fn
    for fixture in fixture_names():
        name, fn = make_import(fixture)
        checks[name] = fn
    for arch in ("sg1", "sg2"):
        name, fn = make_auto(arch)
        checks[name] = fn
    checks["compile-sg2"] = c_compile
    return checks


QUICK = ["dataset", "dry-run", "train-sg1-fp32", "train-sg2-fp32", "train-sg2-bf16", "train-sg2-fp16",
         "resume-sg2", "generate-sg2", "mix", "detector", "project-sg2", "video", "metric-fid", "metric-ls",
         "import-tf-sg1-32", "auto-sg2"]

CHECKS = registry()


def run_check(ctx: Ctx, name: str, needed_by: str | None = None) -> None:
    ctx.done[name] = Failed("did not finish")          # a dependency cycle or a crash reads as a failure
    say(f"[{name}]" + (f" (needed by {needed_by})" if needed_by else ""))
    dev = ctx.device
    t0 = time.perf_counter()
    try:
        if ctx.deadline is not None and t0 >= ctx.deadline:
            ctx.cut += 1
            raise Skipped("not run: the --deadline had passed")
        precision, result = CHECKS[name](ctx)
        status = "ok"
        ctx.done.setdefault(name, True)
        if isinstance(ctx.done[name], Failed):
            ctx.done[name] = True
    except Skipped as e:
        precision, status, result = "-", "skipped", str(e)
        ctx.done[name] = e
    except Failed as e:
        precision, status, result = "-", "FAIL", str(e)
        ctx.done[name] = e
    except Exception as e:                                 # noqa: BLE001 - a bug in a check or in sgan's library
        import traceback

        tb = traceback.extract_tb(e.__traceback__)[-1]
        precision, status = "-", "FAIL"
        result = f"{type(e).__name__}: {e} (at {Path(tb.filename).name}:{tb.lineno})"
        ctx.done[name] = Failed(result)
    if name == "torchrun" and status == "ok":
        import torch

        dev = f"{dev} x{torch.cuda.device_count() if dev == 'cuda' else 2}"
    row = Row(check=name, device=dev, precision=precision, seconds=round(time.perf_counter() - t0, 1),
              status=status, result=result, needed_by=needed_by)
    ctx.rows.append(row)
    say(f"  -> {status} ({row.seconds:.1f} s): {result}")
    if ctx.on_row:
        ctx.on_row()


def table(rows: list[Row]) -> str:
    head = ("check", "device", "precision", "seconds", "result")
    prefix = {"ok": "ok: ", "FAIL": "FAIL: ", "skipped": ""}       # a skipped row's text says "skipped (...)"
    cells = [(r.check, r.device, r.precision, f"{r.seconds:.1f}", prefix[r.status] + r.result) for r in rows]
    w = [max([len(h)] + [len(c[i]) for c in cells]) if i < 4 else len(h) for i, h in enumerate(head)]

    def line(c) -> str:
        return "| " + " | ".join(str(x).ljust(w[i]) if i < 4 else str(x) for i, x in enumerate(c)) + " |"

    return "\n".join([line(head), "|" + "|".join("-" * (x + 2) for x in w[:4]) + "|---|"] + [line(c) for c in cells])


def describe_device(device: str) -> str:
    import platform

    import torch

    if device == "cuda":
        names = sorted({torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())})
        return f"{torch.cuda.device_count()} x {', '.join(names)}, CUDA {torch.version.cuda}, torch {torch.__version__}"
    flags = ""
    try:
        info = Path("/proc/cpuinfo").read_text()
        model = next((ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")), "")
        have = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "avx512_fp16") if f" {f}" in info]
        flags = f"{model}; flags {' '.join(have) or 'none of avx2/avx512'}"
    except OSError:
        flags = platform.processor()
    return f"cpu ({os.cpu_count()} cores; {flags}), torch {torch.__version__}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="checks: " + ", ".join(CHECKS))
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                   help="cuda (default: every check) or cpu (small; CUDA-only checks skipped)")
    p.add_argument("--quick", action="store_true", help="a subset at the smallest sizes: " + ", ".join(QUICK))
    p.add_argument("--only", default=None, help="comma list of checks (those they need run too)")
    p.add_argument("--skip", default=None, help="comma list of checks to leave out")
    p.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one, removed "
                                                          "when everything passed)")
    p.add_argument("--json", type=Path, default=None, help="also write the table as JSON to this file")
    p.add_argument("--in-process", action="store_true",
                   help="run the sgan commands in this process (typer's CliRunner; torchrun still starts its "
                        "own) instead of one `python -m sgan` each: saves the start-up, for the CPU test")
    p.add_argument("--deadline", type=float, default=None,
                   help="seconds after which no further check starts (those rows say 'not run'; exit 1)")
    p.add_argument("--timeout", type=float, default=300.0, help="seconds one command may take (300)")
    args = p.parse_args(argv)
    for opt in ("only", "skip"):
        names = [n.strip() for n in (getattr(args, opt) or "").split(",") if n.strip()]
        unknown = [n for n in names if n not in CHECKS]
        if unknown:
            p.error(f"--{opt}: unknown check(s) {', '.join(unknown)}; the checks are: {', '.join(CHECKS)}")
        setattr(args, opt, names)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print(f"Error: no CUDA device (torch {torch.__version__}, cuda {torch.version.cuda}); "
                  "run `python benchmarks/gpu_check.py --device cpu` on a machine without a GPU.", file=sys.stderr)
            return 2
    selected = args.only or (QUICK if args.quick else list(CHECKS))
    selected = [n for n in selected if n not in args.skip]
    temp = args.out is None
    out = Path(tempfile.mkdtemp(prefix="sgan-gpu-check-")) if temp else args.out
    out.mkdir(parents=True, exist_ok=True)
    ctx = Ctx(device=args.device, out=out, sizes=Sizes.for_mode(args.device, args.quick), quick=args.quick,
              timeout=args.timeout, in_process=args.in_process,
              runner=lambda c, name, by: run_check(c, name, needed_by=by))
    machine = describe_device(args.device)
    t0 = time.perf_counter()
    ctx.deadline = None if args.deadline is None else t0 + args.deadline

    def write_json() -> None:                         # after every row, so that a killed run leaves its rows
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"device": args.device, "quick": args.quick, "machine": machine,
                                             "seconds": round(time.perf_counter() - t0, 1), "complete": done,
                                             "rows": [asdict(r) for r in ctx.rows]}, indent=1) + "\n")

    done = False
    ctx.on_row = write_json
    say(f"gpu_check on {machine}; {len(selected)} checks; work folder {out}")
    for name in selected:
        if name not in ctx.done:
            run_check(ctx, name)
    total = time.perf_counter() - t0
    failed = [r for r in ctx.rows if r.status == "FAIL"]
    done = True
    write_json()
    print(f"sgan gpu_check --device {args.device}{' --quick' if args.quick else ''}: {machine}")
    print(table(ctx.rows))
    print(f"{len(ctx.rows) - len(failed)} of {len(ctx.rows)} checks passed or skipped, {len(failed)} failed, "
          f"{total:.0f} s in all" + (f"; {ctx.cut} not run (--deadline {args.deadline:g} s)" if ctx.cut else ""))
    if failed or ctx.cut:
        print(f"{len(failed)} failed, {ctx.cut} not run; every command's output is in {out / 'logs'}")
    elif temp:
        shutil.rmtree(out, ignore_errors=True)
    return 1 if failed or ctx.cut else 0


if __name__ == "__main__":
    sys.exit(main())
