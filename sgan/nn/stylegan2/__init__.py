"""StyleGAN2 (Karras et al. 2020), as NVlabs/stylegan2-ada-pytorch: mapping, synthesis with modulated
convolutions and FIR resampling, the skip/resnet generator and resnet/skip/orig discriminator."""

from sgan.nn.stylegan2.discriminator import Discriminator
from sgan.nn.stylegan2.generator import Generator

__all__ = ["Generator", "Discriminator"]
