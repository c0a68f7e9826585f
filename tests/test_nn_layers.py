"""Equalized learning rate, blur, fused up/down sampling, AdaIN, mbstd."""

import math

import pytest
import torch
import torch.nn.functional as F

from sgan.nn.config import ModelConfig
from sgan.nn.stylegan1.discriminator import minibatch_stddev
from sgan.nn.layers import Blur, EqualConv2d, EqualLinear, downscale2d, instance_norm, upscale2d
from sgan.nn.stylegan1.synthesis import LayerEpilogue


def test_equal_linear_runtime_scale_and_init():
    torch.manual_seed(0)
    layer = EqualLinear(256, 512, gain=math.sqrt(2), lrmul=0.01)
    # stored weights ~ N(0, 1/lrmul): std 100 for lrmul 0.01
    assert layer.weight.std().item() == pytest.approx(100, rel=0.02)
    assert layer.weight_gain == pytest.approx(math.sqrt(2) / math.sqrt(256) * 0.01)
    x = torch.randn(8, 256)
    expected = x @ (layer.weight * layer.weight_gain).T + layer.bias * 0.01
    assert torch.allclose(layer(x), expected, atol=1e-5)


def test_equal_conv_runtime_scale():
    conv = EqualConv2d(16, 8, 3)
    assert conv.weight_gain == pytest.approx(math.sqrt(2) / math.sqrt(16 * 9))
    assert conv.weight.std().item() == pytest.approx(1.0, rel=0.1)
    x = torch.randn(2, 16, 8, 8)
    assert torch.allclose(conv(x), F.conv2d(x, conv.weight * conv.weight_gain, conv.bias, padding=1), atol=1e-5)


def test_fused_upsample_conv_equals_nearest_then_conv():
    torch.manual_seed(1)
    fused = EqualConv2d(6, 5, 3, bias=False, up=2)
    plain = EqualConv2d(6, 5, 3, bias=False)
    plain.weight.data.copy_(fused.weight.data)
    x = torch.randn(2, 6, 7, 7)
    assert torch.allclose(fused(x), plain(upscale2d(x)), atol=1e-5)


def test_fused_conv_downsample_equals_conv_then_avgpool():
    torch.manual_seed(2)
    fused = EqualConv2d(6, 5, 3, down=2)
    plain = EqualConv2d(6, 5, 3)
    plain.weight.data.copy_(fused.weight.data)
    plain.bias.data.copy_(fused.bias.data)
    x = torch.randn(2, 6, 8, 8)
    assert torch.allclose(fused(x), downscale2d(plain(x)), atol=1e-5)


def test_blur_is_normalised_121_filter():
    blur = Blur(1)
    assert torch.allclose(blur.kernel[0, 0], torch.tensor([[1., 2, 1], [2, 4, 2], [1, 2, 1]]) / 16)
    x = torch.ones(1, 1, 6, 6)
    assert torch.allclose(blur(x)[..., 1:-1, 1:-1], x[..., 1:-1, 1:-1])


def test_adain_output_has_style_mean_and_std():
    torch.manual_seed(3)
    epi = LayerEpilogue(channels=4, w_dim=8, resolution=8, layer_idx=0)
    w = torch.randn(2, 8)
    x = torch.randn(2, 4, 8, 8) * 3 + 5
    out = epi(x, w, noise_mode="none", generator=None)
    scale, shift = epi.affine(w).chunk(2, dim=1)
    normed = instance_norm(F.leaky_relu(x, 0.2))
    assert torch.allclose(out, normed * scale[..., None, None] + shift[..., None, None], atol=1e-5)
    # per-channel mean = the style's bias, std = |the style's scale|
    assert torch.allclose(out.mean(dim=(2, 3)), shift, atol=1e-4)
    assert torch.allclose(out.std(dim=(2, 3), unbiased=False), scale.abs(), atol=1e-3)


def test_adain_scale_is_bias_initialised_to_one():
    epi = LayerEpilogue(channels=3, w_dim=5, resolution=4, layer_idx=0)
    scale, shift = epi.affine(torch.zeros(1, 5)).chunk(2, dim=1)
    assert torch.allclose(scale, torch.ones(1, 3)) and torch.allclose(shift, torch.zeros(1, 3))
    assert torch.count_nonzero(epi.noise_strength) == 0


def test_minibatch_stddev_groups_of_four():
    torch.manual_seed(4)
    x = torch.randn(8, 3, 4, 4)
    out = minibatch_stddev(x, group_size=4, num_features=1)
    assert out.shape == (8, 4, 4, 4)
    # sample i is in group i mod 2 (the official reshape [G, M, ...])
    for m in range(2):
        members = x[m::2]
        std = (members.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        assert torch.allclose(out[m::2, 3], std.expand(4, 4, 4), atol=1e-5)
    with pytest.raises(ValueError):
        minibatch_stddev(torch.randn(6, 3, 4, 4), group_size=4)


def test_fmaps_follow_the_paper():
    cfg = ModelConfig(resolution=1024)
    assert [cfg.nf(r - 1) for r in range(2, 11)] == [512, 512, 512, 512, 256, 128, 64, 32, 16]
    assert cfg.num_ws == 18
    assert ModelConfig(resolution=32).num_ws == 8


def test_fused_updown_auto_rule_and_both_forms_give_one_network():
    """`auto` runs separate up/down where the 4x4 kernel outweighs the activations (512 channels at
    8 px) and fused elsewhere; `always`, `never` and `auto` networks with the same weights agree."""
    import dataclasses

    from sgan.nn import make_discriminator, make_generator
    from sgan.nn.config import ModelConfig, use_fused_updown

    assert not use_fused_updown("auto", channels=512, resolution=8)
    assert use_fused_updown("auto", channels=512, resolution=16)
    assert use_fused_updown("auto", channels=32, resolution=8)
    assert use_fused_updown("always", channels=512, resolution=8) and not use_fused_updown("never", channels=32, resolution=32)
    # channels_last activations: separate up to channels > r^2 / 2 (512 channels at 16 px run separate)
    assert not use_fused_updown("auto", channels=512, resolution=16, channels_last=True)
    assert use_fused_updown("auto", channels=512, resolution=32, channels_last=True)
    assert use_fused_updown("auto", channels=32, resolution=8, channels_last=True)
    cl = ModelConfig(resolution=16, fmap_base=4096, fmap_max=256, mapping_layers=2, w_dim=32, z_dim=32,
                     memory_format="channels_last")
    assert [b.fused_up for b in make_generator(cl).synthesis.blocks[1:]] == [False, False]
    assert [b.fused_down for b in make_discriminator(cl).blocks] == [False, False]
    cfg = ModelConfig(resolution=16, fmap_base=4096, fmap_max=256, mapping_layers=2, w_dim=32, z_dim=32,
                      memory_format="contiguous")
    torch.manual_seed(0)
    G, D = make_generator(cfg), make_discriminator(cfg)
    assert [b.fused_up for b in G.synthesis.blocks[1:]] == [False, True]   # 256 channels: separate at 8 px
    z = torch.randn(4, 32)
    img, logits = G(z, noise_mode="const"), D(G(z, noise_mode="const"))
    for mode in ("always", "never"):
        other = dataclasses.replace(cfg, fused_updown=mode)
        G2, D2 = make_generator(other), make_discriminator(other)
        G2.load_state_dict(G.state_dict())
        D2.load_state_dict(D.state_dict())
        assert torch.allclose(G2(z, noise_mode="const"), img, atol=1e-5)
        assert torch.allclose(D2(img), logits, atol=1e-5)
