"""`sgan edit`: latent arithmetic w = w_a + lambda (w_c - w_b), one strength or a sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import typer

from sgan.cli._common import at_least, PRECISION_DEFAULT, PRECISION_HELP, check_out_dir, console, finite, pick_precision
from sgan.cli.app import app
from sgan.errors import UsageError

EPILOG = """[b]Examples[/b]

  sgan edit runs/shapes --base proj/anna.npy --from proj/bob.npy --to proj/bob-smile.npy --out edits
  sgan edit runs/shapes --base a.npy --from b.npy --to c.npy --sweep -2,2,9 --out edits
  sgan edit runs/shapes --base a.npy --from b.npy --to c.npy --strength 1.5 --styles coarse --out edits
  sgan edit runs/shapes --direction dirs.npz:0 --strength -3..3 --steps 7 --seeds 0-3 --out edits
  sgan edit model.pt --direction dirs.npz:sefa-2 --layers coarse --seeds 5 --out edits --video edits/sweep.mp4

Writes edited.npy and edited.png (w_a + strength (w_c - w_b)) and compare.png (a | b | c | result);
with --sweep, sweep.png (a labelled row, one image per strength) and sweep-NN.npy latents.
edit.json (the latents' sidecar) records the strengths, files and precision (fp32 unless --precision says
otherwise; the PNGs carry it in their text chunks too). Latents come from sgan generate --save-latents or sgan project.
With --direction (a file from sgan directions): strip.png, one row per seed and one column per strength
(w + s d on --layers, after truncation; s = 0 is the image sgan generate makes), and edit.json; --video an mp4.
"""


@app.command("edit", epilog=EPILOG)
def edit_command(
    ckpt: Path = typer.Argument(..., metavar="CKPT", help="A snapshot file or a training run folder."),
    base: Optional[Path] = typer.Option(None, "--base", help="Latent a, the one to change (.npy, W or W+)."),
    source: Optional[Path] = typer.Option(None, "--from", help="Latent b, the start of the difference."),
    target: Optional[Path] = typer.Option(None, "--to", help="Latent c, the end of the difference (b -> c is added to a)."),
    strength_text: Optional[str] = typer.Option(None, "--strength", help="lambda in w_a + lambda (w_c - w_b) (default 1). With --direction: s in w + s d, a number, a range A..B (default -3..3, --steps values) or a list -2,0,2."),
    sweep: Optional[str] = typer.Option(None, "--sweep", help="START,STOP,COUNT: a row of strengths, e.g. -2,2,9."),
    styles: str = typer.Option("all", "--styles", help="Layers the difference is applied to: all, coarse, middle, fine, A-B or a list."),
    noise_mode: Optional[str] = typer.Option(None, "--noise-mode", help="const, random or none (default const; with --direction as sgan generate)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (created if needed)."),
    scale: int = typer.Option(0, "--scale", callback=at_least(0), help="Enlarge images in the labelled grids N times (0: auto)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    precision: str = typer.Option(PRECISION_DEFAULT, "--precision", help=PRECISION_HELP),
    direction: Optional[str] = typer.Option(None, "--direction", help="FILE.npz:K: move seeds along direction K (index or name) of `sgan directions`."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="With --direction: the seeds, one row each, e.g. 0-3."),
    steps: Optional[int] = typer.Option(None, "--steps", help="With --direction and a range --strength A..B: how many strengths (default 7)."),
    layers: Optional[str] = typer.Option(None, "--layers", help="With --direction: the ws indices moved (all, coarse, middle, fine, A-B; default the file's layers)."),
    trunc: Optional[float] = typer.Option(None, "--trunc", callback=finite(), help="With --direction: truncation psi, applied before the move (default as sgan generate)."),
    trunc_cutoff: Optional[int] = typer.Option(None, "--trunc-cutoff", help="With --direction: truncate only the first N layers (default as sgan generate)."),
    class_: Optional[str] = typer.Option(None, "--class", help="With --direction: the class of a conditional model."),
    video: Optional[Path] = typer.Option(None, "--video", help="With --direction: also write an mp4 sweep (0 -> max -> min -> 0, looping) of the seeds."),
    seconds: float = typer.Option(4.0, "--seconds", callback=finite(lo=0, lo_open=True), help="With --video: its length."),
    fps: float = typer.Option(30.0, "--fps", callback=finite(lo=0, lo_open=True), help="With --video: frames per second."),
) -> None:
    """Latent arithmetic (add the difference of two latents to a third), or move seeds along a direction (--direction)."""
    import numpy as np

    if direction is not None:
        from sgan.cli.edit_direction import run_direction_edit

        arithmetic = {"--base": base, "--from": source, "--to": target, "--sweep": sweep}
        given = [k for k, v in arithmetic.items() if v is not None] + (["--styles"] if styles != "all" else [])
        if given:
            raise UsageError(f"{', '.join(given)} belong to latent arithmetic; --direction moves --seeds along a "
                             "direction (use --layers for the ws indices).")
        return run_direction_edit(ckpt=ckpt, direction=direction, seeds=seeds, strength=strength_text, steps=steps,
                                  layers=layers, trunc=trunc, trunc_cutoff=trunc_cutoff, noise_mode=noise_mode,
                                  class_=class_, out=out, video=video, seconds=seconds, fps=fps, scale=scale,
                                  device=device, precision=precision)
    only = {"--seeds": seeds, "--steps": steps, "--layers": layers, "--trunc": trunc, "--trunc-cutoff": trunc_cutoff,
            "--class": class_, "--video": video}
    given = [k for k, v in only.items() if v is not None]
    if given:
        raise UsageError(f"{', '.join(given)} go with --direction FILE.npz:K; latent arithmetic takes --base, --from "
                         "and --to (and --styles for the layers).")
    missing = [k for k, v in (("--base", base), ("--from", source), ("--to", target), ("--out", out)) if v is None]
    if missing:
        raise UsageError(f"missing {', '.join(missing)}: latent arithmetic needs --base, --from, --to and --out "
                         "(or move seeds along a direction with --direction FILE.npz:K --seeds ...).")
    strength = 1.0 if strength_text is None else _finite_strength(strength_text)
    noise_mode = "const" if noise_mode is None else noise_mode
    import torch

    from sgan.device import check_precision, configure_cuda, resolve_device
    from sgan.play.classes import load_class_generator
    from sgan.play.provenance import png_text, provenance
    from sgan.play.edit import edit_latent, edit_sweep, parse_sweep, strength_label
    from sgan.play.figures import labelled_grid
    from sgan.fileio import atomic_write_json
    from sgan.play.generate import check_render_options, synthesize
    from sgan.latent import load_latent, save_latent
    from sgan.play.mixing import parse_model_styles
    from sgan.viz import save_png, to_uint8

    strengths = parse_sweep(sweep) if sweep is not None else None
    check_out_dir(out, "--out")
    dev = resolve_device(device)
    check_precision(precision, dev)
    configure_cuda(dev)  # CUDA: TF32 and cudnn.benchmark (sgan.device); a no-op on the CPU
    G = load_class_generator(ckpt, None, device=dev)
    check_render_options(G, truncation_psi=1.0, truncation_cutoff=None, noise_mode=noise_mode)
    layers = None if styles.strip().lower() == "all" else parse_model_styles(styles, G)
    a, b, c = (load_latent(p, num_ws=G.num_ws, w_dim=G.w_dim).to(dev) for p in (base, source, target))
    edited = edit_latent(a, b, c, strength, layers)                   # every input checked before --out is made
    sweep_ws = edit_sweep(a, b, c, strengths, layers) if strengths is not None else None
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UsageError(f"--out {out} cannot be created ({err.strerror or err}); choose another folder.") from None
    choice = pick_precision(precision, G, dev, batch=4)                # the work starts here
    prov = provenance(command="edit", precision=choice, checkpoint=ckpt, base=str(base), source=str(source),
                      target=str(target), strength=strength, noise_mode=noise_mode)
    text = png_text(prov)

    def render(ws: torch.Tensor) -> np.ndarray:
        seeds = [0] * len(ws) if noise_mode == "random" else None    # the same noise in every image
        return to_uint8(synthesize(G, ws, noise_mode=noise_mode, seeds=seeds, device=dev, precision=choice.precision))

    images = render(torch.stack([a, b, c, edited]))
    save_latent(out / "edited.npy", edited)
    save_png(out / "edited.png", images[3], text=text)
    save_png(out / "compare.png", labelled_grid(images[None], col_labels=["a: base", "b: from", "c: to",
                                                                        f"a + {strength:g} (c - b)"], scale=scale),
             text=text)
    record = {"checkpoint": str(ckpt), "base": str(base), "from": str(source), "to": str(target),
              "strength": strength, "styles": layers if layers is not None else "all", "noise_mode": noise_mode,
              "files": {"latent": "edited.npy", "image": "edited.png", "compare": "compare.png"},
              "precision": choice.precision, "provenance": prov}
    if strengths is not None:
        ws = sweep_ws
        row = render(ws)
        for i, w in enumerate(ws):
            save_latent(out / f"sweep-{i:02d}.npy", w)
        save_png(out / "sweep.png", labelled_grid(row[None], col_labels=[strength_label(s) for s in strengths], scale=scale),
                 text=png_text({k: v for k, v in prov.items() if k != "strength"}, sweep=sweep))
        record["sweep"] = [{"strength": s, "latent": f"sweep-{i:02d}.npy"} for i, s in enumerate(strengths)]
        record["files"]["sweep"] = "sweep.png"
    atomic_write_json(out / "edit.json", record)
    sweep_note = f" and sweep.png ({len(strengths)} strengths)" if strengths else ""
    console.print(f"Wrote {out}/edited.npy, edited.png, compare.png{sweep_note}.")



def _finite_strength(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value):
        raise UsageError(f"--strength must be a finite number, got {text}.")
    return value
