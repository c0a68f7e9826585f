"""The parts of benchmarks/gpu_check.py that every check uses: the work context (running a command,
its log, the checks a check needs), the table's row, the sizes per mode, and readers of a run folder."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:           # this checkout's sgan, also for the library calls made here
    sys.path.insert(0, str(ROOT))
FIXTURES = ROOT / "tests" / "fixtures" / "import"
IMPORT_FP32_TOL = 1e-4        # CUDA fp32 (TF32 off) against the CPU: other kernels, other summation orders
IMPORT_TF32_TOL = 3e-2        # TF32: 10-bit mantissa products, about 1e-3 relative each, through every layer
GREY_LEVELS_BOUND = 16        # generate on the device against the CPU: a sanity bound (TF32 on by default)
CPU_METRIC_REL = 0.05         # fid / kid on the device against the CPU, relative (the same images, fp32)


class Failed(Exception):
    """The check failed; the message says what, with the command and its output where there is one."""


class Skipped(Exception):
    """The check cannot run in this mode; the message says why."""


@dataclass
class Row:
    check: str
    device: str
    precision: str
    seconds: float
    status: str                # ok, FAIL, skipped
    result: str
    needed_by: str | None = None


@dataclass
class Sizes:
    """How big everything is in each mode (the GPU one is still tiny: the point is the code paths)."""
    res: int
    count: int
    sg1_phase: float
    sg1_kimg: float
    sg2_kimg: float
    tick: float
    det_limit: int
    metric_num: int
    project_steps: int

    @staticmethod
    def for_mode(device: str, quick: bool) -> "Sizes":
        if device == "cuda":
            return Sizes(res=32, count=2000, sg1_phase=0.064, sg1_kimg=0.384, sg2_kimg=0.256, tick=0.064,
                         det_limit=2000, metric_num=512, project_steps=50)
        if quick:
            return Sizes(res=16, count=200, sg1_phase=0.008, sg1_kimg=0.04, sg2_kimg=0.016, tick=0.008,
                         det_limit=200, metric_num=32, project_steps=4)
        return Sizes(res=16, count=400, sg1_phase=0.016, sg1_kimg=0.08, sg2_kimg=0.032, tick=0.016,
                     det_limit=400, metric_num=64, project_steps=10)


@dataclass
class Ctx:
    device: str                # "cuda" or "cpu"
    out: Path
    sizes: Sizes
    quick: bool
    timeout: float
    in_process: bool = False
    runner: Callable = None            # runner(ctx, name, needed_by): runs a check and adds its row (gpu_check.py)
    on_row: Callable = None            # on_row(): called after each row (gpu_check.py rewrites --json)
    deadline: float | None = None      # time.perf_counter() after which no check starts (--deadline)
    cut: int = 0                       # checks not started because of the deadline
    rows: list[Row] = field(default_factory=list)
    done: dict[str, object] = field(default_factory=dict)   # check name -> its artifact (or a Failed)
    n_cmd: int = 0

    # ------------------------------------------------------------------ running commands
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
        env["SGAN_CACHE_DIR"] = str(self.out / "cache")
        env.setdefault("PYTHONUNBUFFERED", "1")
        return env

    def run(self, argv: list[str], *, what: str, expect_fail: bool | None = False) -> subprocess.CompletedProcess:
        """Run one command (a list; "sgan" means `python -m sgan`), its output to OUT/logs/; Failed on a bad exit
        (a non-zero one, or with expect_fail=True a zero one; expect_fail=None accepts both)."""
        self.n_cmd += 1
        cmd = [sys.executable, "-m", "sgan", *argv[1:]] if argv[0] == "sgan" else argv
        shown = " ".join(str(a) for a in argv)
        log = self.out / "logs" / f"{self.n_cmd:02d}-{what}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        say(f"  $ {shown}")
        if self.in_process and argv[0] == "sgan":
            p = self.invoke(argv[1:])
        else:
            try:
                p = subprocess.run([str(a) for a in cmd], capture_output=True, text=True, env=self.env(),
                                   cwd=ROOT, timeout=self.timeout)
            except subprocess.TimeoutExpired as e:
                log.write_text(f"$ {shown}\n(timed out after {self.timeout:.0f} s)\n{e.stdout or ''}\n{e.stderr or ''}")
                raise Failed(f"`{shown}` did not finish in {self.timeout:.0f} s (log {log})") from None
        log.write_text(f"$ {shown}\nexit {p.returncode}\n--- stdout\n{p.stdout}\n--- stderr\n{p.stderr}")
        if expect_fail is not None and (p.returncode != 0) != expect_fail:      # None: either, the caller looks
            tail = " | ".join(line.strip() for line in (p.stderr + p.stdout).strip().splitlines()[-6:])
            raise Failed(f"`{shown}` exited {p.returncode}{' (a refusal was expected)' if expect_fail else ''}: "
                         f"{tail or '(no output)'} (log {log})")
        return p

    def invoke(self, args: list) -> subprocess.CompletedProcess:
        """`sgan ARGS` in this process (typer's CliRunner): no interpreter start-up per command."""
        import traceback

        from typer.testing import CliRunner

        from sgan.cli import app

        res = CliRunner().invoke(app, [str(a) for a in args], env={"SGAN_CACHE_DIR": str(self.out / "cache")})
        err = res.stderr
        if res.exception is not None and not isinstance(res.exception, SystemExit):
            err += "".join(traceback.format_exception(res.exception))
        return subprocess.CompletedProcess(args, res.exit_code, res.stdout, err)

    def need(self, name: str, by: str) -> object:
        """The artifact of check `name`, running it first when it has not run (its row is added too)."""
        if name not in self.done:
            self.runner(self, name, by)
        art = self.done[name]
        if isinstance(art, (Failed, Skipped)):
            raise Failed(f"needs {name}, which {'failed' if isinstance(art, Failed) else 'was skipped'}")
        return art

    @property
    def dev_arg(self) -> str:
        return self.device


def say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# ====================================================================== helpers that read what sgan wrote

def read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise Failed(f"cannot read {path}: {e}") from None


def check_run(run: Path, *, res: int, world: int = 1) -> dict:
    """A finished run folder: finite losses in every stats line, the final resolution at lod 0, a
    snapshot named by latest.json that loads with weights_only=True. Returns what the table reports."""
    import torch

    stats_path = run / "stats.jsonl"
    if not stats_path.exists():
        raise Failed(f"{stats_path} missing: no tick was written")
    stats = [json.loads(line) for line in stats_path.read_text().splitlines() if line.strip()]
    if not stats:
        raise Failed(f"{stats_path} is empty")
    loss_keys = [k for k in stats[-1] if k.startswith(("G_", "D_")) or k in ("pl_mean",)]
    if not any(k.startswith("G_") for k in loss_keys) or not any(k.startswith("D_") for k in loss_keys):
        raise Failed(f"{stats_path}: no G_/D_ loss terms in the last line ({sorted(stats[-1])})")
    for s in stats:
        bad = {k: v for k, v in s.items() if k.startswith(("G_", "D_")) and not math.isfinite(float(v))}
        if bad:
            raise Failed(f"non-finite losses at kimg {s.get('kimg')}: {bad} ({stats_path})")
    last = stats[-1]
    if last["resolution"] != res or float(last["lod"]) != 0.0:
        raise Failed(f"ended at resolution {last['resolution']}, lod {last['lod']}; expected {res} at lod 0 "
                     f"({stats_path})")
    latest = read_json(run / "latest.json")
    snap = run / latest["snapshot"]
    try:
        state = torch.load(snap, map_location="cpu", weights_only=True)
    except Exception as e:                                            # noqa: BLE001 - reported, the check fails
        raise Failed(f"{snap} does not load with weights_only=True: {type(e).__name__}: {e}") from None
    if not isinstance(state, dict):
        raise Failed(f"{snap} holds a {type(state).__name__}, not a dict")
    cfg = read_json(run / "config.json")
    if cfg.get("world_size", 1) != world:
        raise Failed(f"config.json world_size {cfg.get('world_size')}, expected {world}")
    skipped = last.get("skipped_steps", 0)
    return {"cfg": cfg, "stats": stats, "last": last, "latest": latest,
            "summary": f"kimg {latest['kimg']}, {len(stats)} ticks, res {res}, skipped {skipped}, "
                       f"G_loss {last.get('G_loss', float('nan')):.3g}"}


def png(path: Path):
    import numpy as np
    from PIL import Image

    if not path.exists():
        raise Failed(f"{path} was not written")
    return np.asarray(Image.open(path).convert("RGB"))
