"""`sgan detector train`: the offline detector of a labelled dataset (builtin:shapes, builtin:digits,
folders with --labels folders, a dataset.json)."""

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

EPILOG = ("Examples:\n\n"
          "  sgan detector train data/shapes.lmdb --out shapes-detector.pt\n\n"
          "  sgan prepare-dataset builtin:digits data/digits.lmdb --max-size 32 && "
          "sgan detector train data/digits.lmdb --out digits-detector.pt\n\n"
          "  sgan prepare-dataset photos/ data/pets.lmdb --labels folders --max-size 64 && "
          "sgan detector train data/pets.lmdb --out pets-detector.pt\n\n"
          "Then: sgan metrics modes runs/digits --detector digits-detector.pt --num 2000\n\n"
          "  sgan metrics fid runs/shapes --data data/shapes.lmdb --detector shapes-detector.pt --num 2000")


@detector_app.command("train", epilog=EPILOG)
def train_command(
    data: Path = typer.Argument(..., metavar="DATA.lmdb", help="A labelled database: builtin:shapes, builtin:digits, "
                                "or one prepared with --labels folders / a dataset.json."),
    out: Path = typer.Option(..., "--out", help="The detector file to write (atomically)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", callback=at_least(1), help="Passes over the training "
                                         "images (default: 2 for shapes; about 20k images shown, 2-50 epochs, for class datasets)."),
    batch: int = typer.Option(128, "--batch", callback=at_least(1), help="Images per step."),
    limit: Optional[int] = typer.Option(None, "--limit", callback=at_least(20), help="Use only the first N images (faster, less accurate)."),
    junk: Optional[bool] = typer.Option(None, "--junk/--no-junk", help="Learn an extra 'junk' class from corrupted "
                                        "reals (blends, blurs, noise, shuffled tiles) for `sgan metrics modes` "
                                        "(default: on for class datasets, off for shapes)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the initial weights, the split, the junk and the shuffling."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON on stdout."),
) -> None:
    """Train a small CNN on the database's classes (and the shapes' attributes) and store it as a detector
    file, with its held-out accuracy and the real class distribution."""
    from sgan.device import resolve_device
    from sgan.metrics.detector_train import train_detector

    stages = _Stages()
    try:
        summary = train_detector(data, out, epochs=epochs, batch=batch, limit=limit, seed=seed, junk=junk,
                                 device=resolve_device(device), progress=stages)
    finally:
        stages.close()
    if json_out:
        typer.echo(json.dumps(summary))
        return
    held = summary["heldout"]
    junk_note = (f"; junk class: {held['junk_recall']:.4f} of junk images caught, {held['reals_called_junk']:.4f} "
                 f"of reals called junk" if summary["junk_class"] else "")
    attrs = f"; attributes {held['attribute_accuracy']}" if held["attribute_accuracy"] else ""
    console.print(f"Wrote {out}: {summary['resolution']} px, classes {', '.join(summary['classes'])}; held-out "
                  f"class accuracy {held['class_accuracy']:.4f} ({summary['heldout_images']} images)" + attrs
                  + junk_note
                  + (f" (left out of LS: {', '.join(summary['ls_exclude'])})" if summary["ls_exclude"] else "")
                  + f"; {summary['epochs']} epochs, {summary['time_s']} s", markup=False, highlight=False)
