"""Under torchrun, a NaN injected on one rank only: every rank skips the same steps, rolls back
to the same snapshot together, and, when the fault persists, every rank stops with the same
error instead of one rank hanging in an all-reduce."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sgan.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = '''
import json, os, sys
import torch
from sgan.train import Hooks, TrainingDiverged, preset_config, train

mode, data, out = sys.argv[1:4]
rank = int(os.environ["RANK"])
cfg = preset_config("tiny")
cfg.model = {"fmap_max": 8, "fmap_min": 4, "z_dim": 16, "w_dim": 16, "mapping_fmaps": 16}
cfg.batch_base, cfg.total_kimg, cfg.snap_kimg, cfg.tick_kimg_base = 8, 0.12, 0.032, 0.032
cfg.max_bad_steps, cfg.max_rollbacks = 2, 2
fired = []

def poison(tr):
    if rank != 1:
        return
    if (mode == "once" and tr.c.step == 5 and not fired) or (mode == "always" and tr.c.step >= 3):
        fired.append(True)
        with torch.no_grad():
            tr.D.epilogue.out.weight.fill_(float("nan"))

lines = []
report = os.path.join(os.path.dirname(out), f"result-rank{rank}.json")   # one file per rank: stdout lines interleave

def say(result):
    with open(report, "w") as f:
        json.dump(result, f)

try:
    res = train(cfg, data, out, device="cpu", threads=1, hooks=Hooks(on_step=[poison], log=lines.append))
    say({"rank": rank, "result": "done", "fired": len(fired), "lines": lines})
except TrainingDiverged as err:
    say({"rank": rank, "result": "diverged", "message": str(err)})
    sys.exit(3)
'''


def _torchrun(tmp_path, mode, data, out):
    script = tmp_path / "inject.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                             str(script), mode, str(data), str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{mode}: the ranks did not stop together (a rank hung)")
    results = {r["rank"]: r for r in (json.loads(p.read_text()) for p in sorted(Path(out).parent.glob("result-rank*.json")))}
    return proc.returncode, results, stderr


def test_nan_on_one_rank_rolls_back_on_every_rank(shapes16, tmp_path):
    code, results, err = _torchrun(tmp_path, "once", shapes16, tmp_path / "run")
    assert code == 0, err[-3000:]
    assert results[0]["result"] == results[1]["result"] == "done" and results[1]["fired"] == 1
    assert any("rolling back" in line for line in results[0]["lines"])
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt.extra["counters"]["rollbacks"] == 1 and ckpt.extra["world_size"] == 2


def test_a_persistent_nan_stops_every_rank_together(shapes16, tmp_path):
    code, results, err = _torchrun(tmp_path, "always", shapes16, tmp_path / "run")
    assert code != 0
    assert set(results) == {0, 1}, err[-3000:]
    assert results[0]["result"] == results[1]["result"] == "diverged"
    assert results[0]["message"] == results[1]["message"] and "last good snapshot" in results[0]["message"]
