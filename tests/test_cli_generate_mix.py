"""`sgan generate` and `sgan mix` from the command line: files, sizes, determinism, errors."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from sgan.checkpoint import load_generator
from sgan.cli import app
from sgan.play.generate import render_seeds
from sgan.latent import load_latent, parse_styles, save_latent, style_groups
from sgan.errors import UsageError
from sgan.play.mixing import mix_by_groups, mix_rows_cols

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.startswith("sgan ") and "torch" in result.output


def test_every_command_help_has_an_example():
    import typer.main

    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        sub = getattr(command, "commands", None)
        for cmd_name, cmd in ((sub or {name: command}).items()):
            args = [name, cmd_name] if sub else [name]
            result = invoke(*args, "--help")
            assert result.exit_code == 0, args
            assert "sgan " in result.output and ("Example" in result.output or "example" in result.output), args


def test_generate_writes_pngs_latents_and_grid(tiny_checkpoint, tmp_path):
    out = tmp_path / "out"
    result = invoke("generate", tiny_checkpoint, "--seeds", "0-2,7", "--grid", "--save-latents", "--outdir", out)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["grid.png"] + [f"seed{s:04d}.{ext}" for s in (0, 1, 2, 7) for ext in ("json", "npy", "png")]
    assert Image.open(out / "seed0007.png").size == (16, 16)
    ws = np.load(out / "seed0007.npy", allow_pickle=False)
    assert ws.dtype == np.float32 and ws.shape == (6, 32)
    side = json.loads((out / "seed0007.json").read_text())     # the latent's sidecar: what made it
    assert side["precision"] == "fp32" and side["seed"] == 7 and side["latent"] == "seed0007.npy"
    assert side["truncation_psi"] == 0.7 and side["noise_mode"] == "const" and side["shape"] == [6, 32]
    assert side["checkpoint"] == str(tiny_checkpoint) and len(side["checkpoint_sha256"]) == 64
    text = Image.open(out / "seed0007.png").text               # the PNG's text chunks say the same
    assert text["precision"] == "fp32" and text["seed"] == "7" and text["checkpoint_sha256"] == side["checkpoint_sha256"]
    assert Image.open(out / "grid.png").text["seeds"] == "0-2,7"
    # the same seed alone and at another batch size gives the same image
    again = tmp_path / "again"
    assert invoke("generate", tiny_checkpoint, "--seeds", "7", "--batch", "1", "--outdir", again).exit_code == 0
    a = np.asarray(Image.open(out / "seed0007.png"), dtype=int)
    b = np.asarray(Image.open(again / "seed0007.png"), dtype=int)
    assert np.abs(a - b).max() <= 1


def test_generate_latent_reproduces_image(tiny_checkpoint, tmp_path):
    G = load_generator(tiny_checkpoint)
    rendered = render_seeds(G, [3], truncation_psi=0.7, truncation_cutoff=8)
    save_latent(tmp_path / "w.npy", rendered.ws[0])
    ws = load_latent(tmp_path / "w.npy", num_ws=G.num_ws, w_dim=G.w_dim)
    from sgan.play.generate import synthesize
    from sgan.viz import to_uint8
    assert np.array_equal(to_uint8(synthesize(G, ws[None])), rendered.images)


@pytest.mark.parametrize("seeds, message", [("3-1", "backwards"), ("x", "not a number"), ("", "empty"), ("1,,2", "not a number")])
def test_bad_seed_lists(tiny_checkpoint, tmp_path, seeds, message):
    result = invoke("generate", tiny_checkpoint, "--seeds", seeds, "--outdir", tmp_path)
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_missing_and_foreign_checkpoints(tmp_path):
    result = invoke("generate", tmp_path / "missing.pt", "--outdir", tmp_path)
    assert result.exit_code == 1 and "no such file" in result.output
    (tmp_path / "x.pt").write_bytes(b"not a checkpoint")
    result = invoke("generate", tmp_path / "x.pt", "--outdir", tmp_path)
    assert result.exit_code == 1 and "not an sgan checkpoint" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_mix_from_latent_files(tiny_checkpoint, tmp_path):
    G = load_generator(tiny_checkpoint)
    a, b = torch.randn(G.num_ws, G.w_dim), torch.randn(G.w_dim)
    save_latent(tmp_path / "a.npy", a)
    save_latent(tmp_path / "b.npy", b)  # a single w broadcasts to every layer
    result = invoke("mix", tiny_checkpoint, "--coarse", tmp_path / "a.npy", "--middle", tmp_path / "b.npy",
                    "--out", tmp_path / "mix.png")
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "mix.png").size == (16 * 3, 16)


def test_mix_groups_fall_back_to_coarser_latent():
    num_ws, w_dim = 12, 4
    c, m, f = (torch.full((num_ws, w_dim), float(v)) for v in (1, 2, 3))
    assert mix_by_groups(coarse=c, fine=f)[:, 0].tolist() == [1] * 4 + [1] * 4 + [3] * 4
    assert mix_by_groups(coarse=c, middle=m)[:, 0].tolist() == [1] * 4 + [2] * 4 + [2] * 4
    assert style_groups(18) == {"coarse": range(0, 4), "middle": range(4, 8), "fine": range(8, 18)}


@pytest.mark.parametrize("num_ws, coarse, middle, fine", [
    (2, range(0, 2), range(2, 2), range(2, 2)),      # 4 px: coarse only
    (4, range(0, 2), range(2, 2), range(2, 4)),      # 8 px: 4 | - | 8
    (6, range(0, 2), range(2, 4), range(4, 6)),      # 16 px: 4 | 8 | 16
    (8, range(0, 4), range(4, 6), range(6, 8)),      # 32 px (the main job): 4-8 | 16 | 32
    (10, range(0, 4), range(4, 8), range(8, 10)),    # 64 px: the paper's bands from here on
    (14, range(0, 4), range(4, 8), range(8, 14)),
])
def test_style_groups_every_size(num_ws, coarse, middle, fine):
    groups = style_groups(num_ws)
    assert groups == {"coarse": coarse, "middle": middle, "fine": fine}
    assert [i for r in groups.values() for i in r] == list(range(num_ws))   # a partition, in order


def test_mix_coarse_fine_changes_a_small_model(tiny_checkpoint, tmp_path):
    """The --help example on a 16 px model: the mix must differ from both sources."""
    G = load_generator(tiny_checkpoint)
    save_latent(tmp_path / "a.npy", G.map(torch.randn(1, G.z_dim))[0])
    save_latent(tmp_path / "b.npy", G.map(torch.randn(1, G.z_dim))[0])
    result = invoke("mix", tiny_checkpoint, "--coarse", tmp_path / "a.npy", "--fine", tmp_path / "b.npy",
                    "--out", tmp_path / "mix.png")
    assert result.exit_code == 0, result.output
    tiles = np.asarray(Image.open(tmp_path / "mix.png")).reshape(16, 3, 16, 3).transpose(1, 0, 2, 3).astype(int)
    assert np.abs(tiles[2] - tiles[0]).max() > 0 and np.abs(tiles[2] - tiles[1]).max() > 0


def test_mix_refuses_a_request_that_selects_no_layer():
    c, m = torch.zeros(4, 3), torch.ones(4, 3)          # an 8 px model has no middle styles
    with pytest.raises(UsageError, match="--middle selects no layer"):
        mix_by_groups(coarse=c, middle=m)
    with pytest.raises(UsageError, match="nothing is mixed"):
        mix_by_groups(coarse=c)
    with pytest.raises(UsageError, match="8 px generator has no middle.*ws 0-1 \\(4 px\\)"):
        parse_styles("middle", 4)


def test_mix_grid_cells_take_column_styles():
    rows, cols = torch.zeros(2, 6, 3), torch.ones(3, 6, 3)
    grid = mix_rows_cols(rows, cols, [0, 1])
    assert grid.shape == (2, 3, 6, 3)
    assert grid[:, :, :2].eq(1).all() and grid[:, :, 2:].eq(0).all()
    assert parse_styles("coarse", 18) == [0, 1, 2, 3] and parse_styles("fine", 18) == list(range(8, 18))
    assert parse_styles("0-2,5", 18) == [0, 1, 2, 5]


def test_mix_grid_cli(tiny_checkpoint, tmp_path):
    result = invoke("mix", tiny_checkpoint, "--rows", "1,2", "--cols", "3-5", "--styles", "0-1", "--out", tmp_path / "g.png")
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "g.png").size == (16 * 4, 16 * 3)


@pytest.mark.parametrize("args, message", [
    (["--styles", "9-3"], "must lie within"),
    (["--styles", "fine,12"], "must lie within 0-5"),
])
def test_mix_grid_bad_styles(tiny_checkpoint, tmp_path, args, message):
    result = invoke("mix", tiny_checkpoint, "--rows", "1", "--cols", "2", *args, "--out", tmp_path / "g.png")
    assert result.exit_code == 2 and message in result.output


def test_mix_bad_latents(tiny_checkpoint, tmp_path):
    np.save(tmp_path / "wrong.npy", np.zeros((3, 7), np.float32))
    np.save(tmp_path / "nan.npy", np.full((32,), np.nan, np.float32))
    np.save(tmp_path / "other_wdim.npy", np.zeros((64,), np.float32))
    for name, message in (("wrong.npy", "w_dim"), ("nan.npy", "NaN"), ("other_wdim.npy", "another model"),
                          ("missing.npy", "no such latent")):
        result = invoke("mix", tiny_checkpoint, "--coarse", tmp_path / name, "--out", tmp_path / "m.png")
        assert result.exit_code == 1 and message in result.output, (name, result.output)
    result = invoke("mix", tiny_checkpoint, "--out", tmp_path / "m.png")
    assert result.exit_code == 2 and "either latent files" in result.output


def test_python_dash_m_and_console_script_errors(tmp_path):
    import subprocess
    import sys

    ok = subprocess.run([sys.executable, "-m", "sgan", "--version"], capture_output=True, text=True)
    assert ok.returncode == 0 and ok.stdout.startswith("sgan ")
    bad = subprocess.run([sys.executable, "-m", "sgan", "generate", str(tmp_path / "none.pt")], capture_output=True, text=True)
    assert bad.returncode == 1
    assert bad.stderr.strip().startswith("Error: ") and len(bad.stderr.strip().splitlines()) == 1
    assert "Traceback" not in bad.stderr
