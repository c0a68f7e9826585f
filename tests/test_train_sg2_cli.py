"""StyleGAN2 training from the command line: Ctrl-C and resume in a real subprocess, two gloo
ranks against one process, and resuming a run of the other architecture."""

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

from sgan.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--arch", "stylegan2", "--preset", "tiny", "--threads", "1", "--device", "cpu",
        "--compile", "off"]   # a long --kimg would make compile auto compile: these tests are about the loop


def _env() -> dict[str, str]:
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=240)


def test_sigint_writes_a_snapshot_and_resume_continues(shapes16, tmp_path):
    out = tmp_path / "run"
    args = [str(shapes16), "--out", str(out), *TINY, "--kimg", "1000", "--snap", "1000", "--tick", "0.016"]
    proc = subprocess.Popen([sys.executable, "-m", "sgan", "train", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT)
    stats = out / "stats.jsonl"
    deadline = time.time() + 90
    while time.time() < deadline and not (stats.is_file() and stats.read_text().count("\n") >= 1):
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--resume auto" in err
    ckpt = load_checkpoint(out)
    stopped_at = ckpt.extra["counters"]["cur_nimg"]
    assert stopped_at > 0 and ckpt.config.arch == "stylegan2"
    more = f"{(stopped_at + 24) / 1000:.3f}"
    done = _run([sys.executable, "-m", "sgan", "train", str(shapes16), "--out", str(out), "--kimg", more,
                 "--resume", "auto", "--threads", "1"])    # no --arch: the run keeps its own
    assert done.returncode == 0, done.stderr
    assert f"resuming from {out}" in done.stderr
    assert load_checkpoint(out).extra["counters"]["cur_nimg"] == stopped_at + 24


def test_resume_of_the_other_architecture_is_refused(shapes16, tmp_path):
    from typer.testing import CliRunner

    from sgan.cli import app

    runner = CliRunner()
    runs = {}
    for arch in ("stylegan1", "stylegan2"):
        runs[arch] = tmp_path / arch
        result = runner.invoke(app, ["train", str(shapes16), "--out", str(runs[arch]), "--arch", arch,
                                     "--preset", "tiny", "--kimg", "0.008", "--threads", "1"])
        assert result.exit_code == 0, result.output
    for arch, other in (("stylegan1", "stylegan2"), ("stylegan2", "stylegan1")):
        before = sorted(p.name for p in runs[arch].iterdir())
        result = runner.invoke(app, ["train", str(shapes16), "--out", str(runs[arch]), "--arch", other,
                                     "--preset", "tiny", "--resume", "auto"])
        assert result.exit_code == 2, result.output
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and f"is a {arch} run and cannot continue as --arch {other}" in lines[0]
        assert sorted(p.name for p in runs[arch].iterdir()) == before


def test_two_gloo_ranks_match_one_process(shapes16, tmp_path):
    # 3 steps of global batch 8 (4 per rank): path length at steps 0 and 2 (4 samples, 2 per rank),
    # R1 at step 0, style mixing, mirroring. Every rank checks at the snapshot that all ranks agree.
    common = [str(shapes16), *TINY, "--kimg", "0.024", "--batch", "8", "--snap", "1", "--tick", "0.016", "--mirror",
              "--precision", "fp32"]   # the ranks-vs-one tolerance is fp32's (auto picks bf16 on a bf16 CPU)
    two = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                "-m", "sgan", "train", *common, "--out", str(tmp_path / "two")])
    assert two.returncode == 0, two.stderr[-3000:]
    one = _run([sys.executable, "-m", "sgan", "train", *common, "--out", str(tmp_path / "one")])
    assert one.returncode == 0, one.stderr[-3000:]
    a, b = load_checkpoint(tmp_path / "one"), load_checkpoint(tmp_path / "two")
    assert a.extra["counters"]["step"] == b.extra["counters"]["step"] == 3 and b.extra["world_size"] == 2
    assert a.extra["counters"]["pl_mean"] == pytest.approx(b.extra["counters"]["pl_mean"], rel=1e-4)
    assert a.extra["counters"]["pl_mean"] > 0
    # Gradients summed in another order differ by rounding, and Adam turns rounding of a ~0 gradient
    # into +-lr steps: every tensor agrees to 1e-4 except a few elements, within three Adam steps.
    diffs = []
    for name in ("G", "G_ema", "D"):
        sa, sb = getattr(a, name), getattr(b, name)
        for key in sa:
            d = (sa[key].float() - sb[key].float()).abs()
            assert d.max() < 3 * 0.002, (name, key, d.max())
            assert int((d > 1e-4).sum()) <= max(2, d.numel() // 200), (name, key, int((d > 1e-4).sum()))
            diffs.append(d.flatten())
    assert torch.cat(diffs).median() < 1e-6
    assert torch.allclose(a.G["mapping.w_avg"], b.G["mapping.w_avg"], atol=1e-5)
    for run in ("one", "two"):
        assert (tmp_path / run / "stats.jsonl").read_text().count("\n") == 2
        stats = [json.loads(x) for x in (tmp_path / run / "stats.jsonl").read_text().splitlines()]
        assert "G_pl" in stats[0] and "D_r1" in stats[0]


def test_metrics_during_training(shapes16, tmp_path):
    """--metrics computes each metric on every snapshot of a StyleGAN2 run (offline detector)."""
    from typer.testing import CliRunner

    from sgan.cli import app

    runner = CliRunner()
    det = tmp_path / "det.pt"
    res = runner.invoke(app, ["detector", "train", str(shapes16), "--out", str(det), "--epochs", "1", "--batch", "32",
                              "--device", "cpu"])
    assert res.exit_code == 0, res.output
    out = tmp_path / "run"
    res = runner.invoke(app, ["train", str(shapes16), "--out", str(out), *TINY, "--kimg", "0.016",
                              "--metrics", "fid32", "--detector", str(det)])
    assert res.exit_code == 0, res.output
    records = [json.loads(line) for line in (out / "metric-fid32.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in records] == [0.0, 0.016]        # the start snapshot and the last one
    assert all(r["metric"] == "fid" and r["value"] > 0 and r["resolution"] == 16 for r in records)
