"""`sgan generate`: images (and optionally their W+ latents) from seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer

from sgan.cli._common import (at_least, PRECISION_DEFAULT, PRECISION_HELP, check_out_dir, console, finite, parse_int_ranges,
                              pick_precision, progress_bar)
from sgan.cli.app import app

EPILOG = """[b]Examples[/b]

  sgan generate runs/shapes --seeds 0-15 --grid --outdir out
  sgan generate runs/shapes/snapshot-000600.pt --seeds 0-15,42 --trunc 0.7 --trunc-cutoff 8 --save-latents
  sgan generate model.pt --seeds 7 --trunc 1 --noise-mode random --device cpu
  sgan generate runs/cond --seeds 0-15 --class star --grid   (a model trained with --cond)
  sgan generate sg3.pt --seeds 0-3 --translate 0.3,-0.15 --rotate 20   (StyleGAN3, as NVIDIA's gen_images.py)

Writes out/seed0000.png ... (and seed0000.npy with --save-latents: float32 \\[num_ws, w_dim], with its
seed0000.json sidecar) as each batch is made; --grid shows the first 256 seeds. Computes in fp32 unless
--precision says otherwise, so the images are the same on every machine; each PNG records the precision,
seed, truncation and checkpoint in its text chunks (python -c "from PIL import Image; print(Image.open('out/seed0000.png').text)").
"""

GRID_MAX = 256   # grid.png holds at most this many images (the first seeds)


@app.command("generate", epilog=EPILOG)
def generate_command(
    ckpt: Path = typer.Argument(..., metavar="CKPT", help="A snapshot file or a training run folder (its latest snapshot)."),
    seeds: str = typer.Option("0-7", "--seeds", help="Seeds, e.g. 0-15,42. Each seed gives the same image at any batch size."),
    trunc: Optional[float] = typer.Option(None, "--trunc", callback=finite(lo=-100, hi=100), help="Truncation psi in W (1 = none, 0 = the average image). Default 0.7; an imported model uses its original tool's default."),
    trunc_cutoff: Optional[int] = typer.Option(None, "--trunc-cutoff", help="Truncate only the first N style layers. Default 8 (the paper); an imported model uses its original tool's default."),
    noise_mode: Optional[str] = typer.Option(None, "--noise-mode", help="Noise inputs: const (stored maps), random (from the seed), none, or numpy (from numpy RandomState(seed) after z, as NVIDIA's StyleGAN2 run_generator.py). Default const; an imported model uses its original tool's."),
    outdir: Path = typer.Option(Path("out"), "--outdir", help="Folder for seedNNNN.png files (created if needed)."),
    grid: bool = typer.Option(False, "--grid", help="Also write grid.png of the images (the first 256)."),
    save_latents: bool = typer.Option(False, "--save-latents", help="Also write each seed's W+ latent as seedNNNN.npy."),
    batch: int = typer.Option(16, "--batch", callback=at_least(1), help="Images per forward pass (does not change the images)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    precision: str = typer.Option(PRECISION_DEFAULT, "--precision", help=PRECISION_HELP),
    class_: Optional[str] = typer.Option(None, "--class", help="Class name or index, for a model trained with --cond."),
    translate: Optional[str] = typer.Option(None, "--translate", help="StyleGAN3 only: translate the image by X,Y (in image widths), as gen_images.py --translate."),
    rotate: Optional[float] = typer.Option(None, "--rotate", callback=finite(), help="StyleGAN3 only: rotate the image by DEG degrees, as gen_images.py --rotate."),
) -> None:
    """Generate images from seeds with truncation, writing seedNNNN.png per seed."""
    from sgan.device import check_precision, configure_cuda, resolve_device
    from sgan.errors import UsageError
    from sgan.latent import save_latent
    from sgan.play.classes import load_class_generator
    from sgan.play.generate import check_render_options, iter_render_seeds, sampling_options
    from sgan.play.provenance import png_text, provenance, write_latent_sidecar
    from sgan.viz import image_grid, save_png

    # every input is checked before a model is timed or an image made: a bad one is one line
    seed_list = parse_int_ranges(seeds, option="--seeds")          # lazy: 0-4294967295 costs nothing
    if trunc_cutoff is not None and trunc_cutoff < 0:
        raise UsageError("--trunc-cutoff must be zero or more (the number of layers truncated from the coarsest).")
    shift = _parse_translate(translate)
    check_out_dir(outdir, "--outdir")
    dev = resolve_device(device)
    check_precision(precision, dev)
    configure_cuda(dev)  # CUDA: TF32 and cudnn.benchmark (sgan.device); a no-op on the CPU
    G = load_class_generator(ckpt, class_, device=dev)
    transform = _input_transform(G, shift, rotate)           # a non-StyleGAN3 model is refused before any note
    trunc, trunc_cutoff, noise_mode, source = sampling_options(G, truncation_psi=trunc, truncation_cutoff=trunc_cutoff,
                                                               noise_mode=noise_mode)
    check_render_options(G, truncation_psi=trunc, truncation_cutoff=trunc_cutoff, noise_mode=noise_mode)
    choice = pick_precision(precision, G, dev, batch=batch)       # the work starts here
    if source:
        shown = {"truncation_psi": "--trunc", "truncation_cutoff": "--trunc-cutoff", "noise_mode": "--noise-mode"}
        text = ", ".join(f"{shown[k]} {'all' if v is None else v}" for k, v in source.items())
        console.print(f"Using the original tool's sampling defaults of this imported model: {text}", highlight=False,
                      soft_wrap=True)
    record = provenance(command="generate", precision=choice, checkpoint=ckpt, truncation_psi=trunc,
                        truncation_cutoff="all" if trunc_cutoff is None else trunc_cutoff, noise_mode=noise_mode,
                        **{"class": getattr(G, "class_name", None)})
    grid_images = []
    done = 0
    with transform, progress_bar("Generating", len(seed_list)) as report:
        for part in iter_render_seeds(G, seed_list, truncation_psi=trunc, truncation_cutoff=trunc_cutoff,
                                      noise_mode=noise_mode, batch_size=batch, device=dev, precision=choice.precision):
            for seed, image, ws in zip(part.seeds, part.images, part.ws):   # written as each batch is made
                save_png(outdir / f"seed{seed:04d}.png", image, text=png_text(record, seed=seed))
                if save_latents:
                    save_latent(outdir / f"seed{seed:04d}.npy", ws)
                    write_latent_sidecar(outdir / f"seed{seed:04d}.npy", record, seed=seed,
                                         image=f"seed{seed:04d}.png", shape=list(ws.shape))
            if grid and done < GRID_MAX:
                grid_images.append(part.images[:GRID_MAX - done])
            done += len(part.seeds)
            report(done, len(seed_list))
    written = f"{done} images"
    if grid:
        shown = sum(len(g) for g in grid_images)
        save_png(outdir / "grid.png", image_grid(np.concatenate(grid_images)),
                 text=png_text(record, seeds=seeds, grid_seeds=f"the first {shown}"))
        written += " and grid.png" + (f" (the first {shown})" if shown < done else "")
    console.print(f"Wrote {written} ({G.resolution}x{G.resolution}) to {outdir}/")


def _parse_translate(translate: str | None) -> tuple[float, float] | None:
    """--translate X,Y -> (x, y), or None when not given; a one-line error for anything else."""
    from sgan.errors import UsageError

    if translate is None:
        return None
    try:
        shift = tuple(float(p) for p in translate.split(","))
    except ValueError:
        shift = ()
    if len(shift) != 2 or not all(np.isfinite(shift)):
        raise UsageError(f"--translate {translate!r}: give two numbers X,Y such as 0.3,-0.15 (in image widths).")
    return shift


def _input_transform(G, shift: tuple[float, float] | None, rotate: float | None):
    """The StyleGAN3 input transform of --translate / --rotate for the duration of the rendering."""
    import contextlib

    from sgan.errors import UsageError
    from sgan.nn.stylegan3 import input_transform

    if shift is None and rotate is None:
        return contextlib.nullcontext()
    if getattr(G.cfg, "arch", None) != "stylegan3":
        raise UsageError(f"--translate / --rotate move the input of a StyleGAN3 model; this model is {G.cfg.arch}.")
    return input_transform(G, translate=shift or (0.0, 0.0), rotate=rotate or 0.0)
