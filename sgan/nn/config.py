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

ARCHITECTURES = ("stylegan1", "stylegan2", "stylegan3")
G_ARCHITECTURES = ("skip", "resnet")          # StyleGAN2 generator forms
D_ARCHITECTURES = ("resnet", "skip", "orig")  # StyleGAN2 discriminator forms


# Upper bounds of the sizes that decide how much memory a network takes (far above any published StyleGAN:
# the widest, StyleGAN3-R at 1024 px, has channel base 65536 and 1024 channels); checkpoints and imports
# that describe more are refused before anything is allocated.
SIZE_LIMITS = {"resolution": 4096, "z_dim": 4096, "w_dim": 4096, "mapping_layers": 64, "mapping_fmaps": 4096,
               "fmap_base": 1 << 17, "fmap_max": 4096, "fmap_min": 4096, "channel_base": 1 << 17, "channel_max": 4096,
               "cmap_dim": 4096, "d_mapping_layers": 64, "c_dim": 100000, "sg3_channel_base": 1 << 18,
               "sg3_channel_max": 4096, "sg3_num_layers": 64}


@dataclass(frozen=True)
class ModelConfig:
    arch: str = "stylegan1"         # network family: 'stylegan1' (Karras et al. 2019) or 'stylegan2' (Karras et al. 2020)
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
    # Conventions of other implementations, recorded by `sgan import` so imported models reproduce their source
    # (the defaults are the official StyleGAN):
    instance_norm_eps: float = 1e-8        # rosinality's StyleGAN: 1e-5 (torch.nn.InstanceNorm2d)
    upconv_bias_before_blur: bool = False  # rosinality's StyleGAN: a block's first conv adds its bias before the blur
    mbstd_whole_batch: bool = False        # rosinality's StyleGAN: minibatch stddev is one scalar over the whole batch
    d_widen_first: bool = False            # rosinality's StyleGAN: a D block changes width in its first conv, not in the down-conv
    noise_shared_per_block: bool = False   # rosinality's StyleGAN: both layers of a block add the same noise map
    mbstd_group_size: int = 4       # minibatch standard deviation group (D)
    mbstd_num_features: int = 1
    const_init: str = "ones"        # the learned 4x4 input starts as ones (official StyleGAN) or 'randn' (StyleGAN2)
    fused_updown: str = "auto"      # 'always': upsample+conv as one transposed conv, conv+downsample as one strided conv (exactly equal); 'never': separate ops; 'auto': fused_auto()
    memory_format: str = "auto"     # activations in 'contiguous' (NCHW) or 'channels_last' (NHWC); 'auto': sgan.nn.memory.use_channels_last (same numbers within fp32 rounding)
    c_dim: int = 0                  # label size: conditional G and D when > 0 (StyleGAN2-ADA conditioning)
    # StyleGAN2 only (arch 'stylegan2', NVlabs/stylegan2-ada-pytorch networks.py names):
    channel_base: int = 32768       # channels at r px: min(channel_base // r, channel_max); 32768 config F, 16384 half width
    channel_max: int = 512
    g_architecture: str = "skip"    # 'skip' (ToRGB at every resolution, summed) or 'resnet'
    d_architecture: str = "resnet"  # 'resnet' (default), 'skip' or 'orig'
    conv_clamp: float | None = None  # clamp conv outputs to +-conv_clamp (the official fp16 runs use 256); None: no clamp
    fused_modconv: str = "auto"     # modulated conv as one grouped conv ('always') or as scaling around a shared conv ('never'); 'auto': the faster on the device
    cmap_dim: int = 0               # D projection size for labels; 0: the channels at 4x4 (official default)
    d_mapping_layers: int = 8       # depth of D's label mapping network (official default 8)
    # StyleGAN3 generator only (arch 'stylegan3', NVlabs/stylegan3 networks_stylegan3.py names and defaults; its D is
    # StyleGAN2's, built from channel_base / channel_max above; see sgan/nn/stylegan3/design.py):
    sg3_conv_kernel: int = 3              # 3: config T; 1: config R
    sg3_radial_filters: bool = False      # config R: radially symmetric (jinc) downsampling filters
    sg3_channel_base: int = 32768         # G widths rint(min(sg3_channel_base / 2 / cutoff, sg3_channel_max)); R doubles both
    sg3_channel_max: int = 512
    sg3_num_layers: int = 14              # synthesis layers besides the Fourier input and ToRGB; num_ws = this + 2
    sg3_num_critical: int = 2             # critically sampled layers at the end
    sg3_first_cutoff: float = 2.0
    sg3_first_stopband: float = 2 ** 2.1
    sg3_last_stopband_rel: float = 2 ** 0.3
    sg3_margin_size: int = 10
    sg3_output_scale: float = 0.25
    sg3_filter_size: int = 6
    sg3_lrelu_upsampling: int = 2
    sg3_magnitude_ema_beta: float = 0.999

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"arch must be one of {', '.join(ARCHITECTURES)}, got {self.arch!r}")
        r = self.resolution
        if r < 8 or r & (r - 1):
            raise ValueError(f"resolution must be a power of two of at least 8, got {r}")
        if self.fused_updown not in ("auto", "always", "never"):
            raise ValueError(f"fused_updown must be auto, always or never, got {self.fused_updown!r}")
        if self.memory_format not in ("auto", "contiguous", "channels_last"):
            raise ValueError(f"memory_format must be auto, contiguous or channels_last, got {self.memory_format!r}")
        if self.const_init not in ("ones", "randn"):
            raise ValueError(f"const_init must be ones or randn, got {self.const_init!r}")
        if self.c_dim < 0 or self.cmap_dim < 0:
            raise ValueError(f"c_dim and cmap_dim must be 0 or more, got {self.c_dim} and {self.cmap_dim}")
        if self.g_architecture not in G_ARCHITECTURES:
            raise ValueError(f"g_architecture must be one of {', '.join(G_ARCHITECTURES)}, got {self.g_architecture!r}")
        if self.d_architecture not in D_ARCHITECTURES:
            raise ValueError(f"d_architecture must be one of {', '.join(D_ARCHITECTURES)}, got {self.d_architecture!r}")
        if self.fused_modconv not in ("auto", "always", "never"):
            raise ValueError(f"fused_modconv must be auto, always or never, got {self.fused_modconv!r}")
        if self.conv_clamp is not None and not self.conv_clamp > 0:
            raise ValueError(f"conv_clamp must be None or more than 0, got {self.conv_clamp}")
        if self.channel_base < 1 or self.channel_max < 1:
            raise ValueError("channel_base and channel_max must be at least 1")
        for name, limit in SIZE_LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, int) and value > limit:
                raise ValueError(f"{name} = {value} is above sgan's limit of {limit} (far above any published "
                                 "StyleGAN); such a network would need more memory than any file justifies")

    @property
    def resolution_log2(self) -> int:
        return int(math.log2(self.resolution))

    @property
    def num_ws(self) -> int:
        """Two style inputs per resolution from 4x4 up: 2*log2(R) - 2 (18 at 1024 px); StyleGAN3: its layers + 2."""
        if self.arch == "stylegan3":
            return self.sg3_num_layers + 2
        return 2 * self.resolution_log2 - 2

    def nf(self, stage: int) -> int:
        """Feature maps at stage `stage` (stage 1 is 4x4, stage k is 2^(k+1) px)."""
        return int(max(min(self.fmap_base / (2.0 ** stage), self.fmap_max), self.fmap_min))

    def channels(self, res: int) -> int:
        """StyleGAN2 feature maps at `res` px: min(channel_base // res, channel_max) (networks.py)."""
        return min(self.channel_base // res, self.channel_max)

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
    def preset(cls, name: str, resolution: int, arch: str = "stylegan1") -> "ModelConfig":
        """`paper`: the official widths; `cpu`: narrow widths, a small mapping net and a random constant
        input (a spatial pattern from the first step, so styles shape the layout early) for CPUs.
        With arch 'stylegan2': `paper` (config F, channel_base 32768), `half` (16384), `cpu`, `tiny`."""
        if arch == "stylegan2":
            return _stylegan2_preset(cls, name, resolution)
        if arch == "stylegan3":
            return _stylegan3_preset(cls, name, resolution)
        if arch != "stylegan1":
            raise ValueError(f"unknown architecture {arch!r}; known: {', '.join(ARCHITECTURES)}")
        if name == "paper":
            return cls(resolution=resolution)
        if name == "cpu":
            return cls(resolution=resolution, z_dim=128, w_dim=128, mapping_layers=2, mapping_fmaps=128,
                       mapping_lrmul=0.1, fmap_base=32 * resolution, fmap_max=32, fmap_min=32, const_init="randn")
        if name == "tiny":
            return cls(resolution=resolution, z_dim=32, w_dim=32, mapping_layers=2, mapping_fmaps=32,
                       mapping_lrmul=0.1, fmap_base=64, fmap_max=16, fmap_min=8)
        raise ValueError(f"unknown model preset {name!r}; choose paper, cpu or tiny")


STYLEGAN2_PRESETS = ("paper", "half", "cpu", "tiny")


def _stylegan2_preset(cls: type[ModelConfig], name: str, resolution: int) -> ModelConfig:
    """StyleGAN2 widths: config F (channel_base 32768, max 512: 512 up to 64 px, 256 at 128, 128 at
    256, 64 at 512, 32 at 1024), half width (16384), and narrow `cpu` (32 everywhere, as the
    StyleGAN 1 cpu preset) and `tiny` (tests) variants with a 2-layer mapping network."""
    base = dict(arch="stylegan2", resolution=resolution, const_init="randn")
    if name == "paper":
        return cls(**base, channel_base=32768, channel_max=512)
    if name == "half":
        return cls(**base, channel_base=16384, channel_max=512)
    if name == "cpu":
        return cls(**base, z_dim=128, w_dim=128, mapping_layers=2, mapping_fmaps=128,
                   channel_base=32768, channel_max=32, d_mapping_layers=2)
    if name == "tiny":
        return cls(**base, z_dim=32, w_dim=32, mapping_layers=2, mapping_fmaps=32,
                   channel_base=128, channel_max=16, d_mapping_layers=2)
    raise ValueError(f"unknown stylegan2 model preset {name!r}; choose {', '.join(STYLEGAN2_PRESETS)}")


STYLEGAN3_PRESETS = ("t", "r", "tiny-t", "tiny-r")


def _stylegan3_preset(cls: type[ModelConfig], name: str, resolution: int) -> ModelConfig:
    """StyleGAN3 as stylegan3's train.py builds it (--cbase 32768 --cmax 512, mapping depth 2, w_avg beta 0.998,
    conv_clamp 256): `t` (3x3 convs) and `r` (1x1 convs, radial filters, G widths doubled); `tiny-t` / `tiny-r`
    (tests) with 32-d z and w and narrow widths."""
    if name not in STYLEGAN3_PRESETS:
        raise ValueError(f"unknown stylegan3 model preset {name!r}; choose {', '.join(STYLEGAN3_PRESETS)}")
    tiny = name.startswith("tiny-")
    kind = name.removeprefix("tiny-")
    base, cmax = (256, 16) if tiny else (32768, 512)
    mult = 2 if kind == "r" else 1
    return cls(arch="stylegan3", resolution=resolution, z_dim=32 if tiny else 512, w_dim=32 if tiny else 512,
               mapping_layers=2, mapping_fmaps=32 if tiny else 512, w_avg_beta=0.998, conv_clamp=256,
               channel_base=base, channel_max=cmax, d_mapping_layers=2 if tiny else 8,
               sg3_conv_kernel=1 if kind == "r" else 3, sg3_radial_filters=kind == "r",
               sg3_channel_base=base * mult, sg3_channel_max=cmax * mult)


def use_fused_updown(mode: str, *, channels: int, resolution: int, channels_last: bool = False) -> bool:
    """Whether a StyleGAN 1 up-conv (G, output `resolution`) or conv-down (D, input `resolution`)
    with `channels` runs fused. `auto`: fused unless channels > 2 * resolution^2 (NCHW) or
    channels > resolution^2 / 2 (channels_last activations), i.e. unless the 4x4 fused kernel
    (channels^2 * 16 numbers, rebuilt every call) outweighs the activations. Both forms compute the
    same function. Measured forward + backward at batch 16, one thread (`python benchmarks/updown.py`,
    separate / fused; docs/benchmarks.md "fused_updown auto per CPU family"):
    - NCHW, 2-core AMD AVX2: 512 channels at 8 px 0.58 (G) / 0.62 (D), at 16 px 1.12 / 2.04; 32
      channels 1.12 / 1.06 at 8 px, 2.06 / 3.31 at 16 px, 1.78 / 2.43 at 32 px.
    - NCHW, Ice Lake AVX-512: 512 at 8 px 0.51 / 0.67, at 16 px 1.09 / 1.63; 32 at 8 px 1.06 / 0.86,
      16 px 1.76 / 2.85, 32 px 2.21 / 2.24: the same rule holds.
    - channels_last, Ice Lake AVX-512 (what memory_format auto runs there): 512 at 8 px 0.37 / 0.47,
      at 16 px 0.73 / 0.78 (separate faster: the channels_last convs gain, the fused kernel build
      does not), 512 at 32 px 1.18 / 1.30 (fused); 32 at 8 px 0.96 / 0.85 (a tie), 16 px 1.46 / 1.38, 32 px 1.67 / 1.83."""
    if mode == "auto":
        limit = resolution * resolution // 2 if channels_last else 2 * resolution * resolution
        return channels <= limit
    return mode == "always"
