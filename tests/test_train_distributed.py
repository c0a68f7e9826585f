"""Two gloo processes on CPU under torchrun agree with each other and with one process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ddp_tolerance import assert_same_training

from sgan.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=240)


def test_two_gloo_ranks_match_one_process(shapes16, tmp_path):
    # 3 steps of global batch 8: one at 8 px, two inside the 8 -> 16 px fade-in, R1 every step, mixing,
    # mirroring. Every rank checks at the snapshot that all ranks hold the same networks.
    common = [str(shapes16), "--preset", "tiny", "--kimg", "0.024", "--batch", "8", "--phase-kimg", "0.008",
              "--fade-kimg", "0.016", "--snap", "1", "--tick", "0.016", "--threads", "1", "--device", "cpu",
              "--mirror"]
    two = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                "-m", "sgan", "train", *common, "--out", str(tmp_path / "two")])
    assert two.returncode == 0, two.stderr[-3000:]
    one = _run([sys.executable, "-m", "sgan", "train", *common, "--out", str(tmp_path / "one")])
    assert one.returncode == 0, one.stderr[-3000:]
    a, b = load_checkpoint(tmp_path / "one"), load_checkpoint(tmp_path / "two")
    assert a.extra["counters"]["step"] == b.extra["counters"]["step"] == 3
    assert 0 < a.extra["counters"]["prev_lod"] % 1 < 1  # inside the fade-in
    assert b.extra["world_size"] == 2
    assert_same_training(a, b)  # within rounding turned into +-lr Adam steps (tests/ddp_tolerance.py)
    # only rank 0 writes: one stats line per tick, one log line per tick
    for run in ("one", "two"):
        assert (tmp_path / run / "stats.jsonl").read_text().count("\n") == 2
    assert (tmp_path / "two" / "log.txt").read_text().count("tick ") == 2
