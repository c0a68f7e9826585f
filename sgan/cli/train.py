"""`sgan train`: StyleGAN with progressive growing, or StyleGAN2 with --arch stylegan2 (the library is sgan.train)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from sgan.cli._common import console, finite
from sgan.cli.app import app
from sgan.errors import UsageError

EXAMPLE = (
    "Example: sgan prepare-dataset builtin:shapes data/shapes.lmdb --max-size 32 --count 20000 && "
    "sgan train data/shapes.lmdb --out runs/shapes --preset cpu; "
    "StyleGAN2: sgan train data/shapes.lmdb --out runs/shapes2 --arch stylegan2 --preset cpu"
)
EXAMPLES_MORE = (
    "Small data: sgan train data/lfw.lmdb --out runs/lfw --aug ada (or --aug diffaug). "
    "Classes: sgan train data/shapes.lmdb --out runs/cond --cond. "
    "Fine-tuning: sgan train data/new.lmdb --out runs/ft --init runs/shapes --freeze-d 3 --aug ada. "
    "fp16 on a GPU (loss scaling; StyleGAN2 gets conv_clamp 256): "
    "sgan train data/ffhq.lmdb --out runs/ffhq --arch stylegan2 --precision fp16 --device cuda. "
    "Both CPU cores: sgan train data/shapes.lmdb --out runs/shapes --preset cpu --procs 2"
)

def build_config(preset: str, world_size: int, options: dict[str, Any], data_resolution: int | None = None):
    """The preset's TrainConfig with the options that were given (CLI parameter -> value, None: not
    given) applied by the library's own policy (sgan.train.presets.configure)."""
    from sgan.train.config import FLAGS
    from sgan.train.presets import configure

    return configure(preset, {FLAGS[k]: v for k, v in options.items()}, world_size=world_size,
                     data_resolution=data_resolution)


def _dry_run(cfg, data: Path, world_size: int = 1) -> None:
    from sgan.train.plan import describe
    from sgan.train.reals import dataset_sizes
    from sgan.train.scaler import fp16_setup

    if cfg.arch == "stylegan2":
        fp16_setup(cfg)  # fp16: conv_clamp 256, as the run itself will have
        shown: dict[str, Any] = {"train": cfg.to_dict()}
        if cfg.resolution is not None:
            shown["model"] = cfg.model_config().to_dict()
            shown["resolved"] = describe(cfg, world_size)
        typer.echo(json.dumps(shown, indent=2))
        return
    if cfg.resolution is None:
        try:
            cfg.resolution = max(dataset_sizes(data)) if data.exists() else None
        except Exception:  # noqa: BLE001 - a dry run reports what it can
            cfg.resolution = None
    out: dict[str, Any] = {"train": cfg.to_dict()}
    if cfg.resolution is not None:
        model = cfg.model_config()
        out["model"] = model.to_dict()
        unit = "s" if cfg.by_time else "kimg"
        from sgan.train.schedule import build_phases

        training, transition = cfg.phase_lengths()
        out["schedule"] = [f"{ph.kind} {ph.resolution}px from {ph.start:g} {unit}"
                           + ("" if ph.length == float("inf") else f" for {ph.length:g} {unit}")
                           for ph in build_phases(cfg.start_resolution, cfg.resolution, training, transition)]
        out["per_resolution"] = {str(res): {"batch": cfg.batch_at(res), "lr": cfg.lr_at(res),
                                            "tick_kimg": cfg.tick_kimg_at(res)} for res in cfg.resolutions()}
    typer.echo(json.dumps(out, indent=2))


class _Bar:
    """Rich progress bar on a terminal; tick lines go above it (and alone when not a terminal)."""

    def __init__(self, enabled: bool) -> None:
        self.progress: Progress | None = None
        self.task = None
        self.enabled = enabled

    def __enter__(self) -> "_Bar":
        if console.is_terminal and self.enabled:
            self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"),
                                     TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(), console=console)
            self.progress.__enter__()
            self.task = self.progress.add_task("train", total=1.0, info="")
        return self

    def report(self, s: dict[str, Any]) -> None:
        if self.progress is None:
            return
        desc = f"{s['phase']} {s['resolution']}px"
        info = (f"alpha {s['alpha']:.2f} kimg {s['kimg']:.1f} {s['images_per_s']:.0f} img/s "
                + (f"{s['done'] / 60:.1f}/{s['total'] / 60:g} min" if s["unit"] == "s"
                   else f"{s['done']:.1f}/{s['total']:g} kimg"))
        self.progress.update(self.task, description=desc, completed=min(s["done"] / max(s["total"], 1e-9), 1.0),
                             info=info)

    def log(self, line: str) -> None:
        if self.progress is not None:
            self.progress.console.print(line, markup=False, highlight=False)
        else:
            print(line, file=sys.stderr, flush=True)

    def __exit__(self, *exc: Any) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)


def _check_metrics(text: str, detector: str | None) -> None:
    """--metrics names and the detectors they need, refused before training starts (not at the first snapshot)."""
    try:
        from sgan.metrics.api import check_metric_detector, parse_metric_list
    except ImportError:
        raise UsageError("--metrics needs sgan's metrics package, which this installation lacks; drop --metrics.") from None
    for spec in parse_metric_list(text):
        try:
            check_metric_detector(spec.metric, detector)
        except UsageError as err:
            raise UsageError(f"--metrics {text}: {err}") from None


def _metrics_hook(text: str, data: Path, out: Path, detector: str | None, device: str):
    """At each snapshot: compute the metrics with sgan.metrics and append them to metric-<name>.jsonl."""
    from sgan.metrics import compute_metric
    from sgan.play.classes import load_class_generator
    from sgan.device import resolve_device
    from sgan.fileio import append_jsonl

    _check_metrics(text, detector)  # bad names and missing detectors fail now, not after the first snapshot
    names = [n.strip() for n in text.split(",") if n.strip()]

    def hook(snapshot: Path, kimg: float) -> None:
        dev = resolve_device(device)
        G = load_class_generator(snapshot, None, device=dev, mixture_ok=True)
        for name in names:
            result = compute_metric(name, G=G, data_path=data, detector=detector, device=dev)
            record = {"kimg": kimg, "snapshot": snapshot.name, **{k: v for k, v in result.items()
                                                                  if isinstance(v, (int, float, str, bool))}}
            append_jsonl(out / f"metric-{name}.jsonl", record)
            console.print(f"{name} at {kimg:.1f} kimg: {record}", markup=False, highlight=False)

    return hook


@app.command("train", help=f"Train StyleGAN (progressive growing) or StyleGAN2 (--arch stylegan2) on a prepared LMDB.\n\n{EXAMPLE}\n\n{EXAMPLES_MORE}")
def train_command(
    data: Path = typer.Argument(..., help="Dataset LMDB made by `sgan prepare-dataset`."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder (config, logs, grids, snapshots)."),
    arch: Optional[str] = typer.Option(None, "--arch", help="stylegan1 (progressive growing; default for new runs) or stylegan2 (fixed resolution); a resumed run keeps its own."),
    preset: Optional[str] = typer.Option(None, "--preset", help="stylegan1: paper, cpu, tiny (default: paper on CUDA, cpu otherwise); stylegan2: paper256, paper512, paper1024, stylegan2 (config F), auto (the ADA rule), cpu, tiny (default: auto on CUDA, cpu otherwise)."),
    resolution: Optional[int] = typer.Option(None, "--resolution", help="Final resolution (default: the dataset's largest)."),
    start_resolution: Optional[int] = typer.Option(None, "--start-resolution", help="First resolution (preset: 8)."),
    kimg: Optional[float] = typer.Option(None, "--kimg", callback=finite(lo=0, lo_open=True), help="Train this many thousand real images (kimg schedule)."),
    minutes: Optional[float] = typer.Option(None, "--minutes", callback=finite(lo=0, lo_open=True), help="Train this long; phases set by wall time (cpu: 20)."),
    phase_kimg: Optional[float] = typer.Option(None, "--phase-kimg", callback=finite(lo=0), help="kimg to stabilise each resolution (paper: 600)."),
    fade_kimg: Optional[float] = typer.Option(None, "--fade-kimg", callback=finite(lo=0), help="kimg to fade each resolution in (paper: 600)."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Global minibatch at every resolution (preset table)."),
    lr: Optional[float] = typer.Option(None, "--lr", callback=finite(lo=0, lo_open=True), help="Adam learning rate at every resolution (preset table)."),
    loss: Optional[str] = typer.Option(None, "--loss", help="logistic (+R1), wgan-gp or hinge (logistic)."),
    r1_gamma: Optional[float] = typer.Option(None, "--r1-gamma", callback=finite(lo=0), help="R1 weight gamma (paper 10, cpu 1)."),
    r1_interval: Optional[int] = typer.Option(None, "--r1-interval", help="Lazy R1: every N steps, scaled by N (paper 1, cpu 4; stylegan2 16)."),
    pl_weight: Optional[float] = typer.Option(None, "--pl-weight", callback=finite(lo=0), help="StyleGAN2 path-length weight (2; 0 turns it off)."),
    g_reg_interval: Optional[int] = typer.Option(None, "--g-reg-interval", help="StyleGAN2 path length every N steps, scaled by N (4)."),
    mixing: Optional[float] = typer.Option(None, "--mixing", callback=finite(lo=0, hi=1), help="Style-mixing probability (0.9)."),
    ema_kimg: Optional[float] = typer.Option(None, "--ema-kimg", callback=finite(lo=0), help="G_ema half-life in kimg (paper 10, cpu 5)."),
    ema_rampup: Optional[float] = typer.Option(None, "--ema-rampup", callback=finite(lo=0, lo_open=True), help="Cap the EMA half-life at this x images seen."),
    mirror: Optional[bool] = typer.Option(None, "--mirror/--no-mirror", help="Mirror augmentation (x-flips) (off)."),
    precision: Optional[str] = typer.Option(None, "--precision", help="auto (at start, time one G+D forward and backward of this run's step in fp32, in bf16 autocast where the hardware has native bfloat16, and in fp16 on CUDA; take the fastest that agrees), fp32, bf16 or fp16 (CUDA or a CPU with avx512_fp16; loss scaling; StyleGAN2 gets conv_clamp 256) (auto). May change on --resume; a resumed run whose precision this machine emulates or lacks decides again. Example: sgan train data/shapes.lmdb --out runs/shapes --resume auto --precision fp32."),
    tf32: Optional[bool] = typer.Option(None, "--tf32/--no-tf32", help="CUDA only: TF32 tensor cores for fp32 matmuls and convolutions; --no-tf32 for exact fp32 (tf32)."),
    compile: Optional[str] = typer.Option(None, "--compile", help="torch.compile G and D: auto (on where the measured speed-up repays the compile time within the run), on or off (auto). Example: sgan train data/shapes.lmdb --out runs/shapes --compile on."),
    amp: Optional[str] = typer.Option(None, "--amp", hidden=True, help="Deprecated alias of --precision: none = fp32, bf16 = bf16."),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed of the initialisation, data order and latents (0)."),
    snap: Optional[float] = typer.Option(None, "--snap", callback=finite(lo=0, lo_open=True), help="Snapshot every N kimg (paper 1000, cpu 20)."),
    keep: Optional[int] = typer.Option(None, "--keep", help="Keep the last N snapshots (0: all) (paper 5, cpu 3)."),
    tick: Optional[float] = typer.Option(None, "--tick", callback=finite(lo=0, lo_open=True), help="One stats line every N kimg (paper table, cpu 4)."),
    reset_optimizer: Optional[bool] = typer.Option(None, "--reset-optimizer/--keep-optimizer",
                                                   help="New Adam state at each new lod (official) (reset)."),
    fresh_g_latents: Optional[bool] = typer.Option(None, "--fresh-g-latents/--reuse-fakes",
                                                   help="G step draws new z (official) or reuses the D step's fakes (faster) (paper fresh, cpu reuse)."),
    aug: Optional[str] = typer.Option(None, "--aug", help="Augment what D sees: none, ada (adaptive, StyleGAN2-ADA) or diffaug (DiffAugment) (none)."),
    aug_pipe: Optional[str] = typer.Option(None, "--aug-pipe", help="ADA pipeline: blit, geom, color, bg or bgc (bgc)."),
    aug_policy: Optional[str] = typer.Option(None, "--aug-policy", help="DiffAugment policy, a subset of color,translation,cutout (all three)."),
    aug_target: Optional[float] = typer.Option(None, "--aug-target", callback=finite(lo=0, hi=1, lo_open=True, hi_open=True), help="ADA: target of r_t = E[sign(D(real))] (0.6)."),
    aug_p: Optional[float] = typer.Option(None, "--aug-p", callback=finite(lo=0, hi=1), help="ADA: a fixed augmentation probability instead of the heuristic."),
    aug_kimg: Optional[float] = typer.Option(None, "--aug-kimg", callback=finite(lo=0, lo_open=True), help="ADA: p can move by 1 in this many kimg (500; 100 with --init)."),
    cond: Optional[bool] = typer.Option(None, "--cond/--no-cond", help="Class-conditional training on the dataset's labels (off)."),
    init: Optional[str] = typer.Option(None, "--init", help="Start from the weights of this snapshot or run folder (fresh optimizer; configs must match)."),
    init_ema: Optional[bool] = typer.Option(None, "--init-ema/--init-g", help="With --init: G starts from the source's G_ema (or its G)."),
    freeze_d: Optional[int] = typer.Option(None, "--freeze-d", help="Freeze D's N highest-resolution layers (FreezeD, counted as StyleGAN2-ADA)."),
    resume: Optional[str] = typer.Option(None, "--resume", help="auto (latest snapshot of --out, else fresh) or a snapshot/run folder."),
    metrics: Optional[str] = typer.Option(None, "--metrics", help="Metrics at each snapshot, e.g. fid5k,kid5k (see sgan metrics)."),
    detector: Optional[str] = typer.Option(None, "--detector", help="Detector name or file for --metrics (default: the metric's own)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch; default: one for small convolutions (8-16 px at CPU widths), all cores above."),
    procs: Optional[str] = typer.Option(None, "--procs", help="Train in N data-parallel processes started here (gloo on the CPU, one torch thread each; the torchrun code path, same result as one process), or auto (CPU: one per physical core the minibatch splits into; CUDA: 1). Example: sgan train data/shapes.lmdb --out runs/shapes --preset cpu --procs auto"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the resolved config and schedule, then exit."),
    procs_child: Optional[str] = typer.Option(None, "--procs-child", hidden=True, help="Set by --procs in the processes it starts."),
) -> None:
    from sgan.distributed import env_info
    from sgan.train import Hooks, TrainingInterrupted, train
    from sgan.train.procs import ProcsRun, follow_parent

    told = ProcsRun.from_json(procs_child) if procs_child is not None else None   # a child of --procs
    follow_parent(told.parent_pid if told else None)   # a child of --procs stops cleanly when its parent dies

    from sgan.train.config import FLAGS

    given_here = locals()
    options = {name: given_here[name] for name in FLAGS}   # every training option of the registry
    if amp is not None:  # the old name: none -> fp32
        if precision is not None:
            raise UsageError("--amp is the old name of --precision; give only --precision.")
        if amp not in ("none", "bf16"):
            raise UsageError(f"--amp {amp!r}: choose none or bf16 (better: --precision fp32|bf16|auto).")
        options["precision"] = "fp32" if amp == "none" else "bf16"
        print(f"note: --amp is deprecated; use --precision {options['precision']}.", file=sys.stderr)
    from sgan.device import resolve_device

    info = env_info()
    if not dry_run and not data.exists():
        raise UsageError(f"{data}: no such dataset; make one with `sgan prepare-dataset SOURCE {data}`.")
    sg2 = arch == "stylegan2"
    preset_typed = preset is not None   # a resumed run names only what the user typed as ignored
    if preset is None or (preset == "auto" and not sg2):
        cuda = resolve_device(device).type == "cuda"
        preset = ("auto" if cuda else "cpu") if sg2 else ("paper" if cuda else "cpu")
    data_resolution = None
    if resolution is None and data.exists():
        from sgan.train.reals import dataset_sizes

        data_resolution = max(dataset_sizes(data))
    world_size, choice = info.world_size, None
    if procs is not None:  # refused here, before anything is written
        from sgan.train.procs import choose_procs

        choice = choose_procs(procs, device=resolve_device(device), data=data if data.exists() else None,
                              config_for=lambda n: build_config(preset, n, options, data_resolution)[0])
        world_size = choice.procs
    cfg, given = build_config(preset, world_size, options, data_resolution)
    if metrics:
        _check_metrics(metrics, detector)
    if dry_run:
        _dry_run(cfg, data, world_size)
        return
    if threads is not None:
        if threads < 1:
            raise UsageError("--threads must be at least 1.")
    if not data.exists():
        raise UsageError(f"{data}: no such dataset; make one with `sgan prepare-dataset SOURCE {data}`.")
    if preset_typed:
        given["preset"] = preset
    if choice is not None and choice.procs > 1:  # this process only starts, watches and stops the training processes
        from sgan.train.procs import launch

        raise typer.Exit(launch(sys.argv[1:], choice, cpu=resolve_device(device).type == "cpu", threads=threads))
    command_line = list(told.command_line) if told else ["sgan"] + sys.argv[1:]   # what the user typed
    with _Bar(info.is_main) as bar:
        hooks = Hooks(report=bar.report, log=bar.log)
        if metrics:
            hooks.on_snapshot.append(_metrics_hook(metrics, data, out, detector, device))
        try:
            result = train(cfg, data, out, resume=resume, device=device, hooks=hooks, command_line=command_line,
                           resume_overrides=given, threads=threads, procs=told.choice if told else choice)
        except TrainingInterrupted as stop:
            bar.log(f"{stop}")
            raise typer.Exit(stop.exit_code) from None
    if info.is_main:
        console.print(f"done: {result.kimg:.1f} kimg in {result.seconds / 60:.1f} min; latest snapshot "
                      f"{result.snapshot}; try `sgan generate {out} --seeds 0-31 --grid`.", markup=False, highlight=False)
