"""Training objectives: what one phase of one architecture computes and back-propagates."""

from sgan.train.objectives.stylegan2 import PHASES, SG2Draws, StyleGAN2Objective

__all__ = ["PHASES", "SG2Draws", "StyleGAN2Objective"]
