"""Shared test set-up: small threads, no network, tiny models, and the CPU profile the suite runs
under (`pytest --cpu-profile avx2|avx512|amx`: sgan.cpu_profiles; `native` is the real CPU)."""

from __future__ import annotations

import os
import socket

import pytest
import torch

from sgan.cpu_profiles import ENV as CPU_PROFILE_ENV
from sgan.cpu_profiles import NAMES as CPU_PROFILE_NAMES
from sgan.cpu_profiles import PROFILES as CPU_PROFILES

torch.set_num_threads(2)


def pytest_addoption(parser):
    parser.addoption("--cpu-profile", choices=CPU_PROFILE_NAMES, default=None,
                     help="run as if on this CPU family: its flags and its relative bf16/fp16 speeds (sgan.device "
                          f"fakes both; {CPU_PROFILE_ENV} is set for the session, so CLI subprocesses inherit it). "
                          f"native: the real CPU. Default: {CPU_PROFILE_ENV} as it is.")


def pytest_configure(config):
    name = config.getoption("--cpu-profile")
    if name == "native":
        os.environ.pop(CPU_PROFILE_ENV, None)
    elif name is not None:
        os.environ[CPU_PROFILE_ENV] = name


def pytest_report_header(config):
    from sgan.device import bf16_native, cpu_flags, cpu_profile, fp16_native

    cpu = torch.device("cpu")
    profile = cpu_profile()
    which = (f"{profile.name} ({profile.description}; flags and timer faked by {CPU_PROFILE_ENV})" if profile
             else "native (the real CPU's flags and timings)")
    native = f"bf16 native: {bf16_native(cpu)[0]}, fp16 native: {fp16_native(cpu)[0]}"
    shown = sorted(f for f in cpu_flags() if f.startswith(("avx512_bf16", "avx512_fp16", "amx", "avx2", "avx512f")))
    return f"sgan cpu profile: {which}; {native}; flags {' '.join(shown) or '(none read)'}"


@pytest.fixture
def cpu_profile(monkeypatch):
    """`cpu_profile("amx")` makes this test run as if on that CPU family (flags and timer, through
    SGAN_CPU_PROFILE, so subprocesses too); `cpu_profile("native")` the real CPU. Undone after the test.
    Returns the sgan.cpu_profiles.CpuProfile (None for native)."""
    def use(name: str):
        if name == "native":
            monkeypatch.delenv(CPU_PROFILE_ENV, raising=False)
            return None
        monkeypatch.setenv(CPU_PROFILE_ENV, name)
        return CPU_PROFILES[name]
    return use


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
