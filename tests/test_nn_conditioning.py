"""StyleGAN 1 with class labels (c_dim > 0), the StyleGAN2-ADA scheme."""

import math

import pytest
import torch

from sgan.nn import ModelConfig, make_discriminator, make_generator
from sgan.nn.layers import pixel_norm


def cfg(c_dim):
    return ModelConfig.preset("tiny", 16).__class__(**{**ModelConfig.preset("tiny", 16).to_dict(), "c_dim": c_dim})


def test_unconditional_networks_are_unchanged():
    torch.manual_seed(0)
    G0, D0 = make_generator(cfg(0)), make_discriminator(cfg(0))
    assert not any("embed" in k for k in G0.state_dict()) and not any(k.startswith("mapping") for k in D0.state_dict())
    assert D0.state_dict()["epilogue.out.weight"].shape[0] == 1
    with pytest.raises(ValueError, match="unconditional"):
        G0(torch.randn(2, 32), torch.eye(3)[:2])


def test_mapping_normalises_z_and_the_embedding_separately():
    torch.manual_seed(0)
    G = make_generator(cfg(3))
    z, c = torch.randn(2, 32), torch.eye(3)[[0, 2]]
    x = torch.cat([pixel_norm(z), pixel_norm(G.mapping.embed(c))], dim=1)
    for layer in G.mapping.layers:
        x = layer(x)
    assert torch.allclose(G.mapping(z, c), x)
    assert G.mapping.layers[0].weight.shape[1] == 32 + 32
    with pytest.raises(ValueError, match="conditional"):
        G.mapping(z)
    img = G(z, c, lod=0.0)
    assert img.shape == (2, 3, 16, 16)
    assert not torch.allclose(G.mapping(z, torch.eye(3)[[1, 1]]), G.mapping(z, c))


def test_projection_discriminator():
    torch.manual_seed(0)
    D = make_discriminator(cfg(3))
    img, c = torch.randn(4, 3, 16, 16), torch.eye(3)[[0, 1, 2, 0]]
    cmap = D.mapping(c)
    assert cmap.shape == (4, D.epilogue.cmap_dim)
    feats = {}
    D.epilogue.out.register_forward_hook(lambda m, i, o: feats.setdefault("out", o))
    score = D(img, c)
    want = (feats["out"] * cmap).sum(dim=1, keepdim=True) / math.sqrt(D.epilogue.cmap_dim)
    assert score.shape == (4, 1) and torch.allclose(score, want, atol=1e-6)
