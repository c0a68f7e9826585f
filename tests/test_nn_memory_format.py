"""ModelConfig.memory_format: channels_last activations compute what NCHW computes (within fp32
rounding), keep their layout through the networks, and `auto` follows the CPU's capability."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from sgan.nn import memory
from sgan.nn.config import ModelConfig
from sgan.nn.factory import make_discriminator, make_generator
from sgan.nn.layers import upscale2d


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


def forward_backward(cfg: ModelConfig, lod: float, dtype: torch.dtype = torch.float32):
    """G+D forward and backward of a seeded model (float64: the same weights, converted) -> (images, grads)."""
    torch.manual_seed(0)
    G, D = make_generator(cfg), make_discriminator(cfg)
    with torch.no_grad():  # non-zero noise strengths and biases, so every epilogue term counts
        for name, p in G.named_parameters():
            if "noise_strength" in name or name.endswith("bias"):
                p.add_(torch.randn_like(p) * 0.3)
    G, D = G.to(dtype), D.to(dtype)
    g = torch.Generator().manual_seed(1)
    z = torch.randn(4, cfg.z_dim, generator=g).to(dtype)
    noise = {k: torch.randn(4, 1, r, r, generator=g).to(dtype) for k, r in G.synthesis.noise_inputs(lod)}
    img = G(z, generator=noise, lod=lod) if cfg.arch == "stylegan1" else G(z, generator=noise)
    real = (torch.rand(img.shape, generator=g) * 2 - 1).to(dtype)
    kw = dict(lod=lod) if cfg.arch == "stylegan1" else {}
    (F.softplus(D(img, **kw)).mean() + F.softplus(-D(real, **kw)).mean()).backward()
    grads = {n: p.grad for n, p in [*G.named_parameters(), *D.named_parameters()] if p.grad is not None}
    return img.detach(), grads


@pytest.mark.parametrize("arch,lod", [("stylegan1", 0.0), ("stylegan1", 0.5), ("stylegan2", 0.0)])
@pytest.mark.parametrize("fused", ["always", "never"])
def test_channels_last_computes_what_nchw_computes(arch, lod, fused):
    base = ModelConfig.preset("tiny", 16, arch=arch)
    base = dataclasses.replace(base, fused_updown=fused, fused_modconv=fused)
    img_a, grads_a = forward_backward(dataclasses.replace(base, memory_format="contiguous"), lod)
    img_b, grads_b = forward_backward(dataclasses.replace(base, memory_format="channels_last"), lod)
    img_64, grads_64 = forward_backward(dataclasses.replace(base, memory_format="contiguous"), lod, torch.float64)
    assert img_a.is_contiguous() and not img_a.is_contiguous(memory_format=torch.channels_last)
    if not (arch == "stylegan2" and fused == "always"):   # (the grouped modconv's reshape goes back to NCHW)
        assert img_b.is_contiguous(memory_format=torch.channels_last)   # the layout reached the output
    # the images: 1e-5 of NCHW, or about as close to float64 as NCHW is (the 4x4 layer's instance norm
    # of a near-constant input amplifies rounding, in both layouts alike)
    assert rel(img_b, img_a) <= 1e-5 or rel(img_b.double(), img_64) <= 4 * rel(img_a.double(), img_64) + 1e-5
    assert grads_a.keys() == grads_b.keys() and len(grads_a) > 10
    for k in grads_a:
        if rel(grads_b[k], grads_a[k]) <= 1e-5:
            continue
        # Gradients fp32 resolves less well (the 4x4 epilogue's bias and noise strength nearly cancel
        # through the instance norm; NCHW is off float64 by up to 1e-2 there): CL about as close to
        # float64 as NCHW is.
        off_a, off_b = rel(grads_a[k].double(), grads_64[k]), rel(grads_b[k].double(), grads_64[k])
        assert off_b <= 4 * off_a + 1e-5, (k, off_a, off_b)


def test_upscale2d_keeps_channels_last_and_values():
    x = torch.randn(2, 5, 3, 4)
    y = upscale2d(x.contiguous(memory_format=torch.channels_last))
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(y, upscale2d(x))
    assert torch.equal(upscale2d(x), x.repeat_interleave(2, 2).repeat_interleave(2, 3))


@pytest.mark.parametrize("capability,expected", [("AVX2", False), ("AVX512", True), ("DEFAULT", False)])
def test_auto_follows_the_cpu_capability(monkeypatch, capability, expected):
    monkeypatch.setattr(memory, "_capability", [capability])
    assert memory.use_channels_last("auto", torch.device("cpu")) is expected
    assert memory.use_channels_last("auto", torch.device("cuda")) is False   # not measured on a GPU
    assert memory.use_channels_last("channels_last", torch.device("cpu")) is True
    assert memory.use_channels_last("contiguous", torch.device("cpu")) is False
    assert memory.describe_memory_format("auto", torch.device("cpu")) == (
        f"{'channels_last' if expected else 'contiguous'} (auto: cpu capability {capability})")
    x = torch.randn(2, 3, 4, 4)
    assert memory.to_memory_format(x, "auto").is_contiguous(memory_format=torch.channels_last) is expected


def test_auto_keeps_nchw_under_float16_autocast(monkeypatch):
    monkeypatch.setattr(memory, "_capability", ["AVX512"])
    x = torch.randn(2, 3, 4, 4)
    with torch.autocast("cpu", dtype=torch.float16):
        assert memory.to_memory_format(x, "auto").is_contiguous()
        assert memory.to_memory_format(x, "channels_last").is_contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert memory.to_memory_format(x, "auto").is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("profile,capability", [("avx2", "AVX2"), ("avx512", "AVX512"), ("amx", "AVX512")])
def test_a_faked_cpu_profile_sets_the_capability(monkeypatch, profile, capability):
    monkeypatch.setenv(memory.PROFILE_ENV, profile)
    monkeypatch.setattr(memory, "_capability", [])
    assert memory.cpu_capability() == capability
    assert memory.use_channels_last("auto", torch.device("cpu")) is (capability == "AVX512")


def test_bad_memory_format_is_refused():
    with pytest.raises(ValueError, match="memory_format must be"):
        ModelConfig(resolution=16, memory_format="nhwc")
    with pytest.raises(ValueError, match="memory_format must be"):
        memory.use_channels_last("nhwc", torch.device("cpu"))
