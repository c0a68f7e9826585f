"""Oracles: StyleGAN2 checkpoints (TF config F, StyleGAN2-ADA unconditional and conditional, rosinality's three
layouts), imported and run by sgan, reproduce what their own code computed (tests/fixtures/import/README.md)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sgan.formats import import_file
from sgan.play.noise_maps import const_noise_maps, use_noise_maps

FIX = Path(__file__).parent / "fixtures" / "import"
ADA = {"ada-uncond": "ada-uncond_network-snapshot-000100.pkl", "ada-cond": "ada-cond_network-snapshot-000100.pkl"}
TF2 = FIX / "tf-sg2-32_stylegan2-tiny-32x32-config-f.pkl"
ROS2 = ["rosinality-sg2_010000.pt", "rosinality-sg2_g_ema.pt", "rosinality-sg2_converted.pt"]


def expected(name: str) -> dict:
    return torch.load(FIX / f"{name}_expected.pt", map_location="cpu", weights_only=True)


def assert_matches(out: torch.Tensor, ref: torch.Tensor) -> None:
    torch.testing.assert_close(out, ref, rtol=0, atol=2e-5 * ref.abs().max().item() + 1e-6)


@pytest.mark.parametrize("name", list(ADA))
def test_ada_pickles_reproduce_g_ema_and_d(name, one_thread):
    imp = import_file(FIX / ADA[name])
    assert imp.format == "ada" and imp.config.arch == "stylegan2" and imp.G is not None and imp.D is not None
    G = imp.G_ema
    cases = expected(name)["cases"]
    for case, c in cases.items():
        label = c["c"] if c["c"].numel() else None
        assert (label is not None) == (name == "ada-cond") and G.c_dim == (4 if label is not None else 0)
        cutoff = None if c["truncation_cutoff"] == -1 else c["truncation_cutoff"]
        with torch.no_grad():
            ws = G.map(c["z"], label, truncation_psi=c["truncation_psi"], truncation_cutoff=cutoff)
            img = G(c["z"], label, truncation_psi=c["truncation_psi"], truncation_cutoff=cutoff,
                    noise_mode=c["noise_mode"])
        assert_matches(ws, c["ws"])
        assert_matches(img, c["images"])
        if "d_scores" in c:
            with torch.no_grad():
                assert_matches(imp.D(c["images"], label), c["d_scores"].reshape(-1, 1))


def test_tf_stylegan2_reproduces_gs_run_and_run_generator(one_thread):
    imp = import_file(TF2)
    assert imp.format == "tf-stylegan2" and imp.config.channel_base == 128     # 2 x fmap_base 64
    G = imp.G_ema
    exp = expected("tf-sg2-32")
    torch.testing.assert_close(G.w_avg, exp["shared"]["dlatent_avg"])
    for case, c in exp["cases"].items():
        cutoff = None if c["truncation_cutoff"] == -1 else c["truncation_cutoff"]
        with torch.no_grad(), use_noise_maps(G, c["noise"]):
            ws = G.map(c["z"], truncation_psi=c["truncation_psi"], truncation_cutoff=cutoff)
            img = G.synthesis(ws, noise_mode="const")
        assert_matches(ws, c["dlatents"])
        assert_matches(img, c["images"])
        if "d_scores" in c:
            with torch.no_grad():
                assert_matches(imp.D(c["images"]), c["d_scores"].reshape(-1, 1))
    # the pickled noise variables are the const maps (cases psi1..: the file's own noise)
    for mine, theirs in zip(const_noise_maps(G), exp["cases"]["psi1"]["noise"]):
        torch.testing.assert_close(mine, theirs)


@pytest.mark.parametrize("file", ROS2)
def test_rosinality_sg2_layouts_reproduce_g_ema(file, one_thread):
    imp = import_file(FIX / file)
    assert imp.format == "rosinality-sg2"
    G = imp.G_ema
    exp = expected("rosinality-sg2")
    for case, c in exp["cases"].items():
        maps = c.get("noise") or const_noise_maps(G)              # randomize_noise=False: the noises.* buffers
        with torch.no_grad(), use_noise_maps(G, maps):
            w = G.mapping(c["z"])
            ws = w.unsqueeze(1).expand(-1, G.num_ws, -1)
            if "mean_latent" in c:
                mean = c["mean_latent"].reshape(1, 1, -1)
                ws = mean + c["truncation"] * (ws - mean)
            if "z2" in c:
                w2 = G.mapping(c["z2"]).unsqueeze(1).expand(-1, G.num_ws, -1)
                ws = torch.where(torch.arange(G.num_ws).view(1, -1, 1) < c["inject_index"], ws, w2)
            img = G.synthesis(ws, noise_mode="const")
        if "latent" in c:
            assert_matches(ws, c["latent"])
        assert_matches(img, c["images"])
        if "d_scores" in c and imp.D is not None:
            with torch.no_grad():
                assert_matches(imp.D(c["images"]), c["d_scores"].reshape(-1, 1))
    if file.endswith("converted.pt"):                              # latent_avg is kept: G.map truncates like generate.py
        c = exp["cases"]["trunc0.7_buffer_noise"]
        with torch.no_grad():
            assert_matches(G.map(c["z"], truncation_psi=0.7), c["latent"])
    if file.endswith("010000.pt"):
        assert imp.G is not None and imp.D is not None
        assert any("g_optim" in x for x in imp.left_behind) and any("ada_aug_p" in x for x in imp.left_behind)
        assert not torch.equal(imp.G.synthesis.b8.conv0.noise_const, G.synthesis.b8.conv0.noise_const)


def test_what_sgan_cannot_reproduce_is_refused_with_a_sentence():
    from sgan.formats import ImportFormatError, ada, tf_stylegan, tf_stylegan2
    from sgan.formats.safe_pickle import load_foreign

    G, D, Gs = load_foreign(TF2)
    Gs["components"]["synthesis"]["static_kwargs"]["architecture"] = "resnet"
    with pytest.raises(ImportFormatError, match="configs E and F"):
        tf_stylegan2.convert((G, D, Gs), path=TF2)
    Gs["components"]["synthesis"]["build_func_name"] = "G_synthesis"          # configs A-D / TF ADA
    with pytest.raises(ImportFormatError, match="G_synthesis_stylegan2"):
        tf_stylegan2.convert((G, D, Gs), path=TF2)
    sg1 = FIX / "tf-sg1-32_karras2019stylegan-tiny-32x32.pkl"
    G, D, Gs = load_foreign(sg1)
    Gs["static_kwargs"]["label_size"] = 10
    with pytest.raises(ImportFormatError, match="conditional"):
        tf_stylegan.convert((G, D, Gs), path=sg1)
    G, D, Gs = load_foreign(sg1)
    Gs["components"]["synthesis"]["static_kwargs"]["use_instance_norm"] = False
    with pytest.raises(ImportFormatError, match="use_instance_norm"):
        tf_stylegan.convert((G, D, Gs), path=sg1)
    data = load_foreign(FIX / ADA["ada-uncond"])
    data["G_ema"]["state"]["_init_kwargs"]["synthesis_kwargs"]["use_gamma"] = True
    with pytest.raises(ImportFormatError, match="use_gamma"):
        ada.convert(data, path=FIX / ADA["ada-uncond"])
    data["G_ema"]["class_name"] = "SomethingElse"
    with pytest.raises(ImportFormatError, match="StyleGAN3"):
        ada.convert(data, path=FIX / ADA["ada-uncond"])
