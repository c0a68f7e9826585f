"""Oracles: NVIDIA StyleGAN3 network pickles (configs T, R and a conditional T; tests/fixtures/import/sg3-*),
imported by sgan without running their code, reproduce what NVlabs/stylegan3 computed from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

import sgan
from sgan.cli import app
from sgan.formats import ImportFormatError, import_file
from sgan.formats import stylegan3 as sg3_format
from sgan.formats.safe_pickle import load_foreign
from sgan.nn import make_generator
from sgan.nn.stylegan3 import input_transform, inverse_transform
from sgan.play.generate import render_seeds
from sgan.viz import to_uint8

FIX = Path(__file__).parent / "fixtures" / "import"
SG3 = {name: FIX / f"{name}_network-snapshot-000100.pkl" for name in ("sg3-t", "sg3-r", "sg3-t-cond")}


def expected(name: str) -> dict:
    return torch.load(FIX / f"{name}_expected.pt", map_location="cpu", weights_only=True)


def assert_matches(out: torch.Tensor, ref: torch.Tensor) -> None:
    torch.testing.assert_close(out, ref, rtol=0, atol=2e-5 * ref.abs().max().item() + 1e-6)


@pytest.fixture(scope="module")
def imported():
    return {name: import_file(path) for name, path in SG3.items()}


@pytest.mark.parametrize("name", list(SG3))
def test_every_stored_output_is_reproduced(name, imported, one_thread):
    imp = imported[name]
    G, exp = imp.G_ema, expected(name)
    assert imp.format == "stylegan3" and imp.config.arch == "stylegan3" and imp.G is not None and imp.D is not None
    assert imp.config.sg3_radial_filters == (name == "sg3-r") and imp.config.sg3_conv_kernel == (1 if name == "sg3-r" else 3)
    torch.testing.assert_close(G.w_avg, exp["shared"]["w_avg"], rtol=0, atol=0)
    for case, c in exp["cases"].items():
        label = c["c"] if c["c"].numel() else None
        assert (label is not None) == (name == "sg3-t-cond")
        with torch.no_grad():
            if "z" in c:                                     # G_ema(z, c, truncation_psi, noise_mode='const')
                ws = G.map(c["z"], label, truncation_psi=c["truncation_psi"])
                assert_matches(ws, c["ws"])
                if "transform" in c:
                    with input_transform(G, translate=c["translate"], rotate=c["rotate"]) as g:
                        torch.testing.assert_close(g.synthesis.input.transform, c["transform"], rtol=0, atol=0)
                        img = g(c["z"], label, truncation_psi=c["truncation_psi"], noise_mode="const")
                    assert torch.equal(G.synthesis.input.transform, torch.eye(3))      # restored
                else:
                    img = G(c["z"], label, truncation_psi=c["truncation_psi"], noise_mode=c["noise_mode"])
            else:                                            # G_ema.synthesis(ws) from per-layer ws
                img = G.synthesis(c["ws"], noise_mode="const")
            assert_matches(img, c["images"])
            assert_matches(imp.D(c["images"], label), c["d_scores"].reshape(-1, 1))


@pytest.mark.parametrize("name", list(SG3))
def test_a_model_built_from_the_config_has_nvidias_filters_and_layers(name, imported):
    imp = imported[name]
    fresh = make_generator(imp.config).state_dict()
    theirs = imp.G_ema.state_dict()
    assert set(fresh) == set(theirs)
    filters = [k for k in fresh if k.endswith(("up_filter", "down_filter"))]
    assert len(filters) == 2 * (imp.config.sg3_num_layers + 1) - 2      # ToRGB has none
    for key in filters:
        torch.testing.assert_close(fresh[key], theirs[key], rtol=0, atol=1e-7 * theirs[key].abs().max().item())
    if name == "sg3-r":
        assert theirs["synthesis.L0_36_64.down_filter"].shape == (12, 12)          # radial (jinc) filter
        assert theirs["synthesis.L12_84_16.down_filter"].shape == (12,)            # critically sampled: separable


def test_seeds_render_as_gen_images_py(imported):
    G = imported["sg3-t"].G_ema
    G.sampling_defaults = imported["sg3-t"].defaults
    assert G.sampling_defaults == {"truncation_psi": 1.0, "truncation_cutoff": None, "noise_mode": "const"}
    ref = expected("sg3-t")["cases"]["psi1_const"]["images"]                # z of seeds 0..3
    out = render_seeds(G, [0, 1, 2, 3], truncation_psi=1.0, truncation_cutoff=None)
    mine, theirs = out.images.astype(int), to_uint8(ref).astype(int)
    assert np.abs(mine - theirs).max() <= 1 and (mine == theirs).mean() > 0.999


def test_import_cli_and_generate_with_class_on_the_pickle(tmp_path):
    runner = CliRunner()
    out = tmp_path / "t.pt"
    result = runner.invoke(app, ["import", str(SG3["sg3-t-cond"]), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "format: stylegan3" in result.output and "D (StyleGAN2's)" in result.output
    G = sgan.load_generator(out)
    assert G.sampling_defaults["truncation_psi"] == 1.0 and G.cfg.arch == "stylegan3" and G.c_dim == 3
    result = runner.invoke(app, ["generate", str(SG3["sg3-t-cond"]), "--seeds", "0-1", "--class", "2",
                                 "--outdir", str(tmp_path / "imgs")])
    assert result.exit_code == 0, result.output
    assert "--trunc 1.0" in result.output and sorted(p.name for p in (tmp_path / "imgs").iterdir()) == [
        "seed0000.png", "seed0001.png"]
    result = runner.invoke(app, ["generate", str(SG3["sg3-t-cond"]), "--seeds", "0", "--outdir", str(tmp_path / "x")])
    assert result.exit_code != 0 and "class-conditional" in result.output and "Traceback" not in result.output


def test_what_sgan_cannot_reproduce_is_refused_with_a_sentence():
    path = SG3["sg3-t"]
    data = load_foreign(path)
    data["G_ema"]["state"]["_init_kwargs"]["use_gamma"] = True
    with pytest.raises(ImportFormatError, match="unknown StyleGAN3 generator kwargs.*use_gamma"):
        sg3_format.convert(data, path=path)
    data = load_foreign(path)
    layer = data["G_ema"]["state"]["_modules"]["synthesis"]["state"]["_modules"]["L3_36_32"]["state"]
    layer["_buffers"]["down_filter"] = layer["_buffers"]["down_filter"].flip(0) * 1.01
    with pytest.raises(ImportFormatError, match="L3_36_32.down_filter is not the filter sgan designs"):
        sg3_format.convert(data, path=path)
    data = load_foreign(path)
    data["G_ema"]["state"]["_init_kwargs"]["margin_size"] = 8                # stored layers were built with 10
    with pytest.raises(ImportFormatError, match="not the ones its kwargs give"):
        sg3_format.convert(data, path=path)
    data = load_foreign(path)
    data["D"]["state"]["_init_kwargs"]["conv_clamp"] = None
    with pytest.raises(ImportFormatError, match="conv_clamp"):
        sg3_format.convert(data, path=path)


def test_the_transform_is_gen_images_py_make_transform_inverted():
    m = inverse_transform((0.3, -0.15), 20.0).double()
    a = np.radians(20.0)
    image = torch.tensor([[np.cos(a), np.sin(a), 0.3], [-np.sin(a), np.cos(a), -0.15], [0, 0, 1]])
    torch.testing.assert_close(m @ image, torch.eye(3, dtype=torch.float64), rtol=0, atol=1e-6)


def test_generate_translate_and_rotate_as_gen_images_py(tmp_path):
    from PIL import Image

    runner = CliRunner()
    c = expected("sg3-t")["cases"]["transform_psi1_const"]                # seeds 0..3, translate 0.3,-0.15, rotate 20
    args = ["generate", str(SG3["sg3-t"]), "--seeds", "0-3", "--translate", ",".join(map(str, c["translate"])),
            "--rotate", str(c["rotate"]), "--outdir", str(tmp_path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    mine = np.stack([np.asarray(Image.open(tmp_path / f"seed{s:04d}.png")) for s in range(4)]).astype(int)
    theirs = to_uint8(c["images"]).astype(int)
    assert np.abs(mine - theirs).max() <= 1 and (mine == theirs).mean() > 0.999
    for bad, message in [(["--translate", "0.3"], "two numbers"),
                         (["--rotate", "nan"], "rotate")]:
        result = runner.invoke(app, ["generate", str(SG3["sg3-t"]), "--seeds", "0", "--outdir", str(tmp_path), *bad])
        assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output
    other = FIX / "ada-uncond_network-snapshot-000100.pkl"
    result = runner.invoke(app, ["generate", str(other), "--seeds", "0", "--rotate", "10", "--outdir", str(tmp_path)])
    assert result.exit_code != 0 and "StyleGAN3" in result.output
