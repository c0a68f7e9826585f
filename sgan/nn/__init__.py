"""StyleGAN networks: shared layers, one sub-package per architecture, one factory. This package imports nothing else of sgan."""

from sgan.nn.config import ARCHITECTURES, ModelConfig
from sgan.nn.factory import make_discriminator, make_generator
from sgan.nn.stylegan1.discriminator import Discriminator
from sgan.nn.stylegan1.generator import Generator, mix_styles, truncate

__all__ = ["ARCHITECTURES", "ModelConfig", "make_generator", "make_discriminator", "Generator", "Discriminator", "truncate", "mix_styles"]
