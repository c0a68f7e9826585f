"""The ModelConfig fields that record other implementations' conventions (set by `sgan import`)."""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from sgan.nn import ModelConfig, make_discriminator, make_generator


def _tiny(**kw) -> ModelConfig:
    return dataclasses.replace(ModelConfig.preset("tiny", 16), **kw)


def test_defaults_are_the_official_model():
    cfg = ModelConfig()
    assert (cfg.instance_norm_eps, cfg.upconv_bias_before_blur, cfg.mbstd_whole_batch, cfg.d_widen_first) == \
        (1e-8, False, False, False)
    assert ModelConfig.from_dict({"resolution": 16}).instance_norm_eps == 1e-8   # old checkpoints load as before


def test_whole_batch_mbstd_is_one_scalar_over_the_batch():
    torch.manual_seed(0)
    D = make_discriminator(_tiny(mbstd_whole_batch=True)).eval()
    x = torch.randn(8, D.epilogue.conv.weight.shape[1] - 1, 4, 4)
    seen = {}
    D.epilogue.conv.register_forward_pre_hook(lambda m, args: seen.setdefault("x", args[0]))
    D.epilogue(x)
    want = (x.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
    torch.testing.assert_close(seen["x"][:, -1], want.expand(8, 4, 4))


def test_bias_before_blur_and_eps_change_the_image_and_nothing_else():
    torch.manual_seed(0)
    G0 = make_generator(_tiny())
    G1 = make_generator(_tiny(upconv_bias_before_blur=True, instance_norm_eps=1e-5))
    G1.load_state_dict(G0.state_dict())                          # same keys: a convention, not new weights
    with torch.no_grad():
        for p in G0.parameters():
            p.add_(0.3 * torch.randn_like(p))
        G1.load_state_dict(G0.state_dict())
        ws = torch.randn(2, G0.num_ws, G0.w_dim)
        a = G0.synthesis(ws, noise_mode="const")
        b = G1.synthesis(ws, noise_mode="const")
        assert (a - b).abs().max() > 1e-3
        # the bias moved before the blur: at the border the blur of a constant bias is not the bias
        assert not G1.synthesis.blocks[1].epi0.add_bias and G0.synthesis.blocks[1].epi0.add_bias
        assert G1.synthesis.blocks[0].epi0.add_bias                # the 4x4 constant has no conv before a blur


def test_d_widen_first_moves_the_width_change():
    cfg = _tiny(fmap_base=128, fmap_max=32, fmap_min=4, d_widen_first=True)
    D = make_discriminator(cfg)
    blk = D.blocks[-1]                                           # 16 px: nf(3) -> nf(2)
    assert blk.conv0.weight.shape[:2] == (cfg.nf(2), cfg.nf(3)) and blk.conv1.weight.shape[:2] == (cfg.nf(2), cfg.nf(2))
    assert D(torch.randn(2, 3, 16, 16)).shape == (2, 1)
    F.mse_loss(D(torch.randn(2, 3, 16, 16)), torch.zeros(2, 1)).backward()


def test_stylegan2_d_whole_batch_mbstd():
    """StyleGAN2-ADA's mbstd_group_size=None (one group: the whole batch), kept as mbstd_whole_batch."""
    cfg = dataclasses.replace(ModelConfig.preset("tiny", 16, arch="stylegan2"), mbstd_group_size=4)
    torch.manual_seed(0)
    D4 = make_discriminator(cfg).eval()
    Dall = make_discriminator(dataclasses.replace(cfg, mbstd_whole_batch=True)).eval()
    D8 = make_discriminator(dataclasses.replace(cfg, mbstd_group_size=8)).eval()
    Dall.load_state_dict(D4.state_dict())
    D8.load_state_dict(D4.state_dict())
    img = torch.randn(8, 3, 16, 16)
    with torch.no_grad():
        torch.testing.assert_close(Dall(img), D8(img))
        assert (Dall(img) - D4(img)).abs().max() > 1e-6


def test_noise_shared_per_block_gives_both_layers_one_map():
    seen = {}
    for shared in (False, True):
        torch.manual_seed(0)
        G = make_generator(_tiny(noise_shared_per_block=shared))
        blk = G.synthesis.blocks[1]
        got = []
        for epi in (blk.epi0, blk.epi1):
            epi.register_forward_pre_hook(lambda m, args: got.append(args[4] if len(args) > 4 else None))
        G.synthesis(torch.randn(2, G.num_ws, G.w_dim), noise_mode="random", generator=torch.Generator().manual_seed(1))
        seen[shared] = got
    assert seen[False] == [None, None]
    a, b = seen[True]
    assert a is b and a.shape == (2, 1, 8, 8)
