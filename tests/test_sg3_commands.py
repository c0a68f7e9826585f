"""Every inference command on the StyleGAN3 fixture models (tests/fixtures/import/sg3-*): mix (style groups by
cutoff), video (gen_video.py's cubic spline, input sweeps), project (W and W+, no noise inputs), figure (truncation,
transform; the noise figures refused), edit, and metrics fid/kid/pr/ppl with the offline detector."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.interpolate
import torch
from PIL import Image
from typer.testing import CliRunner

from sgan.formats import load_generator   # sgan checkpoints and NVIDIA pickles
from sgan.cli import app
from sgan.latent import load_latent, parse_styles, z_from_seed
from sgan.nn.stylegan3 import input_transform
from sgan.nn.stylegan3.design import layer_plan
from sgan.play.generate import synthesize
from sgan.play.mixing import model_style_groups, parse_model_styles, sg3_style_groups
from sgan.viz import to_uint8

FIX = Path(__file__).parent / "fixtures" / "import"
SG3T = FIX / "sg3-t_network-snapshot-000100.pkl"
SG3R = FIX / "sg3-r_network-snapshot-000100.pkl"
SG3C = FIX / "sg3-t-cond_network-snapshot-000100.pkl"
ADA = FIX / "ada-uncond_network-snapshot-000100.pkl"

runner = CliRunner()
pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def ok(result):
    assert result.exit_code == 0, result.output
    return result


def refused(result, *words):
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    for w in words:
        assert w in result.output, result.output
    return result


def png(path) -> np.ndarray:
    return np.asarray(Image.open(path)).astype(int)


def close_uint8(a, b):
    assert a.shape == b.shape and np.abs(a - b).max() <= 1 and (a == b).mean() > 0.99


@pytest.fixture(scope="module")
def sg3t(tmp_path_factory):
    """sg3-t imported once through `sgan import` (the .pt every command below reads)."""
    out = tmp_path_factory.mktemp("sg3") / "sg3-t.pt"
    ok(invoke("import", SG3T, "--out", out))
    return out


@pytest.fixture(scope="module")
def latents(sg3t, tmp_path_factory):
    out = tmp_path_factory.mktemp("lat")
    ok(invoke("generate", sg3t, "--seeds", "0-2", "--save-latents", "--outdir", out))
    return out


# ----------------------------------------------------------------------------- mix

def test_style_groups_follow_the_layer_cutoffs():
    G = load_generator(SG3T)                                  # 64 px: 2 f_c = 4 .. 64 px over 16 ws
    assert {k: (r.start, r.stop) for k, r in model_style_groups(G).items()} == {
        "coarse": (0, 5), "middle": (5, 11), "fine": (11, 16)}
    G = load_generator(SG3C)                                  # 32 px: middle up to 16 px, coarse up to 8
    assert {k: (r.start, r.stop) for k, r in model_style_groups(G).items()} == {
        "coarse": (0, 6), "middle": (6, 10), "fine": (10, 16)}
    for resolution, want in [(1024, (3, 6)), (256, (4, 8))]:  # the released models' plans (cbase 32768)
        inp, layers = layer_plan(resolution=resolution, num_channels=3, channel_base=32768, channel_max=512)
        groups = sg3_style_groups([2 * inp.bandwidth] + [2 * s.out_cutoff for s in layers], resolution)
        assert (groups["coarse"].stop, groups["middle"].stop, groups["fine"].stop) == (*want, 16)
    assert parse_model_styles("middle,15", G) == [6, 7, 8, 9, 15]
    with pytest.raises(ValueError):
        sg3_style_groups([4.0, 2.0], 64)


def test_style_groups_of_other_models_are_unchanged(tiny_sg2_checkpoint):
    G = load_generator(tiny_sg2_checkpoint)
    for text in ("coarse", "middle", "fine", "0-2,5"):
        assert parse_model_styles(text, G) == parse_styles(text, G.num_ws)


def test_mix_files_and_grid_use_the_stylegan3_groups(sg3t, latents, tmp_path):
    out = tmp_path / "mix.png"
    ok(invoke("mix", sg3t, "--coarse", latents / "seed0000.npy", "--fine", latents / "seed0001.npy", "--out", out))
    G = load_generator(sg3t)
    a, b = (load_latent(latents / f"seed000{i}.npy", num_ws=16, w_dim=32) for i in (0, 1))
    want = a.clone()
    want[11:] = b[11:]                                        # middle falls back to coarse: only ws 11-15 from b
    mixed = to_uint8(synthesize(G, want[None]))[0].astype(int)
    close_uint8(png(out)[:, 128:], mixed)                     # the sources, then the mix
    assert Image.open(out).text["command"] == "mix" and Image.open(out).text["fine"].endswith("seed0001.npy")
    result = ok(invoke("mix", sg3t, "--rows", "1,2", "--cols", "3", "--styles", "fine", "--trunc", "1",
                       "--out", tmp_path / "grid.png"))
    assert "styles [11, 12, 13, 14, 15]" in result.output
    assert Image.open(tmp_path / "grid.png").size == (128, 192)


# ----------------------------------------------------------------------------- video

def gen_video_ws(ws_cell: np.ndarray, frames_per_key: int) -> np.ndarray:
    """NVIDIA gen_video.py's interpolation for one grid cell, written out from its description:
    keyframes tiled 2 + 1 + 2 times at x = -2K .. 3K-1, interp1d(kind='cubic'), frame i at i / w_frames."""
    k, wraps = len(ws_cell), 2
    x = np.arange(-k * wraps, k * (wraps + 1))
    y = np.tile(ws_cell, [wraps * 2 + 1, 1, 1])
    interp = scipy.interpolate.interp1d(x, y, kind="cubic", axis=0)
    return np.stack([interp(i / frames_per_key) for i in range(k * frames_per_key)]).astype(np.float32)


def test_cubic_walk_is_gen_video_py_interpolation():
    from sgan.play.video import seed_keys, walk_animation

    G = load_generator(SG3T)
    seeds = [3, 1, 4, 1, 5, 9]                                # 2 cells x 3 keyframes, cell c = seeds[3c:3c+3]
    keys = seed_keys(G, seeds, space="w", truncation_psi=1.0, truncation_cutoff=None)
    z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(G.z_dim) for s in seeds])).float()
    torch.testing.assert_close(keys, G.mapping(z).unsqueeze(1).expand(-1, 16, -1), rtol=0, atol=0)  # gen_video's ws
    anim = walk_animation(G, keys, space="w", cells=2, cols=2, frames_per_key=5, loop=True, interp="cubic")
    assert anim.num_frames == 15
    ws, maps = anim.source(list(range(15)))
    assert maps is None and ws.shape == (30, 16, 32) and ws.dtype == torch.float32
    ws = ws.reshape(15, 2, 16, 32)
    for cell in range(2):
        ref = gen_video_ws(keys[3 * cell:3 * cell + 3].numpy(), 5)
        torch.testing.assert_close(ws[:, cell], torch.from_numpy(ref), rtol=0, atol=1e-6)
    torch.testing.assert_close(ws[::5, 0], keys[:3], rtol=0, atol=1e-5)   # through every keyframe
    # without --loop: the spline through the keys alone, from the first key to the last
    anim = walk_animation(G, keys[:4], space="w", cells=1, cols=1, frames_per_key=3, loop=False, interp="cubic")
    ws, _ = anim.source([0, anim.num_frames - 1])
    assert anim.num_frames == 10
    torch.testing.assert_close(ws, keys[[0, 3]], rtol=0, atol=1e-5)


def test_video_cubic_from_the_cli_and_its_errors(sg3t, tmp_path):
    frames = tmp_path / "frames"
    ok(invoke("video", sg3t, "--seeds", "1,2", "--interp", "cubic", "--loop", "--seconds-per-seed", "0.5", "--fps", "4",
              "--scale", "1", "--frames", frames, "--out", tmp_path / "cubic.mp4"))
    assert sorted(p.name for p in frames.iterdir()) == [f"frame{i:06d}.png" for i in range(4)]
    ok(invoke("generate", sg3t, "--seeds", "1,2", "--outdir", tmp_path / "gen"))
    close_uint8(png(frames / "frame000000.png"), png(tmp_path / "gen" / "seed0001.png"))
    close_uint8(png(frames / "frame000002.png"), png(tmp_path / "gen" / "seed0002.png"))
    assert Image.open(frames / "frame000001.png").text["interp"] == "cubic"
    refused(invoke("video", sg3t, "--seeds", "1,2", "--interp", "cubic", "--out", tmp_path / "x.mp4"), "4 or more")
    refused(invoke("video", sg3t, "--seeds", "1,2", "--interp", "cubic", "--space", "z", "--loop",
                   "--out", tmp_path / "x.mp4"), "--space w")
    refused(invoke("video", sg3t, "--seeds", "1", "--mode", "noise", "--out", tmp_path / "x.mp4"), "no", "noise")
    assert not (tmp_path / "x.mp4").exists()


def test_input_sweeps_render_as_generate_translate_and_rotate(sg3t, tmp_path):
    frames = tmp_path / "rot"
    result = ok(invoke("video", sg3t, "--seeds", "2", "--rotate-sweep", "0:90", "--seconds", "0.75", "--fps", "4",
                       "--scale", "1", "--frames", frames, "--out", tmp_path / "rot.mp4"))
    assert "rotate 0 -> 90 deg" in result.output
    ok(invoke("generate", sg3t, "--seeds", "2", "--rotate", "45", "--outdir", tmp_path / "r45"))
    close_uint8(png(frames / "frame000001.png"), png(tmp_path / "r45" / "seed0002.png"))
    frames = tmp_path / "shift"
    ok(invoke("video", sg3t, "--seeds", "2", "--translate-sweep", "0.2,-0.1", "--seconds", "0.5", "--fps", "4",
              "--scale", "1", "--frames", frames, "--out", tmp_path / "shift.mp4"))
    ok(invoke("generate", sg3t, "--seeds", "2", "--translate", "0.2,-0.1", "--outdir", tmp_path / "t"))
    close_uint8(png(frames / "frame000001.png"), png(tmp_path / "t" / "seed0002.png"))
    assert not np.array_equal(png(frames / "frame000000.png"), png(frames / "frame000001.png"))
    # the transform is the identity again after a sweep (the buffer is restored)
    G = load_generator(sg3t)
    assert torch.equal(G.synthesis.input.transform, torch.eye(3))
    refused(invoke("video", ADA, "--seeds", "1", "--rotate-sweep", "90", "--out", tmp_path / "x.mp4"), "StyleGAN3")
    refused(invoke("video", sg3t, "--seeds", "1", "--rotate-sweep", "a:b", "--out", tmp_path / "x.mp4"), "START:END")
    refused(invoke("video", sg3t, "--seeds", "1", "--mode", "truncation", "--rotate-sweep", "9",
                   "--out", tmp_path / "x.mp4"), "--mode transform")


# ----------------------------------------------------------------------------- project

def test_project_w_by_default_and_w_plus_without_noise_maps(sg3t, latents, tmp_path):
    out = tmp_path / "w"
    result = ok(invoke("project", SG3T, latents / "seed0000.png", "--out", out, "--steps", "3", "--w-avg-samples", "64",
                       "--loss", "pixel-gradient"))
    assert "stored noise" not in result.output
    record = json.loads((out / "seed0000.json").read_text())
    assert record["space"] == "w" and record["config"]["mse_weight"] == 0.0 and record["files"]["noise"] is None
    assert not (out / "seed0000-noise.npz").exists()
    ws = load_latent(out / "seed0000.npy", num_ws=16, w_dim=32)
    assert torch.equal(ws, ws[:1].expand_as(ws))
    assert Image.open(out / "seed0000-compare.png").size == (64 * 2 + 2, 64)     # target | reconstruction
    out = tmp_path / "wplus"
    ok(invoke("project", sg3t, latents / "seed0000.png", "--out", out, "--steps", "3", "--w-avg-samples", "64",
              "--loss", "pixel-gradient", "--space", "w+"))
    ws = load_latent(out / "seed0000.npy", num_ws=16, w_dim=32)
    assert json.loads((out / "seed0000.json").read_text())["space"] == "w+"
    assert not torch.allclose(ws, ws[:1].expand_as(ws))                         # one w per style
    # the reconstruction written is the latent's rendering
    G = load_generator(sg3t)
    close_uint8(png(out / "seed0000-proj.png"), to_uint8(synthesize(G, ws[None]))[0].astype(int))


def test_project_moves_towards_the_target():
    from sgan.play.project import ProjectConfig, project
    from sgan.play.project_loss import perceptual_loss

    G = load_generator(SG3R)
    target = to_uint8(G.synthesis(G.map(z_from_seed(5, G.z_dim)[None]), noise_mode="const").detach())[0]
    loss_fn, _ = perceptual_loss("pixel-gradient", device="cpu")
    res = project(G, target, loss_fn, cfg=ProjectConfig(space="w", steps=8, w_avg_samples=64, lr=0.05),
                  generator=torch.Generator().manual_seed(0))
    assert res.noise == [] and res.history[-1]["loss"] < res.history[0]["loss"]


# ----------------------------------------------------------------------------- figure and edit

def test_figures_truncation_and_transform_and_the_noise_figures_refused(sg3t, tmp_path):
    from sgan.play.figures import transform_figure

    ok(invoke("figure", "truncation", sg3t, "--seeds", "0", "--psi", "1,0", "--trunc-cutoff", "16",
              "--out", tmp_path / "t.png"))
    assert json.loads((tmp_path / "t.json").read_text())["figure"] == "truncation"
    ok(invoke("figure", "transform", sg3t, "--seeds", "0-1", "--values", "0,30", "--out", tmp_path / "r.png"))
    assert json.loads((tmp_path / "r.json").read_text())["values"] == [0.0, 30.0]
    G = load_generator(sg3t)
    fig = transform_figure(G, [1], axis="translate-x", values=[0.0, 0.25])
    ws = G.map(z_from_seed(1, G.z_dim)[None])
    with input_transform(G, translate=(0.25, 0.0)):
        want = to_uint8(synthesize(G, ws))[0]
    assert np.array_equal(fig.cells[0, 1], want) and np.array_equal(fig.cells[0, 0], to_uint8(synthesize(G, ws))[0])
    for figure in ("variation", "noise"):
        refused(invoke("figure", figure, sg3t, "--seeds", "0", "--out", tmp_path / "n.png"), "no", "noise inputs")
    refused(invoke("figure", "transform", ADA, "--out", tmp_path / "n.png"), "StyleGAN3")
    assert not (tmp_path / "n.png").exists()


def test_edit_on_stylegan3_groups(sg3t, latents, tmp_path):
    out = tmp_path / "edit"
    ok(invoke("edit", sg3t, "--base", latents / "seed0000.npy", "--from", latents / "seed0001.npy",
              "--to", latents / "seed0002.npy", "--styles", "coarse", "--out", out))
    a, b, c = (load_latent(latents / f"seed000{i}.npy", num_ws=16, w_dim=32) for i in range(3))
    edited = load_latent(out / "edited.npy", num_ws=16, w_dim=32)
    torch.testing.assert_close(edited[:5], a[:5] + c[:5] - b[:5])
    assert torch.equal(edited[5:], a[5:])
    close_uint8(png(out / "edited.png"), to_uint8(synthesize(load_generator(sg3t), edited[None]))[0].astype(int))


# ----------------------------------------------------------------------------- metrics

@pytest.fixture(scope="module")
def data64(tmp_path_factory):
    from sgan.data.prepare import prepare_dataset

    out = tmp_path_factory.mktemp("data") / "shapes64.lmdb"
    prepare_dataset("builtin:shapes", out, max_size=64, min_size=16, count=48, workers=1)
    return out


@pytest.fixture(scope="module")
def detector_file(data64, tmp_path_factory):
    out = tmp_path_factory.mktemp("det") / "shapes-detector.pt"
    ok(runner.invoke(app, ["detector", "train", str(data64), "--out", str(out), "--epochs", "1", "--batch", "16",
                           "--device", "cpu", "--json"]))
    return out


@pytest.mark.parametrize("metric,extra,keys", [
    ("fid", ["--data", "{db}", "--num", "16"], ["fid"]),
    ("kid", ["--data", "{db}", "--num", "16", "--subsets", "2"], ["kid"]),
    ("pr", ["--data", "{db}", "--num", "16"], ["precision", "recall"]),
    ("ppl", ["--num", "8", "--space", "w", "--sampling", "full"], ["ppl"]),
])
def test_metrics_on_stylegan3(metric, extra, keys, sg3t, data64, detector_file, tmp_path):
    args = [a.replace("{db}", str(data64)) for a in extra]
    if "--data" in args:
        args += ["--cache-dir", str(tmp_path / "cache")]
    res = ok(invoke("metrics", metric, sg3t, *args, "--detector", detector_file, "--batch", "8", "--device", "cpu",
                    "--json"))
    out = json.loads(res.stdout)
    assert out["resolution"] == 64
    for k in keys:
        assert np.isfinite(out[k])


def test_ppl_on_stylegan3_is_deterministic_and_batch_independent():
    """StyleGAN3 has no noise: the pair of a sample renders the same whatever noise generators ppl draws,
    so d depends only on the latents, at any batch size."""
    from sgan.metrics.ppl import path_lengths

    G = load_generator(SG3T)
    dist = lambda x0, x1: (x0 - x1).square().flatten(1).sum(1)            # noqa: E731
    a = path_lengths(G, dist, space="w", num=6, batch=2, seed=3)
    b = path_lengths(G, dist, space="w", num=6, batch=6, seed=3)
    np.testing.assert_allclose(a, b, rtol=1e-2)            # float32 rounding over eps^2 = 1e-8
    assert np.all(a > 0)
    # the same d from the latents alone, rendered with noise mode const
    from sgan.metrics.features import latent_stream

    z0, z1 = (torch.from_numpy(latent_stream(3, G.z_dim, salt=s)(6)) for s in (1, 2))
    t = torch.from_numpy(np.random.default_rng(np.random.SeedSequence([3, 3])).uniform(0, 1, size=(6, 1))).float()
    with torch.no_grad():
        w0, w1 = G.mapping(z0), G.mapping(z1)
        img = [G.synthesis(torch.lerp(w0, w1, tt).unsqueeze(1).expand(-1, 16, -1), noise_mode="const")
               for tt in (t, t + 1e-4)]
    np.testing.assert_allclose(a, (dist(*img).double() / 1e-8).numpy(), rtol=1e-2)


def test_generate_refuses_a_transform_on_other_models_before_any_defaults_note(tmp_path):
    result = refused(invoke("generate", ADA, "--seeds", "0", "--rotate", "10", "--outdir", tmp_path), "StyleGAN3")
    assert "sampling defaults" not in result.output and not list(tmp_path.iterdir())
    result = refused(invoke("generate", ADA, "--seeds", "0", "--translate", "x", "--outdir", tmp_path), "two numbers")
    assert "converted in memory" not in result.output                     # a bad value fails before any loading


def test_a_conditional_stylegan3_pickle_with_class_in_mix_and_an_input_sweep(tmp_path):
    result = ok(invoke("mix", SG3C, "--rows", "1", "--cols", "3", "--styles", "coarse", "--class", "2", "--trunc", "1",
                       "--out", tmp_path / "mix.png"))
    assert "styles [0, 1, 2, 3, 4, 5]" in result.output                  # 32 px: coarse = 2 f_c up to 8 px
    frames = tmp_path / "f"
    ok(invoke("video", SG3C, "--seeds", "4", "--class", "1", "--rotate-sweep", "20", "--seconds", "0.25", "--fps", "8",
              "--scale", "1", "--frames", frames, "--out", tmp_path / "v.mp4"))
    ok(invoke("generate", SG3C, "--seeds", "4", "--class", "1", "--rotate", "20", "--outdir", tmp_path / "g"))
    close_uint8(png(frames / "frame000001.png"), png(tmp_path / "g" / "seed0004.png"))
    refused(invoke("video", SG3C, "--seeds", "4", "--rotate-sweep", "20", "--out", tmp_path / "x.mp4"), "--class")
