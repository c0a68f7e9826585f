"""`sgan project` from the command line: the files it writes and its one-line errors."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sgan.checkpoint import load_generator
from sgan.cli import app
from sgan.play.generate import render_seeds
from sgan.latent import load_latent

from cpu_fakes import fake_amx

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("one_thread")


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def test_project_writes_latent_images_json_and_video(tiny_checkpoint, tmp_path):
    G = load_generator(tiny_checkpoint)
    photo = tmp_path / "photo.png"
    big = np.kron(render_seeds(G, [4]).images[0], np.ones((3, 4, 1), dtype=np.uint8))   # 48x64, not square
    Image.fromarray(big).save(photo)
    out = tmp_path / "proj"
    result = invoke("project", tiny_checkpoint, photo, "--out", out, "--steps", "6", "--w-avg-samples", "200", "--video")
    assert result.exit_code == 0, result.output
    for name in ("photo.npy", "photo-noise.npz", "photo-target.png", "photo-proj.png", "photo-compare.png",
                 "photo-progress.mp4", "photo.json"):
        assert (out / name).is_file(), name
    ws = load_latent(out / "photo.npy", num_ws=G.num_ws, w_dim=G.w_dim)
    assert ws.shape == (G.num_ws, G.w_dim)
    record = json.loads((out / "photo.json").read_text())
    assert record["space"] == "w+" and record["steps"] == 6 and record["loss"] in ("pixel-gradient", "lpips-vgg")
    assert isinstance(record["psnr_db"], float) and isinstance(record["perceptual_distance"], float)
    assert Image.open(out / "photo-proj.png").size == (16, 16)
    assert Image.open(out / "photo-compare.png").size == (3 * 16 + 4, 16)
    noise = np.load(out / "photo-noise.npz", allow_pickle=False)
    assert sorted(noise.files) == [f"layer{i:02d}" for i in range(G.num_ws)]
    from sgan.play.video import read_video_frames
    assert sum(1 for _ in read_video_frames(out / "photo-progress.mp4")) == 6


@pytest.mark.parametrize("precision", [(), ("--precision", "auto")], ids=["default", "auto-on-amx"])
def test_project_bad_inputs_are_one_line_errors(tiny_checkpoint, tmp_path, precision, monkeypatch):
    asked = fake_amx(monkeypatch)            # a CPU where auto would time bf16 and pick it
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n broken")
    (tmp_path / "afile").write_text("x")
    for args, code in (((bad,), 1), ((tmp_path / "none.png",), 1), ((bad, "--space", "z"), 2),
                       ((bad, "--loss", "detector"), 2), ((bad, "--out", tmp_path / "afile"), 2)):
        out = () if "--out" in args else ("--out", tmp_path / "o")
        result = invoke("project", tiny_checkpoint, *args, *precision, *out)
        assert asked == [], "the precision probe ran before the inputs were checked"
        assert result.exit_code == code, result.output
        assert result.output.startswith("Error: ") and result.output.count("\n") == 1, result.output
        assert "Traceback" not in result.output


def test_project_video_without_ffmpeg_is_one_line_error(tiny_checkpoint, tmp_path, monkeypatch):
    import imageio_ffmpeg

    def missing():
        raise RuntimeError("No ffmpeg exe could be found.")

    monkeypatch.setattr(imageio_ffmpeg, "get_ffmpeg_exe", missing)
    photo = tmp_path / "p.png"
    Image.new("RGB", (20, 20), "red").save(photo)
    result = invoke("project", tiny_checkpoint, photo, "--out", tmp_path / "o", "--video", "--steps", "2")
    assert result.exit_code == 1 and result.output.startswith("Error: no ffmpeg binary"), result.output
    assert not (tmp_path / "o").exists()
