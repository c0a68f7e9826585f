"""Training refuses what would crash before writing anything, reuses a folder that holds no
trained snapshot, and names the options a user actually types."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from train_helpers import tiny_config

from sgan.cli import app
from sgan.errors import UsageError
from sgan.train import Hooks, train
from sgan.train.config import option_name
from sgan.train.plan import check_minibatch_groups
from sgan.train.run import output_error

runner = CliRunner()


tiny = tiny_config


def test_batch_not_divisible_by_mbstd_group_is_refused_before_the_folder(shapes16, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["train", str(shapes16), "--out", str(out), "--preset", "tiny", "--batch", "6",
                                 "--kimg", "0.01"])
    assert result.exit_code == 2 and "minibatch-stddev groups of 4" in result.output, result.output
    assert result.output.startswith("Error: ") and not out.exists()


@pytest.mark.parametrize("batch, world, ok", [(6, 1, False), (8, 1, True), (3, 1, True), (2, 1, True),
                                              (12, 2, False), (16, 2, True), (4, 2, True), (6, 2, True), (10, 2, False)])
def test_minibatch_group_rule(batch, world, ok):
    cfg = tiny(batch_base=batch, resolution=16)
    cfg.validate()
    if ok:
        check_minibatch_groups(cfg, cfg.model_config(), world)
    else:
        with pytest.raises(UsageError, match="minibatch-stddev"):
            check_minibatch_groups(cfg, cfg.model_config(), world)


def test_a_folder_without_a_trained_snapshot_is_reused(shapes16, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "snapshot-000000.pt").write_bytes(b"the kimg-0 snapshot of a run that crashed")
    (out / "latest.json").write_text(json.dumps({"snapshot": "snapshot-000000.pt", "kimg": 0.0}))
    (out / "config.json").write_text("{}")
    lines: list[str] = []
    result = train(tiny(total_kimg=0.016), shapes16, out, device="cpu", hooks=Hooks(log=lines.append))
    assert result.snapshot.is_file() and any("held no trained snapshot" in line for line in lines)
    # a folder with training progress is still protected
    with pytest.raises(UsageError, match="already holds a training run"):
        train(tiny(total_kimg=0.016), shapes16, out, device="cpu")


def test_resume_note_names_the_options_typed(shapes16, tmp_path):
    out = tmp_path / "run"
    train(tiny(total_kimg=0.016), shapes16, out, device="cpu")
    lines: list[str] = []
    train(tiny(total_kimg=0.024, batch_base=4, lr_base=0.01), shapes16, out, device="cpu", resume="auto",
          hooks=Hooks(log=lines.append), resume_overrides={"batch_base": 4, "lr_base": 0.01, "total_kimg": 0.024})
    note = next(line for line in lines if line.startswith("note: resuming"))
    assert "ignored --batch, --lr " in note and "--batch-base" not in note and "--kimg" in note


def test_output_errors_give_the_right_hint():
    exists = str(output_error(Path("runs/x"), OSError(errno.EEXIST, "File exists")))
    full = str(output_error(Path("runs/x"), OSError(errno.ENOSPC, "No space left on device")))
    denied = str(output_error(Path("runs/x"), OSError(errno.EACCES, "Permission denied")))
    assert "free some space" not in exists and "in the way" in exists
    assert "free some space" in full and "permissions" in denied
    assert option_name("batch_base") == "--batch" and option_name("r1_gamma") == "--r1-gamma"
