"""`sgan mix`: style mixing from latent files (coarse/middle/fine) or the paper's row x column grid."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from sgan.cli._common import (PRECISION_DEFAULT, PRECISION_HELP, check_out_file, console, finite, parse_int_list,
                              pick_precision)
from sgan.cli.app import app
from sgan.errors import UsageError

EPILOG = """[b]Examples[/b]

  sgan mix runs/shapes --coarse out/seed0001.npy --fine out/seed0002.npy --out mix.png
  sgan mix runs/shapes --coarse a.npy --middle b.npy --fine c.npy --out mix.png
  sgan mix runs/shapes --rows 1,2,3 --cols 10-14 --styles coarse --out grid.png
  sgan mix runs/shapes --rows 0-4 --cols 5-9 --styles 0-3 --out grid.png
  sgan mix sg3.pt --rows 0-2 --cols 3-5 --styles middle --trunc 1 --out grid.png   (StyleGAN3: groups by cutoff)

Layer groups (StyleGAN paper 3.1) are bands of the model's resolutions: from 64 px up coarse = 4-8 px (ws 0-3),
middle = 16-32 px (4-7), fine = 64 px and up; smaller models keep the last resolution as fine and the one before
as middle (32 px: coarse 4-8 px = ws 0-3, middle 16 px = ws 4-5, fine 32 px = ws 6-7). A group a model lacks
(8 px: middle) is refused. StyleGAN3 models (ws 0 = the Fourier input, ws i+1 = layer L_i) group by each layer's
cutoff f_c instead: coarse = 2 f_c up to 8 px, middle up to 32 px, fine above (under 64 px: middle up to R/2,
coarse up to R/4); a 256 px model: coarse ws 0-3, middle 4-7, fine 8-15. docs/mix.md lists them. Computes in fp32 unless --precision says otherwise (the same image on every machine);
the PNG records the precision and sources in its text chunks.
"""


@app.command("mix", epilog=EPILOG)
def mix_command(
    ckpt: Path = typer.Argument(..., metavar="CKPT", help="A snapshot file or a training run folder."),
    coarse: Optional[Path] = typer.Option(None, "--coarse", help="Latent (.npy) for the coarse styles (pose, shape)."),
    middle: Optional[Path] = typer.Option(None, "--middle", help="Latent for the middle styles (default: the coarse one)."),
    fine: Optional[Path] = typer.Option(None, "--fine", help="Latent for the fine styles (default: the middle one)."),
    rows: Optional[str] = typer.Option(None, "--rows", help="Row seeds of a mixing grid, e.g. 1,2,3."),
    cols: Optional[str] = typer.Option(None, "--cols", help="Column seeds whose styles are copied, e.g. 10-14."),
    styles: str = typer.Option("coarse", "--styles", help="Styles taken from the columns: coarse, middle, fine, A-B or a list."),
    trunc: float = typer.Option(0.7, "--trunc", callback=finite(lo=-100, hi=100), help="Truncation psi for seed latents (grid mode)."),
    trunc_cutoff: int = typer.Option(8, "--trunc-cutoff", help="Truncate only the first N style layers."),
    noise_mode: str = typer.Option("const", "--noise-mode", help="const, random or none."),
    out: Path = typer.Option(..., "--out", help="Output PNG."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    precision: str = typer.Option(PRECISION_DEFAULT, "--precision", help=PRECISION_HELP),
    class_: Optional[str] = typer.Option(None, "--class", help="Class name or index, for a model trained with --cond."),
) -> None:
    """Mix styles: layers of one latent with the layers of another."""
    import torch

    from sgan.device import check_precision, configure_cuda, resolve_device
    from sgan.play.classes import load_class_generator
    from sgan.play.provenance import png_text, provenance
    from sgan.play.generate import check_render_options, synthesize
    from sgan.latent import load_latent, z_from_seed
    from sgan.play.mixing import (assemble_mix_grid, mix_by_groups, mix_rows_cols, model_style_group_text,
                                  model_style_groups, parse_model_styles)
    from sgan.viz import image_grid, save_png, to_uint8

    # every input is checked before a model is timed or an image made: a bad one is one line
    file_mode = any(p is not None for p in (coarse, middle, fine))
    grid_mode = rows is not None or cols is not None
    if file_mode == grid_mode:
        raise UsageError("give either latent files (--coarse a.npy [--middle b.npy] [--fine c.npy]) "
                         "or a seed grid (--rows 1,2 --cols 3-5 --styles coarse), not both or neither.")
    if file_mode and coarse is None:
        raise UsageError("--coarse is required with latent files (it gives the coarsest styles).")
    if grid_mode and (rows is None or cols is None):
        raise UsageError("a mixing grid needs both --rows and --cols (seed lists such as 1,2,3 and 10-14).")
    row_seeds = parse_int_list(rows, option="--rows") if grid_mode else []
    col_seeds = parse_int_list(cols, option="--cols") if grid_mode else []
    check_out_file(out, "--out", suffixes=(".png",))
    dev = resolve_device(device)
    check_precision(precision, dev)
    configure_cuda(dev)  # CUDA: TF32 and cudnn.benchmark (sgan.device); a no-op on the CPU
    G = load_class_generator(ckpt, class_, device=dev)
    check_render_options(G, truncation_psi=trunc, truncation_cutoff=trunc_cutoff, noise_mode=noise_mode)
    common = dict(truncation_psi=trunc, truncation_cutoff=trunc_cutoff, noise_mode=noise_mode,
                  **{"class": getattr(G, "class_name", None)})
    if file_mode:
        load = lambda p: None if p is None else load_latent(p, num_ws=G.num_ws, w_dim=G.w_dim)  # noqa: E731
        ws = mix_by_groups(coarse=load(coarse), middle=load(middle), fine=load(fine), groups=model_style_groups(G),
                           groups_text=model_style_group_text(G))
        parts = [load(p) for p in (coarse, middle, fine) if p is not None]
        choice = pick_precision(precision, G, dev, batch=len(parts) + 1)      # the work starts here
        record = provenance(command="mix", precision=choice, checkpoint=ckpt, noise_mode=noise_mode,
                            coarse=str(coarse), middle=None if middle is None else str(middle),
                            fine=None if fine is None else str(fine), **{"class": common["class"]})
        images = to_uint8(synthesize(G, torch.stack(parts + [ws]), noise_mode=noise_mode, device=dev,
                                     precision=choice.precision))
        save_png(out, image_grid(images, cols=len(images)), text=png_text(record))
        console.print(f"Wrote {out}: the sources ({', '.join(str(p) for p in (coarse, middle, fine) if p)}) then the mix.")
        return
    picked = parse_model_styles(styles, G)
    choice = pick_precision(precision, G, dev, batch=len(col_seeds))          # the work starts here
    record = provenance(command="mix", precision=choice, checkpoint=ckpt, rows=rows, cols=cols, styles=picked, **common)

    def seed_ws(seed_list: list[int]) -> torch.Tensor:
        z = torch.stack([z_from_seed(s, G.z_dim) for s in seed_list]).to(dev)
        return G.map(z, truncation_psi=trunc, truncation_cutoff=trunc_cutoff)

    row_ws, col_ws = seed_ws(row_seeds), seed_ws(col_seeds)
    cells_ws = mix_rows_cols(row_ws, col_ws, picked)
    render = lambda ws, seeds: to_uint8(synthesize(G, ws, noise_mode=noise_mode, seeds=seeds, device=dev,  # noqa: E731
                                                   precision=choice.precision))
    row_img, col_img = render(row_ws, row_seeds), render(col_ws, col_seeds)
    cells = render(cells_ws.flatten(0, 1), [s for s in row_seeds for _ in col_seeds])
    cells = cells.reshape(len(row_seeds), len(col_seeds), *cells.shape[1:])
    save_png(out, assemble_mix_grid(row_img, col_img, cells), text=png_text(record))
    console.print(f"Wrote {out}: {len(row_seeds)} rows x {len(col_seeds)} columns, styles {picked} from the columns.")
