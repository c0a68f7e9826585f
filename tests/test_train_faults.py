"""Faults: Ctrl-C / SIGTERM in a real subprocess, injected NaNs, a failing writer, bad CLI input."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from train_helpers import tiny_config

from sgan.checkpoint import load_checkpoint
from sgan.train import Hooks, TrainingDiverged, train

ROOT = Path(__file__).resolve().parents[1]


tiny = tiny_config


def _finite(ckpt) -> bool:
    return all(torch.isfinite(t).all() for sd in (ckpt.G, ckpt.G_ema, ckpt.D) for t in sd.values())


def _sgan(*args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "sgan", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT, **kw)


@pytest.mark.parametrize("sig,code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_writes_a_resumable_snapshot(shapes16, tmp_path, sig, code):
    out = tmp_path / "run"
    args = [str(shapes16), "--out", str(out), "--preset", "tiny", "--kimg", "1000", "--snap", "1000",
            "--tick", "0.016", "--threads", "1"]
    proc = _sgan("train", *args)
    stats = out / "stats.jsonl"
    deadline = time.time() + 90
    while time.time() < deadline and not (stats.is_file() and stats.read_text().count("\n") >= 1):
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "--resume auto" in err
    pointer = json.loads((out / "latest.json").read_text())
    ckpt = load_checkpoint(out)
    stopped_at = ckpt.extra["counters"]["cur_nimg"]
    assert stopped_at > 0 and pointer["kimg"] == pytest.approx(stopped_at / 1000) and _finite(ckpt)
    if sig == signal.SIGINT:  # continue where it stopped, for a few more steps
        more = f"{(stopped_at + 24) / 1000:.3f}"
        proc = _sgan("train", *args[:-6], "--kimg", more, "--resume", "auto", "--threads", "1")
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert f"resuming from {out}" in err
        assert load_checkpoint(out).extra["counters"]["cur_nimg"] == stopped_at + 24


def test_injected_nan_rolls_back_and_recovers(shapes16, tmp_path):
    fired, lines = [], []

    def poison(tr):
        if tr.c.step == 5 and not fired:
            fired.append(True)
            with torch.no_grad():
                tr.D.epilogue.out.weight.fill_(float("nan"))

    res = train(tiny(total_kimg=0.12, snap_kimg=0.032, max_bad_steps=2), shapes16, tmp_path / "r", device="cpu",
                hooks=Hooks(on_step=[poison], log=lines.append))
    assert fired and any("rolling back" in line for line in lines)
    ckpt = load_checkpoint(res.snapshot)
    assert _finite(ckpt) and ckpt.extra["counters"]["rollbacks"] == 1 and ckpt.extra["counters"]["skipped_steps"] >= 2
    stats = [json.loads(x) for x in (tmp_path / "r" / "stats.jsonl").read_text().splitlines()]
    assert any(s["skipped_steps"] > 0 for s in stats)


def test_persistent_nan_stops_with_last_good_snapshot(shapes16, tmp_path):
    def poison(tr):
        if tr.c.step >= 3:
            with torch.no_grad():
                tr.G.mapping.layers[0].weight.fill_(float("inf"))

    with pytest.raises(TrainingDiverged, match="last good snapshot"):
        train(tiny(total_kimg=1.0, snap_kimg=0.016, max_bad_steps=2, max_rollbacks=2), shapes16, tmp_path / "r",
              device="cpu", hooks=Hooks(on_step=[poison]))
    assert _finite(load_checkpoint(tmp_path / "r"))  # no non-finite snapshot was ever written


def test_failing_writer_gives_a_clear_error(shapes16, tmp_path, monkeypatch):
    from sgan.train import snapshot
    from sgan.train.run import OutputError

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(snapshot, "save_checkpoint", full_disk)
    with pytest.raises(OutputError, match="No space left on device; free some space"):
        train(tiny(total_kimg=0.016), shapes16, tmp_path / "r", device="cpu")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        train(tiny(total_kimg=0.016), shapes16, blocker / "run", device="cpu")


def test_cli_errors_are_one_line(shapes16, tmp_path):
    from typer.testing import CliRunner

    from sgan.cli import app

    runner = CliRunner()
    cases = [
        ([str(tmp_path / "none.lmdb"), "--out", str(tmp_path / "o")], 2, "no such dataset"),
        ([str(shapes16), "--out", str(tmp_path / "o"), "--preset", "huge"], 2, "not a preset"),
        ([str(shapes16), "--out", str(tmp_path / "o"), "--preset", "tiny", "--resolution", "24"], 2, "power of two"),
        ([str(shapes16), "--out", str(tmp_path / "o"), "--preset", "tiny", "--resolution", "64"], 1, "no 32x32, 64x64 images"),
        ([str(shapes16), "--out", str(tmp_path / "o"), "--preset", "tiny", "--resume", str(tmp_path / "x.pt")], 1,
         "no such file"),
    ]
    for args, code, text in cases:
        result = runner.invoke(app, ["train", *args])
        assert result.exit_code == code, (args, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("Error:") and text in lines[0], result.output
    dry = runner.invoke(app, ["train", str(shapes16), "--out", str(tmp_path / "o"), "--preset", "paper", "--dry-run"])
    assert dry.exit_code == 0
    shown = json.loads(dry.stdout)
    assert shown["per_resolution"]["8"] == {"batch": 128, "lr": 0.001, "tick_kimg": 140}
    assert shown["schedule"][0] == "stabilize 8px from 0 kimg for 600 kimg"
