"""`sgan import` from the command line, sgan.load_generator on foreign files, round trips, refusals."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import sgan
from sgan.checkpoint import load_checkpoint
from sgan.cli import app
from sgan.errors import CheckpointError
from sgan.formats import import_file

FIX = Path(__file__).parent / "fixtures" / "import"
TF32 = FIX / "tf-sg1-32_karras2019stylegan-tiny-32x32.pkl"
ROS16 = FIX / "rosinality-sg1-cap16_train_step-4.model"
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _outputs(G, seed=3):
    z = torch.from_numpy(np.random.RandomState(seed).randn(2, G.z_dim)).float()
    c = torch.eye(G.c_dim)[[0, G.c_dim - 1]] if getattr(G, "c_dim", 0) else None
    with torch.no_grad():
        return G(z, c, truncation_psi=0.7, truncation_cutoff=8, noise_mode="const")


@pytest.mark.parametrize("src", [TF32, ROS16, FIX / "tf-sg2-32_stylegan2-tiny-32x32-config-f.pkl",
                                 FIX / "ada-cond_network-snapshot-000100.pkl", FIX / "rosinality-sg2_010000.pt"])
def test_import_writes_an_sgan_checkpoint_that_round_trips(src, tmp_path):
    out = tmp_path / "model.pt"
    result = invoke("import", src, "--out", out)
    assert result.exit_code == 0, result.output
    assert "format: " in result.output and "left behind" in result.output and f"Wrote {out}" in result.output
    ckpt = load_checkpoint(out)                                   # torch.load(weights_only=True) inside
    rec = ckpt.extra["import"]
    assert rec["source"] == src.name and len(rec["sha256"]) == 64 and rec["format"] == import_file(src).format
    imp = import_file(src)
    G = sgan.load_generator(out)
    assert torch.equal(_outputs(G), _outputs(imp.G_ema))          # import -> save -> load: identical outputs
    assert ckpt.config == imp.config and ckpt.D is not None


def test_load_generator_converts_a_foreign_file_in_memory(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="sgan.formats"):
        G = sgan.load_generator(TF32)
    assert "converted in memory" in caplog.text
    imp = import_file(TF32)
    assert torch.equal(_outputs(G), _outputs(imp.G_ema))


def test_generate_accepts_a_foreign_file_directly(tmp_path):
    imported = tmp_path / "m.pt"
    assert invoke("import", TF32, "--out", imported).exit_code == 0
    for src, outdir in ((imported, tmp_path / "a"), (TF32, tmp_path / "b")):
        result = invoke("generate", src, "--seeds", "0-1", "--outdir", outdir)
        assert result.exit_code == 0, result.output
    for name in ("seed0000.png", "seed0001.png"):
        a, b = (np.asarray(Image.open(tmp_path / d / name)) for d in "ab")
        assert a.shape == (32, 32, 3) and np.array_equal(a, b)


def test_hostile_pickle_is_refused_by_import_and_generate(tmp_path):
    target = tmp_path / "pwned.txt"

    class Evil:
        def __reduce__(self):
            return (exec, (f"open({str(target)!r}, 'w').write('x')",))

    evil = tmp_path / "network-snapshot-000000.pkl"
    evil.write_bytes(pickle.dumps({"G_ema": Evil()}, protocol=4))
    out = tmp_path / "model.pt"
    result = invoke("import", evil, "--out", out)
    assert result.exit_code == 1 and "exec" in result.output and "Traceback" not in result.output
    assert result.output.count("Error:") == 1 and not out.exists() and not target.exists()
    result = invoke("generate", evil, "--seeds", "0", "--outdir", tmp_path / "o")
    assert result.exit_code == 1 and "exec" in result.output and not target.exists()


def test_unknown_and_mismatched_formats_are_clear_errors(tmp_path):
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"weights": [1, 2, 3]}, protocol=4))
    result = invoke("import", plain, "--out", tmp_path / "a.pt")
    assert result.exit_code == 1
    for name in ("tf-stylegan", "tf-stylegan2", "ada", "rosinality-sg1", "rosinality-sg2"):
        assert name in result.output
    result = invoke("import", TF32, "--out", tmp_path / "b.pt", "--format", "rosinality-sg1")
    assert result.exit_code == 1 and "looks like tf-stylegan" in result.output
    result = invoke("import", TF32, "--out", tmp_path / "c.pt", "--format", "nope")
    assert result.exit_code == 2 and "--format" in result.output
    result = invoke("import", TF32, "--out", tmp_path / "d.pt", "--resolution", "16")
    assert result.exit_code == 2 and "rosinality-sg1" in result.output
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    result = invoke("import", text, "--out", tmp_path / "e.pt")
    assert result.exit_code == 1 and "Error:" in result.output
    assert not any((tmp_path / n).exists() for n in ("a.pt", "b.pt", "c.pt", "d.pt", "e.pt"))


def test_existing_out_needs_force_and_sgan_checkpoints_are_not_reimported(tmp_path):
    out = tmp_path / "m.pt"
    assert invoke("import", ROS16, "--out", out, "--resolution", "16").exit_code == 0
    result = invoke("import", ROS16, "--out", out)
    assert result.exit_code == 2 and "--force" in result.output
    assert invoke("import", ROS16, "--out", out, "--force").exit_code == 0
    assert load_checkpoint(out).config.resolution == 32
    result = invoke("import", out, "--out", tmp_path / "again.pt")
    assert result.exit_code == 1 and "already an sgan checkpoint" in result.output


def test_a_non_checkpoint_still_fails_with_the_old_message(tmp_path):
    bad = tmp_path / "x.pt"
    torch.save({"a": torch.ones(1)}, bad)
    with pytest.raises(CheckpointError, match="state_dict"):
        sgan.load_generator(bad)


def test_mix_takes_a_foreign_file(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="sgan.formats"):
        result = invoke("mix", ROS16, "--rows", "1,2", "--cols", "3-4", "--styles", "coarse", "--out", tmp_path / "mix.png")
    assert result.exit_code == 0, result.output
    assert "converted in memory" in caplog.text and (tmp_path / "mix.png").is_file()


def test_the_note_reaches_stderr_of_the_real_command(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "sgan", "generate", str(TF32), "--seeds", "0", "--outdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "converted in memory" in proc.stderr and (tmp_path / "seed0000.png").is_file()
