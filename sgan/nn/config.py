"""The model configuration: everything needed to rebuild G and D, stored as JSON in checkpoints.

Defaults are the official StyleGAN (Karras et al. 2019, NVlabs/stylegan train.py and
networks_stylegan.py): z and w 512-d, an 8-layer mapping network with learning-rate
multiplier 0.01, feature maps min(fmap_base / 2^stage, fmap_max) with fmap_base 8192 and
fmap_max 512, minibatch standard deviation over groups of 4 with 1 feature.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

ARCHITECTURES = ("stylegan1",)


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "stylegan1"         # network family: 'stylegan1' (Karras et al. 2019); see ARCHITECTURES
    resolution: int = 1024          # output resolution R (a power of two, 8 or more)
    num_channels: int = 3           # image channels (RGB)
    z_dim: int = 512                # input latent size
    w_dim: int = 512                # intermediate latent size
    mapping_layers: int = 8         # fully connected layers of the mapping network
    mapping_fmaps: int = 512        # width of the mapping network's hidden layers
    mapping_lrmul: float = 0.01     # learning-rate multiplier of the mapping network
    fmap_base: int = 8192           # feature maps at stage s: min(fmap_base / 2^s, fmap_max)
    fmap_max: int = 512
    fmap_min: int = 1
    w_avg_beta: float = 0.995       # decay of the tracked average of w
    mbstd_group_size: int = 4       # minibatch standard deviation group (D)
    mbstd_num_features: int = 1
    const_init: str = "ones"        # the learned 4x4 input starts as ones (official StyleGAN) or 'randn' (StyleGAN2)
    fused_updown: str = "auto"      # 'auto'/'always': upsample+conv as one transposed conv, conv+downsample as one strided conv (exactly equal, measured faster); 'never': separate ops
    c_dim: int = 0                  # label size (one-hot classes); conditional G and D when > 0 (StyleGAN2-ADA's scheme)

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"arch must be one of {', '.join(ARCHITECTURES)}, got {self.arch!r}")
        r = self.resolution
        if r < 8 or r & (r - 1):
            raise ValueError(f"resolution must be a power of two of at least 8, got {r}")
        if self.fused_updown not in ("auto", "always", "never"):
            raise ValueError(f"fused_updown must be auto, always or never, got {self.fused_updown!r}")
        if self.c_dim < 0:
            raise ValueError(f"c_dim must be >= 0, got {self.c_dim}")
        if self.const_init not in ("ones", "randn"):
            raise ValueError(f"const_init must be ones or randn, got {self.const_init!r}")

    @property
    def resolution_log2(self) -> int:
        return int(math.log2(self.resolution))

    @property
    def num_ws(self) -> int:
        """Two style inputs per resolution from 4x4 up: 2*log2(R) - 2 (18 at 1024 px)."""
        return 2 * self.resolution_log2 - 2

    def nf(self, stage: int) -> int:
        """Feature maps at stage `stage` (stage 1 is 4x4, stage k is 2^(k+1) px)."""
        return int(max(min(self.fmap_base / (2.0 ** stage), self.fmap_max), self.fmap_min))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config keys: {', '.join(unknown)}")
        return cls(**data)

    @classmethod
    def preset(cls, name: str, resolution: int) -> "ModelConfig":
        """`paper`: the official widths; `cpu`: narrow widths, a small mapping net and a random constant
        input (a spatial pattern from the first step, so styles shape the layout early) for CPUs."""
        if name == "paper":
            return cls(resolution=resolution)
        if name == "cpu":
            return cls(resolution=resolution, z_dim=128, w_dim=128, mapping_layers=2, mapping_fmaps=128,
                       mapping_lrmul=0.1, fmap_base=32 * resolution, fmap_max=32, fmap_min=32, const_init="randn")
        if name == "tiny":
            return cls(resolution=resolution, z_dim=32, w_dim=32, mapping_layers=2, mapping_fmaps=32,
                       mapping_lrmul=0.1, fmap_base=64, fmap_max=16, fmap_min=8)
        raise ValueError(f"unknown model preset {name!r}; choose paper, cpu or tiny")
