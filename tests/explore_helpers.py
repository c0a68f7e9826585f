"""Shared set-up of the explorer tests: small checkpoints, a directions file, and loopback-only sockets."""

from __future__ import annotations

import socket
from pathlib import Path

import numpy as np
import torch

from sgan.checkpoint import save_checkpoint
from sgan.nn import ModelConfig, make_discriminator, make_generator

CLASSES = ["circle", "square", "triangle", "star"]


def save_model(path: Path, cfg: ModelConfig, *, extra: dict | None = None) -> Path:
    torch.manual_seed(0)
    G, D = make_generator(cfg), make_discriminator(cfg)
    with torch.no_grad():  # non-trivial noise and w_avg, so that noise modes and truncation show
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.normal_(0, 0.5)
        G.mapping.w_avg.normal_()
        if cfg.c_dim:
            G.mapping.embed.weight.mul_(5)
    return save_checkpoint(path, config=cfg, G=G, G_ema=G, D=D, extra=extra or {})


def sg2_model(folder: Path) -> Path:
    return save_model(folder / "sg2.pt", ModelConfig.preset("tiny", 16, arch="stylegan2"))


def cond_model(folder: Path) -> Path:
    cfg = ModelConfig(**{**ModelConfig.preset("tiny", 16, arch="stylegan2").to_dict(), "c_dim": 4})
    return save_model(folder / "cond.pt", cfg, extra={"classes": CLASSES})


def sg3_model(folder: Path) -> Path:
    return save_model(folder / "sg3.pt", ModelConfig.preset("tiny-t", 16, arch="stylegan3"))


def write_directions(path: Path, *, w_dim: int, num_ws: int, k: int = 3, layers=None, **override) -> Path:
    """A dirs.npz in the format `sgan directions` writes (random orthonormal rows)."""
    q, _ = np.linalg.qr(np.random.RandomState(0).randn(w_dim, k))
    fields = dict(directions=q.T.astype(np.float32), scores=np.arange(k, 0, -1).astype(np.float32),
                  method=np.array("sefa"), layers=np.asarray(layers if layers is not None else range(num_ws), dtype=np.int64),
                  names=np.array([f"d{i}" for i in range(k)]), checkpoint_sha256=np.array("0" * 64),
                  w_dim=np.array(w_dim), num_ws=np.array(num_ws))
    fields.update(override)
    np.savez(path, **{k: v for k, v in fields.items() if v is not None})
    return path


_REAL_CONNECT, _REAL_CREATE = socket.socket.connect, socket.create_connection   # before any test patches them


def allow_loopback(monkeypatch) -> None:
    """Undo conftest's no-network guard for loopback addresses only (the explorer listens on 127.0.0.1)."""
    real_connect, real_create = _REAL_CONNECT, _REAL_CREATE

    def loopback(address) -> bool:
        host = address[0] if isinstance(address, tuple) else address
        return host in ("127.0.0.1", "localhost", "::1") or isinstance(address, (str, bytes))

    def connect(sock, address):
        if sock.family == getattr(socket, "AF_UNIX", None) or loopback(address):
            return real_connect(sock, address)
        raise AssertionError("a test tried to open a network connection")

    def create_connection(address, *args, **kwargs):
        if loopback(address):
            return real_create(address, *args, **kwargs)
        raise AssertionError("a test tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "create_connection", create_connection)
