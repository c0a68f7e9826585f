"""sgan explore's library: a state renders the pixels and latent `sgan generate` / `sgan mix` write, the
saved command line reproduces the saved image, directions steer, and bad settings are sentences."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from explore_helpers import CLASSES, cond_model, sg2_model, sg3_model, write_directions
from sgan.cli import app
from sgan.errors import DataError, UsageError
from sgan.play.explore.directions import load_directions
from sgan.play.explore.render import Explorer
from sgan.play.explore.state import parse_state

runner = CliRunner()


def state(ex: Explorer, **payload):
    return parse_state(payload, ex.facts, defaults=ex.defaults)


def run_cli(command: str):
    argv = shlex.split(command)
    assert argv[0] == "sgan"
    result = runner.invoke(app, argv[1:])
    assert result.exit_code == 0, result.output
    return result


def pixels(path) -> np.ndarray:
    return np.asarray(Image.open(path))


@pytest.fixture
def sg2(tmp_path):
    return sg2_model(tmp_path)


def test_plain_state_is_what_generate_writes(sg2, tmp_path, one_thread):
    ex = Explorer(sg2)
    for payload in ({"seed": 7}, {"seed": 11, "truncation_psi": 0.5, "truncation_cutoff": 2, "noise_mode": "random"},
                    {"seed": 3, "noise_mode": "numpy", "truncation_psi": 1}):
        s = state(ex, **payload)
        saved = ex.save(s, tmp_path / "saved")
        assert [p.rsplit("/", 1)[1] for p in saved["files"]] == [f"seed{s.seed:04d}.{e}" for e in ("png", "npy", "json", "txt")]
        out = tmp_path / f"gen{s.seed}"
        run_cli(saved["command"].replace(str(tmp_path / "saved"), str(out)))
        np.testing.assert_array_equal(pixels(tmp_path / "saved" / f"seed{s.seed:04d}.png"), pixels(out / f"seed{s.seed:04d}.png"))
        np.testing.assert_array_equal(np.load(tmp_path / "saved" / f"seed{s.seed:04d}.npy"), np.load(out / f"seed{s.seed:04d}.npy"))
        np.testing.assert_array_equal(ex.render(s).image, pixels(out / f"seed{s.seed:04d}.png"))


def test_saved_files_carry_provenance_and_the_command(sg2, tmp_path, one_thread):
    ex = Explorer(sg2)
    s = state(ex, seed=5, mix_seed=9, mix_styles="fine")
    saved = ex.save(s, tmp_path)
    png, npy, sidecar, txt = saved["files"]
    text = Image.open(png).text
    assert text["command"] == "explore" and text["seed"] == "5" and json.loads(text["mix_styles"]) == [4, 5]
    assert text["checkpoint_sha256"] and text["precision"] == "fp32"
    body = json.loads(open(sidecar).read())
    assert body["latent"].endswith(".npy") and body["shape"] == [6, 32] and body["explore_state"]["mix_seed"] == 9
    assert open(txt).read().splitlines()[0] == saved["command"] == body["reproduce"]["command"]
    assert np.load(npy).shape == (6, 32) and np.load(npy).dtype == np.float32


def test_mixing_equals_the_mix_grid_tile(sg2, tmp_path, one_thread):
    ex = Explorer(sg2)
    s = state(ex, seed=2, mix_seed=8, mix_styles="0-3", truncation_psi=0.8, noise_mode="random")
    saved = ex.save(s, tmp_path / "saved")
    run_cli(saved["command"].replace(str(tmp_path / "saved"), str(tmp_path)))
    grid = pixels(tmp_path / "mix.png")
    r = ex.G.resolution
    np.testing.assert_array_equal(grid[r:, r:], pixels(saved["files"][0]))
    # the mixed latent: ws 0-3 from seed 8, the rest from seed 2
    a, b = ex.latent(state(ex, seed=2, truncation_psi=0.8)), ex.latent(state(ex, seed=8, truncation_psi=0.8))
    mixed = torch.from_numpy(np.load(saved["files"][1]))
    torch.testing.assert_close(mixed[:4], b[:4], rtol=0, atol=0)
    torch.testing.assert_close(mixed[4:], a[4:], rtol=0, atol=0)


def test_directions_steer_only_their_layers_and_the_command_renders_the_latent(sg2, tmp_path, one_thread):
    dirs = write_directions(tmp_path / "dirs.npz", w_dim=32, num_ws=6, layers=[2, 3, 4])
    ex = Explorer(sg2, directions=dirs)
    assert ex.info()["directions"]["names"] == ["d0", "d1", "d2"] and all(r >= 1 for r in ex.direction_range)
    base = ex.latent(state(ex, seed=4))
    assert torch.equal(ex.latent(state(ex, seed=4, directions=[0, 0, 0])), base)       # strength 0: identity
    s = state(ex, seed=4, directions=[1.5, 0, -2])
    moved = ex.latent(s)
    step = 1.5 * torch.from_numpy(ex.directions.vectors[0]) - 2 * torch.from_numpy(ex.directions.vectors[2])
    torch.testing.assert_close(moved[[2, 3, 4]] - base[[2, 3, 4]], step.expand(3, -1), rtol=0, atol=1e-5)
    assert torch.equal(moved[[0, 1, 5]], base[[0, 1, 5]])
    assert not np.array_equal(ex.render(s).image, ex.render(state(ex, seed=4)).image)
    saved = ex.save(s, tmp_path / "saved")
    assert "--coarse" in saved["command"]
    run_cli(saved["command"])
    check = pixels(str(saved["files"][0]).replace(".png", "-check.png"))
    r = ex.G.resolution
    np.testing.assert_array_equal(check[:, 2 * r:], pixels(saved["files"][0]))


def test_class_state_matches_generate_with_class(tmp_path, one_thread):
    ex = Explorer(cond_model(tmp_path))
    assert ex.info()["classes"] == CLASSES
    s = state(ex, seed=1, **{"class": "triangle"})
    assert state(ex, seed=1, **{"class": "2"}) == s
    saved = ex.save(s, tmp_path / "saved")
    assert "--class triangle" in saved["command"]
    run_cli(saved["command"].replace(str(tmp_path / "saved"), str(tmp_path / "gen")))
    np.testing.assert_array_equal(pixels(saved["files"][0]), pixels(tmp_path / "gen" / "seed0001.png"))
    other = ex.render(state(ex, seed=1, **{"class": "circle"})).image
    assert not np.array_equal(other, pixels(saved["files"][0]))
    with pytest.raises(UsageError, match="not a class of this model"):
        state(ex, seed=1, **{"class": "hexagon"})
    with pytest.raises(UsageError, match="class-conditional"):
        state(ex, seed=1)


def test_stylegan3_translate_and_rotate_match_generate(tmp_path, one_thread):
    ex = Explorer(sg3_model(tmp_path))
    assert ex.info()["input_transform"] is True
    s = state(ex, seed=0, translate=[0.25, -0.1], rotate=30, truncation_psi=1)
    saved = ex.save(s, tmp_path / "saved")
    assert "--translate 0.25,-0.1 --rotate 30" in saved["command"]
    run_cli(saved["command"].replace(str(tmp_path / "saved"), str(tmp_path / "gen")))
    np.testing.assert_array_equal(pixels(saved["files"][0]), pixels(tmp_path / "gen" / "seed0000.png"))
    assert not np.array_equal(ex.render(state(ex, seed=0, truncation_psi=1)).image, pixels(saved["files"][0]))
    layer = ex.G.synthesis.input.transform.clone()
    ex.render(s)
    assert torch.equal(ex.G.synthesis.input.transform, layer)          # restored after each render


@pytest.mark.parametrize("payload, message", [
    ({"seed": 2 ** 32}, "out of range"),
    ({"seed": -1}, "out of range"),
    ({"seed": "abc"}, "whole number"),
    ({"seed": 1.5}, "whole number"),
    ({"truncation_psi": "nan"}, "finite"),
    ({"truncation_cutoff": -1}, "out of range"),
    ({"noise_mode": "loud"}, "noise mode"),
    ({"class": "circle"}, "unconditional"),
    ({"mix_seed": 3}, "layers to take"),
    ({"mix_seed": 3, "mix_styles": "9-12"}, "must lie within"),
    ({"directions": [1.0]}, "no directions file"),
    ({"rotate": 10}, "StyleGAN3"),
    ({"colour": "red"}, "unknown setting"),
])
def test_bad_settings_are_sentences(sg2, payload, message):
    ex = Explorer(sg2)
    with pytest.raises(UsageError, match=message):
        state(ex, **payload)


def test_directions_file_is_checked(tmp_path):
    """The explorer reads dirs.npz through sgan.play.directions (whose own tests cover every broken
    file); here: a file of another model and a broken one are refused with one line."""
    good = dict(w_dim=32, num_ws=6)
    assert len(load_directions(write_directions(tmp_path / "ok.npz", **good), **good)) == 3
    cases = {
        "other model": (dict(w_dim=16, num_ws=6), {}, UsageError, "made for w_dim=16"),
        "missing key": (good, {"scores": None}, DataError, "missing scores"),
        "bad layers": (good, {"layers": np.array([0, 9])}, DataError, "within 0-5"),
        "nan": (good, {"scores": np.array([1, np.nan, 0], np.float32)}, DataError, "NaN"),
    }
    for name, (dims, override, error, message) in cases.items():
        path = write_directions(tmp_path / f"{name}.npz", **dims, **override)
        with pytest.raises(error, match=message):
            load_directions(path, **good)
    with pytest.raises(DataError, match="no such directions file"):
        load_directions(tmp_path / "none.npz", **good)


def test_cli_bad_input_is_one_line(sg2, tmp_path):
    for args, message in ((["--port", "70000"], "--port must be within"),
                          (["--directions", str(tmp_path / "none.npz")], "no such directions file")):
        result = runner.invoke(app, ["explore", str(sg2), *args])
        assert result.exit_code != 0 and "Error: " in result.output and message in result.output, result.output
        assert "Traceback" not in result.output
    result = runner.invoke(app, ["explore", str(tmp_path / "missing.pt")])
    assert result.exit_code != 0 and result.output.startswith("Error: ")
    result = runner.invoke(app, ["explore", "--help"])
    assert result.exit_code == 0 and "token" in result.output


def test_style_groups_are_the_models_as_sgan_mix_reads_them(sg2, tmp_path):
    from sgan.play.mixing import model_style_groups, parse_model_styles

    for ckpt in (sg2, sg3_model(tmp_path)):
        ex = Explorer(ckpt)
        groups = model_style_groups(ex.G)
        assert ex.info()["style_groups"] == {k: [r[0], r[-1]] if r else None for k, r in groups.items()}
        for name in ("coarse", "middle", "fine"):
            if groups[name]:
                assert list(state(ex, seed=0, mix_seed=1, mix_styles=name).mix_styles) == parse_model_styles(name, ex.G)
