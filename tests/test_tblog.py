"""TensorBoard events of a training run (sgan.train.tblog), read back with tensorboard's own reader:
the stats.jsonl values per tick, ADA's p and r_t, metric records, the sample grids; a resume appends
a second file; without tensorboard one line says so and training goes on."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from PIL import Image

from train_helpers import tiny_config

from sgan.fileio import append_jsonl
from sgan.train import Hooks, train
from sgan.train import tblog
from sgan.train.tblog import EventLog, numeric_items, tag_for

pytest.importorskip("tensorboard")
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402


def tiny(**changes):
    # ADA with a low target so p moves (aug_p and aug_rt in every tick record)
    return tiny_config("stylegan1", **{"minibatch_repeats": 4, "tick_kimg_base": 0.016, "snap_kimg": 0.032,
                                       "aug": "ada", "aug_kimg": 0.5, "aug_interval": 2, "aug_target": 0.01, **changes})


def read_events(folder):
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def fake_metric_hook(out):
    """What `sgan train --metrics` does at each snapshot (sgan.cli.train._metrics_hook), without a detector:
    a record appended to metric-NAME.jsonl."""
    def hook(snapshot, kimg):
        append_jsonl(out / "metric-fid40.jsonl", {"kimg": kimg, "snapshot": snapshot.name, "fid": 100.0 - kimg,
                                                  "num_gen": 40, "name": "fid40"})
    return hook


def assert_scalars_match(acc, stats):
    tags = set(acc.Tags()["scalars"])
    for rec in stats:
        step = round(rec["kimg"] * 1000)
        for key, value in numeric_items(rec):
            assert tag_for(key) in tags, key
            events = {e.step: e.value for e in acc.Scalars(tag_for(key))}
            assert events[step] == pytest.approx(value, rel=1e-6, abs=1e-6), (key, step)


def test_events_read_back_equal_stats_grids_and_metrics(shapes16, tmp_path):
    out = tmp_path / "run"
    train(tiny(total_kimg=0.064), shapes16, out, device="cpu", hooks=Hooks(on_snapshot=[fake_metric_hook(out)]))
    assert len(list(out.glob("events.out.tfevents.*"))) == 1
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    acc = read_events(out)
    assert_scalars_match(acc, stats)
    tags = set(acc.Tags()["scalars"])
    assert {"Loss/G_loss", "Augment/aug_p", "Augment/aug_rt", "Progress/kimg", "Timing/sec_per_kimg"} <= tags
    assert [e.step for e in acc.Scalars("Progress/tick")] == [round(r["kimg"] * 1000) for r in stats]
    # ADA's p and r_t as the loop computed them
    assert [e.value for e in acc.Scalars("Augment/aug_p")] == pytest.approx([r["aug_p"] for r in stats], abs=1e-6)

    # one grid image per snapshot, at the snapshot's step (cur_nimg), the size of the PNG; the reals once
    images = acc.Images("Images/fakes")
    assert [e.step for e in images] == [0, 32, 64]   # kimg 0, 0.032, 0.064 (all in fakes000000.png)
    w, h = Image.open(out / "fakes000000.png").size
    assert (images[-1].width, images[-1].height) == (w, h)
    assert len(acc.Images("Images/reals")) == 1

    # each metric record, the last one (after the last tick) too: close() reads it
    metric = [json.loads(line) for line in (out / "metric-fid40.jsonl").read_text().splitlines()]
    fid = acc.Scalars("Metrics/fid40/fid")
    assert [e.step for e in fid] == [round(r["kimg"] * 1000) for r in metric] == [0, 32, 64]
    assert [e.value for e in fid] == pytest.approx([r["fid"] for r in metric])

    # a resume appends a second events file; TensorBoard reads both as one run
    train(tiny(), shapes16, out, device="cpu", resume="auto", resume_overrides={"total_kimg": 0.096},
          hooks=Hooks(on_snapshot=[fake_metric_hook(out)]))
    assert len(list(out.glob("events.out.tfevents.*"))) == 2
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert stats[-1]["kimg"] == pytest.approx(0.096)
    acc = read_events(out)
    assert_scalars_match(acc, stats)
    assert [e.step for e in acc.Scalars("Progress/tick")] == [round(r["kimg"] * 1000) for r in stats]
    assert [e.step for e in acc.Scalars("Metrics/fid40/fid")] == [0, 32, 64, 96]   # none twice
    assert [e.step for e in acc.Images("Images/fakes")] == [0, 32, 64, 96]


def test_without_tensorboard_one_line_and_training_goes_on(shapes16, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)   # import fails as if not installed
    monkeypatch.setattr(tblog, "_note_said", False)
    out = tmp_path / "run"
    train(tiny(total_kimg=0.032), shapes16, out, device="cpu")
    train(tiny(), shapes16, out, device="cpu", resume="auto", resume_overrides={"total_kimg": 0.048})   # the same process: no second note
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "tensorboard" in line.lower()]
    assert lines == [tblog.MISSING_NOTE]
    assert "sgan[tensorboard]" in lines[0]
    assert not list(out.glob("events.out.tfevents.*"))
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert stats[-1]["kimg"] == pytest.approx(0.048)


class BrokenWriter:
    """A SummaryWriter whose disk is gone."""

    def __init__(self):
        self.closed = 0

    def add_scalar(self, *a, **k):
        raise OSError(28, "No space left on device")

    add_image = add_scalar

    def flush(self):
        pass

    def close(self):
        self.closed += 1


def test_a_failed_write_is_one_warning_and_turns_events_off(tmp_path, capsys):
    writer = BrokenWriter()
    log = EventLog(writer, tmp_path)
    for tick in range(3):
        log.scalars({"kimg": tick * 0.016, "G_loss": 1.0})
    log.image("fakes", np.zeros((8, 8, 3), np.uint8), step=0)
    log.close()
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("warning: cannot write TensorBoard events") and "training goes on" in err[0]
    assert writer.closed == 1 and log.writer is None


def test_metric_records_and_tags_on_the_class(tmp_path):
    log = EventLog.open(tmp_path)
    append_jsonl(tmp_path / "metric-kid40.jsonl", {"kimg": 0.0, "kid": 0.5, "snapshot": "s", "name": "kid40"})
    log.scalars({"kimg": 0.016, "tick": 1, "phase": "fade", "ok": True, "D_real": 0.25, "aug_p": 0.1})
    with open(tmp_path / "metric-kid40.jsonl", "a") as f:
        f.write('{"kimg": 0.016, "kid": 0.')   # a record being written: read at the next call, whole
    log.metrics()
    with open(tmp_path / "metric-kid40.jsonl", "a") as f:
        f.write('25}\n{"kimg": "not a number", "kid": 1}\n[1, 2]\n')   # odd lines are skipped
    log.image("grid", np.full((6, 10, 1), 200, np.uint8), step=16)
    log.close()
    acc = read_events(tmp_path)
    tags = set(acc.Tags()["scalars"])
    assert tags == {"Progress/kimg", "Progress/tick", "Loss/D_real", "Augment/aug_p", "Metrics/kid40/kid"}
    assert [(e.step, e.value) for e in acc.Scalars("Metrics/kid40/kid")] == [(0, 0.5), (16, 0.25)]
    img = acc.Images("Images/grid")[0]
    assert (img.width, img.height, img.step) == (10, 6, 16)


def test_stylegan2_events_equal_stats(shapes16, tmp_path):
    """The StyleGAN2 loop's records (path length, lazy R1) the same way."""
    out = tmp_path / "run2"
    cfg = tiny_config("stylegan2", total_kimg=0.032, tick_kimg_base=0.008, snap_kimg=0.016, resolution=16)
    train(cfg, shapes16, out, device="cpu")
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    acc = read_events(out)
    assert_scalars_match(acc, stats)
    assert {"Loss/pl_mean", "Loss/G_loss", "Progress/kimg"} <= set(acc.Tags()["scalars"])
    assert [e.step for e in acc.Images("Images/fakes")] == [0, 16, 32]


@pytest.mark.filterwarnings("ignore:.*covariance is rank-deficient")   # FID of 40 samples, on purpose
def test_cli_metrics_during_training_are_events(shapes16, tmp_path):
    """`sgan train --metrics fid40` end to end: each snapshot's FID is Metrics/fid40/fid at its step."""
    from typer.testing import CliRunner

    from sgan.cli import app

    runner = CliRunner()
    det = tmp_path / "det.pt"
    r = runner.invoke(app, ["detector", "train", str(shapes16), "--out", str(det), "--epochs", "1", "--batch", "32",
                            "--device", "cpu"])
    assert r.exit_code == 0, r.output
    out = tmp_path / "run"
    r = runner.invoke(app, ["train", str(shapes16), "--out", str(out), "--preset", "tiny", "--kimg", "0.032",
                            "--snap", "0.016", "--metrics", "fid40", "--detector", str(det), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    records = [json.loads(x) for x in (out / "metric-fid40.jsonl").read_text().splitlines()]
    fid = read_events(out).Scalars("Metrics/fid40/fid")
    assert [e.step for e in fid] == [round(rec["kimg"] * 1000) for rec in records] == [0, 16, 32]
    assert [e.value for e in fid] == pytest.approx([rec["fid"] for rec in records], rel=1e-6)


def test_two_ranks_only_rank0_writes_events(shapes16, tmp_path):
    """Under torchrun (two gloo processes) one events file, rank 0's, equal to stats.jsonl."""
    import os
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "two"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "sgan",
           "train", str(shapes16), "--out", str(out), "--preset", "tiny", "--kimg", "0.016", "--batch", "8",
           "--tick", "0.008", "--threads", "1", "--device", "cpu"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=root, timeout=240,
                       env=dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(root)))
    assert r.returncode == 0, r.stderr[-3000:]
    assert len(list(out.glob("events.out.tfevents.*"))) == 1
    stats = [json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines()]
    assert len(stats) == 2
    acc = read_events(out)
    assert_scalars_match(acc, stats)
    assert [e.step for e in acc.Scalars("Progress/tick")] == [8, 16]


def test_steps_logged_again_after_a_rollback_replace_the_old_ones(tmp_path):
    log = EventLog.open(tmp_path)
    for kimg, loss in ((0.016, 1.0), (0.032, 2.0), (0.048, 3.0), (0.032, 5.0)):   # rolled back to 0.016
        log.scalars({"kimg": kimg, "G_loss": loss})
    log.close()
    assert [(e.step, e.value) for e in read_events(tmp_path).Scalars("Loss/G_loss")] == [(16, 1.0), (32, 5.0)]
