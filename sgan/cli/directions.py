"""`sgan directions`: find semantic directions in W (SeFa, GANSpace, InterFaceGAN labels) -> dirs.npz."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from sgan.cli._common import SEED_MAX, at_least, check_out_file, console, progress_bar
from sgan.cli.app import app
from sgan.errors import UsageError

EPILOG = """[b]Examples[/b]

  sgan directions sefa runs/shapes --out dirs.npz                      (closed form, all style layers)
  sgan directions sefa model.pt --layers coarse --num 16 --out coarse.npz
  sgan directions ganspace runs/shapes --samples 10000 --seed 0 --out pca.npz
  sgan directions labels runs/cond --out classes.npz                   (each class against the rest)
  sgan directions labels runs/cond --class star --vs circle --out star.npz
  sgan directions labels runs/shapes --detector shapes-detector.pt --samples 2000 --out attrs.npz
  sgan edit runs/shapes --direction dirs.npz:0 --strength -3..3 --seeds 0-3 --out edits

METHOD: sefa (eigenvectors of A^T A of the style affines, score = eigenvalue), ganspace (PCA of w over
--samples z, score = explained variance ratio) or labels (the normal of a linear SVM in W, score = held-out
accuracy). The file holds directions [K, w_dim] (unit rows), scores, method, layers (the ws indices they
apply to), names, the checkpoint's sha256, w_dim and num_ws; see docs/directions.md.
"""


@app.command("directions", epilog=EPILOG)
def directions_command(
    method: str = typer.Argument(..., metavar="METHOD", help="sefa, ganspace or labels."),
    ckpt: Path = typer.Argument(..., metavar="CKPT", help="A snapshot, a run folder or a foreign checkpoint (NVIDIA, rosinality)."),
    out: Path = typer.Option(..., "--out", help="The directions file to write (.npz)."),
    layers: str = typer.Option("all", "--layers", help="ws indices: all, coarse, middle, fine (as sgan mix), A-B or a list. sefa uses their style affines; every method records them as where the directions apply."),
    num: Optional[int] = typer.Option(None, "--num", callback=at_least(1), help="Keep the first N directions (sefa, ganspace; default all w_dim)."),
    samples: Optional[int] = typer.Option(None, "--samples", callback=at_least(2), help="Samples: ganspace 10000 z, labels from classes 10000 z, labels from a detector 2000 images (defaults)."),
    seed: int = typer.Option(0, "--seed", callback=at_least(0), help="Seed of the samples (ganspace, labels)."),
    raw_weights: bool = typer.Option(False, "--raw-weights", help="sefa: stack the affine weights as they are (rosinality's closed_form_factorization.py) instead of unit rows (the authors' code)."),
    class_: Optional[str] = typer.Option(None, "--class", help="labels: with --vs, the class the direction points to; ganspace: fix the class of a conditional model; with --detector: the class to generate."),
    vs: Optional[str] = typer.Option(None, "--vs", help="labels: the class the direction points away from (with --class)."),
    detector: Optional[str] = typer.Option(None, "--detector", help="labels: an attribute detector file (sgan detector train); its attributes label generated images."),
    attribute: Optional[str] = typer.Option(None, "--attribute", help="labels --detector: a comma list of attribute names (default: those linear separability uses)."),
    batch: int = typer.Option(0, "--batch", callback=at_least(0), help="Samples per forward pass (0: 1000 for mapping only, 32 for images)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
) -> None:
    """Find semantic directions in W: sefa (closed form), ganspace (PCA) or labels (SVM boundary)."""
    import numpy as np

    from sgan.device import resolve_device
    from sgan.checkpoint import inference_generator
    from sgan.formats import open_checkpoint
    from sgan.play.classes import class_names, with_class
    from sgan.play.directions import METHODS, layer_indices, save_directions
    from sgan.play.provenance import checkpoint_fields

    method = method.strip().lower()
    if method not in METHODS:
        raise UsageError(f"METHOD {method!r}: choose sefa, ganspace or labels.")
    if seed > SEED_MAX:
        raise UsageError(f"--seed must be at most {SEED_MAX}.")
    check_out_file(out, "--out", suffixes=(".npz",))
    _check_method_options(method, num=num, samples=samples, raw_weights=raw_weights, class_=class_, vs=vs,
                          detector=detector, attribute=attribute)
    dev = resolve_device(device)
    from_classes = method == "labels" and detector is None
    fixed_class = class_ if (method == "ganspace" or (method == "labels" and detector is not None)) else None
    opened = open_checkpoint(ckpt)
    G = inference_generator(opened, device=dev)
    names = class_names(opened.extra, int(getattr(G, "c_dim", 0) or 0))
    G = with_class(G, fixed_class, names, mixture_ok=True)
    chosen = layer_indices(layers, G)
    sha = checkpoint_fields(ckpt).get("checkpoint_sha256", "")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5D1C]))

    if method == "sefa":
        from sgan.play.directions_sefa import sefa

        dirs = sefa(G, layers=chosen, num=num, normalize_rows=not raw_weights, checkpoint_sha256=sha)
        if dirs.layers.tolist() != chosen:
            left = sorted(set(chosen) - set(dirs.layers.tolist()))
            shown = ", ".join(str(i) for i in left)
            console.print(f"ws {shown} {'drives' if len(left) == 1 else 'drive'} no style (StyleGAN3's input transform); "
                          "left out of the layers.", highlight=False)
    elif method == "ganspace":
        from sgan.play.directions_ganspace import ganspace

        n = samples or 10000
        with progress_bar("Sampling w", n, unit="z") as report:
            dirs = ganspace(G, num_samples=n, rng=rng, layers=chosen, num=num, batch=batch or 1000, device=dev,
                            checkpoint_sha256=sha, progress=report)
    elif from_classes:
        from sgan.data.labels import resolve_class
        from sgan.play.directions_labels import class_directions

        c_dim = int(getattr(G, "c_dim", 0) or 0)
        pos = resolve_class(class_, names) if class_ is not None and c_dim else None
        neg = resolve_class(vs, names) if vs is not None and c_dim else None
        dirs = class_directions(G, class_names=names, num_samples=samples or 10000, rng=rng, layers=chosen,
                                positive=pos, negative=neg, batch=batch or 1000, device=dev, checkpoint_sha256=sha)
    else:
        from sgan.metrics.detectors import load_attribute_detector
        from sgan.play.directions_labels import detector_directions

        net, _, _ = load_attribute_detector(detector, device=dev)
        wanted = [a.strip() for a in attribute.split(",") if a.strip()] if attribute else None
        n = samples or 2000
        with progress_bar("Labelling images", n) as report:
            dirs = detector_directions(G, net, num_samples=n, seed=seed, rng=rng, layers=chosen, attributes=wanted,
                                       batch=batch or 32, device=dev, checkpoint_sha256=sha, progress=report,
                                       on_skip=lambda text: console.print(text, highlight=False, soft_wrap=True))
    save_directions(out, dirs)
    _summary(dirs, out)


def _check_method_options(method: str, *, num, samples, raw_weights, class_, vs, detector, attribute) -> None:
    """Options that do not belong to METHOD are a one-line error (they would be silently ignored)."""
    given = {"--num": num is not None, "--samples": samples is not None, "--raw-weights": raw_weights,
             "--class": class_ is not None, "--vs": vs is not None, "--detector": detector is not None,
             "--attribute": attribute is not None}
    allowed = {"sefa": {"--num", "--raw-weights"},
               "ganspace": {"--num", "--samples", "--class"},
               "labels": {"--samples", "--class", "--vs", "--detector", "--attribute"}}[method]
    wrong = [k for k, v in given.items() if v and k not in allowed]
    if wrong:
        raise UsageError(f"{', '.join(wrong)} {'does' if len(wrong) == 1 else 'do'} not apply to {method} "
                         f"(it takes {', '.join(sorted(allowed))}).")
    if method == "labels":
        if detector is not None and vs is not None:
            raise UsageError("--vs compares two classes of a conditional model; with --detector the attributes label "
                             "the samples (drop --vs).")
        if detector is None and attribute is not None:
            raise UsageError("--attribute names attributes of a --detector; give --detector FILE.")
        if detector is None and (class_ is None) != (vs is None):
            raise UsageError("--class and --vs go together: --class A --vs B gives the direction from B towards A "
                             "(without them, every class against the rest).")


def _summary(dirs, out: Path) -> None:
    what = {"sefa": "eigenvalue", "ganspace": "explained variance", "labels": "held-out accuracy"}[dirs.method]
    shown = ", ".join(f"{n} {s:.4g}" for n, s in zip(dirs.names[:5], dirs.scores[:5]))
    more = f", ... ({len(dirs)} in all)" if len(dirs) > 5 else ""
    layers = dirs.layers.tolist()
    span = f"ws {layers[0]}-{layers[-1]}" if layers == list(range(layers[0], layers[-1] + 1)) else f"ws {layers}"
    console.print(f"Wrote {out}: {len(dirs)} {dirs.method} directions for {span} ({what}: {shown}{more}).",
                  highlight=False, soft_wrap=True)
