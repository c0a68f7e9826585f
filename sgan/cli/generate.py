"""`sgan generate`: images (and optionally their W+ latents) from seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from sgan.cli._common import console, parse_int_list, progress_bar
from sgan.cli.app import app

EPILOG = """[b]Examples[/b]

  sgan generate runs/shapes --seeds 0-15 --grid --outdir out
  sgan generate runs/shapes/snapshot-000600.pt --seeds 0-15,42 --trunc 0.7 --trunc-cutoff 8 --save-latents
  sgan generate model.pt --seeds 7 --trunc 1 --noise-mode random --device cpu
  sgan generate runs/cond --seeds 0-15 --class star --grid   (a model trained with --cond)

Writes out/seed0000.png ... (and seed0000.npy with --save-latents: float32 \\[num_ws, w_dim]).
"""


@app.command("generate", epilog=EPILOG)
def generate_command(
    ckpt: Path = typer.Argument(..., metavar="CKPT", help="A snapshot file or a training run folder (its latest snapshot)."),
    seeds: str = typer.Option("0-7", "--seeds", help="Seeds, e.g. 0-15,42. Each seed gives the same image at any batch size."),
    trunc: float = typer.Option(0.7, "--trunc", help="Truncation psi in W (1 = none, 0 = the average image)."),
    trunc_cutoff: int = typer.Option(8, "--trunc-cutoff", help="Truncate only the first N style layers (the paper: 8)."),
    noise_mode: str = typer.Option("const", "--noise-mode", help="Noise inputs: const (stored maps), random (from the seed) or none."),
    outdir: Path = typer.Option(Path("out"), "--outdir", help="Folder for seedNNNN.png files (created if needed)."),
    grid: bool = typer.Option(False, "--grid", help="Also write grid.png with every image."),
    save_latents: bool = typer.Option(False, "--save-latents", help="Also write each seed's W+ latent as seedNNNN.npy."),
    batch: int = typer.Option(16, "--batch", min=1, help="Images per forward pass (does not change the images)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, or bf16 autocast (faster on recent CPUs and GPUs)."),
    class_: Optional[str] = typer.Option(None, "--class", help="Class name or index, for a model trained with --cond."),
) -> None:
    """Generate images from seeds with truncation, writing seedNNNN.png per seed."""
    from sgan.play.classes import load_class_generator
    from sgan.device import resolve_device
    from sgan.play.generate import render_seeds
    from sgan.latent import save_latent
    from sgan.viz import image_grid, save_png

    seed_list = parse_int_list(seeds, option="--seeds")
    dev = resolve_device(device)
    G = load_class_generator(ckpt, class_, device=dev)
    with progress_bar("Generating", len(seed_list)) as report:
        out = render_seeds(G, seed_list, truncation_psi=trunc, truncation_cutoff=trunc_cutoff, noise_mode=noise_mode,
                           batch_size=batch, device=dev, precision=precision, progress=report)
    for seed, image, ws in zip(out.seeds, out.images, out.ws):
        save_png(outdir / f"seed{seed:04d}.png", image)
        if save_latents:
            save_latent(outdir / f"seed{seed:04d}.npy", ws)
    written = f"{len(seed_list)} images"
    if grid:
        save_png(outdir / "grid.png", image_grid(out.images))
        written += " and grid.png"
    console.print(f"Wrote {written} ({G.resolution}x{G.resolution}) to {outdir}/")
