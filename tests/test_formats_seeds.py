"""Seeds like the original tools: after import, sgan's seed pipeline gives NVIDIA's generate-script inputs and images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from sgan.cli import app
from sgan.errors import UsageError
from sgan.formats import import_file
from sgan.latent import z_from_seed
from sgan.play.generate import render_seeds, synthesize
from sgan.play.seed_noise import numpy_seed_noise
from sgan.viz import to_uint8

FIX = Path(__file__).parent / "fixtures" / "import"
TF2 = FIX / "tf-sg2-32_stylegan2-tiny-32x32-config-f.pkl"
ADA = FIX / "ada-uncond_network-snapshot-000100.pkl"


def assert_matches(out, ref):
    torch.testing.assert_close(out, ref, rtol=0, atol=2e-5 * ref.abs().max().item() + 1e-6)


def test_tf_stylegan2_run_generator_seed_convention(one_thread):
    """run_generator.py generate-images --seeds=0 --truncation-psi=0.5: z, then every noise map, from RandomState(0)."""
    G = import_file(TF2).G_ema
    case = torch.load(FIX / "tf-sg2-32_expected.pt", weights_only=True)["cases"]["generate_images_seed0_psi0.5"]
    torch.testing.assert_close(z_from_seed(0, G.z_dim)[None], case["z"])
    for mine, theirs in zip(numpy_seed_noise(G, [0]), case["noise"], strict=True):
        torch.testing.assert_close(mine, theirs)
    with torch.no_grad():
        ws = G.map(z_from_seed(0, G.z_dim)[None], truncation_psi=0.5, truncation_cutoff=None)
        img = synthesize(G, ws, noise_mode="numpy", seeds=[0])
    assert_matches(img, case["images"])
    # batch independence: seed 0 inside a batch gets the same maps
    assert torch.equal(numpy_seed_noise(G, [3, 0])[2][1], numpy_seed_noise(G, [0])[2][0])


def test_ada_generate_py_seed_convention(one_thread):
    """generate.py --seeds=0-3 --trunc=1 (noise const): z = RandomState(seed).randn(1, z_dim)."""
    G = import_file(ADA).G_ema
    case = torch.load(FIX / "ada-uncond_expected.pt", weights_only=True)["cases"]["psi1_const"]
    z = torch.stack([z_from_seed(s, G.z_dim) for s in range(4)])
    torch.testing.assert_close(z, case["z"])
    with torch.no_grad():
        img = synthesize(G, G.map(z, truncation_psi=1.0), noise_mode="const", seeds=list(range(4)))
    assert_matches(img, case["images"])
    out = render_seeds(G, [0, 1, 2, 3], truncation_psi=1.0, noise_mode="const", batch_size=3)
    assert np.abs(out.images.astype(int) - to_uint8(case["images"]).astype(int)).max() <= 1


@pytest.mark.parametrize("src,fixture,case,seeds", [
    (TF2, "tf-sg2-32", "generate_images_seed0_psi0.5", [0]),   # run_generator.py generate-images --seeds=0 --truncation-psi=0.5
    (ADA, "ada-uncond", "psi1_const", [0, 1, 2, 3]),           # generate.py --seeds=0-3 (its defaults: trunc 1, noise const)
])
def test_sgan_generate_without_options_gives_nvidias_images(src, fixture, case, seeds, tmp_path, one_thread):
    """`sgan generate model.pt --seeds ...` after import: the source tool's sampling defaults come with the model."""
    ref = torch.load(FIX / f"{fixture}_expected.pt", weights_only=True)["cases"][case]["images"]
    model = tmp_path / "model.pt"
    runner = CliRunner()
    assert runner.invoke(app, ["import", str(src), "--out", str(model)]).exit_code == 0
    spec = f"{seeds[0]}-{seeds[-1]}"
    result = runner.invoke(app, ["generate", str(model), "--seeds", spec, "--outdir", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "original tool's sampling defaults" in result.output
    want = to_uint8(ref)
    for i, seed in enumerate(seeds):
        png = np.asarray(Image.open(tmp_path / "out" / f"seed{seed:04d}.png")).astype(int)
        assert np.abs(png - want[i].astype(int)).max() <= 1
    # options still win: psi 1 changes the TF StyleGAN2 image
    result = runner.invoke(app, ["generate", str(model), "--seeds", spec, "--trunc", "0.2", "--outdir", str(tmp_path / "o2")])
    assert result.exit_code == 0
    other = np.asarray(Image.open(tmp_path / "o2" / f"seed{seeds[0]:04d}.png")).astype(int)
    assert np.abs(other - want[0].astype(int)).max() > 1


def test_numpy_noise_needs_seeds():
    G = import_file(TF2).G_ema
    with pytest.raises(UsageError):
        synthesize(G, torch.zeros(1, G.num_ws, G.w_dim), noise_mode="numpy")


def test_a_conditional_import_needs_a_class_in_generate(tmp_path):
    ada_cond = str(FIX / "ada-cond_network-snapshot-000100.pkl")
    result = CliRunner().invoke(app, ["generate", ada_cond, "--seeds", "0", "--outdir", str(tmp_path)])
    assert result.exit_code == 2 and "class-conditional" in result.output and "--class" in result.output
    assert "Traceback" not in result.output and not list(tmp_path.glob("*.png"))
    result = CliRunner().invoke(app, ["generate", ada_cond, "--seeds", "0", "--class", "2", "--outdir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "seed0000.png").is_file()
