"""One place that turns a ModelConfig into networks, whatever its architecture."""

from __future__ import annotations

import dataclasses

from torch import nn

from sgan.nn.config import ARCHITECTURES, ModelConfig


def make_generator(cfg: ModelConfig) -> nn.Module:
    """The generator of `cfg.arch` (randomly initialised from the global torch RNG)."""
    if cfg.arch == "stylegan1":
        from sgan.nn.stylegan1 import Generator

        return Generator(cfg)
    if cfg.arch == "stylegan2":
        from sgan.nn.stylegan2 import Generator as Generator2

        return Generator2(cfg)
    if cfg.arch == "stylegan3":
        from sgan.nn.stylegan3 import Generator as Generator3

        return Generator3(cfg)
    raise ValueError(f"unknown architecture {cfg.arch!r}; known: {', '.join(ARCHITECTURES)}")


def make_discriminator(cfg: ModelConfig) -> nn.Module:
    """The discriminator of `cfg.arch`."""
    if cfg.arch == "stylegan1":
        from sgan.nn.stylegan1 import Discriminator

        return Discriminator(cfg)
    if cfg.arch == "stylegan2":
        from sgan.nn.stylegan2 import Discriminator as Discriminator2

        return Discriminator2(cfg)
    if cfg.arch == "stylegan3":    # NVIDIA trains StyleGAN3 with the StyleGAN2 discriminator (channel_base/max)
        from sgan.nn.stylegan2 import Discriminator as Discriminator2

        return Discriminator2(dataclasses.replace(cfg, arch="stylegan2"))
    raise ValueError(f"unknown architecture {cfg.arch!r}; known: {', '.join(ARCHITECTURES)}")
