"""Training behaviours that had no test: exact resume at phase boundaries, the --minutes schedule,
--metrics during training, bf16 autocast and the wgan-gp and hinge losses inside the loop, and a
kill -9 in the middle of a checkpoint write."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from train_helpers import assert_same, tiny_config

from sgan.checkpoint import load_checkpoint
from sgan.train import Hooks, train
from sgan.train.state import unpack

ROOT = Path(__file__).resolve().parents[1]


tiny = tiny_config


_same = assert_same


@pytest.mark.parametrize("n, lod_at_stop", [(10, 1.0), (20, 0.1)])
def test_resume_exactly_at_a_phase_boundary_is_bit_identical(shapes16, tmp_path, n, lod_at_stop):
    """8 px for 10 steps of 8, fade to 16 px over 10 steps, then 16 px: stop exactly when the
    fade-in starts (step 10) or ends (step 20), resume, and match an uninterrupted run."""
    phases = {"lod_training_kimg": 0.08, "lod_transition_kimg": 0.08, "minibatch_repeats": 1, "batch_base": 8}
    total = (n + 6) * 8 / 1000
    straight = train(tiny(total_kimg=total, **phases), shapes16, tmp_path / "a", device="cpu")
    half = train(tiny(total_kimg=n * 8 / 1000, **phases), shapes16, tmp_path / "b", device="cpu")
    st_half = unpack(load_checkpoint(half.snapshot).extra, half.snapshot)
    assert st_half.counters.step == n and st_half.counters.cur_nimg == n * 8
    assert st_half.counters.prev_lod == pytest.approx(lod_at_stop)           # the last step ran just before the boundary
    resumed = train(tiny(**phases), shapes16, tmp_path / "b", device="cpu", resume="auto",
                    resume_overrides={"total_kimg": total})
    a, b = load_checkpoint(straight.snapshot), load_checkpoint(resumed.snapshot)
    for name in ("G", "G_ema", "D"):
        _same(getattr(a, name), getattr(b, name))
    sa, sb = unpack(a.extra, a.path), unpack(b.extra, b.path)
    _same(sa.opt_G, sb.opt_G)
    _same(sa.opt_D, sb.opt_D)
    assert sa.counters.step == sb.counters.step == n + 6 and sa.counters.prev_lod == sb.counters.prev_lod


def test_minutes_schedule_follows_training_time(shapes16, tmp_path, monkeypatch):
    """--minutes: phases and the end by seconds of training (a fake clock makes it exact)."""
    import sgan.train.driver as driver

    clock = {"t": 1000.0}

    def fake_perf_counter():
        clock["t"] += 0.03
        return clock["t"]

    monkeypatch.setattr(driver.time, "perf_counter", fake_perf_counter)
    res = train(tiny(minutes=0.01, minibatch_repeats=1, tick_kimg_base=0.024), shapes16, tmp_path / "r", device="cpu")
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["schedule_unit"] == "seconds"
    lengths = [(p["resolution"], p["kind"], p["length"]) for p in config["schedule"]]
    assert lengths[0][:2] == (8, "stabilize") and lengths[1][:2] == (16, "fade") and lengths[2][2] is None
    assert lengths[0][2] == pytest.approx(0.18) and lengths[1][2] == pytest.approx(0.18)   # 60% of 0.6 s, split
    st = unpack(load_checkpoint(res.snapshot).extra, res.snapshot)
    assert 0.6 <= st.counters.train_seconds < 0.6 + 0.1
    stats = [json.loads(x) for x in (tmp_path / "r" / "stats.jsonl").read_text().splitlines()]
    res_seen = [s["resolution"] for s in stats]
    assert res_seen[0] == 8 and res_seen[-1] == 16 and any(0 < s["alpha"] < 1 for s in stats)


@pytest.mark.parametrize("loss, precision, term", [("wgan-gp", "fp32", "D_gp"), ("hinge", "auto", "D_real"),
                                                   ("logistic", "bf16", "D_r1")])
def test_losses_and_bf16_inside_the_loop(shapes16, tmp_path, loss, precision, term):
    lines: list[str] = []
    res = train(tiny(total_kimg=0.032, loss=loss, precision=precision, tick_kimg_base=0.016), shapes16, tmp_path / "r",
                device="cpu", hooks=Hooks(log=lines.append))
    ckpt = load_checkpoint(res.snapshot)
    assert all(torch.isfinite(t).all() for sd in (ckpt.G, ckpt.G_ema, ckpt.D) for t in sd.values())
    stats = [json.loads(x) for x in (tmp_path / "r" / "stats.jsonl").read_text().splitlines()]
    assert all(term in s and s[term] == s[term] for s in stats)                # the term was computed, finite
    assert stats[-1]["skipped_steps"] == 0
    written = json.loads((tmp_path / "r" / "config.json").read_text())
    cfg, chosen = written["train"], written["precision"]
    assert cfg["loss"] == loss and chosen["requested"] == precision and cfg["precision"] == chosen["precision"]
    assert cfg["precision"] in ("fp32", "bf16") and (precision == "auto" or cfg["precision"] == precision)
    assert any(f"precision {cfg['precision']}" in line for line in lines if line.startswith("training "))


def test_metrics_during_training(shapes16, tmp_path):
    from sgan.cli import app

    runner = CliRunner()
    det = tmp_path / "det.pt"
    r = runner.invoke(app, ["detector", "train", str(shapes16), "--out", str(det), "--epochs", "1", "--batch", "32",
                            "--device", "cpu"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "run"
    r = runner.invoke(app, ["train", str(shapes16), "--out", str(out), "--preset", "tiny", "--kimg", "0.032",
                            "--snap", "0.016", "--metrics", "fid40,pr40", "--detector", str(det), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    for name, key in (("fid40", "fid"), ("pr40", "precision")):
        records = [json.loads(x) for x in (out / f"metric-{name}.jsonl").read_text().splitlines()]
        assert [rec["kimg"] for rec in records] == pytest.approx([0.0, 0.016, 0.032])   # one per snapshot
        assert all(rec[key] == rec[key] and rec["num_gen"] == 40 for rec in records)
        assert records[-1]["snapshot"] == json.loads((out / "latest.json").read_text())["snapshot"]


KILL_SCRIPT = '''
import sys, torch
from sgan.checkpoint import save_checkpoint
from sgan.nn import Discriminator, Generator, ModelConfig
path = sys.argv[1]
cfg = ModelConfig.preset("tiny", 8)
G, D = Generator(cfg), Discriminator(cfg)
save_checkpoint(path, config=cfg, G=G, G_ema=G, D=D, extra={"version": 0})
print("ready", flush=True)
i = 0
while True:                     # slow writes: 64 MB of training state each
    i += 1
    save_checkpoint(path, config=cfg, G=G, G_ema=G, D=D, extra={"version": i, "opt": torch.randn(16_000_000)})
'''


def test_kill_9_during_a_checkpoint_write_keeps_the_previous_snapshot(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(KILL_SCRIPT)
    path = tmp_path / "snap.pt"
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "ready"
        deadline = time.time() + 60
        while time.time() < deadline and not list(tmp_path.glob(".snap.pt.*.tmp")):
            time.sleep(0.001)
        temps = list(tmp_path.glob(".snap.pt.*.tmp"))
        assert temps, "no write in progress was seen"
        os.kill(proc.pid, signal.SIGKILL)                    # in the middle of writing the temp file
    finally:
        proc.kill()
        proc.wait()
    ckpt = load_checkpoint(path)                              # the last complete snapshot, checksums verified
    assert isinstance(ckpt.extra["version"], int) and ckpt.config.resolution == 8
