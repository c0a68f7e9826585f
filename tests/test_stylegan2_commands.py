"""Every inference command on a StyleGAN2 checkpoint and run folder: generate, mix (files and grid),
project (W by default, the official projector), video, figure, edit and metrics with the offline detector."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from sgan.checkpoint import load_generator, write_latest_pointer
from sgan.cli import app
from sgan.latent import load_latent

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def run_dir(tiny_sg2_checkpoint):
    write_latest_pointer(tiny_sg2_checkpoint.parent, tiny_sg2_checkpoint, kimg=0)
    return tiny_sg2_checkpoint.parent


def test_generate_files_grid_latents_and_reproduction(run_dir, tmp_path):
    out = tmp_path / "gen"
    result = invoke("generate", run_dir, "--seeds", "0-3", "--grid", "--save-latents", "--outdir", out, "--trunc", "0.7")
    assert result.exit_code == 0, result.output
    img = np.asarray(Image.open(out / "seed0002.png"))
    assert img.shape == (16, 16, 3) and img.std() > 0
    G = load_generator(run_dir)
    ws = load_latent(out / "seed0002.npy", num_ws=G.num_ws, w_dim=G.w_dim)
    assert ws.shape == (6, 32)
    # the same seed at batch 1 gives the same picture
    again = tmp_path / "again"
    assert invoke("generate", run_dir, "--seeds", "2", "--batch", "1", "--outdir", again, "--trunc", "0.7").exit_code == 0
    assert np.abs(np.asarray(Image.open(again / "seed0002.png")).astype(int) - img).max() <= 1


def test_mix_files_and_grid(tiny_sg2_checkpoint, tmp_path):
    lat = tmp_path / "lat"
    assert invoke("generate", tiny_sg2_checkpoint, "--seeds", "0-2", "--save-latents", "--outdir", lat).exit_code == 0
    result = invoke("mix", tiny_sg2_checkpoint, "--coarse", lat / "seed0000.npy", "--fine", lat / "seed0001.npy",
                    "--out", tmp_path / "mix.png")
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "mix.png").size[1] == 16
    result = invoke("mix", tiny_sg2_checkpoint, "--rows", "1,2", "--cols", "3,4,5", "--styles", "0-1",
                    "--out", tmp_path / "grid.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "grid.png").is_file()


def test_project_defaults_to_w_without_mse_and_optimises_every_noise_input(tiny_sg2_checkpoint, tmp_path):
    G = load_generator(tiny_sg2_checkpoint)
    from sgan.play.generate import render_seeds

    photo = tmp_path / "photo.png"
    Image.fromarray(render_seeds(G, [4]).images[0]).save(photo)
    out = tmp_path / "proj"
    result = invoke("project", tiny_sg2_checkpoint, photo, "--out", out, "--steps", "4", "--w-avg-samples", "100",
                    "--loss", "pixel-gradient")
    assert result.exit_code == 0, result.output
    record = json.loads((out / "photo.json").read_text())
    assert record["space"] == "w" and record["config"]["mse_weight"] == 0.0
    ws = load_latent(out / "photo.npy", num_ws=G.num_ws, w_dim=G.w_dim)
    assert torch.allclose(ws, ws[:1].expand_as(ws))                      # W: one w for every style
    noise = np.load(out / "photo-noise.npz", allow_pickle=False)
    assert len(noise.files) == G.num_ws - 1                              # one map per conv, none for ToRGB
    result = invoke("project", tiny_sg2_checkpoint, photo, "--out", tmp_path / "p2", "--steps", "2",
                    "--w-avg-samples", "50", "--loss", "pixel-gradient", "--space", "w+")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "p2" / "photo.json").read_text())["space"] == "w+"


def test_video_walk_and_noise_animation(tiny_sg2_checkpoint, tmp_path):
    from sgan.play.video import read_video_frames

    result = invoke("video", tiny_sg2_checkpoint, "--seeds", "1,2", "--seconds-per-seed", "0.5", "--fps", "8",
                    "--out", tmp_path / "walk.mp4")
    assert result.exit_code == 0, result.output
    assert sum(1 for _ in read_video_frames(tmp_path / "walk.mp4")) >= 4
    result = invoke("video", tiny_sg2_checkpoint, "--mode", "noise", "--seeds", "0", "--seconds", "0.5", "--fps", "8",
                    "--out", tmp_path / "noise.mp4")
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("figure,extra", [("truncation", ["--seeds", "0-1"]), ("variation", ["--seeds", "0"]),
                                          ("noise", ["--seeds", "0"])])
def test_figures(tiny_sg2_checkpoint, tmp_path, figure, extra):
    out = tmp_path / f"{figure}.png"
    result = invoke("figure", figure, tiny_sg2_checkpoint, *extra, "--out", out)
    assert result.exit_code == 0, result.output
    assert out.is_file() and json.loads(out.with_suffix(".json").read_text())["figure"] == figure


def test_noise_figure_switches_stylegan2_noise_inputs(tiny_sg2_checkpoint):
    """With chosen maps, all-noise and no-noise renderings differ (noise_maps drives SynthesisLayer)."""
    from sgan.play.noise_maps import noise_layers, random_noise_maps, select_layers, use_noise_maps

    G = load_generator(tiny_sg2_checkpoint)
    assert [m.layer_idx for m in noise_layers(G)] == list(range(G.num_ws - 1))
    ws = G.map(torch.randn(1, G.z_dim))
    maps = random_noise_maps(G, 1, torch.Generator().manual_seed(0))
    with use_noise_maps(G, maps):
        a = G.synthesis(ws, noise_mode="const")
    with use_noise_maps(G, select_layers(maps, [False] * len(maps))):
        b = G.synthesis(ws, noise_mode="const")
    assert not torch.allclose(a, b) and torch.allclose(b, G.synthesis(ws, noise_mode="none"), atol=1e-6)


def test_edit(tiny_sg2_checkpoint, tmp_path):
    lat = tmp_path / "lat"
    assert invoke("generate", tiny_sg2_checkpoint, "--seeds", "0-2", "--save-latents", "--outdir", lat).exit_code == 0
    result = invoke("edit", tiny_sg2_checkpoint, "--base", lat / "seed0000.npy", "--from", lat / "seed0001.npy",
                    "--to", lat / "seed0002.npy", "--out", tmp_path / "edit")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "edit" / "edited.npy").is_file() and (tmp_path / "edit" / "edited.png").is_file()


@pytest.fixture(scope="module")
def shapes_db(tmp_path_factory):
    from sgan.data.prepare import prepare_dataset

    out = tmp_path_factory.mktemp("data") / "shapes.lmdb"
    prepare_dataset("builtin:shapes", out, max_size=16, count=120, workers=1)
    return out


@pytest.fixture(scope="module")
def detector_file(shapes_db, tmp_path_factory):
    out = tmp_path_factory.mktemp("det") / "shapes-detector.pt"
    res = runner.invoke(app, ["detector", "train", str(shapes_db), "--out", str(out), "--epochs", "1", "--batch", "32",
                              "--device", "cpu", "--json"])
    assert res.exit_code == 0, res.output
    return out


@pytest.mark.parametrize("metric,extra,keys", [
    ("fid", ["--data", "{db}", "--num", "32"], ["fid"]),
    ("kid", ["--data", "{db}", "--num", "32", "--subsets", "4"], ["kid"]),
    ("pr", ["--data", "{db}", "--num", "32"], ["precision", "recall"]),
    ("ppl", ["--num", "16", "--space", "w", "--sampling", "end"], ["ppl"]),
    ("ls", ["--num", "32"], ["ls_z", "ls_w"]),
])
def test_metrics(metric, extra, keys, run_dir, shapes_db, detector_file, tmp_path):
    args = [a.replace("{db}", str(shapes_db)) for a in extra]
    if "--data" in args:
        args += ["--cache-dir", str(tmp_path / "cache")]
    res = invoke("metrics", metric, run_dir, *args, "--detector", detector_file, "--batch", "16", "--device", "cpu",
                 "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for k in keys:
        assert np.isfinite(out[k])
