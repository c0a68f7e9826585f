"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training").

Policies are comma-separated subsets of `color,translation,cutout` (the default for small sets),
always applied (p = 1) to every image D sees. The ops, as the authors' PyTorch code defines them:
- color: brightness + U(-0.5, 0.5); saturation: (x - mean over channels) * U(0, 2) + mean;
  contrast: (x - mean over the image) * U(0.5, 1.5) + mean (in that order);
- translation: an integer shift of up to 1/8 of the side in x and y (each drawn from
  [-s, s] with s = round(side / 8)), zero fill;
- cutout: a zeroed square of half the side (rounded), its centre anywhere in the image.
All are plain differentiable tensor ops (R1 through them needs nothing special).
Randomness is passed in: `sample_params` draws on the CPU for n samples, `apply_params` applies.
"""

from __future__ import annotations

import torch

DIFFAUG_OPS = ("color", "translation", "cutout")
DEFAULT_POLICY = "color,translation,cutout"
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def parse_policy(policy: str) -> tuple[str, ...]:
    ops = tuple(p.strip() for p in policy.split(",") if p.strip())
    bad = [p for p in ops if p not in DIFFAUG_OPS]
    if bad or not ops or len(set(ops)) != len(ops):
        raise ValueError(f"DiffAugment policy {policy!r}: use a comma-separated subset of {', '.join(DIFFAUG_OPS)}")
    return ops


def sample_params(n: int, height: int, width: int, *, policy: str = DEFAULT_POLICY,
                  generator: torch.Generator) -> dict[str, torch.Tensor]:
    ops = parse_policy(policy)
    g = generator
    out: dict[str, torch.Tensor] = {}
    if "color" in ops:
        out["brightness"] = torch.rand(n, generator=g) - 0.5
        out["saturation"] = torch.rand(n, generator=g) * 2
        out["contrast"] = torch.rand(n, generator=g) + 0.5
    if "translation" in ops:
        sx, sy = int(width * TRANSLATION_RATIO + 0.5), int(height * TRANSLATION_RATIO + 0.5)
        out["shift"] = torch.stack([torch.randint(-sx, sx + 1, (n,), generator=g),
                                    torch.randint(-sy, sy + 1, (n,), generator=g)], dim=1)
    if "cutout" in ops:
        cw, ch = int(width * CUTOUT_RATIO + 0.5), int(height * CUTOUT_RATIO + 0.5)
        out["cutout_size"] = torch.tensor([cw, ch])
        out["cutout"] = torch.stack([torch.randint(0, width + (1 - cw % 2), (n,), generator=g),
                                     torch.randint(0, height + (1 - ch % 2), (n,), generator=g)], dim=1)
    return out


def slice_params(params: dict[str, torch.Tensor], sl: slice) -> dict[str, torch.Tensor]:
    return {k: (v if k == "cutout_size" else v[sl]) for k, v in params.items()}


def translate(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """out[y, x] = in[y - dy, x - dx] per sample (shift [n, 2] = (dx, dy)), zero outside."""
    n, c, h, w = x.shape
    dx, dy = shift[:, 0].to(x.device).view(n, 1, 1), shift[:, 1].to(x.device).view(n, 1, 1)
    ys = torch.arange(h, device=x.device).view(1, h, 1) - dy
    xs = torch.arange(w, device=x.device).view(1, 1, w) - dx
    inside = ((ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)).to(x.dtype)
    idx = (ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)).reshape(n, 1, h * w).expand(n, c, h * w)
    return x.reshape(n, c, h * w).gather(2, idx).reshape(n, c, h, w) * inside.unsqueeze(1)


def cutout(x: torch.Tensor, centre: torch.Tensor, size: torch.Tensor) -> torch.Tensor:
    """Zero a size[0] x size[1] square whose top-left corner is centre - size // 2 (clipped)."""
    n, c, h, w = x.shape
    cw, ch = int(size[0]), int(size[1])
    x0 = (centre[:, 0] - cw // 2).to(x.device).view(n, 1, 1)
    y0 = (centre[:, 1] - ch // 2).to(x.device).view(n, 1, 1)
    ys = torch.arange(h, device=x.device).view(1, h, 1)
    xs = torch.arange(w, device=x.device).view(1, 1, w)
    hole = (ys >= y0) & (ys < y0 + ch) & (xs >= x0) & (xs < x0 + cw)
    return x * (~hole).to(x.dtype).unsqueeze(1)


def apply_params(x: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
    if x.ndim != 4:
        raise ValueError(f"images must be [N, C, H, W], got {list(x.shape)}")
    n = x.shape[0]
    if "brightness" in params:
        b = params["brightness"].to(x.device, x.dtype).view(n, 1, 1, 1)
        s = params["saturation"].to(x.device, x.dtype).view(n, 1, 1, 1)
        k = params["contrast"].to(x.device, x.dtype).view(n, 1, 1, 1)
        x = x + b
        mean = x.mean(dim=1, keepdim=True)
        x = (x - mean) * s + mean
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * k + mean
    if "shift" in params:
        x = translate(x, params["shift"])
    if "cutout" in params:
        x = cutout(x, params["cutout"], params["cutout_size"])
    return x


class DiffAugment:
    def __init__(self, policy: str = DEFAULT_POLICY) -> None:
        parse_policy(policy)
        self.policy = policy

    def sample(self, n: int, height: int, width: int, *, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return sample_params(n, height, width, policy=self.policy, generator=generator)

    def __call__(self, x: torch.Tensor, *, generator: torch.Generator) -> torch.Tensor:
        return apply_params(x, self.sample(x.shape[0], x.shape[2], x.shape[3], generator=generator))
