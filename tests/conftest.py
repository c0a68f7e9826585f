"""Shared test set-up: small threads, no network, tiny models."""

from __future__ import annotations

import socket

import pytest
import torch

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    """Tests must never reach the network (weights and data are local files)."""

    real_connect = socket.socket.connect

    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to open a network connection")

    def connect(sock, address):
        if sock.family == getattr(socket, "AF_UNIX", None):  # worker processes talk over Unix sockets
            return real_connect(sock, address)
        refuse()

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def one_thread():
    """Small models run faster (and no slower on a loaded machine) on one thread."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="session")
def shapes16(tmp_path_factory):
    """A 96-image builtin:shapes database, 4-16 px, for the training tests."""
    from sgan.data.prepare import prepare_dataset

    out = tmp_path_factory.mktemp("data") / "shapes.lmdb"
    prepare_dataset("builtin:shapes", out, max_size=16, min_size=4, count=96, workers=1)
    return out


@pytest.fixture
def tiny_checkpoint(tmp_path):
    """A random-initialised 16 px model saved as an sgan checkpoint."""
    from sgan.checkpoint import save_checkpoint
    from sgan.nn import Discriminator, Generator, ModelConfig

    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", 16)
    G, D = Generator(cfg), Discriminator(cfg)
    with torch.no_grad():  # give noise and w_avg non-trivial values so tests can see them
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.normal_(0, 0.5)
        G.mapping.w_avg.normal_()
    return save_checkpoint(tmp_path / "model.pt", config=cfg, G=G, G_ema=G, D=D)


@pytest.fixture
def tiny_sg2_checkpoint(tmp_path):
    """A random-initialised 16 px StyleGAN2 model saved as an sgan checkpoint."""
    from sgan.checkpoint import save_checkpoint
    from sgan.nn import ModelConfig, make_discriminator, make_generator

    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny", 16, arch="stylegan2")
    G, D = make_generator(cfg), make_discriminator(cfg)
    with torch.no_grad():  # give noise and w_avg non-trivial values so tests can see them
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.normal_(0, 0.5)
        G.mapping.w_avg.normal_()
    return save_checkpoint(tmp_path / "sg2.pt", config=cfg, G=G, G_ema=G, D=D)
