"""`sgan generate` streams: files appear batch by batch, seed ranges are lazy, the grid is bounded,
and out-of-memory errors name the option of the command that ran."""

from __future__ import annotations

import pytest
from PIL import Image
from typer.testing import CliRunner

import sgan.play.generate as play_generate
from sgan.cli import app
from sgan.cli._common import parse_int_list, parse_int_ranges
from sgan.errors import UsageError

runner = CliRunner()


def _stop_after(monkeypatch, calls: int, exc: BaseException):
    real = play_generate.synthesize
    seen = {"n": 0}

    def synthesize(*args, **kwargs):
        seen["n"] += 1
        if seen["n"] > calls:
            raise exc
        return real(*args, **kwargs)

    monkeypatch.setattr(play_generate, "synthesize", synthesize)


def test_images_are_written_as_each_batch_is_made(tiny_checkpoint, tmp_path, monkeypatch):
    _stop_after(monkeypatch, 2, KeyboardInterrupt())
    out = tmp_path / "out"
    result = runner.invoke(app, ["generate", str(tiny_checkpoint), "--seeds", "0-100000", "--batch", "4",
                                 "--outdir", str(out), "--save-latents"])
    assert result.exit_code == 130, result.output
    assert sorted(p.name for p in out.glob("*.png")) == [f"seed{s:04d}.png" for s in range(8)]
    assert len(list(out.glob("*.npy"))) == 8


def test_the_largest_seed_range_is_lazy(tiny_checkpoint, tmp_path, monkeypatch):
    seeds = parse_int_ranges("0-4294967295")
    assert len(seeds) == 2 ** 32 and seeds[-1] == 2 ** 32 - 1 and seeds[5:8] == [5, 6, 7]
    _stop_after(monkeypatch, 1, KeyboardInterrupt())
    result = runner.invoke(app, ["generate", str(tiny_checkpoint), "--seeds", "0-4294967295", "--batch", "2",
                                 "--outdir", str(tmp_path / "o")])
    assert result.exit_code == 130 and len(list((tmp_path / "o").glob("*.png"))) == 2


def test_seed_limits():
    with pytest.raises(UsageError, match="above the largest allowed value 4294967295"):
        parse_int_ranges("0-4294967296")
    with pytest.raises(UsageError, match="at most 100000"):
        parse_int_list("0-4294967295", option="--rows")          # commands that hold every value refuse early
    assert parse_int_list("3,0-2,7") == [3, 0, 1, 2, 7]


def test_grid_is_built_from_a_bounded_subset(tiny_checkpoint, tmp_path, monkeypatch):
    import sgan.cli.generate as cli_generate

    monkeypatch.setattr(cli_generate, "GRID_MAX", 5)
    result = runner.invoke(app, ["generate", str(tiny_checkpoint), "--seeds", "0-11", "--batch", "4", "--grid",
                                 "--outdir", str(tmp_path)])
    assert result.exit_code == 0 and "the first 5" in result.output, result.output
    assert len(list(tmp_path.glob("seed*.png"))) == 12
    grid = Image.open(tmp_path / "grid.png")
    assert grid.size[0] * grid.size[1] < 12 * 16 * 16      # 5 tiles (and gaps), not 12


@pytest.mark.parametrize("command, args, hint", [
    ("generate", ["--seeds", "0-3"], "smaller --batch"),
    ("mix", ["--rows", "1", "--cols", "2", "--out", "m.png"], "fewer --rows/--cols"),
])
def test_out_of_memory_names_the_option_of_the_command(tiny_checkpoint, tmp_path, monkeypatch, command, args, hint):
    _stop_after(monkeypatch, 0, RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 GB"))
    result = runner.invoke(app, [command, str(tiny_checkpoint), *args, *(["--outdir", str(tmp_path)] if command == "generate" else [])])
    last = result.output.strip().splitlines()[-1]   # (a line of --precision auto's timings may come first)
    assert result.exit_code == 1 and last.startswith("Error: out of memory") and hint in result.output


def test_prepare_dataset_oom_hint_has_no_batch():
    from sgan.cli.app import oom_hint

    assert "--batch" not in oom_hint("prepare-dataset") and "--workers" in oom_hint("prepare-dataset")
