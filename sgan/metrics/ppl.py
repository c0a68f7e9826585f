"""Perceptual path length (StyleGAN paper §4.1; NVIDIA's perceptual_path_length.py protocol).

For each sample: z0, z1 ~ N(0, I), t ~ U(0, 1) (`full`) or t = 0 (`end`); in Z the endpoints of the
step are slerp(z0, z1, t) and slerp(z0, z1, t + eps), mapped to W; in W they are lerp(f(z0), f(z1), t)
and at t + eps. Both images of a pair get the same noise. Optionally crop the central face region
(rows 3/8..7/8, columns 2/8..6/8), box-downsample to 256 px when larger, then
d = distance(img_t, img_t+eps) / eps^2 on float images (no uint8 step). PPL is the mean of the d
between the 1st ('lower') and 99th ('higher') percentiles.

`G` needs `z_dim`, `num_ws`, `mapping(z) -> w [N, w_dim]` and `synthesis(ws, noise_mode=, generator=)`;
`distance(x0, x1) -> [N]` takes [-1, 1] images. Both are pluggable, so the math is tested on linear
toy generators with closed-form answers.
"""

from __future__ import annotations

import numpy as np
import torch

from sgan.errors import UsageError
from sgan.metrics.features import Progress, latent_stream, noise_generators
from sgan.nn import truncate

SPACES = ("z", "w")
SAMPLINGS = ("full", "end")


def slerp_unit(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of the directions of a and b (unit-norm result), as NVIDIA's PPL."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    d = (a * b).sum(dim=-1, keepdim=True)
    p = t * torch.acos(d.clamp(-1.0, 1.0))
    c = b - d * a
    c = c / c.norm(dim=-1, keepdim=True)
    out = a * torch.cos(p) + c * torch.sin(p)
    return out / out.norm(dim=-1, keepdim=True)


def crop_and_downsample(images: torch.Tensor, *, crop: bool, size: int = 256) -> torch.Tensor:
    """Optional central crop (H/8 units: rows 3..7, cols 2..6), then box-downsample to `size` when larger
    (the factor computed after the crop, as the TF reference)."""
    if crop:
        c = images.shape[2] // 8
        images = images[:, :, 3 * c:7 * c, 2 * c:6 * c]
    factor = images.shape[2] // size
    if factor > 1:
        n, ch, h, w = images.shape
        images = images.reshape(n, ch, h // factor, factor, w // factor, factor).mean(dim=(3, 5))
    return images


def trimmed_mean(values: np.ndarray, lo_pct: float = 1, hi_pct: float = 99) -> tuple[float, int]:
    """Mean of the values within [percentile lo ('lower'), percentile hi ('higher')] and their count."""
    d = np.asarray(values, dtype=np.float64)
    lo = np.percentile(d, lo_pct, method="lower")
    hi = np.percentile(d, hi_pct, method="higher")
    keep = d[(d >= lo) & (d <= hi)]
    return float(keep.mean()), int(keep.size)


@torch.no_grad()
def path_lengths(G, distance, *, space: str = "w", sampling: str = "full", num: int = 50000, batch: int = 16,
                 seed: int = 0, epsilon: float = 1e-4, crop: bool = False, trunc: float = 1.0,
                 device: torch.device | str = "cpu", progress: Progress | None = None) -> np.ndarray:
    """The per-sample d = distance / eps^2, [num] float64."""
    if space not in SPACES or sampling not in SAMPLINGS:
        raise UsageError(f"PPL space must be z or w and sampling full or end, got {space!r}, {sampling!r}.")
    if num < 1 or batch < 1 or not epsilon > 0:
        raise UsageError("--num and --batch must be at least 1 and epsilon positive.")
    device = torch.device(device)
    draw0, draw1 = latent_stream(seed, G.z_dim, salt=1), latent_stream(seed, G.z_dim, salt=2)
    t_rng = np.random.default_rng(np.random.SeedSequence([seed, 3]))
    out = np.empty(num, dtype=np.float64)
    for start in range(0, num, batch):
        n = min(batch, num - start)
        z0, z1 = torch.from_numpy(draw0(n)).to(device), torch.from_numpy(draw1(n)).to(device)
        t_np = t_rng.uniform(0.0, 1.0, size=(n, 1))
        t = torch.from_numpy(t_np if sampling == "full" else t_np * 0.0).float().to(device)
        if space == "z":
            zt = torch.cat([slerp_unit(z0, z1, t), slerp_unit(z0, z1, t + epsilon)])
            w = G.mapping(zt)
        else:
            w0, w1 = G.mapping(z0), G.mapping(z1)
            w = torch.cat([torch.lerp(w0, w1, t), torch.lerp(w0, w1, t + epsilon)])
        ws = w.unsqueeze(1).expand(-1, G.num_ws, -1)
        if trunc != 1.0:
            ws = truncate(ws, G.w_avg, truncation_psi=trunc, truncation_cutoff=None)
        gens = noise_generators(seed, start, n, salt=4) + noise_generators(seed, start, n, salt=4)
        images = G.synthesis(ws, noise_mode="random", generator=gens).float()
        images = crop_and_downsample(images, crop=crop)
        d = distance(images[:n], images[n:]).double() / (epsilon ** 2)
        assert d.shape == (n,), f"the distance must return [N], got {list(d.shape)}"
        out[start:start + n] = d.cpu().numpy()
        if progress:
            progress(start + n, num)
    return out


def ppl(G, distance, **kwargs) -> dict:
    """{"ppl": trimmed mean, "space", "sampling", "epsilon", "crop", "num", "kept"}."""
    d = path_lengths(G, distance, **kwargs)
    value, kept = trimmed_mean(d)
    return {"ppl": value, "space": kwargs.get("space", "w"), "sampling": kwargs.get("sampling", "full"),
            "epsilon": kwargs.get("epsilon", 1e-4), "crop": kwargs.get("crop", False), "num": int(d.size), "kept": kept}
