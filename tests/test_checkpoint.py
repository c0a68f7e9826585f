"""Checkpoints: safe loading, clear errors for foreign or broken files, atomic writes."""

import argparse
import json
import pickle
import zipfile

import pytest
import torch

from sgan.checkpoint import (FORMAT_VERSION, load_checkpoint, load_generator, save_checkpoint, write_latest_pointer)
from sgan.errors import CheckpointError
from sgan.nn import Discriminator, Generator, ModelConfig


def _models():
    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", 8)
    return cfg, Generator(cfg), Discriminator(cfg)


def test_round_trip_with_weights_only(tmp_path):
    cfg, G, D = _models()
    path = save_checkpoint(tmp_path / "s.pt", config=cfg, G=G, G_ema=G, D=D, extra={"kimg": 1.5, "tick": 3})
    raw = torch.load(path, weights_only=True)  # opening never runs code
    assert raw["format_version"] == FORMAT_VERSION and json.loads(raw["config"]) == cfg.to_dict()
    ckpt = load_checkpoint(path)
    assert ckpt.config == cfg and ckpt.extra == {"kimg": 1.5, "tick": 3}
    G2 = load_generator(path)
    z = torch.randn(2, cfg.z_dim)
    assert torch.equal(G(z, noise_mode="const"), G2(z, noise_mode="const"))


def test_run_folder_resolves_latest_snapshot(tmp_path):
    cfg, G, D = _models()
    snap = save_checkpoint(tmp_path / "snapshot-000010.pt", config=cfg, G=G, G_ema=G, D=D)
    with pytest.raises(CheckpointError, match="no latest.json"):
        load_checkpoint(tmp_path)
    write_latest_pointer(tmp_path, snap, kimg=10)
    assert load_checkpoint(tmp_path).path == snap


def test_interrupted_save_keeps_previous_file(tmp_path):
    cfg, G, D = _models()
    path = save_checkpoint(tmp_path / "s.pt", config=cfg, G=G, G_ema=G, D=D, extra={"version": "old"})
    before = path.read_bytes()

    def failing_writer(obj, f):
        f.write(b"partial bytes of a checkpoint")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, config=cfg, G=G, G_ema=G, D=D, extra={"version": "new"}, write=failing_writer)
    assert path.read_bytes() == before
    assert load_checkpoint(path).extra == {"version": "old"}
    assert [p.name for p in tmp_path.iterdir()] == ["s.pt"]  # no temp file left behind


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="no such file"):
        load_checkpoint(tmp_path / "nope.pt")


def test_truncated_file(tmp_path):
    cfg, G, D = _models()
    path = save_checkpoint(tmp_path / "s.pt", config=cfg, G=G, G_ema=G, D=D)
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated|not an sgan"):
        load_checkpoint(tmp_path / "cut.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(tmp_path / "empty.pt")


def test_rosinality_checkpoint_is_named(tmp_path):
    torch.save({"g_ema": {"w": torch.zeros(1)}, "g": {}, "d": {}, "args": argparse.Namespace(size=256)}, tmp_path / "r.pt")
    with pytest.raises(CheckpointError, match="rosinality"):
        load_checkpoint(tmp_path / "r.pt")
    torch.save({"generator": {"w": torch.zeros(1)}, "g_running": {"w": torch.zeros(1)}}, tmp_path / "r1.pt")
    with pytest.raises(CheckpointError, match="rosinality"):
        load_checkpoint(tmp_path / "r1.pt")


def test_nvidia_pickle_is_named(tmp_path):
    path = tmp_path / "network-snapshot.pkl"
    path.write_bytes(pickle.dumps({"G_ema": "dnnlib.tflib.network.Network"}, protocol=3))
    with pytest.raises(CheckpointError, match="NVIDIA"):
        load_checkpoint(path)


def test_newer_format_version(tmp_path):
    cfg, G, D = _models()
    path = save_checkpoint(tmp_path / "s.pt", config=cfg, G=G, G_ema=G, D=D)
    data = torch.load(path, weights_only=True)
    data["format_version"] = FORMAT_VERSION + 1
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="newer"):
        load_checkpoint(path)


def test_state_dict_that_does_not_fit_config(tmp_path):
    cfg, G, D = _models()
    path = save_checkpoint(tmp_path / "s.pt", config=cfg, G=G, G_ema=G, D=D)
    data = torch.load(path, weights_only=True)
    data["config"] = json.dumps({**cfg.to_dict(), "w_dim": cfg.w_dim * 2})
    del data["checksums"]["fields"]  # as written before the fields were checksummed (else: "damaged")
    torch.save(data, path)
    with pytest.raises(CheckpointError, match="do not fit"):
        load_generator(path)


def test_text_file(tmp_path):
    (tmp_path / "notes.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="not an sgan checkpoint"):
        load_checkpoint(tmp_path / "notes.pt")
    assert zipfile.is_zipfile(tmp_path / "notes.pt") is False


@pytest.mark.parametrize("c_dim", [0, 3])
def test_stylegan2_round_trip(tmp_path, c_dim):
    import dataclasses

    from sgan.checkpoint import build_discriminator
    from sgan.nn import make_discriminator, make_generator

    torch.manual_seed(0)
    cfg = dataclasses.replace(ModelConfig.preset("tiny", 16, arch="stylegan2"), c_dim=c_dim, g_architecture="resnet")
    G, D = make_generator(cfg), make_discriminator(cfg)
    with torch.no_grad():
        G.synthesis.b8.conv0.noise_strength.fill_(0.3)
        G.mapping.w_avg.normal_()
    path = save_checkpoint(tmp_path / "s.pt", config=cfg, G=G, G_ema=G, D=D)
    ckpt = load_checkpoint(path)
    assert ckpt.config == cfg and ckpt.config.arch == "stylegan2"
    G2, D2 = load_generator(path), build_discriminator(ckpt)
    assert type(G2) is type(G) and torch.equal(G2.w_avg, G.w_avg)
    z = torch.randn(2, cfg.z_dim)
    c = torch.eye(3)[:2] if c_dim else None
    assert torch.equal(G(z, c, noise_mode="const"), G2(z, c, noise_mode="const"))
    img = torch.randn(2, 3, 16, 16)
    assert torch.equal(D(img, c), D2(img, c))


def test_old_stylegan1_checkpoint_without_arch_loads(tmp_path):
    """Checkpoints written before `arch`, `c_dim` and the StyleGAN2 fields existed load as stylegan1."""
    cfg, G, D = _models()
    path = save_checkpoint(tmp_path / "old.pt", config=cfg, G=G, G_ema=G, D=D)
    raw = torch.load(path, weights_only=True)
    old = json.loads(raw["config"])
    for key in ("arch", "c_dim", "channel_base", "channel_max", "g_architecture", "d_architecture", "conv_clamp",
                "fused_modconv", "cmap_dim", "d_mapping_layers"):
        old.pop(key)
    raw["config"] = json.dumps(old)
    raw["checksums"].pop("fields")  # such files predate the fields checksum too
    torch.save(raw, path)
    ckpt = load_checkpoint(path)
    assert ckpt.config.arch == "stylegan1" and ckpt.config.c_dim == 0
    z = torch.randn(2, cfg.z_dim)
    assert torch.equal(load_generator(path)(z, noise_mode="const"), G(z, noise_mode="const"))
