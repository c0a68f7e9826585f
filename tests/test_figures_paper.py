"""The paper's figures: truncation sweep, stochastic variation, noise in all/none/fine/coarse layers."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from sgan.checkpoint import load_generator
from sgan.cli import app
from sgan.play.figures import (labelled_grid, noise_figure, noise_layer_masks, truncation_figure, variation_figure)
from sgan.play.generate import render_seeds

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_truncation_sweep_columns(tiny_checkpoint):
    G = load_generator(tiny_checkpoint)
    fig = truncation_figure(G, [1, 2, 3], psis=[1, 0.5, 0], truncation_cutoff=None)
    assert fig.cells.shape == (3, 3, 16, 16, 3) and fig.col_labels == ["psi=1", "psi=0.5", "psi=0"]
    plain = render_seeds(G, [1, 2, 3], truncation_psi=1.0).images
    half = render_seeds(G, [1, 2, 3], truncation_psi=0.5, truncation_cutoff=None).images
    assert np.abs(fig.cells[:, 0].astype(int) - plain).max() <= 1
    assert np.abs(fig.cells[:, 1].astype(int) - half).max() <= 1
    assert np.array_equal(fig.cells[0, 2], fig.cells[1, 2]) and np.array_equal(fig.cells[0, 2], fig.cells[2, 2])


def test_variation_shows_noise_draws_and_their_std(tiny_checkpoint):
    G = load_generator(tiny_checkpoint)
    fig = variation_figure(G, [0, 5], generator=torch.Generator().manual_seed(0), shown=3, samples=20, batch=8)
    assert fig.cells.shape == (2, 4, 16, 16, 3) and fig.col_labels[-1] == "std of 20"
    assert not np.array_equal(fig.cells[0, 0], fig.cells[0, 1])   # different noise draws
    std = fig.cells[0, 3]
    assert std.max() == 255 and np.array_equal(std[..., 0], std[..., 1])   # grey, scaled to the row's largest
    assert fig.info["std_max"][0] > 0
    # without noise the images do not vary: std is zero
    with torch.no_grad():
        for m in G.synthesis.modules():
            if hasattr(m, "noise_strength"):
                m.noise_strength.zero_()
    still = variation_figure(G, [0], generator=torch.Generator().manual_seed(0), shown=2, samples=4)
    assert still.info["std_max"][0] < 1e-6 and np.array_equal(still.cells[0, 0], still.cells[0, 1])


def test_noise_figure_columns(tiny_checkpoint):
    G = load_generator(tiny_checkpoint)
    masks = noise_layer_masks(G, 8)                          # 16 px model: coarse = 4 px, fine = 8-16 px
    assert masks["fine"] == [False, False, True, True, True, True] and masks["coarse"] == [True, True, False, False, False, False]
    fig = noise_figure(G, [2, 9], fine_from=8, truncation_psi=0.7)
    assert fig.cells.shape == (2, 4, 16, 16, 3) and fig.col_labels[0] == "noise: all"
    # "all" draws each seed's noise as `generate --noise-mode random` does; "none" is noise mode none
    rand = render_seeds(G, [2, 9], truncation_psi=0.7, truncation_cutoff=8, noise_mode="random").images
    none = render_seeds(G, [2, 9], truncation_psi=0.7, truncation_cutoff=8, noise_mode="none").images
    assert np.abs(fig.cells[:, 0].astype(int) - rand).max() <= 1
    assert np.abs(fig.cells[:, 1].astype(int) - none).max() <= 1
    for c in (2, 3):
        assert not np.array_equal(fig.cells[0, c], fig.cells[0, 0]) and not np.array_equal(fig.cells[0, c], fig.cells[0, 1])


def test_labelled_grid_layout():
    cells = np.zeros((2, 3, 8, 8, 3), dtype=np.uint8)
    out = labelled_grid(cells, col_labels=["a", "b", "c"], row_labels=["r1", "r2"], scale=4, pad=2)
    assert out.dtype == np.uint8 and out.shape[0] > 2 * 32 and out.shape[1] > 3 * 32
    black = (out == 0).all(axis=2)
    assert black.sum() >= 2 * 3 * 32 * 32                          # every (enlarged) cell is drawn
    assert black[-2 - 32:-2, -2 - 32:-2].all()                      # the last cell sits in the bottom-right corner
    assert out[:10].min() < 128                                   # label ink in the header band
    with pytest.raises(ValueError):
        labelled_grid(cells, col_labels=["a"])


def test_figure_commands_write_png_and_json(tiny_checkpoint, tmp_path):
    for sub, extra in (("truncation", ["--seeds", "0-2"]), ("variation", ["--seeds", "1", "--samples", "6", "--show", "2"]),
                       ("noise", ["--seeds", "0,1"])):
        out = tmp_path / f"{sub}.png"
        result = invoke("figure", sub, tiny_checkpoint, *extra, "--out", out)
        assert result.exit_code == 0, result.output
        assert Image.open(out).size[0] > 16 * 2
        assert json.loads(out.with_suffix(".json").read_text())["figure"] == sub


@pytest.mark.parametrize("args,needle", [
    (("truncation", "--psi", "1,x"), "--psi"),
    (("noise", "--fine-from", "5"), "--fine-from"),
    (("noise", "--columns", "all,loud"), "columns"),
    (("variation", "--show", "9", "--samples", "4"), "--show"),
    (("truncation", "--seeds", "3-1"), "runs backwards"),
])
def test_figure_errors_are_one_line(tiny_checkpoint, tmp_path, args, needle):
    result = invoke("figure", args[0], tiny_checkpoint, *args[1:], "--out", tmp_path / "x.png")
    assert result.exit_code == 2, result.output
    assert result.output.startswith("Error: ") and needle in result.output and result.output.count("\n") == 1
