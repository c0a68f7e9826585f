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


def test_init_opens_a_foreign_pickle_as_generate_does(shapes16, tmp_path):
    """--init of an NVIDIA pickle is converted in memory (as `sgan generate` opens it); here its
    model is not the run's, so the refusal names the settings that differ, not the file's kind."""
    out = tmp_path / "run"
    r = _train(shapes16, out, "--preset", "tiny", "--kimg", "0.016", "--init", TF32)
    assert r.exit_code != 0 and r.output.startswith("Error: ") and len(r.output.strip().splitlines()) == 1, r.output
    assert "does not match this run's" in r.output and "Settings that differ" in r.output, r.output
    assert "pickle" not in r.output and not out.exists()


@pytest.mark.parametrize("kind", ["missing", "damaged", "other-model"])
def test_a_failed_init_leaves_no_run_folder(shapes16, tmp_path, kind):
    from sgan.train import train

    source = tmp_path / "source.pt"
    if kind == "damaged":
        source.write_bytes(b"PK\x03\x04 not a whole zip archive")
    elif kind == "other-model":   # a 16 px run of another width
        train(tiny_config(total_kimg=0.008, model={**tiny_config().model, "fmap_max": 16}), shapes16,
              tmp_path / "src", device="cpu", threads=1)
        source = tmp_path / "src"
    out = tmp_path / "new" / "run"
    r = _train(shapes16, out, "--preset", "tiny", "--kimg", "0.016", "--init", source)
    assert r.exit_code != 0 and r.output.startswith("Error: ") and len(r.output.strip().splitlines()) == 1, r.output
    assert "--init" in r.output or str(source) in r.output, r.output
    assert not out.exists() and not out.parent.exists(), r.output


@pytest.mark.parametrize("pointer", ["{not json", '{"snapshot": "snapshot-999999.pt", "kimg": 999.0}',
                                     '{"snapshot": "../elsewhere.pt"}'])
def test_resume_auto_refuses_a_bad_latest_json_as_generate_does(shapes16, tmp_path, pointer):
    out = tmp_path / "run"
    assert _train(shapes16, out, "--preset", "tiny", "--kimg", "0.016").exit_code == 0
    (out / "latest.json").write_text(pointer)
    before = sorted(p.name for p in out.iterdir())
    shown = runner.invoke(app, ["generate", str(out), "--seeds", "0", "--outdir", str(tmp_path / "img")])
    assert shown.exit_code != 0 and "latest.json" in shown.output
    r = _train(shapes16, out, "--preset", "tiny", "--kimg", "0.032", "--resume", "auto")
    assert r.exit_code != 0 and r.output.startswith("Error: --resume auto: ") and "latest.json" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1 and sorted(p.name for p in out.iterdir()) == before


@pytest.mark.parametrize("metrics, detector", [("modes2k", None), ("fid1k,ls1k", None), ("modes2k", "inception")])
def test_metrics_needing_a_detector_are_refused_before_training(shapes16, tmp_path, metrics, detector):
    out = tmp_path / "run"
    extra = ["--detector", detector] if detector else []
    r = _train(shapes16, out, "--preset", "tiny", "--kimg", "0.016", "--metrics", metrics, *extra)
    assert r.exit_code == 2 and r.output.startswith(f"Error: --metrics {metrics}: ") and "--detector" in r.output, \
        r.output
    assert len(r.output.strip().splitlines()) == 1 and not out.exists()
