"""What every importer returns, and the small helpers they share."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from sgan.errors import CheckpointError
from sgan.nn import ModelConfig, make_discriminator, make_generator


class ImportFormatError(CheckpointError):
    """A foreign file that is readable but does not fit the format it claims (or no format at all)."""


@dataclass
class Imported:
    """A converted foreign checkpoint: sgan networks plus a record of what was used and what was not."""

    format: str
    source: Path
    config: ModelConfig
    G_ema: nn.Module
    G: nn.Module | None = None
    D: nn.Module | None = None
    found: list[str] = field(default_factory=list)        # what the file held and was converted
    left_behind: list[str] = field(default_factory=list)  # what the file held and sgan does not keep
    notes: list[str] = field(default_factory=list)        # conventions worth knowing (truncation defaults, noise...)
    defaults: dict[str, Any] = field(default_factory=dict)  # the source tool's sampling defaults

    def summary(self) -> list[str]:
        c = self.config
        lines = [f"format: {self.format} ({FORMAT_TITLES.get(self.format, self.format)})",
                 f"model: {c.arch} {c.resolution}x{c.resolution}, z {c.z_dim}, w {c.w_dim}, "
                 f"{c.mapping_layers} mapping layers, widths {widths_text(c)}"]
        lines += [f"converted: {x}" for x in self.found]
        lines += [f"left behind: {x}" for x in self.left_behind]
        lines += [f"note: {x}" for x in self.notes]
        return lines


FORMAT_TITLES = {
    "tf-stylegan": "NVIDIA StyleGAN TensorFlow pickle (NVlabs/stylegan)",
    "tf-stylegan2": "NVIDIA StyleGAN2 TensorFlow pickle (NVlabs/stylegan2)",
    "ada": "NVIDIA StyleGAN2-ADA PyTorch network pickle (NVlabs/stylegan2-ada-pytorch)",
    "stylegan3": "NVIDIA StyleGAN3 PyTorch network pickle (NVlabs/stylegan3, configs T and R)",
    "rosinality-sg1": "rosinality/style-based-gan-pytorch checkpoint (StyleGAN)",
    "rosinality-sg2": "rosinality/stylegan2-pytorch checkpoint (StyleGAN2)",
}


def widths_text(cfg: ModelConfig) -> str:
    if cfg.arch == "stylegan3":
        from sgan.nn.stylegan3.synthesis import plan_of

        return ", ".join(f"{spec.name.split('_', 1)[0]}:{spec.out_channels}" for spec in plan_of(cfg)[1])
    width = (lambda r: cfg.channels(2 ** r)) if cfg.arch == "stylegan2" else (lambda r: cfg.nf(r - 1))
    return ", ".join(f"{2 ** r}:{width(r)}" for r in range(2, cfg.resolution_log2 + 1))


MAX_LIST_ELEMENTS = 1 << 24  # numbers a nested list may expand to (a StyleGAN vector stored as a list has w_dim)


def expanded_size(x: Any, *, limit: int = MAX_LIST_ELEMENTS) -> int:
    """How many numbers nested lists/tuples expand to, counting a list shared by reference once per use
    (memoised per object, so a crafted tower of shared lists costs no time), capped just above `limit`."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(x, False)]
    while stack:
        obj, done = stack.pop()
        if not isinstance(obj, (list, tuple)) or id(obj) in sizes:
            continue
        if done:
            total = 0
            for v in obj:
                total += sizes.get(id(v), 1) if isinstance(v, (list, tuple)) else 1
                if total > limit:
                    break
            sizes[id(obj)] = min(total, limit + 1)
        else:
            stack.append((obj, True))
            stack.extend((v, False) for v in obj if isinstance(v, (list, tuple)) and id(v) not in sizes)
    return sizes.get(id(x), 1)


def tensor(x: Any, *, what: str = "a weight") -> torch.Tensor:
    """A float32 CPU tensor from an ndarray, a numpy scalar, a number or a tensor (complex values and
    strings refused; nested lists bounded by MAX_LIST_ELEMENTS before they are expanded)."""
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise ImportFormatError(f"{what} holds complex numbers ({x.dtype}); StyleGAN weights are real.")
        return x.detach().to("cpu", torch.float32).clone()
    if isinstance(x, np.ndarray) and x.dtype.kind not in "biuf":
        raise ImportFormatError(f"{what} is an array of {x.dtype} ({'complex numbers' if x.dtype.kind == 'c' else 'not numbers'}); "
                                "StyleGAN weights are real numbers.")
    if isinstance(x, (list, tuple)) and expanded_size(x) > MAX_LIST_ELEMENTS:
        raise ImportFormatError(f"{what} is a nested list of more than {MAX_LIST_ELEMENTS} numbers (shared references "
                                "repeated); the file is damaged or crafted.")
    if isinstance(x, (str, bytes, complex)):
        raise ImportFormatError(f"{what} is {type(x).__name__} {str(x)[:40]!r}, not a number.")
    try:
        return torch.from_numpy(np.array(x, dtype=np.float32))
    except (ValueError, TypeError) as err:
        raise ImportFormatError(f"{what} is not an array of numbers ({str(err)[:80]}).") from None


def fit_widths(widths: Mapping[int, int], *, what: str) -> tuple[int, int, int]:
    """(fmap_base, fmap_max, fmap_min) such that min(max(base / 2^stage, min), max) gives `widths`
    ({stage: channels}); a clear error when no such triple exists."""
    wmax, wmin = max(widths.values()), min(widths.values())
    bases = {w * 2 ** s for s, w in widths.items() if wmin < w < wmax}
    # A width at the cap or floor only bounds the base; try the candidates from every stage.
    bases |= {w * 2 ** s for s, w in widths.items()}
    for base in sorted(bases):
        cfg = ModelConfig(resolution=8, fmap_base=base, fmap_max=wmax, fmap_min=wmin)
        if all(cfg.nf(s) == w for s, w in widths.items()):
            return base, wmax, wmin
    raise ImportFormatError(f"{what}: the channel widths {dict(sorted(widths.items()))} (per stage) do not follow "
                            "min(fmap_base / 2^stage, fmap_max); sgan cannot represent this network.")


def build(module: nn.Module, state: Mapping[str, torch.Tensor], *, what: str) -> nn.Module:
    """Load a complete converted state dict (strict: every key, every shape)."""
    missing = sorted(set(module.state_dict()) - set(state))
    extra = sorted(set(state) - set(module.state_dict()))
    if missing or extra:
        raise ImportFormatError(f"{what}: the converted weights do not fit sgan's network "
                                f"(missing {missing[:3]}, unexpected {extra[:3]}); the file does not match its format.")
    own = module.state_dict()
    for k, v in state.items():
        if tuple(own[k].shape) != tuple(v.shape):
            raise ImportFormatError(f"{what}: {k} has shape {list(v.shape)} where sgan expects {list(own[k].shape)}; "
                                    "the file does not match its format.")
        if v.is_complex():
            raise ImportFormatError(f"{what}: {k} holds complex numbers ({v.dtype}); StyleGAN weights are real.")
        if v.is_floating_point() and not bool(torch.isfinite(v).all()):
            raise ImportFormatError(f"{what}: the weight {k} holds NaN or infinite values; the file is damaged "
                                    "(such a model renders blank images).")
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})
    return module.eval().requires_grad_(False)


def new_generator(cfg: ModelConfig) -> nn.Module:
    with torch.random.fork_rng(devices=[]):  # building draws random inits; keep the caller's RNG untouched
        torch.manual_seed(0)
        return make_generator(cfg)


def new_discriminator(cfg: ModelConfig) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return make_discriminator(cfg)


def log2_exact(n: int, *, what: str) -> int:
    k = int(round(math.log2(n))) if n > 0 else -1
    if k < 0 or 2 ** k != n:
        raise ImportFormatError(f"{what}: {n} is not a power of two.")
    return k


@torch.no_grad()
def mean_w(G: nn.Module, *, num: int = 10240, seed: int = 0, batch: int = 1024) -> torch.Tensor:
    """The mean of mapping(z) over `num` z from torch.Generator().manual_seed(seed) (for sources that keep no w_avg)."""
    gen = torch.Generator().manual_seed(seed)
    total = torch.zeros(G.w_dim, dtype=torch.float64)
    for start in range(0, num, batch):
        z = torch.randn([min(batch, num - start), G.z_dim], generator=gen)
        total += G.mapping(z).double().sum(0)
    return (total / num).float()


def fit_channels(widths: Mapping[int, int], *, what: str) -> tuple[int, int]:
    """(channel_base, channel_max) such that min(channel_base // res, channel_max) gives `widths`
    ({resolution: channels}, StyleGAN2's rule); a clear error when none exists."""
    cmax = max(widths.values())
    candidates = sorted({w * r for r, w in widths.items()})
    for base in candidates:
        if all(min(base // r, cmax) == w for r, w in widths.items()):
            return base, cmax
    raise ImportFormatError(f"{what}: the channel widths {dict(sorted(widths.items()))} (per resolution) do not "
                            "follow min(channel_base // res, channel_max); sgan cannot represent this network.")


def check_fir(kernel: Any, *, what: str) -> None:
    """A stored resampling filter must be the [1,3,3,1] outer product (any scale): sgan's StyleGAN2 uses that one."""
    k = tensor(kernel)
    ref = torch.outer(torch.tensor([1.0, 3, 3, 1]), torch.tensor([1.0, 3, 3, 1]))
    if k.shape != (4, 4) or not torch.allclose(k / k.sum(), ref / ref.sum(), atol=1e-6):
        raise ImportFormatError(f"{what}: its resampling filter is not [1,3,3,1]; sgan's StyleGAN2 uses only that one.")


def count_blocks(sd: Mapping[str, Any], prefix: str) -> int:
    """How many numbered blocks `{prefix}0.`, `{prefix}1.`, ... a state dict holds without a gap (one pass
    over the keys, so a crafted file with very many keys costs linear time)."""
    found: set[int] = set()
    for k in sd:
        if isinstance(k, str) and k.startswith(prefix):
            head, dot, _ = k[len(prefix):].partition(".")
            if dot and head.isdigit() and len(head) <= 9 and (head == "0" or head[0] != "0"):
                found.add(int(head))
    n = 0
    while n in found:
        n += 1
    return n
