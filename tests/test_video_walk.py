"""`sgan video`: frame counts and sizes, endpoints, loops, grids, latents, noise/truncation modes, errors."""

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from sgan.checkpoint import load_generator
from sgan.cli import app
from sgan.play.generate import render_seeds
from sgan.play.video import read_video_frames, segment_positions, walk_animation, seed_keys, iter_frames

from cpu_fakes import fake_amx

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def png(path):
    return np.asarray(Image.open(path).convert("RGB"))


def frames_in(folder):
    return sorted(folder.glob("frame*.png"))


@pytest.mark.parametrize("space", ["w", "z"])
def test_walk_frame_count_size_and_endpoints(tiny_checkpoint, tmp_path, space):
    out, frames = tmp_path / "walk.mp4", tmp_path / "frames"
    result = invoke("video", tiny_checkpoint, "--seeds", "3,5,8", "--seconds-per-seed", "0.5", "--fps", "8",
                    "--space", space, "--trunc", "0.7", "--scale", "1", "--frames", frames, "--out", out)
    assert result.exit_code == 0, result.output
    files = frames_in(frames)
    assert len(files) == 2 * 4 + 1                            # (keys - 1) * frames per key + 1
    decoded = list(read_video_frames(out))
    assert len(decoded) == len(files) and decoded[0].shape == (16, 16, 3)
    G = load_generator(tiny_checkpoint)
    ends = render_seeds(G, [3, 8], truncation_psi=0.7, truncation_cutoff=None).images
    assert np.abs(png(files[0]).astype(int) - ends[0]).max() <= 1
    assert np.abs(png(files[-1]).astype(int) - ends[1]).max() <= 1
    err = lambda a, b: np.abs(a.astype(int) - b.astype(int)).mean()   # noqa: E731
    assert err(decoded[0], ends[0]) < err(decoded[0], ends[1])        # lossy (yuv420p), but the right picture
    assert err(decoded[-1], ends[1]) < err(decoded[-1], ends[0])
    assert not np.array_equal(png(files[1]), png(files[0]))


def test_loop_returns_to_the_start(tiny_checkpoint, tmp_path):
    frames = tmp_path / "f"
    result = invoke("video", tiny_checkpoint, "--seeds", "1,2", "--loop", "--seconds-per-seed", "0.5", "--fps", "8",
                    "--scale", "1", "--frames", frames, "--out", tmp_path / "loop.mp4")
    assert result.exit_code == 0, result.output
    files = frames_in(frames)
    assert len(files) == 2 * 4                                # closed path, no duplicate of frame 0
    G = load_generator(tiny_checkpoint)
    keys = seed_keys(G, [1, 2], space="w", truncation_psi=1.0, truncation_cutoff=None)
    anim = walk_animation(G, keys, space="w", cells=1, cols=1, frames_per_key=4, loop=True)
    ws, _ = anim.source([0, 7])
    nxt = segment_positions(2, 4, loop=True)
    assert nxt[-1, 0] == 1 and nxt[-1, 1] == pytest.approx(0.75)   # the last segment runs from key 1 ...
    with torch.no_grad():                                     # ... back to key 0: one more step lands on frame 0
        w_back = keys[1] + (keys[0] - keys[1]) * 1.0
    assert torch.allclose(w_back, ws[0], atol=1e-6)
    first = png(files[0]).astype(int)
    assert np.abs(png(files[-1]).astype(int) - first).mean() < np.abs(png(files[4]).astype(int) - first).mean()


def test_grid_and_latents(tiny_checkpoint, tmp_path):
    result = invoke("video", tiny_checkpoint, "--seeds", "0-7", "--grid", "2x2", "--seconds-per-seed", "0.25",
                    "--fps", "8", "--scale", "1", "--frames", tmp_path / "g", "--out", tmp_path / "g.mp4")
    assert result.exit_code == 0, result.output
    files = frames_in(tmp_path / "g")
    assert len(files) == 3 and png(files[0]).shape == (32, 32, 3)
    lat = tmp_path / "lat"
    assert invoke("generate", tiny_checkpoint, "--seeds", "0-2", "--save-latents", "--outdir", lat).exit_code == 0
    result = invoke("video", tiny_checkpoint, "--latents", lat / "seed0000.npy", lat / "seed0001.npy", lat / "seed0002.npy",
                    "--seconds-per-seed", "0.25", "--fps", "8", "--scale", "1", "--frames", tmp_path / "l",
                    "--out", tmp_path / "l.mp4")
    assert result.exit_code == 0, result.output
    files = frames_in(tmp_path / "l")
    assert len(files) == 5
    assert np.array_equal(png(files[-1]), png(lat / "seed0002.png"))


def test_noise_and_truncation_animations(tiny_checkpoint, tmp_path):
    result = invoke("video", tiny_checkpoint, "--mode", "noise", "--seeds", "0,1", "--seconds", "1", "--seconds-per-seed",
                    "0.5", "--fps", "8", "--loop", "--scale", "1", "--frames", tmp_path / "n", "--out", tmp_path / "n.mp4")
    assert result.exit_code == 0, result.output
    files = frames_in(tmp_path / "n")
    assert len(files) == 8 and png(files[0]).shape == (16, 32, 3)
    assert not np.array_equal(png(files[0]), png(files[2]))    # the noise moves (the fixture's noise is strong)
    result = invoke("video", tiny_checkpoint, "--mode", "truncation", "--seeds", "4", "--psi-from", "1", "--psi-to", "0",
                    "--seconds", "1", "--fps", "5", "--scale", "1", "--frames", tmp_path / "t", "--out", tmp_path / "t.mp4")
    assert result.exit_code == 0, result.output
    files = frames_in(tmp_path / "t")
    G = load_generator(tiny_checkpoint)
    start = render_seeds(G, [4], truncation_psi=1.0).images[0]
    avg = render_seeds(G, [4], truncation_psi=0.0, truncation_cutoff=None).images[0]
    assert len(files) == 5
    assert np.abs(png(files[0]).astype(int) - start).max() <= 1
    assert np.abs(png(files[-1]).astype(int) - avg).max() <= 1


def test_frames_stream_in_batches(tiny_checkpoint):
    G = load_generator(tiny_checkpoint)
    keys = seed_keys(G, [0, 1], space="w", truncation_psi=1.0, truncation_cutoff=None)
    anim = walk_animation(G, keys, space="w", cells=1, cols=1, frames_per_key=5, loop=False)
    gen = iter_frames(G, anim, batch=2)
    first = next(gen)                                          # a generator: frames come as rendered
    rest = list(gen)
    assert first.shape == (16, 16, 3) and len(rest) == 5
    again = list(iter_frames(G, anim, batch=4))
    assert all(np.abs(a.astype(int) - b).max() <= 1 for a, b in zip([first] + rest, again))


@pytest.mark.parametrize("args,code,needle", [
    (("--seeds", "0,1", "--grid", "2x"), 2, "--grid"),
    (("--seeds", "0,1", "--grid", "0x2"), 2, "--grid"),
    (("--seeds", "0,1,2", "--grid", "2x2"), 2, "grid cells"),
    (("--seeds", "0,1", "--seconds-per-seed", "0"), 2, "--seconds-per-seed must be a finite number above 0"),
    (("--seeds", "0,1", "--seconds-per-seed", "0.001"), 2, "zero frames"),
    (("--seeds", "0", ), 2, "two keyframes"),
    (("--seeds", "0,1", "--fps", "0"), 2, "--fps"),
    (("--mode", "spin",), 2, "--mode"),
    (("--mode", "truncation", "--seconds", "0"), 2, "--seconds must be a finite number above 0"),
    (("--mode", "truncation", "--seconds", "0.001"), 2, "zero frames"),
])
@pytest.mark.parametrize("precision", [(), ("--precision", "auto")], ids=["default", "auto-on-amx"])
def test_bad_video_options_are_one_line_errors(tiny_checkpoint, tmp_path, args, code, needle, precision, monkeypatch):
    asked = fake_amx(monkeypatch)            # a CPU where auto would time bf16 and pick it
    result = invoke("video", tiny_checkpoint, *args, *precision, "--out", tmp_path / "x.mp4")
    assert asked == [], "the precision probe ran before the options were checked"
    assert result.exit_code == code, result.output
    assert result.output.startswith("Error: ") and needle in result.output and result.output.count("\n") == 1
    assert not (tmp_path / "x.mp4").exists()


@pytest.mark.parametrize("precision", [(), ("--precision", "auto")], ids=["default", "auto-on-amx"])
def test_wrong_latent_shape_is_one_line_error(tiny_checkpoint, tmp_path, precision, monkeypatch):
    asked = fake_amx(monkeypatch)
    np.save(tmp_path / "a.npy", np.zeros((3, 7), np.float32))
    np.save(tmp_path / "b.npy", np.zeros((6, 32), np.float32))
    result = invoke("video", tiny_checkpoint, "--latents", tmp_path / "a.npy", tmp_path / "b.npy", *precision,
                    "--out", tmp_path / "x.mp4")
    assert result.exit_code == 1 and result.output.startswith("Error: ") and "w_dim" in result.output
    assert result.output.count("\n") == 1 and asked == []


def test_missing_ffmpeg_is_one_line_error(tiny_checkpoint, tmp_path, monkeypatch):
    import imageio_ffmpeg

    def missing():
        raise RuntimeError("No ffmpeg exe could be found. Install ffmpeg on your system.")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", missing)
    result = invoke("video", tiny_checkpoint, "--seeds", "0,1", "--out", tmp_path / "x.mp4")
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: no ffmpeg binary") and result.output.count("\n") == 1
    assert not (tmp_path / "x.mp4").exists()
