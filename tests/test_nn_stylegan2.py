"""StyleGAN2 networks: modulated conv forms, demodulation, widths, architectures, labels, gradients."""

import dataclasses
import math

import pytest
import torch

from sgan.nn import ModelConfig, make_discriminator, make_generator
from sgan.nn.resample import setup_filter
from sgan.nn.stylegan2.modconv import demod_coefficients, modulated_conv2d


def tiny(**kw):
    return dataclasses.replace(ModelConfig.preset("tiny", 16, arch="stylegan2"), **kw)


@pytest.mark.parametrize("up", [1, 2])
@pytest.mark.parametrize("demodulate", [True, False])
def test_fused_and_unfused_modconv_are_equal(up, demodulate):
    torch.manual_seed(0)
    x = torch.randn(3, 5, 6, 6, dtype=torch.float64)
    w = torch.randn(4, 5, 3, 3, dtype=torch.float64)
    s = torch.randn(3, 5, dtype=torch.float64)
    noise = torch.randn(3, 1, 6 * up, 6 * up, dtype=torch.float64)
    kw = dict(demodulate=demodulate, up=up, padding=1, resample_filter=setup_filter().double(), noise=noise)
    a = modulated_conv2d(x, w, s, fused=False, **kw)
    b = modulated_conv2d(x, w, s, fused=True, **kw)
    assert a.shape == (3, 4, 6 * up, 6 * up)
    assert torch.allclose(a, b, atol=1e-10)


def test_modconv_is_the_per_sample_conv_of_the_definition():
    torch.manual_seed(1)
    x = torch.randn(2, 3, 5, 5, dtype=torch.float64)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    s = torch.randn(2, 3, dtype=torch.float64)
    out = modulated_conv2d(x, w, s, padding=1)
    for n in range(2):
        wn = w * s[n].view(1, -1, 1, 1)
        wn = wn / torch.sqrt(wn.square().sum(dim=(1, 2, 3), keepdim=True) + 1e-8)
        assert torch.allclose(out[n:n + 1], torch.nn.functional.conv2d(x[n:n + 1], wn, padding=1), atol=1e-10)


def test_demodulation_coefficient_formula_and_unit_output_std():
    torch.manual_seed(2)
    w = torch.randn(64, 32, 3, 3, dtype=torch.float64)
    s = torch.randn(4, 32, dtype=torch.float64) + 1
    d = demod_coefficients(w, s)
    wn = w[None] * s[:, None, :, None, None]
    assert torch.allclose(d, torch.rsqrt(wn.square().sum(dim=(2, 3, 4)) + 1e-8), rtol=1e-12)
    x = torch.randn(4, 32, 40, 40, dtype=torch.float64)
    y = modulated_conv2d(x, w, s, padding=1)[:, :, 1:-1, 1:-1]   # interior: no zero padding
    std = y.std(dim=(2, 3))
    assert std.mean().item() == pytest.approx(1.0, abs=0.02)
    assert (std - 1).abs().max().item() < 0.1


def test_num_ws_and_noise_inputs():
    for r in (8, 16, 32):
        G = make_generator(dataclasses.replace(tiny(), resolution=r))
        assert G.num_ws == 2 * int(math.log2(r)) - 2
        layers = [m for m in G.synthesis.modules() if hasattr(m, "noise_strength")]
        assert len(layers) == G.num_ws - 1 and [m.layer_idx for m in layers] == list(range(G.num_ws - 1))
    assert ModelConfig.preset("paper", 1024, arch="stylegan2").num_ws == 18


def test_channel_tables_config_f_and_half():
    f = ModelConfig.preset("paper", 1024, arch="stylegan2")
    assert [f.channels(2 ** i) for i in range(2, 11)] == [512, 512, 512, 512, 512, 256, 128, 64, 32]
    h = ModelConfig.preset("half", 1024, arch="stylegan2")
    assert [h.channels(2 ** i) for i in range(2, 11)] == [512, 512, 512, 512, 256, 128, 64, 32, 16]
    assert {ModelConfig.preset("cpu", 256, arch="stylegan2").channels(2 ** i) for i in range(2, 9)} == {32}
    G = make_generator(ModelConfig.preset("paper", 256, arch="stylegan2"))
    assert G.synthesis.b128.conv1.weight.shape == (256, 256, 3, 3)
    assert G.synthesis.b256.conv0.weight.shape == (128, 256, 3, 3)
    assert G.synthesis.b4.const.shape == (512, 4, 4)


def test_initialisation_matches_the_official_code():
    torch.manual_seed(3)
    G = make_generator(ModelConfig.preset("cpu", 16, arch="stylegan2"))
    fc = G.mapping.fc0
    assert fc.weight.std().item() == pytest.approx(1 / 0.01, rel=0.05)       # stored N(0,1)/lr_mult
    assert fc.weight_gain == pytest.approx(0.01 / math.sqrt(128)) and fc.bias_gain == 0.01
    layer = G.synthesis.b8.conv0
    assert torch.all(layer.affine.bias == 1) and layer.noise_strength.shape == () and layer.noise_strength.item() == 0
    assert layer.noise_const.shape == (1, 1, 8, 8) and layer.affine.weight_gain == pytest.approx(1 / math.sqrt(128))
    assert G.synthesis.b16.torgb.weight_gain == pytest.approx(1 / math.sqrt(32))
    assert abs(G.synthesis.b4.const.std().item() - 1) < 0.1                # randn constant


def test_mapping_normalises_z_and_embedded_c_separately():
    torch.manual_seed(4)
    G = make_generator(tiny(c_dim=5))
    m = G.mapping
    z, c = torch.randn(3, 32), torch.eye(5)[:3]
    x = torch.cat([z * torch.rsqrt(z.square().mean(1, keepdim=True) + 1e-8),
                   (e := m.embed(c)) * torch.rsqrt(e.square().mean(1, keepdim=True) + 1e-8)], dim=1)
    assert m.fc0.weight.shape[1] == 32 + 32
    for i in range(m.num_layers):
        fc = getattr(m, f"fc{i}")
        x = torch.nn.functional.leaky_relu(x @ (fc.weight * fc.weight_gain).t() + fc.bias * fc.bias_gain, 0.2) * math.sqrt(2)
    assert torch.allclose(m(z, c), x, atol=1e-5)
    w = m(z, c)
    m.update_w_avg(w)
    assert torch.allclose(G.w_avg, w.mean(0) * 0.005, atol=1e-6)


@pytest.mark.parametrize("g_arch", ["skip", "resnet"])
@pytest.mark.parametrize("d_arch", ["resnet", "skip", "orig"])
def test_architectures_run_forward_and_backward(g_arch, d_arch):
    torch.manual_seed(5)
    cfg = tiny(g_architecture=g_arch, d_architecture=d_arch)
    G, D = make_generator(cfg), make_discriminator(cfg)
    img = G(torch.randn(4, cfg.z_dim))
    assert img.shape == (4, 3, 16, 16) and torch.isfinite(img).all()
    logits = D(img)
    assert logits.shape == (4, 1)
    logits.sum().backward()
    assert [n for n, p in G.named_parameters() if p.grad is None] == []
    assert [n for n, p in D.named_parameters() if p.grad is None] == []


def test_resnet_generator_has_one_torgb_and_skips():
    G = make_generator(tiny(g_architecture="resnet"))
    assert not hasattr(G.synthesis.b8, "torgb") and hasattr(G.synthesis.b16, "torgb")
    assert G.synthesis.b8.skip.weight.shape == (16, 16, 1, 1) and G.synthesis.b8.skip.bias is None


def test_conditional_shapes_and_projection_score():
    torch.manual_seed(6)
    cfg = tiny(c_dim=4)
    G, D = make_generator(cfg), make_discriminator(cfg)
    z, c = torch.randn(2, cfg.z_dim), torch.eye(4)[[1, 3]]
    img = G(z, c)
    assert img.shape == (2, 3, 16, 16)
    assert D.cmap_dim == cfg.channels(4) and D.b4.out.weight.shape == (D.cmap_dim, cfg.channels(4))
    score = D(img, c)
    assert score.shape == (2, 1)
    # score = sum(out * cmap) / sqrt(cmap_dim): recompute from the parts
    x = None
    im = img
    for res in D.block_resolutions:
        x, im = getattr(D, f"b{res}")(x, im)
    out = D.b4(x, im, None)
    assert torch.allclose(score, (out * D.mapping(None, c)).sum(1, keepdim=True) / math.sqrt(D.cmap_dim), atol=1e-6)
    with pytest.raises(ValueError, match="conditional"):
        G(z)
    with pytest.raises(ValueError, match="unconditional"):
        make_generator(tiny())(z, c)


def test_truncation_and_lod_contract():
    torch.manual_seed(7)
    G = make_generator(tiny())
    G.mapping.w_avg.normal_()
    ws = G.map(torch.randn(2, 32), truncation_psi=0.0, truncation_cutoff=2)
    assert torch.allclose(ws[:, :2], G.w_avg.expand(2, 2, -1)) and not torch.allclose(ws[:, 2], G.w_avg)
    with pytest.raises(ValueError, match="lod must be 0"):
        G.synthesis(ws, lod=1.0)
    with pytest.raises(ValueError, match="ws must have shape"):
        G.synthesis(ws[:, :3])


def test_noise_modes_and_seed_independence_of_batch():
    torch.manual_seed(8)
    G = make_generator(tiny()).eval()
    for m in G.synthesis.modules():
        if hasattr(m, "noise_strength"):
            m.noise_strength.data.fill_(0.5)
    ws = G.map(torch.randn(2, 32))
    const = G.synthesis(ws, noise_mode="const")
    assert torch.equal(const, G.synthesis(ws, noise_mode="const"))
    assert not torch.allclose(const, G.synthesis(ws, noise_mode="none"))
    gens = [torch.Generator().manual_seed(s) for s in (1, 2)]
    both = G.synthesis(ws, noise_mode="random", generator=gens)
    one = G.synthesis(ws[1:], noise_mode="random", generator=[torch.Generator().manual_seed(2)])
    assert torch.allclose(both[1:], one, atol=1e-6)


def test_conv_clamp_limits_activations():
    torch.manual_seed(9)
    G = make_generator(tiny(conv_clamp=0.5))
    peaks = []
    for m in G.synthesis.modules():
        if type(m).__name__ in ("SynthesisLayer", "ToRGBLayer"):
            m.register_forward_hook(lambda mod, args, out: peaks.append(out.abs().max().item()))
    G(torch.randn(2, 32))
    assert len(peaks) == (G.num_ws - 1) + 3 and max(peaks) <= 0.5 + 1e-6 and max(peaks) > 0.4


def test_training_step_gradients_with_r1_and_path_length_double_backward():
    """A tiny G/D step: logistic losses backward, R1 (create_graph through D) and path-length
    regularisation (create_graph through G's synthesis) both reach the weights."""
    torch.manual_seed(10)
    cfg = tiny(c_dim=3)
    G, D = make_generator(cfg), make_discriminator(cfg)
    z, c = torch.randn(4, cfg.z_dim), torch.eye(3)[[0, 1, 2, 0]]
    fake = G(z, c)
    loss_g = torch.nn.functional.softplus(-D(fake, c)).mean()
    loss_g.backward()
    assert G.synthesis.b16.conv1.weight.grad.abs().sum() > 0 and G.mapping.embed.weight.grad.abs().sum() > 0
    G.zero_grad(), D.zero_grad()
    real = torch.randn(4, 3, 16, 16, requires_grad=True)
    logits = D(real, c)
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    r1 = grad.square().sum(dim=(1, 2, 3)).mean()
    (torch.nn.functional.softplus(-logits).mean() + r1 * 5).backward()
    assert D.b16.conv0.weight.grad.abs().sum() > 0 and D.mapping.fc0.weight.grad.abs().sum() > 0
    ws = G.map(z, c).detach().requires_grad_(True)
    img = G.synthesis(ws)
    y = torch.randn_like(img) / math.sqrt(16 * 16)
    (g_ws,) = torch.autograd.grad((img * y).sum(), ws, create_graph=True)
    pl = g_ws.square().sum(2).mean(1).sqrt()
    ((pl - pl.detach().mean()).square().mean() + pl.mean()).backward()
    assert G.synthesis.b8.conv0.weight.grad.abs().sum() > 0 and G.synthesis.b8.conv0.affine.weight.grad.abs().sum() > 0


def test_fused_setting_gives_the_same_generator_output():
    torch.manual_seed(11)
    a = make_generator(tiny(fused_modconv="always"))
    b = make_generator(tiny(fused_modconv="never"))
    b.load_state_dict(a.state_dict())
    ws = a.map(torch.randn(3, 32))
    assert torch.allclose(a.synthesis(ws, noise_mode="const"), b.synthesis(ws, noise_mode="const"), atol=1e-5)


def test_synthesis_layer_is_the_official_order_of_operations():
    """modconv -> + noise * strength -> + bias -> lrelu * sqrt 2 (the folded gain changes nothing),
    with and without autograd (the in-place inference path)."""
    torch.manual_seed(12)
    G = make_generator(tiny())
    layer = G.synthesis.b8.conv0
    with torch.no_grad():
        layer.noise_strength.fill_(0.7)
        layer.bias.normal_()
    x, w = torch.randn(2, 16, 4, 4), torch.randn(2, 32)
    styles = layer.affine(w)
    ref = modulated_conv2d(x, layer.weight, styles, up=2, padding=1, resample_filter=layer.resample_filter)
    ref = ref + layer.noise_const * 0.7 + layer.bias.view(1, -1, 1, 1)
    ref = torch.nn.functional.leaky_relu(ref, 0.2) * math.sqrt(2)
    assert torch.allclose(layer(x, w, noise_mode="const"), ref, atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(layer(x, w, noise_mode="const"), ref, atol=1e-5)


@pytest.mark.parametrize("fused", ["never", "always"])
def test_bf16_autocast_stays_close_to_fp32(fused):
    torch.manual_seed(13)
    G = make_generator(tiny(fused_modconv=fused)).eval()
    ws = G.map(torch.randn(2, 32))
    with torch.no_grad():
        ref = G.synthesis(ws, noise_mode="const")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = G.synthesis(ws, noise_mode="const")
    assert low.dtype == torch.bfloat16 and (low.float() - ref).abs().max().item() < 0.1 * ref.abs().max().item()


def test_stylegan1_networks_follow_the_shared_contract():
    """Unconditional StyleGAN 1 G and D take c=None (math unchanged) and refuse labels with a clear ValueError."""
    cfg = ModelConfig.preset("tiny", 8)
    G, D = make_generator(cfg), make_discriminator(cfg)
    assert G.c_dim == 0 and D.c_dim == 0
    z = torch.randn(2, cfg.z_dim)
    torch.manual_seed(0)
    a = G(z, None, noise_mode="const")
    assert torch.equal(a, G(z, noise_mode="const")) and D(a, None).shape == (2, 1)
    with pytest.raises(ValueError, match="unconditional"):
        G(z, torch.zeros(2, 3))
    with pytest.raises(ValueError, match="unconditional"):
        D(a, torch.zeros(2, 3))
    # with c_dim > 0 StyleGAN 1 is conditional (the augment branch): labels are then required
    G3 = make_generator(dataclasses.replace(cfg, c_dim=3))
    with pytest.raises(ValueError, match="conditional"):
        G3(z)
    assert G3(z, torch.eye(3)[:2], noise_mode="const").shape == a.shape


def test_config_validation_and_presets():
    with pytest.raises(ValueError, match="g_architecture"):
        tiny(g_architecture="orig")
    with pytest.raises(ValueError, match="d_architecture"):
        tiny(d_architecture="dense")
    with pytest.raises(ValueError, match="fused_modconv"):
        tiny(fused_modconv="yes")
    with pytest.raises(ValueError, match="unknown stylegan2 model preset"):
        ModelConfig.preset("huge", 64, arch="stylegan2")
    with pytest.raises(ValueError, match="unknown architecture"):
        ModelConfig.preset("paper", 64, arch="stylegan9")
    cfg = ModelConfig.preset("paper", 64, arch="stylegan2")
    assert cfg.arch == "stylegan2" and cfg.g_architecture == "skip" and cfg.d_architecture == "resnet"
    assert cfg.mapping_layers == 8 and cfg.mapping_lrmul == 0.01 and cfg.w_avg_beta == 0.995 and cfg.c_dim == 0
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
