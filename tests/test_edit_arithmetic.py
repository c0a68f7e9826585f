"""Latent arithmetic w = w_a + lambda (w_c - w_b) and `sgan edit`."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from sgan.checkpoint import load_generator
from sgan.cli import app
from sgan.play.edit import edit_latent, edit_sweep, parse_sweep
from sgan.errors import UsageError
from sgan.play.generate import synthesize
from sgan.latent import load_latent
from sgan.viz import to_uint8

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_edit_latent_formula_and_styles():
    g = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(6, 4, generator=g) for _ in range(3))
    assert torch.allclose(edit_latent(a, b, c, 1.0), a + c - b)
    assert torch.allclose(edit_latent(a, b, c, -0.5), a - 0.5 * (c - b))
    assert torch.equal(edit_latent(a, b, c, 0.0), a)
    assert torch.equal(edit_latent(a, b, b, 3.0), a)
    part = edit_latent(a, b, c, 2.0, styles=[0, 1, 2, 3])
    assert torch.allclose(part[:4], a[:4] + 2 * (c[:4] - b[:4])) and torch.equal(part[4:], a[4:])
    sweep = edit_sweep(a, b, c, [-1.0, 0.0, 1.0])
    assert sweep.shape == (3, 6, 4) and torch.equal(sweep[1], a)
    with pytest.raises(UsageError):
        edit_latent(a, b, c[:3], 1.0)


def test_parse_sweep():
    assert parse_sweep("-2,2,9") == pytest.approx(list(np.linspace(-2, 2, 9)))
    for bad in ("1,2", "a,b,3", "0,1,1", "0,1,1000"):
        with pytest.raises(UsageError):
            parse_sweep(bad)


def test_edit_command_writes_latent_images_and_sweep(tiny_checkpoint, tmp_path):
    lat = tmp_path / "lat"
    assert invoke("generate", tiny_checkpoint, "--seeds", "0-2", "--save-latents", "--outdir", lat).exit_code == 0
    out = tmp_path / "edit"
    result = invoke("edit", tiny_checkpoint, "--base", lat / "seed0000.npy", "--from", lat / "seed0001.npy",
                    "--to", lat / "seed0002.npy", "--strength", "0.5", "--sweep", "-1,1,5", "--out", out)
    assert result.exit_code == 0, result.output
    G = load_generator(tiny_checkpoint)
    a, b, c = (load_latent(lat / f"seed000{i}.npy", num_ws=G.num_ws, w_dim=G.w_dim) for i in range(3))
    edited = load_latent(out / "edited.npy", num_ws=G.num_ws, w_dim=G.w_dim)
    assert torch.allclose(edited, a + 0.5 * (c - b), atol=1e-6)
    expected = to_uint8(synthesize(G, edited[None]))[0]
    assert np.abs(np.asarray(Image.open(out / "edited.png")).astype(int) - expected).max() <= 1
    record = json.loads((out / "edit.json").read_text())
    assert [s["strength"] for s in record["sweep"]] == pytest.approx([-1, -0.5, 0, 0.5, 1])
    mid = load_latent(out / "sweep-02.npy", num_ws=G.num_ws, w_dim=G.w_dim)
    assert torch.allclose(mid, a)
    assert Image.open(out / "sweep.png").size[0] > 5 * 16 and (out / "compare.png").is_file()


def test_edit_errors_are_one_line(tiny_checkpoint, tmp_path):
    np.save(tmp_path / "ok.npy", np.zeros((6, 32), np.float32))
    np.save(tmp_path / "wrong.npy", np.zeros((5, 32), np.float32))
    cases = ((("--base", tmp_path / "wrong.npy"), 1, "styles"),
             (("--base", tmp_path / "missing.npy"), 1, "no such latent"),
             (("--base", tmp_path / "ok.npy", "--sweep", "1,2"), 2, "--sweep"),
             (("--base", tmp_path / "ok.npy", "--styles", "9"), 2, "must lie within 0-5"))
    for args, code, needle in cases:
        result = invoke("edit", tiny_checkpoint, *args, "--from", tmp_path / "ok.npy", "--to", tmp_path / "ok.npy",
                        "--out", tmp_path / "e")
        assert result.exit_code == code, result.output
        assert result.output.startswith("Error: ") and needle in result.output and result.output.count("\n") == 1


def test_edit_checks_every_input_before_creating_out(tiny_checkpoint, tmp_path):
    np.save(tmp_path / "ok.npy", np.zeros((6, 32), np.float32))
    for args in (("--styles", "9"), ("--sweep", "1,2"), ("--strength", "nan")):
        result = invoke("edit", tiny_checkpoint, "--base", tmp_path / "ok.npy", "--from", tmp_path / "ok.npy",
                        "--to", tmp_path / "ok.npy", "--out", tmp_path / "new" / "e", *args)
        assert result.exit_code == 2 and not (tmp_path / "new").exists(), result.output
    (tmp_path / "afile").write_text("x")
    result = invoke("edit", tiny_checkpoint, "--base", tmp_path / "ok.npy", "--from", tmp_path / "ok.npy",
                    "--to", tmp_path / "ok.npy", "--out", tmp_path / "afile")
    assert result.exit_code == 2 and result.output.startswith("Error: --out") and result.output.count("\n") == 1
