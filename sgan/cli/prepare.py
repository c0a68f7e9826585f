"""`sgan prepare-dataset`: a folder, a zip or builtin:shapes to a multi-resolution LMDB."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from sgan.cli._common import console, progress_bar
from sgan.cli.app import app

_EPILOG = (
    "Examples:\n\n"
    "  sgan prepare-dataset builtin:shapes data/shapes.lmdb --max-size 32 --count 20000\n\n"
    "  sgan prepare-dataset ~/photos data/photos.lmdb --max-size 256 --crop center --workers 2\n\n"
    "  sgan prepare-dataset 'builtin:shapes?variant=hard' data/hard.lmdb --max-size 64 --count 5000 --seed 1\n\n"
    "  sgan prepare-dataset ~/pets data/pets.lmdb --max-size 64 --labels folders   (one folder per class)\n\n"
    "  sgan prepare-dataset builtin:lfw-faces data/lfw.lmdb --max-size 32   (needs pip install \"sgan\\[lfw]\")\n\n"
    "  sgan prepare-dataset builtin:digits data/digits.lmdb --max-size 32   (scikit-learn's 1,797 8x8 digits, "
    "classes 0-9, bicubic to 32 px, grey stored as RGB; needs pip install \"sgan\\[digits]\")"
)


@app.command("prepare-dataset", epilog=_EPILOG)
def prepare_dataset_command(
    source: str = typer.Argument(..., help="A folder of images (searched recursively), a .zip, or "
                                           "builtin:shapes[?variant=default|medium|hard], builtin:lfw-faces or builtin:digits."),
    out: Path = typer.Argument(..., help="The LMDB to create (a folder, e.g. data/shapes.lmdb)."),
    max_size: int = typer.Option(256, "--max-size", help="Largest size stored (a power of two)."),
    min_size: int = typer.Option(4, "--min-size", help="Smallest size stored (a power of two, 4 or more)."),
    image_format: str = typer.Option("png", "--format", help="png (lossless) or jpeg."),
    quality: int = typer.Option(95, "--quality", help="JPEG quality, 1-100 (with --format jpeg)."),
    resample: str = typer.Option("box", "--resample", help="box: each level is the 2x2 average of the one above "
                                                            "(official); lanczos: every level resized from the source."),
    crop: str = typer.Option("center", "--crop", help="Non-square images: center (crop), pad (with --background) "
                                                      "or none (refuse them)."),
    upscale: bool = typer.Option(False, "--upscale", help="Enlarge images smaller than --max-size instead of skipping them."),
    background: str = typer.Option("white", "--background", help="Colour behind transparent pixels and padding: "
                                                                  "a name, #rrggbb or r,g,b."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Processes that decode and resize (default: the CPU count)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace OUT if it exists (only once the new one is complete)."),
    strict: bool = typer.Option(False, "--strict", help="Fail (exit 1) on the first file that would be skipped."),
    count: Optional[int] = typer.Option(None, "--count", help="Number of images: generated for builtin:shapes (default "
                                                    "10000), at most this many for a folder or zip."),
    seed: int = typer.Option(0, "--seed", help="Seed of builtin:shapes (the same seed gives the same images)."),
    labels: str = typer.Option("auto", "--labels", help="Class labels of a folder or zip: folders (one folder per "
                                                        "class), dataset.json (StyleGAN2-ADA's file), none, or auto "
                                                        "(dataset.json if SOURCE has one)."),
) -> None:
    """Prepare a multi-resolution LMDB dataset (sizes --min-size..--max-size) from SOURCE.

    Unreadable, corrupt and too-small files are skipped and listed with their reason in OUT/manifest.json.

    Example: sgan prepare-dataset builtin:shapes data/shapes.lmdb --max-size 32 --count 20000
    """
    from sgan.data.prepare import DEFAULT_BUILTIN_COUNT, prepare_dataset
    from sgan.data.sources import BUILTIN_PREFIX

    total_hint = count or (DEFAULT_BUILTIN_COUNT if source.startswith(BUILTIN_PREFIX) else 0)
    with progress_bar(f"prepare {out.name}", total_hint or 1) as report:
        summary = prepare_dataset(
            source, out, max_size=max_size, min_size=min_size, format=image_format.lower(), quality=quality,
            resample=resample.lower(), crop=crop.lower(), upscale=upscale, background=background, workers=workers,
            overwrite=overwrite, strict=strict, count=count, seed=seed, progress=report, labels=labels)
    console.print(_summary_table(summary))
    typer.echo(f"{summary.out}: {summary.count} images, sizes {summary.sizes[0]}-{summary.sizes[-1]}, {summary.image_format}")


def _summary_table(summary) -> Table:
    table = Table(title=f"prepare-dataset {summary.source} -> {summary.out}", show_header=True, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("value", justify="right")
    table.add_row("images written", f"{summary.count}")
    table.add_row("candidates", f"{summary.candidates}")
    for reason, n in sorted(summary.skipped.items(), key=lambda kv: -kv[1]):
        table.add_row(f"skipped: {reason}", f"{n}")
    table.add_row("sizes", ", ".join(str(s) for s in summary.sizes))
    table.add_row("format", summary.image_format)
    table.add_row("on disk", f"{summary.bytes_on_disk / 2**20:.1f} MiB")
    table.add_row("time", f"{summary.seconds:.1f} s ({summary.images_per_s:.0f} img/s, {summary.workers} workers)")
    if summary.skipped:
        table.add_row("manifest", str(summary.manifest))
    return table
