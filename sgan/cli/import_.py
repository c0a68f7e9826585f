"""`sgan import`: convert NVIDIA's and rosinality's StyleGAN checkpoints into sgan checkpoints, running none of their code."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from sgan.cli._common import console
from sgan.cli.app import app

EPILOG = """[b]Examples[/b]

  sgan import karras2019stylegan-ffhq-1024x1024.pkl --out ffhq.pt
  sgan import network-snapshot-025000.pkl --out model.pt --format ada
  sgan import stylegan3-t-ffhqu-256x256.pkl --out sg3.pt   (NVlabs/stylegan3, configs T and R)
  sgan import checkpoint/train_step-7.model --out celeba.pt --resolution 128
  sgan generate ffhq.pt --seeds 0-7 --grid

Formats (--format, detected by default): tf-stylegan (NVlabs/stylegan .pkl), tf-stylegan2 (NVlabs/stylegan2
.pkl), ada (NVlabs/stylegan2-ada-pytorch network-snapshot .pkl), stylegan3 (NVlabs/stylegan3 .pkl), rosinality-sg1 (style-based-gan-pytorch
.model), rosinality-sg2 (stylegan2-pytorch .pt). Every inference command also takes such a file directly.
"""


@app.command("import", epilog=EPILOG)
def import_command(
    file: Path = typer.Argument(..., metavar="FILE", help="A foreign checkpoint: NVIDIA .pkl, rosinality .pt/.model."),
    out: Path = typer.Option(..., "--out", help="The sgan checkpoint to write (e.g. model.pt)."),
    format: str = typer.Option("auto", "--format", help="auto, tf-stylegan, tf-stylegan2, ada, stylegan3, rosinality-sg1 or rosinality-sg2."),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="rosinality-sg1 only: keep the blocks up to this "
                                             "size (default: from train_step-N in the name, else all)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
) -> None:
    """Convert a foreign StyleGAN checkpoint into an sgan checkpoint (no code from the file is run)."""
    from sgan.errors import UsageError
    from sgan.formats import import_file, save_imported

    if out.exists() and not force:
        raise UsageError(f"--out {out} exists; choose another name or pass --force to overwrite it.")
    if out.resolve() == file.resolve():
        raise UsageError("--out must differ from FILE.")
    imp = import_file(file, format=format, resolution=resolution)
    save_imported(imp, out)
    for line in imp.summary():
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    console.print(f"Wrote {out}", highlight=False, markup=False, soft_wrap=True)
