"""Running the real CLI in a subprocess under an address-space limit (resource.setrlimit(RLIMIT_AS)),
for the checks that a small crafted file cannot make sgan allocate more than it holds; and the
in-process CLI with its one-`Error:`-line check."""

from __future__ import annotations

import functools
import os
import resource
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from sgan.cli import app

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 2 << 30   # bytes of address space on a CPU build of torch (sgan's imports take ~0.65 GB there)
_ENV = {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2", "COLUMNS": "200", "NO_COLOR": "1"}
_CPU_BASELINE = 650 << 20


@functools.lru_cache(maxsize=1)
def _baseline() -> int:
    """The address space of a process that has imported sgan's CLI (more with a CUDA build of torch)."""
    code = ("import sgan.cli.app, sgan.checkpoint, sgan.formats\n"
            "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmPeak:')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={**os.environ, **_ENV},
                         timeout=300)
    return int(out.stdout.strip()) << 10


def run_limited(*args: object, limit: int = LIMIT, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m sgan ARGS` with RLIMIT_AS = `limit` as measured on a CPU build of torch: the limit moves
    with what importing sgan takes on this machine (a CUDA build maps far more), the margin stays."""
    cap_bytes = limit + max(0, _baseline() - _CPU_BASELINE)

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))

    return subprocess.run([sys.executable, "-m", "sgan", *map(str, args)], capture_output=True, text=True,
                          preexec_fn=cap, env={**os.environ, **_ENV}, cwd=cwd, timeout=300)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The run failed with exactly one `Error:` line and no traceback; that line."""
    text = result.stdout + result.stderr
    assert result.returncode != 0, text
    assert "Traceback" not in text, text
    errors = [ln for ln in text.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1, text
    return errors[0]


def invoke(*args):
    """`sgan ARGS` in this process (typer's CliRunner)."""
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line(result, *needles) -> str:
    """The one `Error:` line of a failed command (never a traceback), holding every needle."""
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    errors = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1, result.output
    for n in needles:
        assert n in errors[0], errors[0]
    return errors[0]
