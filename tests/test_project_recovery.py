"""The projector recovers images the model made itself; its pieces follow the reference recipe."""

import numpy as np
import pytest
import torch
from PIL import Image

from sgan.errors import DataError
from sgan.nn import Generator, ModelConfig
from sgan.play.noise_maps import const_noise_maps, noise_layers, random_noise_maps, use_noise_maps
from sgan.play.project import (ProjectConfig, learning_rate, latent_noise_scale, load_target, noise_regularizer, project,
                          psnr, w_statistics)
from sgan.play.project_loss import PixelGradientLoss, perceptual_loss
from sgan.viz import to_uint8


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)   # tiny models run far faster on one thread than on two shared ones
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    G = Generator(ModelConfig.preset("tiny", 16)).eval().requires_grad_(False)
    stats = w_statistics(G, 2000, torch.Generator().manual_seed(1))
    return G, stats


def render(G, ws):
    with torch.no_grad():
        return to_uint8(G.synthesis(ws, noise_mode="const"))[0]


def known_w(G, w_avg, seed, psi=0.3):
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return w_avg + psi * (G.mapping(z) - w_avg)


def run(G, stats, target, space, steps=150):
    cfg = ProjectConfig(space=space, steps=steps, w_avg_samples=2000)
    return project(G, target, PixelGradientLoss(), cfg=cfg, generator=torch.Generator().manual_seed(2), w_stats=stats)


def test_recovers_an_image_made_from_a_known_w(model):
    G, stats = model
    w = known_w(G, stats[0], seed=1)[0]
    target = render(G, w.view(1, 1, -1).expand(1, G.num_ws, -1))
    start = psnr(render(G, stats[0].view(1, 1, -1).expand(1, G.num_ws, -1)), target)
    result = run(G, stats, target, "w")
    assert result.ws.shape == (G.num_ws, G.w_dim)
    assert torch.equal(result.ws[0], result.ws[-1])                 # W: one w for every layer
    assert result.psnr_db > 35 and result.psnr_db > start + 20, (start, result.psnr_db)
    assert float((result.ws[0] - w).norm() / w.norm()) < 0.05       # the latent itself is found
    assert result.loss_name == "pixel-gradient"
    assert result.history[-1]["step"] == 150


def test_w_plus_fits_better_than_w(model):
    """A target from a known W+ latent (coarse styles of one w, the rest of another): W+ can
    reproduce it, one shared w cannot."""
    G, stats = model
    w = known_w(G, stats[0], seed=0)
    ws = torch.cat([w[0:1, None].expand(1, 3, -1), w[1:2, None].expand(1, G.num_ws - 3, -1)], dim=1)
    target = render(G, ws)
    in_w, in_wplus = run(G, stats, target, "w"), run(G, stats, target, "w+")
    assert in_wplus.psnr_db > in_w.psnr_db + 3, (in_w.psnr_db, in_wplus.psnr_db)
    assert not torch.equal(in_wplus.ws[0], in_wplus.ws[-1])


def test_projection_is_deterministic_given_the_generator(model):
    G, stats = model
    target = render(G, known_w(G, stats[0], seed=3)[0].view(1, 1, -1).expand(1, G.num_ws, -1))
    a, b = run(G, stats, target, "w+", steps=5), run(G, stats, target, "w+", steps=5)
    assert torch.equal(a.ws, b.ws) and np.array_equal(a.image, b.image)


def test_schedule_matches_the_reference():
    cfg = ProjectConfig(steps=1000)
    assert learning_rate(cfg, 0) == 0.0
    assert learning_rate(cfg, 25) == pytest.approx(0.05)            # half-way up the 5 % ramp
    assert learning_rate(cfg, 500) == pytest.approx(0.1)
    assert learning_rate(cfg, 875) == pytest.approx(0.05)           # half-way down the 25 % cosine
    assert learning_rate(cfg, 999) < 1e-3
    assert latent_noise_scale(cfg, 0, 2.0) == pytest.approx(0.1)    # 0.05 * w_std
    assert latent_noise_scale(cfg, 375, 2.0) == pytest.approx(0.025)
    assert latent_noise_scale(cfg, 750, 2.0) == 0.0


def test_noise_regularizer_penalises_correlated_noise():
    g = torch.Generator().manual_seed(0)
    white = [torch.randn(1, 1, 32, 32, generator=g)]
    smooth = [torch.nn.functional.interpolate(torch.randn(1, 1, 8, 8, generator=g), size=32, mode="bilinear")]
    smooth = [m / m.std() for m in smooth]
    assert float(noise_regularizer(smooth)) > 10 * float(noise_regularizer(white))


def test_w_statistics_mean_and_spread(model):
    G, _ = model
    w_avg, w_std = w_statistics(G, 500, torch.Generator().manual_seed(0))
    z = torch.randn(500, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        w = G.mapping(z)
    assert torch.allclose(w_avg, w.mean(0), atol=1e-5)
    assert w_std == pytest.approx(float((w - w.mean(0)).square().sum(1).mean().sqrt()), rel=1e-4)


def test_noise_maps_swap_in_and_restore(model):
    G, _ = model
    before = const_noise_maps(G)
    maps = random_noise_maps(G, 1, torch.Generator().manual_seed(0))
    with use_noise_maps(G, maps):
        assert all(layer.noise_const is m for layer, m in zip(noise_layers(G), maps))
    assert all(torch.equal(a, layer.noise_const) for a, layer in zip(before, noise_layers(G)))
    with pytest.raises(ValueError):
        with use_noise_maps(G, maps[:-1]):
            pass


@pytest.mark.parametrize("mode,size", [("RGBA", (40, 24)), ("L", (16, 16)), ("P", (30, 50)), ("I;16", (20, 20)), ("CMYK", (64, 33))])
def test_targets_of_any_mode_and_size(tmp_path, mode, size):
    rng = np.random.RandomState(0)
    if mode == "I;16":
        img = Image.fromarray((rng.rand(size[1], size[0]) * 65535).astype(np.uint16))
    else:
        img = Image.fromarray((rng.rand(size[1], size[0], 3) * 255).astype(np.uint8)).convert(mode)
    path = tmp_path / ("t.tif" if mode in ("I;16", "CMYK") else "t.png")
    img.save(path)
    out = load_target(path, 16, 3)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    assert load_target(path, 16, 1).shape == (16, 16, 1)


def test_unreadable_targets_are_data_errors(tmp_path):
    (tmp_path / "x.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="cannot use this image"):
        load_target(tmp_path / "x.png", 16)
    with pytest.raises(DataError, match="no such image"):
        load_target(tmp_path / "missing.png", 16)


def test_pixel_gradient_loss_and_fallback(tmp_path, monkeypatch):
    from sgan.errors import DetectorError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))      # no VGG16 weights anywhere
    for var in ("SGAN_VGG16_WEIGHTS", "SGAN_WEIGHTS_DIR"):
        monkeypatch.delenv(var, raising=False)
    loss, note = perceptual_loss("auto", device="cpu", lpips_weights=None)
    assert note is not None and loss.name == "pixel-gradient" and "LPIPS" in note   # the documented fallback
    with pytest.raises(DetectorError):
        perceptual_loss("lpips", device="cpu", lpips_weights=None)                  # asked for: no fallback
    loss, note = perceptual_loss("pixel-gradient", device="cpu")
    assert note is None and loss.name == "pixel-gradient"
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    d = PixelGradientLoss()(x, x)
    assert d.shape == (2,) and float(d.abs().max()) == 0
    assert float(PixelGradientLoss()(x, x.flip(-1)).min()) > 0
