"""`sgan project`: find the W / W+ latent that reconstructs each given image."""

from __future__ import annotations

import io
import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import List, Optional

import typer

from sgan.cli._common import (PRECISION_DEFAULT, PRECISION_HELP, at_least, check_out_dir, console, finite, pick_precision,
                              progress_bar)
from sgan.cli.app import app

EPILOG = """[b]Examples[/b]

  sgan project runs/shapes photo.png --out proj
  sgan project runs/shapes a.png b.jpg --out proj --space w --steps 500 --video
  sgan project model.pt face.png --out proj --loss lpips --lpips-weights vgg16-lpips.pt
  sgan project sg3.pt face.png --out proj --space w+ --steps 500   (StyleGAN3: only the latent is optimised)

Per image (stem NAME) it writes NAME.npy (W+ latent, float32 \\[num_ws, w_dim], for sgan mix/edit/video),
NAME-noise.npz (the optimised noise maps), NAME-target.png, NAME-proj.png, NAME-compare.png
(target | reconstruction | the latent with the model's stored noise), NAME.json (the latent's sidecar: PSNR,
distances, loss used, precision and provenance) and with --video NAME-progress.mp4. Computes in fp32 unless
--precision says otherwise; the PNGs record the precision in their text chunks. StyleGAN3 models have no noise
inputs: no NAME-noise.npz, and NAME-compare.png is target | reconstruction.
"""


def _stems(paths: List[Path]) -> list[str]:
    """Output names: the file stems, made unique (a.png and x/a.png -> a, a-2)."""
    seen: dict[str, int] = {}
    out = []
    for p in paths:
        stem = p.stem or "image"
        seen[stem] = seen.get(stem, 0) + 1
        out.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return out


def _finite(x: float) -> float | None:
    return round(x, 4) if math.isfinite(x) else None


@app.command("project", epilog=EPILOG)
def project_command(
    ckpt: Path = typer.Argument(..., metavar="CKPT", help="A snapshot file or a training run folder."),
    images: List[Path] = typer.Argument(..., metavar="IMAGE...", help="Images to project (any size or mode; centre-cropped and resized)."),
    out: Path = typer.Option(..., "--out", help="Output folder (created if needed)."),
    space: Optional[str] = typer.Option(None, "--space", help="w: one w for every layer (stays in the learned distribution); w+: one w per layer (closer fits). Default: w for StyleGAN2 and StyleGAN3 (StyleGAN2-ADA's projector), w+ for StyleGAN 1."),
    steps: int = typer.Option(1000, "--steps", callback=at_least(1), help="Optimisation steps (reference projectors: 1000)."),
    lr: float = typer.Option(0.1, "--lr", callback=finite(lo=0, lo_open=True), help="Peak learning rate (ramped up over 5 %, cosine down over the last 25 %)."),
    mse: Optional[float] = typer.Option(None, "--mse", callback=finite(lo=0), help="Weight lambda_mse of the pixel MSE next to the perceptual distance. Default: 0 for StyleGAN2 (official projector), 0.1 for StyleGAN 1."),
    noise_reg: float = typer.Option(1e5, "--noise-reg", callback=finite(lo=0), help="Weight of the noise-map regulariser."),
    no_noise_opt: bool = typer.Option(False, "--no-noise-opt", help="Keep the noise maps fixed (random) and optimise only the latent."),
    loss: str = typer.Option("auto", "--loss", help="auto (LPIPS-VGG if its weights load, else pixel-gradient), lpips, pixel-gradient or detector."),
    lpips_weights: Optional[Path] = typer.Option(None, "--lpips-weights", help="LPIPS/VGG16 weight file for --loss lpips."),
    detector: Optional[Path] = typer.Option(None, "--detector", help="An offline detector file (sgan detector train) whose features are the loss."),
    w_avg_samples: int = typer.Option(10000, "--w-avg-samples", callback=at_least(2), help="Mapped samples for the starting point w_avg and w_std."),
    video: bool = typer.Option(False, "--video", help="Also write NAME-progress.mp4: target | rendering at every step."),
    seed: int = typer.Option(0, "--seed", callback=at_least(0), help="Seed of the starting noise maps, latent noise and w_avg samples."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    precision: str = typer.Option(PRECISION_DEFAULT, "--precision", help=PRECISION_HELP + " Only the synthesis network is cast."),
    class_: Optional[str] = typer.Option(None, "--class", help="Class name or index, for a model trained with --cond."),
) -> None:
    """Project images into the latent space: optimise w (or w+) and the noise maps to reproduce each image."""
    import numpy as np
    import torch

    from sgan.checkpoint import build_generator
    from sgan.formats import open_checkpoint
    from sgan.play.classes import class_names, with_class
    from sgan.device import autocast_module, check_precision, configure_cuda, resolve_device
    from sgan.play.provenance import png_text, provenance
    from sgan.fileio import atomic_write_bytes, atomic_write_json
    from sgan.latent import save_latent
    from sgan.play.project import ProjectConfig, defaults_for, load_target, project, side_by_side, w_statistics
    from sgan.play.project_loss import perceptual_loss
    from sgan.play.video import VideoWriter, auto_scale, ffmpeg_exe
    from sgan.viz import save_png, to_uint8, upscale_nearest

    # every input is checked before a model is timed or an image projected: a bad one is one line
    check_out_dir(out, "--out")
    loaded = open_checkpoint(ckpt)        # an sgan checkpoint, or a foreign one converted in memory
    arch_defaults = defaults_for(loaded.config.arch)
    space = arch_defaults["space"] if space is None else space
    mse = arch_defaults["mse_weight"] if mse is None else mse
    cfg = ProjectConfig(space=space.lower(), steps=steps, lr=lr, mse_weight=mse, noise_reg=noise_reg,
                        w_avg_samples=w_avg_samples, optimize_noise=not no_noise_opt)
    cfg.check()
    if video:
        ffmpeg_exe()
    dev = resolve_device(device)
    check_precision(precision, dev)
    configure_cuda(dev)  # CUDA: TF32 and cudnn.benchmark (sgan.device); a no-op on the CPU
    G = build_generator(loaded, device=dev)
    G = with_class(G, class_, class_names(loaded.extra, int(getattr(G, "c_dim", 0) or 0)))
    loss_fn, note = perceptual_loss(loss, device=dev, lpips_weights=lpips_weights, detector=detector)
    targets = [load_target(p, G.resolution, G.cfg.num_channels) for p in images]   # fail early on a bad image
    choice = pick_precision(precision, G, dev, batch=1, train=True)                # the work starts here
    base = provenance(command="project", precision=choice, checkpoint=ckpt, space=cfg.space, steps=cfg.steps,
                      seed=seed, **{"class": getattr(G, "class_name", None)})
    if note:
        console.print(f"[yellow]Note:[/yellow] {note}.")
    console.print(f"Computing w_avg from {w_avg_samples} samples ...")
    w_stats = w_statistics(G, w_avg_samples, torch.Generator(device=dev).manual_seed(seed))
    out.mkdir(parents=True, exist_ok=True)
    scale = auto_scale(G.resolution, 2, 1)
    for path, stem, target in zip(images, _stems(images), targets):
        start = time.perf_counter()
        generator = torch.Generator(device=dev).manual_seed(seed)     # each image alike, whatever its order
        writer = VideoWriter(out / f"{stem}-progress.mp4", fps=30, text=png_text(base, image=str(path))) if video else None

        def on_step(step: int, synth: torch.Tensor, stats: dict) -> None:
            frame = side_by_side(target, to_uint8(synth)[0])
            if frame.shape[2] == 1:
                frame = np.repeat(frame, 3, axis=2)
            writer.write(upscale_nearest(frame, scale))

        cast = autocast_module(G.synthesis, dev, choice.precision) if choice.precision != "fp32" else nullcontext()
        with cast, progress_bar(f"Projecting {path.name} ({cfg.space.upper()})", steps, unit="step") as report:
            if writer is not None:
                with writer:
                    result = project(G, target, loss_fn, cfg=cfg, generator=generator, w_stats=w_stats,
                                     on_step=on_step, progress=report)
            else:
                result = project(G, target, loss_fn, cfg=cfg, generator=generator, w_stats=w_stats, progress=report)
        seconds = time.perf_counter() - start
        save_latent(out / f"{stem}.npy", result.ws)
        has_noise = bool(result.noise)              # StyleGAN3 has no noise inputs: no maps, no second rendering
        if has_noise:
            buf = io.BytesIO()
            np.savez(buf, **{f"layer{i:02d}": m[0, 0].numpy().astype(np.float32) for i, m in enumerate(result.noise)})
            atomic_write_bytes(out / f"{stem}-noise.npz", buf.getvalue())
        text = png_text(base, image=str(path), latent=f"{stem}.npy")
        save_png(out / f"{stem}-target.png", target, text=text)
        save_png(out / f"{stem}-proj.png", result.image, text=text)
        save_png(out / f"{stem}-compare.png", side_by_side(target, result.image, *([result.image_const_noise] if has_noise else [])),
                 text=text)
        record = {
            "image": str(path), "checkpoint": str(ckpt), "space": cfg.space, "steps": cfg.steps,
            "precision": choice.to_dict(), "provenance": base,
            "loss": result.loss_name, "loss_note": note, "perceptual_distance": _finite(result.perceptual),
            "mse": _finite(result.mse), "psnr_db": _finite(result.psnr_db),
            "psnr_const_noise_db": _finite(result.psnr_const_noise_db) if has_noise else None,
            "config": {"lr": cfg.lr, "lr_rampup": cfg.lr_rampup, "lr_rampdown": cfg.lr_rampdown,
                       "latent_noise": cfg.latent_noise, "latent_noise_ramp": cfg.latent_noise_ramp,
                       "noise_reg": cfg.noise_reg, "mse_weight": cfg.mse_weight, "w_avg_samples": cfg.w_avg_samples,
                       "optimize_noise": cfg.optimize_noise, "seed": seed},
            "seconds": round(seconds, 2), "steps_per_second": round(cfg.steps / max(seconds, 1e-9), 2),
            "files": {"latent": f"{stem}.npy", "noise": f"{stem}-noise.npz" if has_noise else None, "target": f"{stem}-target.png",
                      "projection": f"{stem}-proj.png", "compare": f"{stem}-compare.png",
                      "video": f"{stem}-progress.mp4" if video else None},
            "history": result.history,
        }
        atomic_write_json(out / f"{stem}.json", record)
        stored = f" ({result.psnr_const_noise_db:.2f} dB with stored noise)" if has_noise else ""
        console.print(f"{path.name}: PSNR {result.psnr_db:.2f} dB{stored}, "
                      f"{result.loss_name} {result.perceptual:.4f} -> {out}/{stem}.npy")
