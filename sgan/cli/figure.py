"""`sgan figure truncation|variation|noise`: the StyleGAN paper's figures 8, 4 and 5 as labelled grids."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from sgan.cli._common import (at_least, PRECISION_DEFAULT, PRECISION_HELP, check_out_file, console, finite, parse_int_list,
                              pick_precision, progress_bar)
from sgan.cli.app import app
from sgan.errors import UsageError

figure_app = typer.Typer(
    name="figure", no_args_is_help=True, rich_markup_mode="rich",
    help=("The paper's figures as labelled grids: truncation sweep (Fig. 8), stochastic variation (Fig. 4), "
          "noise in all/no/fine/coarse layers (Fig. 5), StyleGAN3 input rotation/translation (transform). Computed in fp32 unless --precision says otherwise; the PNG and its .json record the precision.\n\nExample: sgan figure truncation runs/shapes --seeds 0-5 --out trunc.png"),
)
app.add_typer(figure_app, name="figure")


def _parse_floats(text: str, option: str) -> list[float]:
    try:
        values = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise UsageError(f"{option} {text!r}: give numbers separated by commas, e.g. 1,0.7,0.5,0,-0.5,-1.") from None
    if not values:
        raise UsageError(f"{option} is empty.")
    bad = next((v for v in values if not -100 <= v <= 100), None)   # NaN too: outside float32's safe range for psi
    if bad is not None:
        raise UsageError(f"{option} values must be finite numbers from -100 to 100, got {bad}.")
    return values


def _save(figure, out: Path, scale: int, record: dict) -> None:
    from sgan.fileio import atomic_write_json
    from sgan.play.provenance import png_text
    from sgan.viz import save_png

    image = figure.render(scale=scale)
    figure.info.update({k: v for k, v in record.items() if k not in figure.info})
    save_png(out, image, text=png_text(figure.info))
    atomic_write_json(out.with_suffix(".json"), figure.info)
    console.print(f"Wrote {out} ({image.shape[1]}x{image.shape[0]}) and {out.with_suffix('.json').name}.")


def _load(ckpt: Path, device: str, precision: str, out: Path):
    """(G, device) once --out, --device and --precision are checked."""
    from sgan.device import check_precision, resolve_device
    from sgan.play.classes import load_class_generator

    check_out_file(out, "--out", suffixes=(".png",))
    dev = resolve_device(device)
    check_precision(precision, dev)
    return load_class_generator(ckpt, None, device=dev), dev


def _start(ckpt: Path, G, dev, precision: str, *, batch: int = 4) -> tuple[str, dict]:
    """Every input is checked: resolve --precision (the work starts here); (precision, provenance)."""
    from sgan.play.provenance import provenance

    choice = pick_precision(precision, G, dev, batch=batch)
    return choice.precision, provenance(command="figure", precision=choice, checkpoint=ckpt)


CKPT = typer.Argument(..., metavar="CKPT", help="A snapshot file or a training run folder.")
SCALE = typer.Option(0, "--scale", callback=at_least(0), help="Enlarge each image N times (0: small images up to 128 px).")
DEVICE = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N.")
PRECISION = typer.Option(PRECISION_DEFAULT, "--precision", help=PRECISION_HELP + " Only the synthesis network is cast.")


@figure_app.command("truncation", epilog="Example: sgan figure truncation runs/shapes --seeds 0-5 --psi 1,0.7,0.5,0,-0.5,-1 --out trunc.png")
def truncation_command(
    ckpt: Path = CKPT,
    seeds: str = typer.Option("0-5", "--seeds", help="One row per seed."),
    psi: str = typer.Option("1,0.7,0.5,0,-0.5,-1", "--psi", help="One column per psi (the paper's Figure 8 values)."),
    trunc_cutoff: Optional[int] = typer.Option(8, "--trunc-cutoff", help="Truncate only the first N styles (the paper: 8)."),
    noise_mode: str = typer.Option("const", "--noise-mode", help="const, random (from the seed) or none."),
    out: Path = typer.Option(Path("truncation.png"), "--out", help="Output PNG (a .json with the settings beside it)."),
    scale: int = SCALE,
    device: str = DEVICE,
    precision: str = PRECISION,
) -> None:
    """Truncation sweep: rows are seeds, columns psi (w' = w_avg + psi (w - w_avg)).

    Example: sgan figure truncation runs/shapes --seeds 0-5 --out trunc.png
    """
    from sgan.play.figures import check_psis, truncation_figure
    from sgan.play.generate import check_render_options

    seed_list, psis = parse_int_list(seeds), _parse_floats(psi, "--psi")
    check_psis(psis)
    G, dev = _load(ckpt, device, precision, out)
    check_render_options(G, truncation_psi=1.0, truncation_cutoff=trunc_cutoff, noise_mode=noise_mode)
    precision, record = _start(ckpt, G, dev, precision, batch=len(psis))
    fig = truncation_figure(G, seed_list, psis=psis, truncation_cutoff=trunc_cutoff, noise_mode=noise_mode,
                            precision=precision)
    _save(fig, out, scale, record)


@figure_app.command("variation", epilog="Example: sgan figure variation runs/shapes --seeds 3,7 --samples 100 --show 4 --out variation.png")
def variation_command(
    ckpt: Path = CKPT,
    seeds: str = typer.Option("0", "--seeds", help="One row per seed."),
    samples: int = typer.Option(100, "--samples", callback=at_least(2), help="Noise draws behind the standard-deviation image (the paper: 100)."),
    show: int = typer.Option(4, "--show", callback=at_least(1), help="Noise draws shown as pictures."),
    trunc: float = typer.Option(0.7, "--trunc", callback=finite(lo=-100, hi=100), help="Truncation psi of the seeds' w."),
    trunc_cutoff: Optional[int] = typer.Option(8, "--trunc-cutoff", help="Truncate only the first N styles."),
    noise_seed: int = typer.Option(0, "--noise-seed", callback=at_least(0), help="Seed of the noise draws."),
    out: Path = typer.Option(Path("variation.png"), "--out", help="Output PNG (a .json with the settings beside it)."),
    batch: int = typer.Option(16, "--batch", callback=at_least(1), help="Images per forward pass."),
    scale: int = SCALE,
    device: str = DEVICE,
    precision: str = PRECISION,
) -> None:
    """Stochastic variation: one w under several noise draws, and the per-pixel standard deviation.

    Example: sgan figure variation runs/shapes --seeds 3 --out variation.png
    """
    import torch

    from sgan.play.figures import check_has_noise, check_variation, variation_figure

    seed_list = parse_int_list(seeds)
    check_variation(shown=show, samples=samples)
    if trunc_cutoff is not None and trunc_cutoff < 0:
        raise UsageError("--trunc-cutoff must be zero or more (the number of styles truncated from the coarsest).")
    G, dev = _load(ckpt, device, precision, out)
    check_has_noise(G, "variation")
    precision, record = _start(ckpt, G, dev, precision, batch=batch)
    gen = torch.Generator().manual_seed(noise_seed)
    with progress_bar("Noise draws", samples * len(seed_list)) as report:
        fig = variation_figure(G, seed_list, generator=gen, shown=show, samples=samples, truncation_psi=trunc,
                               truncation_cutoff=trunc_cutoff, batch=batch, progress=report, precision=precision)
    fig.info["noise_seed"] = noise_seed
    _save(fig, out, scale, record)


@figure_app.command("noise", epilog="Example: sgan figure noise runs/shapes --seeds 0-3 --out noise.png")
def noise_command(
    ckpt: Path = CKPT,
    seeds: str = typer.Option("0-3", "--seeds", help="One row per seed (its noise maps are drawn from the seed)."),
    fine_from: Optional[int] = typer.Option(None, "--fine-from", help="First resolution of the fine layers (default: 64, or half a smaller model's resolution)."),
    columns: str = typer.Option("all,none,fine,coarse", "--columns", help="Which columns, in order: all, none, fine, coarse."),
    trunc: float = typer.Option(0.7, "--trunc", callback=finite(lo=-100, hi=100), help="Truncation psi of the seeds' w."),
    trunc_cutoff: Optional[int] = typer.Option(8, "--trunc-cutoff", help="Truncate only the first N styles."),
    out: Path = typer.Option(Path("noise.png"), "--out", help="Output PNG (a .json with the settings beside it)."),
    scale: int = SCALE,
    device: str = DEVICE,
    precision: str = PRECISION,
) -> None:
    """Noise in all layers, no layers, fine layers only, coarse layers only (the same noise maps).

    Example: sgan figure noise runs/shapes --seeds 0-3 --out noise.png
    """
    from sgan.play.figures import check_noise_columns, noise_figure

    seed_list = parse_int_list(seeds)
    if trunc_cutoff is not None and trunc_cutoff < 0:
        raise UsageError("--trunc-cutoff must be zero or more (the number of styles truncated from the coarsest).")
    G, dev = _load(ckpt, device, precision, out)
    cols = [c.strip().lower() for c in columns.split(",") if c.strip()]
    check_noise_columns(G, fine_from, cols)
    precision, record = _start(ckpt, G, dev, precision, batch=len(cols))
    fig = noise_figure(G, seed_list, fine_from=fine_from, truncation_psi=trunc,
                       truncation_cutoff=trunc_cutoff, columns=cols, precision=precision)
    _save(fig, out, scale, record)



@figure_app.command("transform", epilog="Example: sgan figure transform sg3.pt --seeds 0-3 --axis rotate --values 0,15,30,45,90 --out rotate.png")
def transform_command(
    ckpt: Path = CKPT,
    seeds: str = typer.Option("0-3", "--seeds", help="One row per seed."),
    axis: str = typer.Option("rotate", "--axis", help="rotate (degrees), translate-x or translate-y (image widths)."),
    values: str = typer.Option("0,15,30,45,90", "--values", help="One column per value along --axis."),
    trunc: float = typer.Option(1.0, "--trunc", callback=finite(), help="Truncation psi of the seeds' w (1: gen_images.py's default)."),
    trunc_cutoff: Optional[int] = typer.Option(None, "--trunc-cutoff", help="Truncate only the first N styles (default all)."),
    out: Path = typer.Option(Path("transform.png"), "--out", help="Output PNG (a .json with the settings beside it)."),
    scale: int = SCALE,
    device: str = DEVICE,
    precision: str = PRECISION,
) -> None:
    """StyleGAN3 only: each seed under input rotations or translations (gen_images.py --rotate / --translate).

    Example: sgan figure transform sg3.pt --seeds 0-3 --axis translate-x --values 0,0.125,0.25 --out shift.png
    """
    from sgan.play.figures import TRANSFORM_AXES, transform_figure

    seed_list, vals = parse_int_list(seeds), _parse_floats(values, "--values")
    if axis not in TRANSFORM_AXES:
        raise UsageError(f"--axis {axis!r}: choose {', '.join(TRANSFORM_AXES)}.")
    if trunc_cutoff is not None and trunc_cutoff < 0:
        raise UsageError("--trunc-cutoff must be zero or more (the number of styles truncated from the coarsest).")
    G, dev = _load(ckpt, device, precision, out)
    if getattr(G.cfg, "arch", None) != "stylegan3":
        raise UsageError(f"figure transform moves the input of a StyleGAN3 model; this model is {G.cfg.arch}.")
    precision, record = _start(ckpt, G, dev, precision, batch=len(seed_list))
    fig = transform_figure(G, seed_list, axis=axis, values=vals, truncation_psi=trunc, truncation_cutoff=trunc_cutoff,
                           precision=precision)
    _save(fig, out, scale, record)
