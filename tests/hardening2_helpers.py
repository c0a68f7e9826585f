"""Running the real CLI in a subprocess under an address-space limit (resource.setrlimit(RLIMIT_AS)),
for the checks that a small crafted file cannot make sgan allocate more than it holds."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 2 << 30   # bytes of address space: sgan's imports take ~0.7 GB; every attack here wanted far more


def run_limited(*args: object, limit: int = LIMIT, cwd: Path | None = None) -> subprocess.CompletedProcess:
    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2",
           "COLUMNS": "200", "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "sgan", *map(str, args)], capture_output=True, text=True,
                          preexec_fn=cap, env=env, cwd=cwd, timeout=300)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    """The run failed with exactly one `Error:` line and no traceback; that line."""
    text = result.stdout + result.stderr
    assert result.returncode != 0, text
    assert "Traceback" not in text, text
    errors = [ln for ln in text.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1, text
    return errors[0]
