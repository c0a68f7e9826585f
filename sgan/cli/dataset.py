"""`sgan dataset info|preview|verify`: look at a dataset LMDB."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from sgan.cli._common import console, progress_bar
from sgan.cli.app import app

dataset_app = typer.Typer(
    name="dataset", no_args_is_help=True, rich_markup_mode="rich",
    help="Inspect a dataset LMDB: info, preview, verify.\n\nExample: sgan dataset info data/shapes.lmdb",
)
app.add_typer(dataset_app, name="dataset")


@dataset_app.command("info", epilog="Example: sgan dataset info data/shapes.lmdb --json")
def info_command(
    db: Path = typer.Argument(..., help="The dataset LMDB (made by sgan prepare-dataset or rosinality's prepare_data.py)."),
    as_json: bool = typer.Option(False, "--json", help="Print the information as JSON on stdout."),
) -> None:
    """Sizes, image count, format, labels, source and bytes on disk of a dataset.

    Example: sgan dataset info data/shapes.lmdb
    """
    from sgan.data.inspect import dataset_info

    info = dataset_info(db)
    if as_json:
        typer.echo(json.dumps(info, indent=1))
        return
    table = Table(title=str(db), show_header=False, title_justify="left")
    table.add_column("", style="bold")
    table.add_column("")
    table.add_row("layout", info["layout"] + ("" if info["layout"] == "sgan" else " (no metadata)"))
    table.add_row("images", str(info["count"]))
    table.add_row("sizes", ", ".join(str(s) for s in info["sizes"]))
    fmt = info["image_format"] + (f" (quality {info['quality']})" if info.get("quality") else "")
    table.add_row("format", fmt)
    table.add_row("channels", str(info["channels"]))
    if info.get("resample"):
        table.add_row("pyramid", info["resample"])
    table.add_row("labels", ", ".join(info["labels"]) if info["labels"] else "none")
    if info.get("classes"):
        table.add_row("classes", ", ".join(f"{c['index']}={c['name']} ({c['images']})" for c in info["classes"]))
    if info.get("source"):
        table.add_row("source", info["source"])
    if info.get("builtin"):
        b = info["builtin"]
        table.add_row("built-in", f"{b['name']} variant {b['variant']}, seed {b['seed']}" if "variant" in b else b["name"])
    if info.get("sgan_version"):
        table.add_row("written by", f"sgan {info['sgan_version']} (format {info['format_version']}), {info['created']}")
    table.add_row("on disk", f"{info['bytes_on_disk'] / 2**20:.1f} MiB")
    console.print(table)


@dataset_app.command("preview", epilog="Example: sgan dataset preview data/shapes.lmdb --size 32 --count 64 --out grid.png")
def preview_command(
    db: Path = typer.Argument(..., help="The dataset LMDB."),
    size: int = typer.Option(64, "--size", help="Which stored size to show."),
    out: Path = typer.Option(Path("grid.png"), "--out", help="Where to write the grid image (.png or .jpg)."),
    count: int = typer.Option(64, "--count", help="Number of images in the grid."),
    start: int = typer.Option(0, "--start", help="Index of the first image."),
    columns: Optional[int] = typer.Option(None, "--columns", help="Images per row (default: a square grid)."),
) -> None:
    """Write a grid of the first images of a dataset at one size.

    Example: sgan dataset preview data/shapes.lmdb --size 32 --out grid.png
    """
    from sgan.data.inspect import preview_grid, save_grid

    grid = preview_grid(db, size=size, count=count, start=start, columns=columns)
    save_grid(grid, out)
    typer.echo(str(out))


@dataset_app.command("verify", epilog="Example: sgan dataset verify data/shapes.lmdb")
def verify_command(
    db: Path = typer.Argument(..., help="The dataset LMDB."),
) -> None:
    """Decode every record, compare it with its checksum, and report missing, broken, altered or
    inconsistent ones (exit 1 if any).

    Example: sgan dataset verify data/shapes.lmdb
    """
    from sgan.data.inspect import dataset_info, verify_dataset

    total = dataset_info(db)["count"]
    with progress_bar(f"verify {db.name}", total) as report:
        result = verify_dataset(db, progress=report)
    if result.ok:
        sums = ("every record matches its checksum" if result.checksums else
                "no checksums (an older sgan or another tool made it): records decoded only")
        typer.echo(f"{db}: ok ({result.count} images, {result.records} records, sizes "
                   f"{', '.join(str(s) for s in result.sizes)}; {sums})")
        return
    for line in result.problems:
        typer.echo(f"{db}: {line}")
    console.print(f"[red]{len(result.problems)} problem(s) in {db}[/red]; prepare it again with sgan prepare-dataset --overwrite.")
    raise typer.Exit(1)
