"""Oracles: StyleGAN 1 checkpoints of NVIDIA (TensorFlow) and rosinality, imported and run by sgan, reproduce
the images (and D scores) their own code computed (tests/fixtures/import/README.md)."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from sgan.formats import import_file
from sgan.formats.common import build, new_generator
from sgan.formats.rosinality_sg1 import generator_state
from sgan.formats.safe_pickle import load_foreign

FIX = Path(__file__).parent / "fixtures" / "import"
TF = {"tf-sg1-32": "tf-sg1-32_karras2019stylegan-tiny-32x32.pkl",
      "tf-sg1-128": "tf-sg1-128_karras2019stylegan-tiny-128x128.pkl"}
ROS = {"rosinality-sg1-cap16": ("rosinality-sg1-cap16_train_step-4.model", 32),
       "rosinality-sg1-cap8": ("rosinality-sg1-cap8_100000.model", 128)}


def expected(name: str) -> dict:
    return torch.load(FIX / f"{name}_expected.pt", map_location="cpu", weights_only=True)


def assert_matches(out: torch.Tensor, ref: torch.Tensor) -> None:
    """The fixture README's tolerance: 2e-5 of the reference's largest magnitude."""
    torch.testing.assert_close(out, ref, rtol=0, atol=2e-5 * ref.abs().max().item() + 1e-6)


@pytest.mark.parametrize("name", list(TF))
def test_tf_stylegan_reproduces_gs_run(name, one_thread):
    imp = import_file(FIX / TF[name])
    assert imp.format == "tf-stylegan" and imp.G is not None and imp.D is not None
    G, exp = imp.G_ema, expected(name)
    for case, c in exp["cases"].items():
        cutoff = None if c["truncation_cutoff"] == -1 else c["truncation_cutoff"]
        with torch.no_grad():
            ws = G.map(c["z"], truncation_psi=c["truncation_psi"], truncation_cutoff=cutoff)
            img = G.synthesis(ws, noise_mode="const")           # randomize_noise=False: the pickled noise maps
        assert_matches(ws, c["dlatents"])
        assert_matches(img, c["images"])
        if "d_scores" in c:
            with torch.no_grad():
                scores = imp.D(c["images"])
            assert_matches(scores, c["d_scores"].reshape(-1, 1))


def test_tf_stylegan_training_generator_differs_from_gs():
    imp = import_file(FIX / TF["tf-sg1-32"])
    a, b = imp.G.state_dict(), imp.G_ema.state_dict()
    assert not torch.equal(a["mapping.layers.0.weight"], b["mapping.layers.0.weight"])
    assert torch.equal(a["synthesis.blocks.1.epi0.noise_const"], b["synthesis.blocks.1.epi0.noise_const"])


def _set_noise(G, maps):
    """rosinality: both layers of block i add noise[i] (one map for the batch or one per sample)."""
    for i, block in enumerate(G.synthesis.blocks):
        if i < len(maps):
            block.epi0.noise_const = maps[i].clone()
            block.epi1.noise_const = maps[i].clone()


def _run_rosinality(G, c, resolution):
    _set_noise(G, c.get("noise") or c["noise_maps"])
    lod = math.log2(resolution) - 2 - c["step"] + (1 - c["alpha"])   # step s, alpha a -> sgan's level of detail
    with torch.no_grad():
        w = G.mapping(c["z"])
        ws = w.unsqueeze(1).expand(-1, G.num_ws, -1)
        if "mean_style" in c:
            mean = c["mean_style"].reshape(1, 1, -1)
            ws = mean + c["style_weight"] * (ws - mean)
        if "z2" in c:                                              # per-block mixing = per-layer pairs 2i, 2i+1
            a, b = c["mixing_range"]
            w2 = G.mapping(c["z2"]).unsqueeze(1).expand(-1, G.num_ws, -1)
            layer = torch.arange(G.num_ws).view(1, -1, 1)
            ws = torch.where((layer >= 2 * a) & (layer <= 2 * b + 1), w2, ws)
        return w, G.synthesis(ws, noise_mode="const", lod=lod), lod


@pytest.mark.parametrize("name", list(ROS))
def test_rosinality_sg1_reproduces_its_generator_and_discriminator(name, one_thread):
    file, resolution = ROS[name]
    imp = import_file(FIX / file, resolution=resolution)
    cfg = imp.config
    assert (cfg.instance_norm_eps, cfg.upconv_bias_before_blur, cfg.mbstd_whole_batch, cfg.d_widen_first) == \
        (1e-5, True, True, True)
    exp = expected(name)
    real = {k: c for k, c in exp["cases"].items() if not c.get("diagnostic")}
    assert len(real) >= 3
    for case, c in real.items():
        w, img, lod = _run_rosinality(imp.G_ema, c, resolution)
        if "w" in c:
            assert_matches(w, c["w"])
        assert_matches(img, c["images"])
        if "d_scores" in c:
            with torch.no_grad():
                assert_matches(imp.D(c["images"], lod=lod), c["d_scores"].reshape(-1, 1))


@pytest.mark.parametrize("name", list(ROS))
def test_rosinality_sg1_diagnostic_official_order(name, one_thread):
    """The same weights with the official bias order and eps reproduce the fixture's diagnostic images,
    and the recorded conventions are what separates them from the peer's outputs."""
    file, resolution = ROS[name]
    imp = import_file(FIX / file, resolution=resolution)
    data = load_foreign(FIX / file)
    g = data if "g_running" not in data else data["g_running"]
    official = dataclasses.replace(imp.config, instance_norm_eps=1e-8, upconv_bias_before_blur=False)
    G = build(new_generator(official), generator_state(g, official), what="diagnostic")
    (case,) = [c for c in expected(name)["cases"].values() if c.get("diagnostic")]
    _, img, _ = _run_rosinality(G, case, resolution)
    assert_matches(img, case["images"])
    _, peer_order, _ = _run_rosinality(imp.G_ema, case, resolution)
    assert (peer_order - case["images"]).abs().max() > 0.1      # the bias-before-blur convention matters


def test_rosinality_sg1_resolution_from_the_file_name_and_limits():
    imp = import_file(FIX / ROS["rosinality-sg1-cap16"][0])
    assert imp.config.resolution == 32                         # train_step-4: trained up to step 3
    full = import_file(FIX / ROS["rosinality-sg1-cap8"][0])
    assert full.config.resolution == 1024 and full.D is None and full.G is None
    with pytest.raises(Exception, match="power of two"):
        import_file(FIX / ROS["rosinality-sg1-cap8"][0], resolution=96)


def _rosinality_sg1_state(widths, code=8, n_mlp=2, seed=0):
    """Key names and shapes of rosinality's StyledGenerator / Discriminator (its 9 blocks) with the given
    per-block widths (widths[i] = channels of block i, 4 px ... 1024 px), random values."""
    g = torch.Generator().manual_seed(seed)
    rnd = lambda *s: torch.randn(*s, generator=g)  # noqa: E731
    G = {}
    for k in range(n_mlp):
        G[f"style.{2 * k + 1}.linear.weight_orig"], G[f"style.{2 * k + 1}.linear.bias"] = rnd(code, code), rnd(code)
    for i, c in enumerate(widths):
        p, cin = f"generator.progression.{i}", widths[max(i - 1, 0)]
        if i == 0:
            G[f"{p}.conv1.input"] = rnd(1, c, 4, 4)
        elif i <= 4:
            G[f"{p}.conv1.1.conv.weight_orig"], G[f"{p}.conv1.1.conv.bias"] = rnd(c, cin, 3, 3), rnd(c)
        else:
            G[f"{p}.conv1.0.weight"], G[f"{p}.conv1.0.bias"] = rnd(cin, c, 3, 3), rnd(c)
        for j in (1, 2):
            G[f"{p}.noise{j}.weight_orig"] = rnd(1, c, 1, 1)
            G[f"{p}.adain{j}.style.linear.weight_orig"] = rnd(2 * c, code)
            G[f"{p}.adain{j}.style.linear.bias"] = 1 + 0.2 * rnd(2 * c)
        G[f"{p}.conv2.conv.weight_orig"], G[f"{p}.conv2.conv.bias"] = rnd(c, c, 3, 3), rnd(c)
        G[f"generator.to_rgb.{i}.conv.weight_orig"], G[f"generator.to_rgb.{i}.conv.bias"] = rnd(3, c, 1, 1), rnd(3)
    D = {}
    for j in range(9):                                     # progression j reads 2^(10-j) px: in -> out
        cin, cout = widths[8 - j], widths[max(7 - j, 0)]
        D[f"from_rgb.{j}.0.conv.weight_orig"], D[f"from_rgb.{j}.0.conv.bias"] = rnd(cin, 3, 1, 1), rnd(cin)
        p = f"progression.{j}"
        if j < 8:
            D[f"{p}.conv1.0.conv.weight_orig"], D[f"{p}.conv1.0.conv.bias"] = rnd(cout, cin, 3, 3), rnd(cout)
            key = f"{p}.conv2.1.weight" if j <= 3 else f"{p}.conv2.1.conv.weight_orig"
            D[key], D[key.replace("weight_orig", "bias").replace(".weight", ".bias")] = rnd(cout, cout, 3, 3), rnd(cout)
        else:
            D[f"{p}.conv1.0.conv.weight_orig"], D[f"{p}.conv1.0.conv.bias"] = rnd(cin, cin + 1, 3, 3), rnd(cin)
            D[f"{p}.conv2.0.conv.weight_orig"], D[f"{p}.conv2.0.conv.bias"] = rnd(cin, cin, 4, 4), rnd(cin)
    D["linear.linear.weight_orig"], D["linear.linear.bias"] = rnd(1, widths[0]), rnd(1)
    return G, D


def test_rosinality_sg1_with_the_upstream_width_profile(tmp_path):
    """Full-size files narrow the channels (512 ... 16, here / 16) and widen D in its first conv; the
    widths must be found and every block, fused or not, must load and run."""
    widths = [32, 32, 32, 32, 16, 8, 4, 2, 1]
    G, D = _rosinality_sg1_state(widths)
    path = tmp_path / "train_step-6.model"                 # trained up to step 5: 128 px
    torch.save({"generator": G, "discriminator": D, "g_running": G, "g_optimizer": {}, "d_optimizer": {}}, path)
    imp = import_file(path)
    cfg = imp.config
    assert cfg.resolution == 128 and (cfg.fmap_base, cfg.fmap_max) == (512, 32)
    assert [cfg.nf(r - 1) for r in range(2, 8)] == widths[:6]
    assert imp.D.blocks[-1].conv0.weight.shape[:2] == (16, 8)   # 128 px block: 8 -> 16 in its first conv
    with torch.no_grad():
        img = imp.G_ema(torch.randn(2, 8), noise_mode="const")
        assert img.shape == (2, 3, 128, 128) and torch.isfinite(img).all()
        assert imp.D(img).shape == (2, 1)
    full = import_file(path, resolution=1024)
    assert full.config.nf(9) == 1 and full.G_ema.synthesis.blocks[8].conv0.weight.shape == (1, 2, 3, 3)
