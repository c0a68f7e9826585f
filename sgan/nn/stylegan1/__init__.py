"""StyleGAN (Karras et al. 2019): mapping, synthesis with AdaIN and progressive growing, discriminator."""

from sgan.nn.stylegan1.discriminator import Discriminator
from sgan.nn.stylegan1.generator import Generator, mix_styles, truncate

__all__ = ["Generator", "Discriminator", "mix_styles", "truncate"]
