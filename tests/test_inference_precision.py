"""The commands whose outputs users compare compute in fp32 unless asked, check every input before
`--precision auto` times anything, and record the precision in every PNG and latent sidecar.
A faked AVX-512 BF16 + AMX CPU (tests/cpu_fakes.py) makes `auto` probe and pick bf16 here too."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from sgan.cli import app

from cpu_fakes import fake_amx

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


def _latents(tmp_path):
    np.save(tmp_path / "a.npy", np.random.default_rng(0).standard_normal((6, 32)).astype(np.float32))
    np.save(tmp_path / "b.npy", np.random.default_rng(1).standard_normal((6, 32)).astype(np.float32))
    np.save(tmp_path / "wrong.npy", np.zeros((5, 32), np.float32))
    (tmp_path / "afile").write_text("not a folder")


def test_library_defaults_are_fp32():
    from sgan.metrics import api
    from sgan.play import figures, generate, video

    for fn in (generate.synthesize, generate.iter_render_seeds, generate.render_seeds, video.iter_frames,
               video.write_video, figures.truncation_figure, figures.variation_figure, figures.noise_figure,
               api.fid, api.kid, api.pr, api.ppl, api.ls):
        assert inspect.signature(fn).parameters["precision"].default == "fp32", fn.__qualname__


def test_every_output_says_fp32_and_nothing_is_timed(tiny_checkpoint, tmp_path, monkeypatch):
    fake_amx(monkeypatch, forbid=True)       # bf16 would win here, but nobody asked for auto
    _latents(tmp_path)
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    runs = [("generate", tiny_checkpoint, "--seeds", "0-2", "--grid", "--save-latents", "--outdir", tmp_path / "gen"),
            ("mix", tiny_checkpoint, "--coarse", a, "--fine", b, "--out", tmp_path / "mix" / "m.png"),
            ("mix", tiny_checkpoint, "--rows", "1,2", "--cols", "3", "--out", tmp_path / "mix" / "grid.png"),
            ("video", tiny_checkpoint, "--seeds", "0,1", "--seconds-per-seed", "0.1", "--fps", "10",
             "--frames", tmp_path / "frames", "--out", tmp_path / "v.mp4"),
            ("figure", "truncation", tiny_checkpoint, "--seeds", "0", "--psi", "1,0", "--out", tmp_path / "fig" / "t.png"),
            ("figure", "noise", tiny_checkpoint, "--seeds", "0", "--out", tmp_path / "fig" / "n.png"),
            ("edit", tiny_checkpoint, "--base", a, "--from", a, "--to", b, "--sweep", "0,1,2", "--out", tmp_path / "edit"),
            ("project", tiny_checkpoint, tmp_path / "gen" / "seed0001.png", "--steps", "2", "--w-avg-samples", "50",
             "--out", tmp_path / "proj")]
    for args in runs:
        result = invoke(*args)
        assert result.exit_code == 0, (args[0], result.output)
        assert "precision" not in result.output, result.output          # no probe line: nothing was timed
    pngs = sorted(tmp_path.rglob("*.png"))
    assert len(pngs) >= 15
    for png in pngs:
        text = Image.open(png).text
        assert text["precision"] == "fp32" and text["precision_requested"] == "fp32", png
        assert text["sgan_version"] and text["Software"].startswith("sgan ") and len(text["checkpoint_sha256"]) == 64, png
    seed = Image.open(tmp_path / "gen" / "seed0002.png").text
    assert seed["seed"] == "2" and seed["truncation_psi"] == "0.7" and seed["noise_mode"] == "const"
    assert Image.open(tmp_path / "frames" / "frame000001.png").text["frame"] == "1"
    side = json.loads((tmp_path / "gen" / "seed0002.json").read_text())
    assert side["precision"] == "fp32" and side["seed"] == 2 and side["latent"] == "seed0002.npy"
    assert json.loads((tmp_path / "proj" / "seed0001.json").read_text())["provenance"]["precision"] == "fp32"
    assert json.loads((tmp_path / "edit" / "edit.json").read_text())["precision"] == "fp32"
    assert json.loads((tmp_path / "fig" / "t.json").read_text())["precision"] == "fp32"


BAD = [
    (("generate", "{ckpt}", "--seeds", "0-1", "--noise-mode", "loud"), 2, "--noise-mode"),
    (("generate", "{ckpt}", "--seeds", "0-1", "--class", "3"), 2, "unconditional"),
    (("generate", "{ckpt}", "--seeds", "0-1", "--trunc-cutoff", "-1"), 2, "--trunc-cutoff"),
    (("generate", "{ckpt}", "--seeds", "0-1", "--outdir", "{tmp}/afile"), 2, "is a file"),
    (("generate", "{tmp}/none.pt", "--seeds", "0-1"), 1, "none.pt"),
    (("mix", "{ckpt}", "--coarse", "{tmp}/wrong.npy", "--fine", "{tmp}/a.npy", "--out", "{tmp}/m.png"), 1, "styles"),
    (("mix", "{ckpt}", "--coarse", "{tmp}/a.npy", "--fine", "{tmp}/a.npy", "--out", "{tmp}/m.jpg"), 2, ".png"),
    (("mix", "{ckpt}", "--rows", "1", "--cols", "2", "--styles", "9", "--out", "{tmp}/m.png"), 2, "must lie within"),
    (("mix", "{ckpt}", "--rows", "1", "--cols", "2", "--noise-mode", "loud", "--out", "{tmp}/m.png"), 2, "--noise-mode"),
    (("figure", "truncation", "{ckpt}", "--psi", "1,x", "--out", "{tmp}/f.png"), 2, "--psi"),
    (("figure", "noise", "{ckpt}", "--columns", "all,loud", "--out", "{tmp}/f.png"), 2, "columns"),
    (("figure", "noise", "{ckpt}", "--fine-from", "5", "--out", "{tmp}/f.png"), 2, "--fine-from"),
    (("figure", "variation", "{ckpt}", "--show", "9", "--samples", "4", "--out", "{tmp}/f.png"), 2, "--show"),
    (("figure", "truncation", "{ckpt}", "--out", "{tmp}"), 2, "is a folder"),
    (("edit", "{ckpt}", "--base", "{tmp}/wrong.npy", "--from", "{tmp}/a.npy", "--to", "{tmp}/b.npy", "--out", "{tmp}/e"), 1, "styles"),
    (("edit", "{ckpt}", "--base", "{tmp}/a.npy", "--from", "{tmp}/a.npy", "--to", "{tmp}/b.npy", "--styles", "9",
      "--out", "{tmp}/e"), 2, "must lie within"),
    (("edit", "{ckpt}", "--base", "{tmp}/a.npy", "--from", "{tmp}/a.npy", "--to", "{tmp}/b.npy", "--out", "{tmp}/afile"), 2, "is a file"),
    (("generate", "{ckpt}", "--precision", "fp64"), 2, "--precision"),
    (("generate", "{ckpt}", "--batch", "0"), 2, "--batch must be at least 1"),
    (("video", "{ckpt}", "--seeds", "0,1", "--crf", "60", "--out", "{tmp}/v.mp4"), 2, "--crf"),
    (("video", "{ckpt}", "--seeds", "0,1", "--noise-mode", "random", "--out", "{tmp}/v.mp4"), 2, "--noise-mode"),
    (("video", "{ckpt}", "--seeds", "0,1", "--frames", "{tmp}/afile", "--out", "{tmp}/v.mp4"), 2, "is a file"),
    (("figure", "variation", "{ckpt}", "--samples", "1", "--out", "{tmp}/f.png"), 2, "--samples must be at least 2"),
    (("metrics", "kid", "{ckpt}", "--data", "{tmp}/none.lmdb", "--seed", "-1"), 2, "--seed must be at least 0"),
    (("metrics", "fid", "{ckpt}", "--data", "{tmp}/none.lmdb"), 1, "no such dataset"),
    (("project", "{ckpt}", "{tmp}/a.npy", "--steps", "0", "--out", "{tmp}/p"), 2, "--steps must be at least 1"),
    (("mix", "{ckpt}", "--rows", "1", "--cols", "2", "--precision", "fp16", "--out", "{tmp}/m.png"), 2, "CUDA"),
]


@pytest.mark.parametrize("args,code,needle", BAD, ids=[f"{a[0]}-{i}" for i, (a, _, _) in enumerate(BAD)])
def test_bad_inputs_are_one_line_even_where_auto_would_time(tiny_checkpoint, tmp_path, monkeypatch, args, code, needle):
    asked = fake_amx(monkeypatch)
    _latents(tmp_path)
    final = [a.replace("{ckpt}", str(tiny_checkpoint)).replace("{tmp}", str(tmp_path)) for a in args]
    if "--precision" not in final:
        final += ["--precision", "auto"]
    result = invoke(*final)
    assert result.exit_code == code, result.output
    assert result.output.startswith("Error: ") and needle in result.output and result.output.count("\n") == 1, result.output
    assert asked == [], "the precision probe ran before the inputs were checked"


def test_auto_on_an_amx_cpu_picks_bf16_says_so_once_and_records_it(tiny_checkpoint, tmp_path, monkeypatch):
    asked = fake_amx(monkeypatch)
    result = invoke("generate", tiny_checkpoint, "--seeds", "0-3", "--precision", "auto", "--save-latents",
                    "--outdir", tmp_path / "auto")
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith("precision bf16 (auto: cpu flags avx512_bf16+amx_bf16; fastest that agrees with fp32")
    assert result.output.count("precision bf16") == 1 and sorted(set(asked)) == ["bf16", "fp32"]
    text = Image.open(tmp_path / "auto" / "seed0003.png").text
    assert text["precision"] == "bf16" and text["precision_requested"] == "auto" and "amx_bf16" in text["precision_reason"]
    assert json.loads((tmp_path / "auto" / "seed0003.json").read_text())["precision"] == "bf16"
    assert invoke("generate", tiny_checkpoint, "--seeds", "0-3", "--outdir", tmp_path / "fp32").exit_code == 0
    for s in range(4):   # the real bf16 computation ran: close to fp32, and the file says which it is
        a = np.asarray(Image.open(tmp_path / "auto" / f"seed{s:04d}.png"), dtype=int)
        b = np.asarray(Image.open(tmp_path / "fp32" / f"seed{s:04d}.png"), dtype=int)
        assert np.abs(a - b).max() <= 24
    result = invoke("mix", tiny_checkpoint, "--rows", "1", "--cols", "2", "--precision", "auto", "--out", tmp_path / "m.png")
    assert result.exit_code == 0 and result.output.startswith("precision bf16 (auto:"), result.output
    assert Image.open(tmp_path / "m.png").text["precision"] == "bf16"


def test_png_text_chunks_round_trip_and_stay_atomic(tmp_path, monkeypatch):
    from sgan.viz import read_png_text, save_png

    image = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    path = save_png(tmp_path / "x.png", image, text={"checkpoint": "/data/模型/ü.pt", "seed": 3, "styles": [0, 1],
                                                     "precision": "fp32", "skipped": None})
    assert read_png_text(path) == {"checkpoint": "/data/模型/ü.pt", "seed": "3", "styles": "[0, 1]", "precision": "fp32"}
    assert np.array_equal(np.asarray(Image.open(path)), image)
    import sgan.fileio

    def interrupted(src, dst):   # the new file is written, then Ctrl-C before it replaces the old one
        raise KeyboardInterrupt

    monkeypatch.setattr(sgan.fileio.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_png(path, image[::-1].copy(), text={"precision": "bf16"})
    assert read_png_text(path)["precision"] == "fp32" and sorted(p.name for p in tmp_path.iterdir()) == ["x.png"]
