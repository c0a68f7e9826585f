"""`sgan metrics fid|kid|ppl|ls|pr|modes`: measure a generator (a snapshot or a run folder)."""

from __future__ import annotations

import json
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Optional

import typer

from sgan.cli._common import at_least, PRECISION_DEFAULT, PRECISION_HELP, console, finite, progress_bar
from sgan.cli.app import app

metrics_app = typer.Typer(help="Measure a generator: FID, KID, PPL, linear separability, precision/recall, mode coverage.",
                          no_args_is_help=True, rich_markup_mode="rich")
app.add_typer(metrics_app, name="metrics")

_OFFLINE = ("\n\n  Offline (no Inception/VGG weights): sgan detector train data/shapes.lmdb --out shapes-detector.pt, "
            "then add --detector shapes-detector.pt.")


class _Stages:
    """Turns the library's `progress(stage, done, total)` into one progress bar per stage."""

    def __init__(self) -> None:
        self.stack = ExitStack()
        self.stage: str | None = None
        self.report = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if stage != self.stage:
            self.stack.close()
            self.stack = ExitStack()
            self.stage = stage
            self.report = self.stack.enter_context(progress_bar(stage.capitalize(), total))
        self.report(done, total)

    def close(self) -> None:
        self.stack.close()


def _run(metric: str, ckpt: Path, *, json_out: bool, device: str, precision: str = "fp32", **kwargs) -> None:
    from sgan.checkpoint import resolve_checkpoint
    from sgan.device import configure_cuda, resolve_device
    from sgan.fileio import append_jsonl
    from sgan.metrics import api
    from sgan.play.classes import load_class_generator

    dev = resolve_device(device)
    api.check_metric_precision(precision, dev, metric=metric)        # at the door, before the model loads
    configure_cuda(dev, tf32=False)  # CUDA: exact fp32 features, whatever the GPU's default; CPU: no-op
    snapshot = resolve_checkpoint(ckpt)
    class_ = kwargs.pop("class_", None)
    G = load_class_generator(ckpt, class_, device=dev, mixture_ok="data_path" in kwargs)

    def say(choice) -> None:  # the library calls this once every input is checked, as the work starts
        if choice.timings_ms and not json_out:
            print(choice.summary(), file=sys.stderr, flush=True)

    stages = _Stages()
    try:
        result = getattr(api, metric)(G, device=dev, progress=stages, precision=precision, on_precision=say, **kwargs)
    finally:
        stages.close()
    result["checkpoint"] = str(snapshot)   # ("precision_choice" says how it was computed; "precision" is pr's own value)
    if ckpt.is_dir():
        append_jsonl(ckpt / "metrics.jsonl", result)
    if json_out:
        typer.echo(json.dumps(result))
        return
    typer.echo(_summary(result))
    console.print(f"detector: {result['detector']}")


def _summary(r: dict) -> str:
    m = r["metric"]
    if m == "fid":
        return f"fid = {r['fid']:.4f}  ({r['num_gen']} generated vs {r['num_real']} real, {r['resolution']} px)"
    if m == "kid":
        return f"kid = {r['kid']:.6g} ± {r['kid_std']:.3g}  (x1000 = {1000 * r['kid']:.4f}; {r['num_subsets']} subsets of {r['subset_size']})"
    if m == "pr":
        dc = (f"\ndensity = {r['density']:.4f}  coverage = {r['coverage']:.4f}  (k = {r['dc_k']}, Naeem et al. 2020)"
              if "density" in r else "")
        return f"precision = {r['precision']:.4f}  recall = {r['recall']:.4f}  (k = {r['k']}; {r['num_gen']} generated vs {r['num_real']} real)" + dc
    if m == "modes":
        return _modes_summary(r)
    if m.startswith("ppl"):
        return f"{m} = {r['ppl']:.4f}  ({r['num']} samples, {r['kept']} kept after 1-99% trimming, eps {r['epsilon']:g})"
    lines = [f"ls_z = {r['ls_z']:.4f}  ls_w = {r['ls_w']:.4f}  ({r['label']}: {r['num_gen']} samples, {r['num_keep']} kept per attribute)"]
    for name, h in r["attributes"].items():
        lines.append(f"  {name:<20} H(Y|X) z {h['h_z']:.4f}  w {h['h_w']:.4f}")
    lines.append(f"  class confidence of generated images {r['class_confidence']:.4f}; classes {r['class_histogram']}")
    return "\n".join(lines)


def _modes_summary(r: dict) -> str:
    ent = "n/a" if r["entropy_bits"] is None else f"{r['entropy_bits']:.4f}"
    kl = "n/a" if r["kl_bits"] is None else f"{r['kl_bits']:.4f}"
    lines = [f"classes covered = {r['covered']}/{r['num_classes']}  entropy = {ent} bits (real {r['real_entropy_bits']:.4f}, "
             f"max {r['max_entropy_bits']:.4f})  KL(gen || real) = {kl} bits",
             f"  {r['num_gen']} samples: {100 * r['share_confident']:.1f} % confident (p >= {r['threshold']:g}), "
             f"{100 * r['share_unsure']:.1f} % unsure, {100 * r['share_junk']:.1f} % junk"
             + ("" if r["junk_class"] else " (this detector has no junk class)")]
    for c, share in r["histogram"].items():
        lines.append(f"  {c:<12} {100 * share:6.2f} %   real {100 * r['real_distribution'][c]:6.2f} %"
                     + ("" if c not in r["missing"] else f"   below {r['cover_fraction']:g} x its real share"))
    return "\n".join(lines)


CKPT = typer.Argument(..., metavar="CKPT", help="A snapshot file or a training run folder (its latest snapshot; "
                      "results are then also appended to its metrics.jsonl).")
DATA = typer.Option(..., "--data", help="The dataset LMDB (made by sgan prepare-dataset) at the model's resolution.")
NUM_REAL = typer.Option(None, "--num-real", help="Real images to use (default: all; precision/recall: up to 200k).")
DETECTOR_WEIGHTS = typer.Option(None, "--detector-weights", help="The Inception/VGG16 weight file (else "
                                "$SGAN_INCEPTION_WEIGHTS / $SGAN_VGG16_WEIGHTS, $SGAN_WEIGHTS_DIR, the torch hub cache).")
BATCH = typer.Option(32, "--batch", callback=at_least(1), help="Images per forward pass (does not change the result).")
SEED = typer.Option(0, "--seed", callback=at_least(0), help="Seed of the latents and noise.")
TRUNC = typer.Option(1.0, "--trunc", callback=finite(lo=0, hi=1), help="Truncation psi (1 = none: the standard protocol).")
DEVICE = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N.")
PRECISION = typer.Option(PRECISION_DEFAULT, "--precision", help=PRECISION_HELP + " Only the synthesis network is "
                         "cast; mapping and detectors stay fp32; ppl is fp32 only. The JSON result's precision_choice "
                         "records it.")
JSON = typer.Option(False, "--json", help="Print the result as one JSON object on stdout.")
CLASS = typer.Option(None, "--class", help="Class name or index of a --cond model: per-class metric against that "
                     "class's reals (default for fid/kid/pr: classes drawn from the dataset's labels).")
CACHE_DIR = typer.Option(None, "--cache-dir", help="Folder for dataset statistics (default $SGAN_CACHE_DIR or ~/.cache/sgan/metrics).")
NO_CACHE = typer.Option(False, "--no-cache", help="Recompute the dataset statistics and do not store them.")
MODE = typer.Option("tf", "--inception-mode", help="Inception input resize: tf (the papers' numbers) or pytorch-fid.")


@metrics_app.command("fid", epilog="Example: sgan metrics fid runs/shapes --data data/shapes.lmdb --num 50000" + _OFFLINE)
def fid_command(ckpt: Path = CKPT, data: Path = DATA,
                num: int = typer.Option(50000, "--num", help="Generated images (fid50k: 50000)."),
                num_real: Optional[int] = NUM_REAL,
                detector: str = typer.Option("inception", "--detector", help="inception, vgg16 or an offline detector file."),
                detector_weights: Optional[Path] = DETECTOR_WEIGHTS, inception_mode: str = MODE,
                ddof: int = typer.Option(1, "--ddof", help="Covariance degrees of freedom: 1 (pytorch-fid, TTUR) or 0 (stylegan2-ada)."),
                batch: int = BATCH, seed: int = SEED, trunc: float = TRUNC, device: str = DEVICE,
                cache_dir: Optional[Path] = CACHE_DIR, no_cache: bool = NO_CACHE, json_out: bool = JSON, precision: str = PRECISION, class_: Optional[str] = CLASS) -> None:
    """Fréchet Inception Distance: generated images against the dataset, float64 statistics."""
    if ddof not in (0, 1):
        from sgan.errors import UsageError

        raise UsageError(f"--ddof must be 0 (stylegan2-ada) or 1 (pytorch-fid, TTUR), got {ddof}.")
    _run("fid", ckpt, precision=precision, class_=class_, json_out=json_out, device=device, data_path=data, num=num, num_real=num_real, detector=detector,
         detector_weights=detector_weights, inception_mode=inception_mode, ddof=ddof, batch=batch, seed=seed,
         trunc=trunc, cache_dir=cache_dir, use_cache=not no_cache)


@metrics_app.command("kid", epilog="Example: sgan metrics kid runs/shapes --data data/shapes.lmdb --num 50000" + _OFFLINE)
def kid_command(ckpt: Path = CKPT, data: Path = DATA,
                num: int = typer.Option(50000, "--num", help="Generated images."),
                num_real: Optional[int] = NUM_REAL,
                detector: str = typer.Option("inception", "--detector", help="inception, vgg16 or an offline detector file."),
                detector_weights: Optional[Path] = DETECTOR_WEIGHTS, inception_mode: str = MODE,
                subsets: int = typer.Option(100, "--subsets", callback=at_least(1), help="Random subsets averaged."),
                subset_size: int = typer.Option(1000, "--subset-size", callback=at_least(2), help="Largest subset size."),
                batch: int = BATCH, seed: int = SEED, trunc: float = TRUNC, device: str = DEVICE,
                cache_dir: Optional[Path] = CACHE_DIR, no_cache: bool = NO_CACHE, json_out: bool = JSON, precision: str = PRECISION, class_: Optional[str] = CLASS) -> None:
    """Kernel Inception Distance: unbiased MMD^2 with the cubic polynomial kernel."""
    _run("kid", ckpt, precision=precision, class_=class_, json_out=json_out, device=device, data_path=data, num=num, num_real=num_real, detector=detector,
         detector_weights=detector_weights, inception_mode=inception_mode, num_subsets=subsets,
         max_subset_size=subset_size, batch=batch, seed=seed, trunc=trunc, cache_dir=cache_dir, use_cache=not no_cache)


@metrics_app.command("pr", epilog="Example: sgan metrics pr runs/shapes --data data/shapes.lmdb --num 50000" + _OFFLINE)
def pr_command(ckpt: Path = CKPT, data: Path = DATA,
               num: int = typer.Option(50000, "--num", help="Generated images."),
               num_real: Optional[int] = NUM_REAL,
               detector: str = typer.Option("vgg16", "--detector", help="vgg16 (fc2), inception or an offline detector file."),
               detector_weights: Optional[Path] = DETECTOR_WEIGHTS,
               k: int = typer.Option(3, "--k", callback=at_least(1), help="Neighbour whose distance sets each ball's radius."),
               dc_k: int = typer.Option(5, "--dc-k", callback=at_least(1), help="Neighbours of density and coverage "
                                        "(Naeem et al. 2020; printed beside precision/recall)."),
               batch: int = BATCH, seed: int = SEED, trunc: float = TRUNC, device: str = DEVICE,
               cache_dir: Optional[Path] = CACHE_DIR, no_cache: bool = NO_CACHE, json_out: bool = JSON, precision: str = PRECISION, class_: Optional[str] = CLASS) -> None:
    """Improved precision and recall (k-NN manifolds in the detector's feature space), with density and coverage."""
    _run("pr", ckpt, precision=precision, class_=class_, json_out=json_out, device=device, data_path=data, num=num, num_real=num_real, detector=detector,
         detector_weights=detector_weights, k=k, dc_k=dc_k, batch=batch, seed=seed, trunc=trunc, cache_dir=cache_dir,
         use_cache=not no_cache)


@metrics_app.command("ppl", epilog="Example: sgan metrics ppl runs/shapes --space w --sampling end --num 50000" + _OFFLINE)
def ppl_command(ckpt: Path = CKPT,
                space: str = typer.Option("w", "--space", help="z (slerp) or w (lerp)."),
                sampling: str = typer.Option("end", "--sampling", help="full (t ~ U(0,1)) or end (t = 0)."),
                num: int = typer.Option(50000, "--num", help="Sampled pairs (StyleGAN: 100000, StyleGAN2: 50000)."),
                crop: bool = typer.Option(False, "--crop/--no-crop", help="Crop the central face region first (StyleGAN's FFHQ protocol)."),
                epsilon: float = typer.Option(1e-4, "--epsilon", callback=finite(lo=0, lo_open=True), help="Step between the two images of a pair."),
                detector: str = typer.Option("lpips", "--detector", help="lpips (LPIPS-VGG16 v0.1) or an offline detector file."),
                detector_weights: Optional[Path] = DETECTOR_WEIGHTS,
                data: Optional[Path] = typer.Option(None, "--data", help="Not needed by PPL (accepted for symmetry)."),
                batch: int = typer.Option(16, "--batch", callback=at_least(1), help="Pairs per forward pass (does not change the result)."),
                seed: int = SEED, trunc: float = TRUNC, device: str = DEVICE, json_out: bool = JSON, precision: str = PRECISION, class_: Optional[str] = CLASS) -> None:
    """Perceptual path length: LPIPS distance of nearby images / eps^2, 1-99% trimmed mean."""
    _run("ppl", ckpt, precision=precision, class_=class_, json_out=json_out, device=device, space=space, sampling=sampling, num=num, crop=crop,
         epsilon=epsilon, detector=detector, detector_weights=detector_weights, batch=batch, seed=seed, trunc=trunc)


@metrics_app.command("ls", epilog="Example: sgan metrics ls runs/shapes --detector shapes-detector.pt --num 20000")
def ls_command(ckpt: Path = CKPT,
               detector: Optional[str] = typer.Option(None, "--detector", help="An offline detector file (its attribute heads)."),
               num: int = typer.Option(200000, "--num", help="Generated samples (the paper: 200000)."),
               num_keep: Optional[int] = typer.Option(None, "--num-keep", help="Most confident samples kept per attribute (default half)."),
               data: Optional[Path] = typer.Option(None, "--data", help="Not needed by LS (accepted for symmetry)."),
               batch: int = BATCH, seed: int = SEED, trunc: float = TRUNC, device: str = DEVICE,
               json_out: bool = JSON, precision: str = PRECISION, class_: Optional[str] = CLASS) -> None:
    """Linear separability of attributes in Z and in W (2 ** sum of H(Y|X) after a linear SVM)."""
    _run("ls", ckpt, precision=precision, class_=class_, json_out=json_out, device=device, detector=detector, num=num, num_keep=num_keep, batch=batch,
         seed=seed, trunc=trunc)


@metrics_app.command("modes", epilog="Examples:\n\n  sgan prepare-dataset builtin:digits data/digits.lmdb --max-size 32\n\n"
                     "  sgan detector train data/digits.lmdb --out digits-detector.pt\n\n"
                     "  sgan metrics modes runs/digits --detector digits-detector.pt --num 10000\n\n"
                     "  sgan train data/digits.lmdb --out runs/digits --metrics modes2k --detector digits-detector.pt")
def modes_command(ckpt: Path = CKPT,
                  detector: Path = typer.Option(..., "--detector", help="A class detector file from `sgan detector "
                                                "train` (it holds the real class distribution)."),
                  num: int = typer.Option(10000, "--num", help="Generated samples."),
                  threshold: float = typer.Option(0.8, "--threshold", callback=finite(lo=0, hi=1),
                                                  help="Class probability from which a sample counts as confident."),
                  cover_fraction: float = typer.Option(0.5, "--cover-fraction", callback=finite(lo=0, hi=1, lo_open=True),
                                                       help="A class is covered when its share of confident samples is "
                                                       "at least this times its real share."),
                  data: Optional[Path] = typer.Option(None, "--data", help="Only for a --cond model: draw its classes "
                                                      "from this dataset's labels (default: the detector's real counts)."),
                  batch: int = BATCH, seed: int = SEED, trunc: float = TRUNC, device: str = DEVICE,
                  json_out: bool = JSON, precision: str = PRECISION, class_: Optional[str] = CLASS) -> None:
    """Mode coverage: class histogram of confident samples, its entropy and KL from the real classes (bits),
    shares unsure and junk, classes covered."""
    _run("modes", ckpt, precision=precision, class_=class_, json_out=json_out, device=device, detector=detector,
         num=num, threshold=threshold, cover_fraction=cover_fraction, data_path=data, batch=batch, seed=seed,
         trunc=trunc)
