"""Augmenting what the discriminator sees: ADA (`ada`), DiffAugment (`diffaug`), and the runtime
that holds p, its heuristic and the augmentation RNG (`runtime`)."""

from sgan.train.augment.ada import PIPES, AdaPipeline, AdaSettings
from sgan.train.augment.diffaug import DEFAULT_POLICY, DiffAugment
from sgan.train.augment.runtime import AUG_KINDS, Augmentation, adjust_p

__all__ = ["PIPES", "AdaPipeline", "AdaSettings", "DEFAULT_POLICY", "DiffAugment", "AUG_KINDS", "Augmentation",
           "adjust_p"]
