"""Projection: find the latent (W or W+) and noise maps that make G reproduce a given image.

The recipe and defaults of the reference projectors (StyleGAN2-ADA projector.py; rosinality's
projector.py for W+ and the MSE term; Image2StyleGAN for W+ and the loss):

    w* = argmin_w  L_percept(G(w), I) + lambda_mse / N * ||G(w) - I||^2 + 1e5 * R_noise

- start at w_avg, the mean of 10000 mapped samples; w_std = sqrt(mean ||w - w_avg||^2);
- 1000 steps of Adam (betas 0.9, 0.999), lr 0.1 ramped up over the first 5 % of the steps (linear)
  and down over the last 25 % (cosine);
- noise 0.05 * w_std * max(0, 1 - t / 0.75)^2 added to w at step t (t = step / steps) to explore;
- the per-layer noise maps start standard normal and are optimised too, with the regulariser
  R_noise = sum over layers and pyramid levels (down to 8 px) of the squared autocorrelation at
  one pixel shift in x and y, and after every step each map is renormalised to mean 0, std 1;
- W: one w repeated over every style (num_ws); W+: one w per style, all starting at w_avg.

Targets of any size or mode are decoded to RGB (grey for 1-channel models), centre-cropped to a
square and resized to the model's resolution with a Lanczos filter.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from sgan.errors import DataError, UsageError
from sgan.nn import Generator
from sgan.play.noise_maps import noise_resolutions, use_noise_maps
from sgan.viz import to_uint8
from sgan.data.images import SkipImage, decode_image, square

SPACES = ("w", "w+")

# Per architecture, the defaults of its reference projector: StyleGAN2-ADA's projector.py is the
# native case (W, LPIPS distance and the noise regulariser only); for StyleGAN 1 the W+ recipe with
# an MSE term (rosinality's projector.py, Image2StyleGAN) fits far closer. NVlabs/stylegan3 ships no
# projector; StyleGAN2-ADA's is what is run on its models (their mapping and losses are the same), so
# StyleGAN3 takes its defaults; it has no noise inputs, so only the latent is optimised.
ARCH_DEFAULTS = {"stylegan1": {"space": "w+", "mse_weight": 0.1}, "stylegan2": {"space": "w", "mse_weight": 0.0},
                 "stylegan3": {"space": "w", "mse_weight": 0.0}}


def defaults_for(arch: str) -> dict:
    """The `space` and `mse_weight` defaults of the reference projector of `arch`."""
    return dict(ARCH_DEFAULTS.get(arch, ARCH_DEFAULTS["stylegan1"]))


@dataclass(frozen=True)
class ProjectConfig:
    space: str = "w+"               # "w": one w for all styles; "w+": one per style
    steps: int = 1000
    lr: float = 0.1
    lr_rampup: float = 0.05         # fraction of the steps with a linear warm-up
    lr_rampdown: float = 0.25       # fraction of the steps with a cosine ramp-down
    latent_noise: float = 0.05      # initial noise on w, times w_std
    latent_noise_ramp: float = 0.75  # fraction of the steps over which that noise decays to 0
    noise_reg: float = 1e5          # weight of the noise-map regulariser
    mse_weight: float = 0.1         # lambda_mse (images in [-1, 1])
    w_avg_samples: int = 10000
    optimize_noise: bool = True

    def check(self) -> None:
        if self.space not in SPACES:
            raise UsageError(f"--space {self.space!r}: choose w or w+.")
        if self.steps < 1:
            raise UsageError("--steps must be at least 1 (the reference projectors use 1000).")
        if not self.lr > 0:
            raise UsageError("--lr must be more than 0.")
        if self.mse_weight < 0 or self.noise_reg < 0 or self.latent_noise < 0:
            raise UsageError("--mse, --noise-reg and the latent noise must be zero or more.")
        if self.w_avg_samples < 2:
            raise UsageError("w_avg needs at least 2 samples.")


@dataclass
class ProjectionResult:
    ws: torch.Tensor                    # [num_ws, w_dim] W+ (rows equal for space w)
    noise: list[torch.Tensor]           # per layer [1, 1, r, r]
    image: np.ndarray                   # uint8 [R, R, C] the reconstruction (optimised noise)
    image_const_noise: np.ndarray       # uint8 [R, R, C] the latent rendered with the model's stored noise
    loss_name: str
    perceptual: float                   # final perceptual distance
    mse: float                          # final MSE on [-1, 1] images
    psnr_db: float                      # PSNR of `image` against the target (uint8 pixels)
    psnr_const_noise_db: float
    history: list[dict] = field(default_factory=list)


# ----------------------------------------------------------------------------- target images

def load_target(path: str | os.PathLike, resolution: int, channels: int = 3) -> np.ndarray:
    """Read any image file -> uint8 [R, R, channels]: decoded (EXIF orientation, alpha over white,
    16-bit scaled), centre-cropped to a square and resized with Lanczos."""

    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such image file.")
    try:
        rgb = decode_image(p.read_bytes())
    except SkipImage as err:
        raise DataError(f"{p}: cannot use this image ({err}); give a PNG, JPEG, WebP, BMP, TIFF or GIF file.") from None
    except OSError as err:
        raise DataError(f"{p}: cannot read the file ({err.strerror or err}).") from None
    rgb = square(rgb, "center")
    img = Image.fromarray(rgb)
    if img.size != (resolution, resolution):
        img = img.resize((resolution, resolution), Image.LANCZOS)
    if channels == 1:
        img = img.convert("L")
    elif channels != 3:
        raise DataError(f"the model makes {channels}-channel images; projection supports 1 or 3 channels.")
    arr = np.asarray(img, dtype=np.uint8)
    return arr[:, :, None] if arr.ndim == 2 else arr


def image_to_tensor(image: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 [H, W, C] -> float [1, C, H, W] in [-1, 1]."""
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"image must be uint8 [H, W, C], got {image.dtype} {list(image.shape)}")
    t = torch.from_numpy(np.array(image, copy=True)).permute(2, 0, 1)[None].float()
    return (t / 127.5 - 1.0).to(device)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (inf when equal)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


# ----------------------------------------------------------------------------- the optimisation

@torch.no_grad()
def w_statistics(G: Generator, num_samples: int, generator: torch.Generator, batch: int = 1000) -> tuple[torch.Tensor, float]:
    """(w_avg [w_dim], w_std): mean of `num_samples` mapped z ~ N(0, I), and the root mean squared
    distance of those w from it."""
    device = next(G.parameters()).device
    total = torch.zeros(G.w_dim, dtype=torch.float64, device=device)
    ws = []
    for start in range(0, num_samples, batch):
        n = min(batch, num_samples - start)
        z = torch.randn([n, G.z_dim], generator=generator, device=generator.device).to(device)
        w = G.mapping(z).double()
        total += w.sum(0)
        ws.append(w.cpu())
    w_avg = (total / num_samples).cpu()
    sq = sum(float((w - w_avg).square().sum()) for w in ws)
    return w_avg.float().to(device), math.sqrt(sq / num_samples)


def learning_rate(cfg: ProjectConfig, step: int) -> float:
    t = step / cfg.steps
    ramp = min(1.0, (1.0 - t) / cfg.lr_rampdown) if cfg.lr_rampdown > 0 else 1.0
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    if cfg.lr_rampup > 0:
        ramp *= min(1.0, t / cfg.lr_rampup)
    return cfg.lr * ramp


def latent_noise_scale(cfg: ProjectConfig, step: int, w_std: float) -> float:
    t = step / cfg.steps
    return w_std * cfg.latent_noise * max(0.0, 1.0 - t / cfg.latent_noise_ramp) ** 2


def noise_regularizer(maps: list[torch.Tensor]) -> torch.Tensor:
    """Sum over maps and their 2x pyramid (down to 8 px) of the squared mean autocorrelation at a
    one-pixel shift, horizontally and vertically (StyleGAN2 projector)."""
    if not maps:                                  # StyleGAN3 has no noise inputs
        return torch.zeros(())
    reg = maps[0].new_zeros(())
    for noise in maps:
        while True:
            reg = reg + (noise * torch.roll(noise, shifts=1, dims=3)).mean() ** 2
            reg = reg + (noise * torch.roll(noise, shifts=1, dims=2)).mean() ** 2
            if noise.shape[2] <= 8:
                break
            noise = F.avg_pool2d(noise, kernel_size=2)
    return reg


def match_saturation(synth: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Where the target pixel is saturated (white or black after clipping) and the rendering lies
    beyond it, count the rendering as equal to the target: both show the same pixel once clipped to
    uint8, so the loss should not pull the rendering back into range. Elsewhere it is unchanged."""
    beyond = ((target >= 1.0) & (synth > 1.0)) | ((target <= -1.0) & (synth < -1.0))
    return torch.where(beyond, target.expand_as(synth), synth)


StepCallback = Callable[[int, torch.Tensor, dict], None]


def project(G: Generator, target: np.ndarray, loss_fn: torch.nn.Module, *, cfg: ProjectConfig = ProjectConfig(),
            generator: torch.Generator, w_stats: tuple[torch.Tensor, float] | None = None,
            on_step: StepCallback | None = None, progress: Callable[[int, int], None] | None = None) -> ProjectionResult:
    """Project one uint8 [R, R, C] image (R = G.resolution). `generator` draws the initial noise
    maps, the latent noise and, unless `w_stats` is given, the w_avg samples. `on_step(step,
    images [1, C, R, R], stats)` sees every step's rendering (for a progress video)."""
    cfg.check()
    res, ch = G.resolution, G.cfg.num_channels
    if target.dtype != np.uint8 or target.shape != (res, res, ch):
        raise DataError(f"the target must be uint8 [{res}, {res}, {ch}] for this model, got {target.dtype} {list(target.shape)}; "
                        "load it with load_target().")
    device = next(G.parameters()).device
    gen_device = generator.device
    flags = [p.requires_grad for p in G.parameters()]
    G.requires_grad_(False)                       # gradients flow to w and the noise maps only
    try:
        return _optimize(G, target, loss_fn, cfg, generator, w_stats, on_step, progress, device, gen_device)
    finally:
        for p, flag in zip(G.parameters(), flags):
            p.requires_grad_(flag)


def _optimize(G, target, loss_fn, cfg, generator, w_stats, on_step, progress, device, gen_device) -> ProjectionResult:
    w_avg, w_std = w_stats if w_stats is not None else w_statistics(G, cfg.w_avg_samples, generator)
    target_t = image_to_tensor(target, device)

    rows = G.num_ws if cfg.space == "w+" else 1
    w_opt = w_avg.detach().view(1, 1, -1).repeat(1, rows, 1).clone().requires_grad_(True)
    maps = [torch.randn([1, 1, r, r], generator=generator, device=gen_device).to(device).requires_grad_(cfg.optimize_noise)
            for r in noise_resolutions(G)]
    params = [w_opt] + (maps if cfg.optimize_noise else [])
    opt = torch.optim.Adam(params, betas=(0.9, 0.999), lr=cfg.lr)
    history: list[dict] = []
    for step in range(cfg.steps):
        lr = learning_rate(cfg, step)
        for group in opt.param_groups:
            group["lr"] = lr
        scale = latent_noise_scale(cfg, step, w_std)
        w_noise = torch.randn(w_opt.shape, generator=generator, device=gen_device).to(device) * scale
        ws = (w_opt + w_noise).expand(1, G.num_ws, -1)
        with use_noise_maps(G, maps):
            synth = match_saturation(G.synthesis(ws, noise_mode="const"), target_t)
        dist = loss_fn(synth, target_t).sum()
        mse = (synth - target_t).square().mean()
        reg = noise_regularizer(maps) if cfg.optimize_noise and cfg.noise_reg > 0 else synth.new_zeros(())
        loss = dist + cfg.mse_weight * mse + cfg.noise_reg * reg
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if cfg.optimize_noise:
            with torch.no_grad():
                for m in maps:
                    m -= m.mean()
                    m *= m.square().mean().rsqrt()
        stats = {"step": step + 1, "loss": loss.item(), "perceptual": dist.item(), "mse": mse.item(),
                 "noise_reg": reg.item(), "lr": lr}
        if not math.isfinite(stats["loss"]):
            raise DataError(f"the projection diverged at step {step + 1} (loss {stats['loss']}); try a smaller --lr.")
        if step % max(1, cfg.steps // 100) == 0 or step == cfg.steps - 1:
            history.append(stats)
        if on_step is not None:
            on_step(step + 1, synth.detach(), stats)
        if progress is not None:
            progress(step + 1, cfg.steps)
    return _finish(G, w_opt.detach(), [m.detach() for m in maps], target, target_t, loss_fn, history)


@torch.no_grad()
def _finish(G: Generator, w_opt: torch.Tensor, maps: list[torch.Tensor], target: np.ndarray, target_t: torch.Tensor,
            loss_fn: torch.nn.Module, history: list[dict]) -> ProjectionResult:
    ws = w_opt.expand(1, G.num_ws, -1)
    with use_noise_maps(G, maps):
        synth = match_saturation(G.synthesis(ws, noise_mode="const"), target_t)
    const = G.synthesis(ws, noise_mode="const")
    image, image_const = to_uint8(synth)[0], to_uint8(const)[0]
    return ProjectionResult(
        ws=ws[0].clone().cpu(), noise=[m.cpu() for m in maps], image=image, image_const_noise=image_const,
        loss_name=getattr(loss_fn, "name", type(loss_fn).__name__), perceptual=float(loss_fn(synth, target_t).sum()),
        mse=float((synth - target_t).square().mean()), psnr_db=psnr(image, target),
        psnr_const_noise_db=psnr(image_const, target), history=history)


def side_by_side(target: np.ndarray, *images: np.ndarray, pad: int = 2) -> np.ndarray:
    """target | image | ... in one row (uint8 HWC, white gaps)."""
    parts = [target, *images]
    h, c = target.shape[0], target.shape[2]
    gap = np.full((h, pad, c), 255, dtype=np.uint8)
    row = [parts[0]]
    for p in parts[1:]:
        row += [gap, p]
    return np.concatenate(row, axis=1)
