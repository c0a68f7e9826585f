"""`sgan detector train`: the offline detector for the built-in shapes dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from sgan.cli._common import at_least, console
from sgan.cli.app import app
from sgan.cli.metrics import _Stages

detector_app = typer.Typer(help="The offline detector that lets every metric run without downloaded weights.",
                           no_args_is_help=True, rich_markup_mode="rich")
app.add_typer(detector_app, name="detector")


@detector_app.command("train", epilog="Example: sgan detector train data/shapes.lmdb --out shapes-detector.pt\n\n"
                      "Then: sgan metrics fid runs/shapes --data data/shapes.lmdb --detector shapes-detector.pt --num 2000")
def train_command(
    data: Path = typer.Argument(..., metavar="DATA.lmdb", help="A builtin:shapes database (sgan prepare-dataset builtin:shapes ...)."),
    out: Path = typer.Option(..., "--out", help="The detector file to write (atomically)."),
    epochs: int = typer.Option(2, "--epochs", callback=at_least(1), help="Passes over the training images."),
    batch: int = typer.Option(128, "--batch", callback=at_least(1), help="Images per step."),
    limit: Optional[int] = typer.Option(None, "--limit", callback=at_least(20), help="Use only the first N images (faster, less accurate)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the initial weights and the shuffling."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Train a small CNN on the shapes database's labels and store it as a detector file."""
    from sgan.device import resolve_device
    from sgan.metrics.detector_train import train_detector

    stages = _Stages()
    try:
        summary = train_detector(data, out, epochs=epochs, batch=batch, limit=limit, seed=seed,
                                 device=resolve_device(device), progress=stages)
    finally:
        stages.close()
    if json_out:
        typer.echo(json.dumps(summary))
        return
    held = summary["heldout"]
    console.print(f"Wrote {out}: {summary['resolution']} px, classes {', '.join(summary['classes'])}; held-out "
                  f"class accuracy {held['class_accuracy']:.4f}; attributes {held['attribute_accuracy']}"
                  + (f" (left out of LS: {', '.join(summary['ls_exclude'])})" if summary["ls_exclude"] else "")
                  + f"; {summary['time_s']} s")
