"""StyleGAN3 (Karras et al. 2021, "Alias-Free Generative Adversarial Networks"), as NVlabs/stylegan3
networks_stylegan3.py: configs T (3x3 convs) and R (1x1 convs, radial filters). Its discriminator is
StyleGAN2's (sgan.nn.stylegan2.Discriminator), as in NVIDIA's training."""

from sgan.nn.stylegan3.synthesis import Generator, SynthesisNetwork
from sgan.nn.stylegan3.transform import input_transform, inverse_transform, make_transform

__all__ = ["Generator", "SynthesisNetwork", "input_transform", "inverse_transform", "make_transform"]
