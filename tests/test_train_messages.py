"""`sgan train`'s messages say what happened (issue 23 §5-6): a resume names as ignored only the
options typed, one range for --aug-target, --init opens what generate opens and is checked before
the run folder exists, a bad latest.json is refused, and --metrics is checked before training."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from train_helpers import tiny_config

from sgan.cli import app
from sgan.errors import UsageError

runner = CliRunner()
FIX = Path(__file__).parent / "fixtures" / "import"
TF32 = FIX / "tf-sg1-32_karras2019stylegan-tiny-32x32.pkl"


def _train(data, out, *extra):
    return runner.invoke(app, ["train", str(data), "--out", str(out), "--device", "cpu", "--threads", "1",
                               *[str(a) for a in extra]])


def test_resume_without_preset_names_nothing_as_ignored(shapes16, tmp_path):
    out = tmp_path / "run"
    r = _train(shapes16, out, "--preset", "tiny", "--kimg", "0.016", "--precision", "fp32", "--compile", "off")
    assert r.exit_code == 0, r.output
    r = _train(shapes16, out, "--resume", "auto", "--kimg", "0.024")
    assert r.exit_code == 0, r.output
    assert "resuming from" in r.output and "ignored" not in r.output, r.output
    # an option typed that the run cannot change is still named
    r = _train(shapes16, out, "--resume", "auto", "--kimg", "0.032", "--preset", "cpu")
    assert r.exit_code == 0 and "ignored --preset" in r.output, r.output


@pytest.mark.parametrize("value", ["2", "-1", "0", "1"])
def test_aug_target_has_one_range(shapes16, tmp_path, value):
    r = _train(shapes16, tmp_path / "run", "--preset", "tiny", "--aug", "ada", "--aug-target", value, "--dry-run")
    assert r.exit_code == 2 and r.output.startswith("Error: ") and "above 0 and below 1" in r.output, r.output
    with pytest.raises(UsageError, match="above 0 and below 1"):
        tiny_config(aug="ada", aug_target=float(value)).validate()
    assert _train(shapes16, tmp_path / "run", "--preset", "tiny", "--aug", "ada", "--aug-target", "0.5",
                  "--dry-run").exit_code == 0
