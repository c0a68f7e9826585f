"""ADA's augmentation pipeline (Karras et al. 2020, "Training GANs with limited data"), plain torch.

Ops and their official defaults (stylegan2-ada-pytorch training/augment.py): xflip, rotate90,
integer translation (xint_max 0.125), isotropic scale (log2 std 0.2), rotation (rotate_max 1 =
the full circle, applied before and after the anisotropic scale, each with probability
p_rot = 1 - sqrt(1 - p) so that P(either) = p), anisotropic scale (0.2), fractional translation
(std 0.125), brightness (std 0.2), contrast (log2 std 0.5), luma flip, hue rotation (hue_max 1 =
the full circle) and saturation (log2 std 1). Each op fires on a sample with probability
multiplier * p (every multiplier is 1 in the standard pipelines).

How they run:
- blit ops (xflip, rotate90, xint) form an integer 3x3 inverse matrix that is applied as an exact
  index remap (one gather) with reflect fill: a flip is a flip and a shift is a shift, to the bit.
- geometric ops (scale, rotate, aniso, xfrac) form one 3x3 inverse matrix G applied once: reflect
  padding by the margin the transform needs, 2x upsampling with the sym6 filter, one bilinear
  resample, downsampling with the same filter (sgan.train.augment.resample). Applying the blit
  matrix A and then G is the official single matrix A @ G (out(q) = in(A G q)); only the reflected
  border beyond an integer shift can differ. Skipped when no sample drew a geometric op.
- colour ops form one 4x4 matrix per sample: brightness (a translation along (1,1,1)), contrast
  (a scale), luma flip (the Householder reflection I - 2 v v^T about the luma axis v = (1,1,1)/sqrt 3),
  hue (a rotation about v) and saturation (v v^T + (I - v v^T) s); a 1-channel image uses the mean
  of the matrix's RGB rows.

Randomness is passed in: `sample_params(n, p=..., generator=...)` draws the same number of values
whatever p is (so the stream does not depend on p) on the CPU; `apply_params` is deterministic.
The trainer draws for the global minibatch and slices its rank's share (`slice_params`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from sgan.train.augment.resample import HZ_PAD, PHASE, bilinear_sample, downsample2x, sym6_filter, upsample2x

BLIT_OPS = ("xflip", "rotate90", "xint")
GEOM_OPS = ("scale", "rotate", "aniso", "xfrac")
COLOR_OPS = ("brightness", "contrast", "lumaflip", "hue", "saturation")
PIPES: dict[str, tuple[str, ...]] = {
    "blit": BLIT_OPS,
    "geom": GEOM_OPS,
    "color": COLOR_OPS,
    "bg": BLIT_OPS + GEOM_OPS,
    "bgc": BLIT_OPS + GEOM_OPS + COLOR_OPS,
}
DEFAULT_PIPE = "bgc"


@dataclass(frozen=True)
class AdaSettings:
    """Per-op strengths (the official defaults) and probability multipliers."""

    xint_max: float = 0.125
    scale_std: float = 0.2
    rotate_max: float = 1.0
    aniso_std: float = 0.2
    xfrac_std: float = 0.125
    brightness_std: float = 0.2
    contrast_std: float = 0.5
    hue_max: float = 1.0
    saturation_std: float = 1.0


def check_pipe(pipe: str) -> tuple[str, ...]:
    if pipe not in PIPES:
        raise ValueError(f"unknown ADA pipeline {pipe!r}; choose one of {', '.join(PIPES)}")
    return PIPES[pipe]


# ----------------------------------------------------------------------------- matrices

def _eye(n: int, k: int) -> torch.Tensor:
    return torch.eye(k, dtype=torch.float64).repeat(n, 1, 1)


def translate2d(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    m = _eye(tx.shape[0], 3)
    m[:, 0, 2], m[:, 1, 2] = tx, ty
    return m


def scale2d(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    m = _eye(sx.shape[0], 3)
    m[:, 0, 0], m[:, 1, 1] = sx, sy
    return m


def rotate2d(theta: torch.Tensor) -> torch.Tensor:
    m = _eye(theta.shape[0], 3)
    c, s = theta.cos(), theta.sin()
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


LUMA_AXIS = torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=torch.float64) / math.sqrt(3.0)


def luma_flip_matrix(i: torch.Tensor) -> torch.Tensor:
    """I - 2 v v^T where i = 1 (a Householder reflection about the plane normal to the luma axis)."""
    v = LUMA_AXIS
    return _eye(i.shape[0], 4) - 2.0 * torch.outer(v, v) * i.view(-1, 1, 1)


def hue_rotation_matrix(theta: torch.Tensor) -> torch.Tensor:
    """Rotation by theta about the luma axis (Rodrigues), as a 4x4 colour matrix."""
    v = LUMA_AXIS[:3]
    k = torch.tensor([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]], dtype=torch.float64)
    c, s = theta.cos().view(-1, 1, 1), theta.sin().view(-1, 1, 1)
    r = torch.eye(3, dtype=torch.float64) * c + k * s + torch.outer(v, v) * (1 - c)
    m = _eye(theta.shape[0], 4)
    m[:, :3, :3] = r
    return m


def saturation_matrix(s: torch.Tensor) -> torch.Tensor:
    vv = torch.outer(LUMA_AXIS, LUMA_AXIS)
    return vv + (torch.eye(4, dtype=torch.float64) - vv) * s.view(-1, 1, 1)


# ----------------------------------------------------------------------------- parameters

def sample_params(n: int, *, p: float, pipe: str = DEFAULT_PIPE, generator: torch.Generator,
                  settings: AdaSettings = AdaSettings(), multipliers: dict[str, float] | None = None
                  ) -> dict[str, torch.Tensor]:
    """Draw the augmentation of n samples at probability p: {"blit" [n,3,3], "geom" [n,3,3],
    "color" [n,4,4]} inverse/forward matrices in float64 on the CPU, plus "blit_xint" [n, 2]
    (relative integer shifts, turned into pixels at apply time)."""
    ops = check_pipe(pipe)
    if not 0.0 <= p:
        raise ValueError(f"p must be >= 0, got {p}")
    mult = {op: 1.0 for op in ops}
    mult.update(multipliers or {})
    s = settings
    g = generator

    def u(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=g, dtype=torch.float64)

    def nrm(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=g, dtype=torch.float64)

    def fires(op: str, prob: float | None = None) -> torch.Tensor:
        return u(n) < (mult[op] * p if prob is None else prob)

    zeros, ones = torch.zeros(n, dtype=torch.float64), torch.ones(n, dtype=torch.float64)
    out: dict[str, torch.Tensor] = {"flip": zeros.clone(), "rot90": zeros.clone(), "xint": torch.zeros(n, 2, dtype=torch.float64),
                                    "geom": _eye(n, 3), "color": _eye(n, 4)}
    if "xflip" in ops:
        i = torch.floor(u(n) * 2)
        out["flip"] = torch.where(fires("xflip"), i, zeros)
    if "rotate90" in ops:
        i = torch.floor(u(n) * 4)
        out["rot90"] = torch.where(fires("rotate90"), i, zeros)
    if "xint" in ops:
        t = (u(n, 2) * 2 - 1) * s.xint_max
        out["xint"] = torch.where(fires("xint").view(-1, 1), t, torch.zeros_like(t))
    G = _eye(n, 3)
    if "scale" in ops:
        sc = torch.exp2(nrm(n) * s.scale_std)
        sc = torch.where(fires("scale"), sc, ones)
        G = G @ scale2d(1 / sc, 1 / sc)
    if "rotate" in ops:
        p_rot = 1 - math.sqrt(min(max(1 - mult["rotate"] * p, 0.0), 1.0))
        theta = (u(n) * 2 - 1) * math.pi * s.rotate_max
        theta = torch.where(fires("rotate", p_rot), theta, zeros)
        G = G @ rotate2d(theta)  # inverse of a rotation by -theta, before the anisotropic scale
    if "aniso" in ops:
        sc = torch.exp2(nrm(n) * s.aniso_std)
        sc = torch.where(fires("aniso"), sc, ones)
        G = G @ scale2d(1 / sc, sc)
    if "rotate" in ops:
        theta = (u(n) * 2 - 1) * math.pi * s.rotate_max
        theta = torch.where(fires("rotate", p_rot), theta, zeros)
        G = G @ rotate2d(theta)  # after the anisotropic scale
    if "xfrac" in ops:
        t = nrm(n, 2) * s.xfrac_std
        t = torch.where(fires("xfrac").view(-1, 1), t, torch.zeros_like(t))
        out["xfrac"] = t  # relative; in pixels at apply time
    out["geom"] = G
    C = _eye(n, 4)
    if "brightness" in ops:
        b = nrm(n) * s.brightness_std
        b = torch.where(fires("brightness"), b, zeros)
        T = _eye(n, 4)
        T[:, :3, 3] = b.view(-1, 1)
        C = T @ C
    if "contrast" in ops:
        c = torch.exp2(nrm(n) * s.contrast_std)
        c = torch.where(fires("contrast"), c, ones)
        S = _eye(n, 4)
        S[:, 0, 0] = S[:, 1, 1] = S[:, 2, 2] = c
        C = S @ C
    if "lumaflip" in ops:
        i = torch.floor(u(n) * 2)
        i = torch.where(fires("lumaflip"), i, zeros)
        C = luma_flip_matrix(i) @ C
    if "hue" in ops:
        theta = (u(n) * 2 - 1) * math.pi * s.hue_max
        theta = torch.where(fires("hue"), theta, zeros)
        C = hue_rotation_matrix(theta) @ C
    if "saturation" in ops:
        sat = torch.exp2(nrm(n) * s.saturation_std)
        sat = torch.where(fires("saturation"), sat, ones)
        C = saturation_matrix(sat) @ C
    out["color"] = C
    return out


def slice_params(params: dict[str, torch.Tensor], sl: slice) -> dict[str, torch.Tensor]:
    """This rank's share of parameters drawn for the global minibatch."""
    return {k: v[sl] for k, v in params.items()}


# ----------------------------------------------------------------------------- application

def _reflect(i: torch.Tensor, size: int) -> torch.Tensor:
    """Reflect indices into [0, size) the way F.pad(mode='reflect') does (edge not repeated)."""
    if size == 1:
        return torch.zeros_like(i)
    period = 2 * (size - 1)
    i = torch.remainder(i, period)
    return torch.where(i >= size, period - i, i)


def blit_matrix(params: dict[str, torch.Tensor], height: int, width: int) -> torch.Tensor:
    """The integer inverse matrix [n, 3, 3] (centred pixel coordinates) of xflip, rotate90, xint."""
    n = params["flip"].shape[0]
    A = scale2d(1 - 2 * params["flip"], torch.ones(n, dtype=torch.float64))
    A = A @ rotate2d(-math.pi / 2 * params["rot90"]).round()
    t = params["xint"]
    A = A @ translate2d(-torch.round(t[:, 0] * width), -torch.round(t[:, 1] * height))
    return A


def apply_blit(images: torch.Tensor, A: torch.Tensor) -> torch.Tensor:
    """out(q) = in(A q) for integer A, by one gather; reflect fill outside. Exact."""
    n, c, h, w = images.shape
    if h != w and bool((A[:, 0, 1] != 0).any()):
        raise ValueError("rotate90 needs square images")
    cx, cy = (w - 1) / 2, (h - 1) / 2
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float64) - cy, torch.arange(w, dtype=torch.float64) - cx,
                            indexing="ij")
    q = torch.stack([xs.flatten(), ys.flatten(), torch.ones(h * w, dtype=torch.float64)])  # [3, HW]
    src = A @ q  # [n, 3, HW]
    sx = _reflect(torch.round(src[:, 0] + cx).long(), w)
    sy = _reflect(torch.round(src[:, 1] + cy).long(), h)
    idx = (sy * w + sx).to(images.device).unsqueeze(1).expand(n, c, h * w)
    return images.reshape(n, c, h * w).gather(2, idx).reshape(n, c, h, w)


def apply_geom(images: torch.Tensor, G: torch.Tensor, *, resampler: str = "grid_sample") -> torch.Tensor:
    """out(q) = in(G q) in centred pixel coordinates: reflect pad, 2x sym6 upsampling, one bilinear
    resample, sym6 downsampling."""
    n, c, h, w = images.shape
    cx, cy = (w - 1) / 2, (h - 1) / 2
    corners = torch.tensor([[-cx, -cy, 1], [cx, -cy, 1], [cx, cy, 1], [-cx, cy, 1]], dtype=torch.float64).t()
    cp = (G @ corners)[:, :2, :]  # [n, xy, 4]
    need = torch.stack([(-cp[:, 0]).max() - cx, (-cp[:, 1]).max() - cy, cp[:, 0].max() - cx, cp[:, 1].max() - cy])
    need = (need + 2 * HZ_PAD).clamp(min=0)
    mx0, my0, mx1, my1 = [int(math.ceil(min(float(v), lim))) for v, lim in zip(need, (w - 1, h - 1, w - 1, h - 1))]
    x = F.pad(images, [mx0, mx1, my0, my1], mode="reflect")
    f = sym6_filter(images.device, images.dtype)
    u = upsample2x(x, f)
    # Output grid: the image plus HZ_PAD each side, at twice the resolution; sample t sits at
    # output pixel (t - 2 HZ_PAD - PHASE) / 2. Its source in the upsampled image is index
    # 2 a + PHASE where a is the padded-input pixel position of G q (resample.PHASE).
    to, ho = 2 * (w + 2 * HZ_PAD), 2 * (h + 2 * HZ_PAD)
    ox = (torch.arange(to, dtype=torch.float64) - 2 * HZ_PAD - PHASE) / 2 - cx
    oy = (torch.arange(ho, dtype=torch.float64) - 2 * HZ_PAD - PHASE) / 2 - cy
    qy, qx = torch.meshgrid(oy, ox, indexing="ij")
    q = torch.stack([qx.flatten(), qy.flatten(), torch.ones(qx.numel(), dtype=torch.float64)])
    src = G @ q  # [n, 3, ho*to]
    m_x = (2 * (src[:, 0] + cx + mx0) + PHASE).reshape(n, ho, to)
    m_y = (2 * (src[:, 1] + cy + my0) + PHASE).reshape(n, ho, to)
    dev_dtype = torch.float64 if images.dtype == torch.float64 else torch.float32
    v = bilinear_sample(u, m_x.to(images.device, dev_dtype), m_y.to(images.device, dev_dtype), method=resampler)
    return downsample2x(v, f, crop=1)


def apply_color(images: torch.Tensor, C: torch.Tensor) -> torch.Tensor:
    """The 4x4 colour matrix on RGB (or its row mean on 1-channel images)."""
    n, c, h, w = images.shape
    C = C.to(images.device, images.dtype)
    flat = images.reshape(n, c, h * w)
    if c == 3:
        out = C[:, :3, :3] @ flat + C[:, :3, 3:]
    elif c == 1:
        Cm = C[:, :3, :].mean(dim=1, keepdim=True)  # [n, 1, 4]
        out = flat * Cm[:, :, :3].sum(dim=2, keepdim=True) + Cm[:, :, 3:]
    else:
        raise ValueError(f"colour augmentation needs 1 or 3 channels, got {c}")
    return out.reshape(n, c, h, w)


def apply_params(images: torch.Tensor, params: dict[str, torch.Tensor], *, resampler: str = "grid_sample") -> torch.Tensor:
    """Augment images [N, C, H, W] with parameters from `sample_params`. Groups whose matrices are
    the identity for the whole batch are skipped (p = 0 returns the input itself), and only the
    samples that drew a geometric op are resampled."""
    if images.ndim != 4 or images.shape[0] != params["geom"].shape[0]:
        raise ValueError(f"images must be [N, C, H, W] with N = {params['geom'].shape[0]}, got {list(images.shape)}")
    n, _c, h, w = images.shape
    A = blit_matrix(params, h, w)
    eye3, eye4 = torch.eye(3, dtype=torch.float64), torch.eye(4, dtype=torch.float64)
    if not torch.equal(A, eye3.expand_as(A)):
        images = apply_blit(images, A)
    G = params["geom"]
    if "xfrac" in params:
        t = params["xfrac"]
        G = G @ translate2d(-t[:, 0] * w, -t[:, 1] * h)
    moved = (G != eye3).flatten(1).any(dim=1)
    if bool(moved.all()):
        images = apply_geom(images, G, resampler=resampler)
    elif bool(moved.any()):  # resample only the samples that drew a geometric op (most of them at small p)
        idx = moved.nonzero().flatten().to(images.device)
        images = images.index_copy(0, idx, apply_geom(images.index_select(0, idx), G[moved], resampler=resampler))
    C = params["color"]
    if not torch.equal(C, eye4.expand_as(C)):
        images = apply_color(images, C)
    return images


class AdaPipeline:
    """`pipe(images, p=..., generator=...)`: sample and apply in one call (single process)."""

    def __init__(self, pipe: str = DEFAULT_PIPE, *, settings: AdaSettings = AdaSettings(),
                 resampler: str = "grid_sample") -> None:
        check_pipe(pipe)
        self.pipe, self.settings, self.resampler = pipe, settings, resampler

    def sample(self, n: int, *, p: float, generator: torch.Generator) -> dict[str, torch.Tensor]:
        return sample_params(n, p=p, pipe=self.pipe, generator=generator, settings=self.settings)

    def apply(self, images: torch.Tensor, params: dict[str, torch.Tensor]) -> torch.Tensor:
        return apply_params(images, params, resampler=self.resampler)

    def __call__(self, images: torch.Tensor, *, p: float, generator: torch.Generator) -> torch.Tensor:
        return self.apply(images, self.sample(images.shape[0], p=p, generator=generator))
