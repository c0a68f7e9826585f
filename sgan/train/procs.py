"""`sgan train --procs N|auto`: N data-parallel training processes on one machine, started by sgan.

The parent process trains nothing: it starts N children, `python -m sgan <the same command line
without --procs> --procs-child <ProcsRun as JSON>` (the choice, the user's command line for
config.json and the parent's pid: passed as an argument, no environment variable carries it), with
torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
MASTER_PORT) in their environment, so they take exactly the torchrun code path (sgan.distributed:
gloo on the CPU, NCCL on CUDA; every rank draws the global minibatch's randomness and takes its
slice; one flat all-reduce of the gradients). On the CPU each child runs one torch thread unless
--threads says otherwise. The parent waits, forwards SIGINT / SIGTERM (the children then stop at
a step boundary and write a snapshot), stops the others when one child fails, and exits with the
code of the first child that failed (0 when all succeed).

Why processes: at the small convolutions of the CPU preset (8-16 px, 32 channels) a second torch
thread does not help (hand-offs cost more than they save), while two single-thread processes side
by side each keep almost the speed of one (docs/train.md has the measurements).
`--procs auto` picks on a CPU the largest count up to the physical cores that the minibatch splits
into while each process keeps enough convolution work (batch/N * C^2 * r^2 >= 8e6 at the final
resolution: below it fixed per-step costs dominate and a half batch costs most of a whole one), 1 on
CUDA (several GPUs: torchrun), and says why.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from sgan.errors import UsageError
from sgan.train.plan import check_batches
from sgan.train.reals import dataset_sizes
from sgan.train.threads import SMALL_CONV_WORK, top_channels

CHILD_OPTION = "--procs-child"   # the hidden `sgan train` option that hands a child its ProcsRun
TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
# --procs auto on a CPU: a process must get at least SMALL_CONV_WORK batch*C^2*r^2 at the final resolution
# (the threshold of sgan.train.threads.cpu_threads). Below it fixed per-step costs dominate: measured on the cpu
# preset (2-core AMD EPYC, one thread), a half minibatch costs 85% of a whole one at 8 px, 74% at 16 px and
# 62% at 32 px, and --procs 2 ran at 0.64-0.70x of one process at 8 px (docs/train.md). The rule holds on a
# 2-core Ice Lake AVX-512 Xeon too (benchmarks/procs.py, loaded): --procs 2 at 0.82x / 0.53x of one process
# at 8 / 16 px, even (0.97x) at 32 px (docs/benchmarks.md, "--procs auto per CPU family").
FAIL_GRACE_S = 10.0        # after one child exits with an error, the others get this long to stop on their own
KILLED_GRACE_S = 1.0       # after one is killed by a signal (its peers can only crash or hang in an all-reduce)


@dataclass(frozen=True)
class ProcsChoice:
    procs: int
    requested: str          # what --procs said: "auto" or the number
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        return f"--procs {self.requested}: {self.procs} process{'es' if self.procs > 1 else ''} ({self.reason})"


@dataclass(frozen=True)
class ProcsRun:
    """What the `--procs` parent tells each child, on its command line: the choice, the command line
    the user typed (config.json keeps it) and the parent's pid (a child stops when the parent dies)."""

    choice: ProcsChoice
    command_line: tuple[str, ...]
    parent_pid: int

    def to_json(self) -> str:
        return json.dumps({"choice": self.choice.to_dict(), "command_line": list(self.command_line),
                           "parent_pid": self.parent_pid})

    @classmethod
    def from_json(cls, text: str) -> "ProcsRun":
        try:
            raw = json.loads(text)
            return cls(ProcsChoice(**raw["choice"]), tuple(str(a) for a in raw["command_line"]),
                       int(raw["parent_pid"]))
        except (ValueError, TypeError, KeyError, AttributeError):
            raise UsageError(f"{CHILD_OPTION} is set by --procs for the processes it starts; "
                             "drop it and use --procs N.") from None


# -- the machine ------------------------------------------------------------------------------

def physical_cores() -> int:
    """Physical cores this process may run on: the CPUs of its affinity mask, counted once per
    (package, core) pair of /sys topology (hyper-threads share a core), capped by a cgroup CPU quota."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cpus = list(range(os.cpu_count() or 1))
    cores: set[tuple[str, str]] = set()
    for c in cpus:
        base = Path(f"/sys/devices/system/cpu/cpu{c}/topology")
        try:
            cores.add(((base / "physical_package_id").read_text().strip(), (base / "core_id").read_text().strip()))
        except OSError:
            cores = {("cpu", str(c)) for c in cpus}   # no topology: count logical CPUs
            break
    n = max(len(cores), 1)
    try:  # cgroup v2: "max 100000" or "200000 100000"
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, -(-int(quota) // int(period))))
    except (OSError, ValueError):
        pass
    return n


# -- the choice and its checks ----------------------------------------------------------------

def parse_procs(text: str) -> str | int:
    t = str(text).strip().lower()
    if t == "auto":
        return "auto"
    try:
        n = int(t)
    except ValueError:
        raise UsageError(f"--procs {text!r}: give a number of processes (1, 2, ...) or auto.") from None
    if n < 1:
        raise UsageError(f"--procs {n}: at least 1 process.")
    return n


def refuse_under_torchrun(environ: dict[str, str] | None = None) -> None:
    env = os.environ if environ is None else environ
    found = [v for v in TORCHRUN_VARS if v in env]
    if found:
        raise UsageError(f"--procs starts its own processes, but {', '.join(found)} is already set (torchrun?); "
                         "drop --procs under torchrun, or unset those variables.")


def _resolutions(cfg, data: Path | None) -> list[int] | None:
    """The resolutions the run trains at (None when the dataset is needed and missing)."""
    res = cfg.resolution
    if res is None:
        if data is None or not Path(data).exists():
            return None
        res = max(dataset_sizes(Path(data)))
    return cfg.replace(resolution=res).resolutions()


def check_procs(cfg, procs: int, *, device: torch.device, data: Path | None) -> None:
    """Refuse a process count the run cannot use, before anything is written: more processes than
    GPUs on CUDA, a global minibatch that does not split evenly, per-process minibatches the
    networks cannot run (the checks torchrun runs get, with world size `procs`)."""
    if procs > 1 and device.type == "cuda":
        gpus = torch.cuda.device_count()
        if gpus < procs:
            raise UsageError(f"--procs {procs} on CUDA needs {procs} GPUs, this machine has {gpus}; "
                             f"use --procs {max(gpus, 1)} or --device cpu.")
    ress = _resolutions(cfg, data)
    if ress is None:
        return  # no dataset: `sgan train` says so next
    for res in ress:
        total = int(cfg.batch_dict.get(res, cfg.batch_base))
        if total % procs:
            fits = sorted({m for m in (procs, 2 * procs, 4 * procs, total - total % procs) if m >= procs})
            raise UsageError(f"--batch {total} at {res} px does not split evenly over --procs {procs}; use a "
                             f"multiple of {procs} such as {', '.join(map(str, fits[:3]))}, or another --procs.")
    if procs > 1:
        checked = cfg.replace(resolution=max(ress))
        check_batches(checked, checked.model_config(), procs)


def _work_per_process(cfg, res: int) -> Callable[[int], float]:
    """n -> batch/n * C^2 * r^2 at resolution `res` (the measure of sgan.train.threads.cpu_threads)."""
    c = top_channels(cfg.replace(resolution=res).model_config())
    total = int(cfg.batch_dict.get(res, cfg.batch_base))
    return lambda n: total / n * c * c * res * res


def _keeps_groups(cfg, procs: int, ress: list[int]) -> bool:
    """True when every process's minibatch holds whole minibatch-stddev groups of the 1-process
    size, so N processes compute exactly what one does."""
    group = int(getattr(cfg.replace(resolution=max(ress)).model_config(), "mbstd_group_size", 0) or 0)
    for res in ress:
        total = int(cfg.batch_dict.get(res, cfg.batch_base))
        if total % procs:
            return False
        local = total // procs
        g = min(group, total) if group > 1 else 1
        if local % g:
            return False
    return True


def choose_procs(requested: str, *, device: torch.device, config_for: Callable[[int], Any], data: Path | None,
                 cores: int | None = None, environ: dict[str, str] | None = None) -> ProcsChoice:
    """The number of processes for `--procs requested`, checked; `config_for(n)` is the run's
    TrainConfig for n processes (the paper preset's minibatch table depends on it)."""
    refuse_under_torchrun(environ)
    want = parse_procs(requested)
    if want != "auto":
        check_procs(config_for(want), want, device=device, data=data)
        return ProcsChoice(want, str(want), "as asked")
    if device.type == "cuda":
        return ProcsChoice(1, "auto", "CUDA: one process drives the GPU; several GPUs: torchrun --nproc-per-node N")
    cores = physical_cores() if cores is None else cores
    if cores <= 1:
        return ProcsChoice(1, "auto", "1 physical core")
    cfg1 = config_for(1)
    ress = _resolutions(cfg1, data)
    if ress is None:
        return ProcsChoice(1, "auto", "the dataset is missing")
    batches = sorted({int(cfg1.batch_dict.get(r, cfg1.batch_base)) for r in ress})
    work = _work_per_process(cfg1, max(ress))
    if work(1) < 2 * SMALL_CONV_WORK:
        return ProcsChoice(1, "auto", f"the convolutions are small (batch*C^2*r^2 {work(1):.2g} at {max(ress)} px "
                                      f"< 2 x {SMALL_CONV_WORK:.0e}): a half batch costs most of a whole one")
    for n in range(cores, 1, -1):
        cfg = config_for(n)
        if work(n) < SMALL_CONV_WORK or not _keeps_groups(cfg, n, ress):
            continue
        try:
            check_procs(cfg, n, device=device, data=data)
        except UsageError:
            continue
        mine = sorted({int(cfg.batch_dict.get(r, cfg.batch_base)) for r in ress})
        return ProcsChoice(n, "auto", f"{cores} physical cores, minibatch {'/'.join(map(str, mine))} splits "
                                      f"into {n} with {work(n):.2g} batch*C^2*r^2 each at {max(ress)} px; one "
                                      "thread each")
    return ProcsChoice(1, "auto", f"minibatch {'/'.join(map(str, batches))} does not split into 2-{cores} processes "
                                  f"of whole minibatch-stddev groups with {SMALL_CONV_WORK:.0e} batch*C^2*r^2 each")


def procs_record(world_size: int, choice: ProcsChoice | None = None) -> dict[str, Any]:
    """What config.json says about the processes of this run (`choice`: how --procs chose them)."""
    if choice is not None and choice.procs == world_size:
        return choice.to_dict()
    if world_size > 1:
        return {"procs": world_size, "requested": None, "reason": "started by torchrun"}
    return {"procs": 1, "requested": None, "reason": "one process (no --procs)"}


def procs_summary(world_size: int, choice: ProcsChoice | None = None) -> str:
    """The note on the first progress line: why this many processes (only when --procs chose)."""
    rec = procs_record(world_size, choice)
    if rec.get("requested") is None:
        return ""
    return f" (--procs {rec['requested']}: {rec['reason']})"


# -- starting and watching the children -------------------------------------------------------

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_argv(argv: list[str], *, threads: bool) -> list[str]:
    """The command line without `--procs X` / `--procs=X`, with `--threads 1` added when `threads`."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--procs":
            skip = True
            continue
        if a.startswith("--procs="):
            continue
        out.append(a)
    if threads:
        out += ["--threads", "1"]
    return out


def follow_parent(parent: int | None) -> None:
    """In a child of `--procs` (`parent`: its pid, else None): receive SIGTERM (a clean stop with a
    snapshot) when the parent dies (Linux)."""
    if parent is None:
        return
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:   # it died before prctl
        os.kill(os.getpid(), signal.SIGTERM)


def launch(argv: list[str], choice: ProcsChoice, *, cpu: bool, threads: int | None,
           prefix: list[str] | None = None, log: Callable[[str], None] | None = None) -> int:
    """Run `prefix + argv` as `choice.procs` ranks of one process group; returns the exit code."""
    n = choice.procs
    say = log or (lambda s: print(s, file=sys.stderr, flush=True))
    prefix = prefix or [sys.executable, "-m", "sgan"]
    told = ProcsRun(choice, ("sgan", *argv), os.getpid())   # the user's command line, for config.json
    args = child_argv(argv, threads=cpu and threads is None) + [CHILD_OPTION, told.to_json()]
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()), WORLD_SIZE=str(n),
               LOCAL_WORLD_SIZE=str(n))
    if cpu:
        env["OMP_NUM_THREADS"] = str(threads or 1)
    procs: list[subprocess.Popen] = []
    logs: list[Any] = []
    signals = {"count": 0}

    def forward(signum: int, frame: Any) -> None:
        signals["count"] += 1
        for p in procs:
            if p.poll() is None:
                try:
                    p.send_signal(signal.SIGKILL if signals["count"] >= 3 else signum)
                except ProcessLookupError:
                    pass
        if signals["count"] == 3:
            say("third signal: killed the training processes (the last complete snapshot stays).")

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for rank in range(n):
            child_env = dict(env, RANK=str(rank), LOCAL_RANK=str(rank), GROUP_RANK="0")
            err = None if rank == 0 else tempfile.TemporaryFile(mode="w+b")
            logs.append(err)
            # a process group of their own: a terminal's Ctrl-C reaches the parent only, which forwards it once
            procs.append(subprocess.Popen(prefix + args, env=child_env, stdin=subprocess.DEVNULL,
                                          stdout=None if rank == 0 else subprocess.DEVNULL, stderr=err,
                                          start_new_session=True))
        return _wait(procs, logs, say)
    finally:
        for p in procs:   # nothing outlives the parent (only reached early on an error of the parent itself)
            if p.poll() is None:
                p.kill()
                p.wait()
        for s, h in old.items():
            signal.signal(s, h)
        for f in logs:
            if f is not None:
                f.close()


def _code(rc: int) -> int:
    return 128 - rc if rc < 0 else rc


def _last_line(f: Any) -> str:
    if f is None:
        return ""
    f.seek(0)
    lines = [ln.strip() for ln in f.read().decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def _wait(procs: list[subprocess.Popen], logs: list[Any], say: Callable[[str], None]) -> int:
    n = len(procs)
    first: tuple[int, int] | None = None    # (rank, exit code) of the first child that failed
    failed_at, grace = 0.0, FAIL_GRACE_S
    killed: list[int] = []
    while True:
        codes = [p.poll() for p in procs]
        for rank, rc in enumerate(codes):
            if rc not in (None, 0) and first is None:
                first, failed_at = (rank, _code(rc)), time.monotonic()
                grace = KILLED_GRACE_S if rc < 0 else FAIL_GRACE_S
        running = [r for r, rc in enumerate(codes) if rc is None]
        if not running:
            break
        if first is not None and time.monotonic() - failed_at > grace:
            for r in running:   # a rank whose peer died may wait in an all-reduce forever
                procs[r].kill()
                killed.append(r)
            for r in running:
                procs[r].wait()
            break
        time.sleep(0.05)
    if first is None:
        return 0
    rank, code = first
    alike = all(_code(p.returncode) == code for p in procs)
    detail = _last_line(logs[rank]) if rank != 0 else ""
    # all alike after a clean stop or an sgan error: rank 0 has printed the reason; else say which one failed
    if killed or not alike or not (rank == 0 or code in (130, 143) or detail.startswith("Error:")):
        stopped = f"; stopped process{'es' if len(killed) > 1 else ''} {', '.join(map(str, killed))}" if killed else ""
        say(f"Error: training process {rank} of {n} exited with code {code}"
            + (f" ({detail})" if detail else "") + stopped + ".")
    return code
