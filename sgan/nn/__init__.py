"""StyleGAN networks (Karras et al. 2019). This package imports nothing else of sgan."""

from sgan.nn.config import ModelConfig
from sgan.nn.discriminator import Discriminator
from sgan.nn.generator import Generator, mix_styles, truncate

__all__ = ["ModelConfig", "Generator", "Discriminator", "truncate", "mix_styles"]
