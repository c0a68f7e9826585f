"""Generator and discriminator: shapes at every lod, the fade-in blend, truncation, mixing, determinism."""

import pytest
import torch

from sgan.play.generate import render_seeds
from sgan.nn import Discriminator, Generator, ModelConfig, mix_styles, truncate
from sgan.nn.layers import upscale2d


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", 32)
    G, D = Generator(cfg).eval(), Discriminator(cfg)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.normal_(0, 0.5)
    return cfg, G, D


@pytest.mark.parametrize("lod", [0.0, 0.25, 1.0, 1.5, 2.0, 2.9, 3.0])
def test_shapes_at_every_lod(nets, lod):
    cfg, G, D = nets
    z = torch.randn(4, cfg.z_dim)
    img = G(z, lod=lod, noise_mode="const")
    res = 32 // 2 ** int(lod)
    assert img.shape == (4, 3, res, res)
    assert G.synthesis.output_resolution(lod) == res
    assert D(img, lod=lod).shape == (4, 1)


def test_paper_widths_at_every_resolution():
    for res in (8, 16, 64):
        cfg = ModelConfig(resolution=res, fmap_base=256, fmap_max=16)  # paper layout, narrow for speed
        G, D = Generator(cfg), Discriminator(cfg)
        img = G(torch.randn(4, cfg.z_dim), noise_mode="none")
        assert img.shape == (4, 3, res, res) and D(img).shape == (4, 1)
        assert G.num_ws == 2 * cfg.resolution_log2 - 2


def test_intermediate_lod_is_exact_alpha_blend(nets):
    cfg, G, _ = nets
    ws = G.map(torch.randn(2, cfg.z_dim))
    low = G.synthesis(ws, lod=2.0, noise_mode="none")          # 8x8
    high = G.synthesis(ws, lod=1.0, noise_mode="none")         # 16x16
    mid = G.synthesis(ws, lod=1.25, noise_mode="none")
    alpha = 0.75
    assert torch.allclose(mid, torch.lerp(upscale2d(low), high, alpha), atol=1e-5)


def test_discriminator_fade_in_blends_skip_path(nets):
    cfg, _, D = nets
    img = torch.randn(4, 3, 16, 16)
    from sgan.nn.layers import downscale2d
    x_new = D.blocks[1](D.fromrgbs[2](img))               # the new 16 px block
    x_skip = D.fromrgbs[1](downscale2d(img))
    lod = 1.4
    expected = torch.lerp(x_skip, x_new, 0.6)
    for block in reversed(D.blocks[:1]):
        expected = block(expected)
    assert torch.allclose(D(img, lod=lod), D.epilogue(expected), atol=1e-5)


def test_truncation_identity_and_average(nets):
    cfg, G, _ = nets
    G.mapping.w_avg.normal_()
    ws = G.map(torch.randn(3, cfg.z_dim))
    assert torch.equal(truncate(ws, G.w_avg, truncation_psi=1.0, truncation_cutoff=None), ws)
    zero = truncate(ws, G.w_avg, truncation_psi=0.0, truncation_cutoff=None)
    assert torch.allclose(zero, G.w_avg.expand_as(ws))
    half = truncate(ws, G.w_avg, truncation_psi=0.5, truncation_cutoff=4)
    assert torch.allclose(half[:, :4], G.w_avg + 0.5 * (ws[:, :4] - G.w_avg), atol=1e-6)
    assert torch.equal(half[:, 4:], ws[:, 4:])


def test_w_avg_tracking_beta(nets):
    cfg, G, _ = nets
    G.mapping.w_avg.zero_()
    w = torch.ones(5, cfg.w_dim)
    G.mapping.update_w_avg(w)
    assert torch.allclose(G.w_avg, torch.full((cfg.w_dim,), 1 - 0.995))


def test_mixing_picks_layers(nets):
    cfg, G, _ = nets
    a, b = G.map(torch.randn(2, cfg.z_dim)), G.map(torch.randn(2, cfg.z_dim))
    mixed = mix_styles(a, b, torch.tensor([3, 5]))
    assert torch.equal(mixed[0, :3], a[0, :3]) and torch.equal(mixed[0, 3:], b[0, 3:])
    assert torch.equal(mixed[1, :5], a[1, :5]) and torch.equal(mixed[1, 5:], b[1, 5:])


def test_noise_modes(nets):
    cfg, G, _ = nets
    ws = G.map(torch.randn(2, cfg.z_dim))
    assert torch.equal(G.synthesis(ws, noise_mode="none"), G.synthesis(ws, noise_mode="none"))
    assert torch.equal(G.synthesis(ws, noise_mode="const"), G.synthesis(ws, noise_mode="const"))
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert torch.equal(G.synthesis(ws, generator=g1), G.synthesis(ws, generator=g2))
    assert not torch.equal(G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="random"))


@pytest.mark.parametrize("noise_mode", ["const", "random"])
def test_same_seed_same_image_at_batch_1_and_8(nets, noise_mode):
    _, G, _ = nets
    seeds = list(range(8))
    together = render_seeds(G, seeds, batch_size=8, noise_mode=noise_mode)
    alone = render_seeds(G, seeds, batch_size=1, noise_mode=noise_mode)
    assert torch.allclose(together.ws, alone.ws, atol=1e-5)
    assert (together.images.astype(int) - alone.images.astype(int)).__abs__().max() <= 1


def test_shape_errors_at_the_door(nets):
    cfg, G, D = nets
    with pytest.raises(ValueError, match="z must have shape"):
        G(torch.randn(2, cfg.z_dim + 1))
    with pytest.raises(ValueError, match="ws must have shape"):
        G.synthesis(torch.randn(2, 3, cfg.w_dim))
    with pytest.raises(ValueError, match="img must have shape"):
        D(torch.randn(2, 3, 16, 16), lod=0.0)


def test_constant_input_starts_as_ones_or_randn():
    official = Generator(ModelConfig.preset("tiny", 16))
    assert torch.equal(official.synthesis.blocks[0].const, torch.ones_like(official.synthesis.blocks[0].const))
    cpu = Generator(ModelConfig.preset("cpu", 16))
    const = cpu.synthesis.blocks[0].const
    assert cpu.cfg.const_init == "randn" and abs(float(const.std()) - 1.0) < 0.2
    with pytest.raises(ValueError, match="const_init"):
        ModelConfig(resolution=16, const_init="zeros")
