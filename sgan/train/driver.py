"""Driving a Trainer: set-up, resume, ticks, snapshots, rollbacks, signals, the end."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch

from sgan import __version__
from sgan import distributed as dist_utils
from sgan.checkpoint import LATEST_POINTER, load_checkpoint, resolve_checkpoint
from sgan.device import check_precision, configure_cuda, describe_device
from sgan.errors import CheckpointError, DataError, UsageError
from sgan.nn.memory import describe_memory_format
from sgan.train.compiled import apply_choice as apply_compile
from sgan.train.compiled import choose_for as choose_compile_for
from sgan.train.config import RESUMABLE, TrainConfig, option_name
from sgan.train.hooks import Hooks, TrainResult
from sgan.train.loop import Trainer
from sgan.train.plan import plan
from sgan.train.reals import dataset_sizes
from sgan.train.precision import decide, resume_note, unsupported
from sgan.train.procs import ProcsChoice, procs_record, procs_summary
from sgan.train.run import RunFolder, StopSignals, TrainingDiverged, TrainingInterrupted
from sgan.train.scaler import fp16_setup
from sgan.train.state import unpack
from sgan.train.finetune import init_from, open_init
from sgan.train.conditioning import TrainLabels



def resolve_resume(resume: str | None, out: Path) -> Path | None:
    """`auto`: the snapshot the run folder's latest.json names (None when there is no pointer); a bad
    pointer is refused in one line naming it, as `sgan generate RUN` refuses it. A path must exist."""
    if resume is None or resume == "":
        return None
    if resume == "auto":
        if not (out / LATEST_POINTER).is_file():
            return None
        try:
            return resolve_checkpoint(out)
        except CheckpointError as err:
            raise CheckpointError(f"--resume auto: {err}") from None
    p = Path(resume)
    if not p.exists():
        raise CheckpointError(f"--resume {resume}: no such file or folder; give a snapshot, a run folder, or `auto`.")
    return resolve_checkpoint(p)


def _status_line(rec: dict[str, Any]) -> str:
    losses = " ".join(f"{k}={v:.4g}" for k, v in rec.items() if k.startswith(("G_", "D_")))
    losses += "".join(f" {k[4:]}={rec[k]:.3f}" for k in ("aug_p", "aug_rt") if k in rec)
    return (f"tick {rec['tick']:<4d} kimg {rec['kimg']:<8.1f} res {rec['resolution']:<4d} {rec['phase']:<9s} "
            f"alpha {rec['alpha']:.3f} {rec['images_per_s']:.0f} img/s {rec['sec_per_kimg']:.1f} s/kimg {losses}")


def run_training(cfg: TrainConfig, data: Path, out: Path, *, resume: str | None, device: torch.device,
                 hooks: Hooks, command_line: list[str], resume_overrides: dict[str, Any],
                 threads: int | None = None, procs: ProcsChoice | None = None) -> TrainResult:
    info = dist_utils.init(device)
    device = dist_utils.device_for(device, info)
    try:
        return _run(cfg, data, out, resume=resume, device=device, info=info, hooks=hooks,
                    command_line=command_line, resume_overrides=resume_overrides, threads=threads, procs=procs)
    finally:
        dist_utils.shutdown()


def _run(cfg: TrainConfig, data: Path, out: Path, *, resume: str | None, device: torch.device,
         info: dist_utils.DistInfo, hooks: Hooks, command_line: list[str],
         resume_overrides: dict[str, Any], threads: int | None, procs: ProcsChoice | None) -> TrainResult:
    """The outer loop: the run's config (a resumed run's own), every check before anything is written,
    the Trainer and its decisions, then steps, ticks, snapshots and rollbacks until the end or a signal."""
    say = (hooks.log or (lambda s: None)) if info.is_main else (lambda s: None)
    ckpt_path = resolve_resume(resume, out)
    if ckpt_path is None and resume not in (None, "", "auto"):
        raise CheckpointError(f"--resume {resume}: nothing to resume from.")
    cfg, recorded, redecide = _resumed_config(cfg, ckpt_path, resume_overrides, info, device, say)
    cfg, cuda, fp16_note, init = _check_and_create(cfg, data, out, fresh=ckpt_path is None, device=device, info=info,
                                                   say=say)
    tr = Trainer(cfg, data, out, device=device, info=info, hooks=hooks, threads=threads)
    tr.cuda_setup = cuda
    tr.procs_choice = procs   # how --procs chose this run's processes (config.json, the first line)
    last_snapshot = _set_up(tr, ckpt_path, fp16_note, recorded, redecide, command_line, say, init=init)
    line = _start_line(tr, device, out)
    if info.is_main:
        tr.run.log(line)
    say(line)
    last_snapshot = _train_until_done(tr, hooks, last_snapshot, say)
    tr.stream.close()
    tr.run.close()   # TensorBoard events: the last metric records, flush, close (sgan.train.tblog)
    return TrainResult(run_dir=out, snapshot=last_snapshot, kimg=tr.c.cur_nimg / 1000.0, steps=tr.c.step,
                       seconds=tr.c.wall_seconds)


def _resumed_config(cfg: TrainConfig, ckpt_path: Path | None, overrides: dict[str, Any], info: dist_utils.DistInfo,
                    device: torch.device, say) -> tuple[TrainConfig, str | None, str | None]:
    """A resumed run's own config with the resumable overrides (the others are named as ignored); the
    precision it recorded and why it is decided again (None, None for a fresh run)."""
    if ckpt_path is None:
        return cfg, None, None
    saved = unpack(load_checkpoint(ckpt_path).extra, ckpt_path)
    cfg = TrainConfig.from_dict(saved.config)
    recorded, redecide = (cfg.precision if cfg.precision != "auto" else None), None
    asked = overrides.get("arch")
    if asked is not None and asked != cfg.arch:
        raise UsageError(f"--resume {ckpt_path} is a {cfg.arch} run and cannot continue as --arch {asked}; "
                         f"drop --arch or start a new --out folder.")
    ignored = []
    for key, value in overrides.items():
        if key in RESUMABLE:
            setattr(cfg, key, value)
        elif getattr(cfg, key, value) != value:
            ignored.append(option_name(key))
    if ignored:
        say(f"note: resuming keeps the run's own settings; ignored {', '.join(ignored)} "
            f"(only {', '.join(option_name(k) for k in RESUMABLE)} can change).")
    if saved.world_size != info.world_size:
        say(f"note: the snapshot was written by {saved.world_size} process(es), this run has {info.world_size}; "
            "the continuation is not bit-identical.")
    if "precision" not in overrides:  # emulated or unsupported here: decided again, as auto
        redecide = unsupported(cfg.precision, device)
        if redecide:
            cfg.precision = "auto"
    return cfg, recorded, redecide


def _check_and_create(cfg: TrainConfig, data: Path, out: Path, *, fresh: bool, device: torch.device,
                      info: dist_utils.DistInfo, say) -> tuple[TrainConfig, Any, str | None, Any]:
    """Every check of the run before anything is written (the plan's and --init's included), then the
    run folder. (a private copy of the config, the CUDA set-up, the fp16 note, the --init checkpoint)."""
    cfg = TrainConfig.from_dict(cfg.to_dict())  # a private copy
    cfg.validate()
    check_precision(cfg.precision, device, training=True)  # fp16 off CUDA: one line, before anything is written
    cuda = configure_cuda(device, tf32=cfg.tf32)  # TF32, cudnn.benchmark (CUDA only)
    if not data.exists():
        raise DataError(f"{data}: no such dataset; prepare one with `sgan prepare-dataset SOURCE {data}`.")
    sizes = dataset_sizes(data)
    plan(cfg, sizes, info.world_size, data=data)  # sizes and minibatch shapes
    fp16_note = fp16_setup(cfg) if fresh else None  # StyleGAN2 fp16: conv_clamp 256
    init = None
    if fresh and cfg.init:  # the model the Trainer will build (--cond: the dataset's classes), checked now
        c_dim = TrainLabels(data).c_dim if cfg.cond else None
        init = open_init(cfg.init, plan(cfg, sizes, info.world_size, data=data, c_dim=c_dim).model)
    if info.is_main:
        folder = RunFolder(out)
        folder.create()
        if fresh and folder.has_run():
            if not folder.reset_untrained():
                raise UsageError(f"{out} already holds a training run; continue it with --resume auto or choose "
                                 "another --out folder.")
            say(f"note: {out} held no trained snapshot (only kimg 0); starting it afresh.")
    dist_utils.barrier(info)
    return cfg, cuda, fp16_note, init


def _set_up(tr: Trainer, ckpt_path: Path | None, fp16_note: str | None, recorded: str | None, redecide: str | None,
            command_line: list[str], say, init: Any = None) -> Path | None:
    """Resume or --init, the precision and compile decisions, config.json, the reals grid and the kimg-0
    snapshot; the last complete snapshot."""
    cfg, info, main = tr.cfg, tr.info, tr.info.is_main
    if fp16_note and main:
        tr.run.log(fp16_note)
        say(fp16_note)
    if tr.frozen_d:
        say(f"--freeze-d {cfg.freeze_d}: D's layers {', '.join(tr.frozen_d)} stay fixed")
    if ckpt_path is None and cfg.init:
        say(init_from(tr, cfg.init, ema=cfg.init_ema, ckpt=init))
    if ckpt_path is not None:
        tr.load_state(ckpt_path)
        say(f"resuming from {ckpt_path} at {tr.c.cur_nimg / 1000:.1f} kimg (step {tr.c.step}, "
            f"resolution {tr.point.resolution}, alpha {tr.point.alpha:.3f})")
    _decide_precision(tr, info, recorded, redecide, say)
    # torch.compile of G and D (sgan.train.compiled): decided on rank 0, after the precision
    apply_compile(tr, dist_utils.broadcast_object(choose_compile_for(tr) if main else None, info))
    if main:
        _write_config(tr, command_line, tr.device, info, ckpt_path)
        if ckpt_path is None:
            reals = tr.stream.batch(0, min(cfg.grid_size, tr.stream.length), cfg.resolution)
            tr.run.save_grid("reals.png", reals.permute(0, 2, 3, 1).numpy(), final_resolution=cfg.resolution)
    last_snapshot = ckpt_path
    if ckpt_path is None:  # kimg 0: a pointer and a grid from the start; every rank learns its path
        last_snapshot = dist_utils.broadcast_object(tr.write_snapshot() if main else None, info)
    dist_utils.barrier(info)
    return last_snapshot


def _start_line(tr: Trainer, device: torch.device, out: Path) -> str:
    cfg, info = tr.cfg, tr.info
    procs = f" x {info.world_size} processes" if info.enabled else ""
    return (f"training {tr.model_cfg.resolution}x{tr.model_cfg.resolution} on {describe_device(device)}"
            f"{procs}{procs_summary(info.world_size, tr.procs_choice)}; "
            + (f"{cfg.minutes:g} minutes" if cfg.by_time else f"{cfg.total_kimg:g} kimg") + f"; run folder {out}; "
            + (tr.precision_choice.summary() if tr.precision_choice else f"precision {cfg.precision}")
            + f"; {tr.compile_choice.summary()}; activations "
            + describe_memory_format(tr.model_cfg.memory_format, device))


def _train_until_done(tr: Trainer, hooks: Hooks, last_snapshot: Path | None, say) -> Path | None:
    """Steps until the end; after each: the shared clock and rollback vote, the live report, ticks and
    snapshots as due; a signal ends it with a snapshot (TrainingInterrupted)."""
    cfg, info, main = tr.cfg, tr.info, tr.info.is_main
    t_start = time.perf_counter()
    wall0 = tr.c.wall_seconds
    with StopSignals() as signals:
        while not tr.done():
            for hook in hooks.on_step:
                hook(tr)
            t0 = time.perf_counter()
            stop = tr.step(signals.requested)
            tr.c.train_seconds += time.perf_counter() - t0
            tr.c.wall_seconds = wall0 + time.perf_counter() - t_start
            # one small all-reduce: every rank rolls back together, and all share one training clock (the
            # slowest rank's), so a --minutes schedule switches phase and ends at the same step on every rank
            bad, tr.c.train_seconds = dist_utils.max_over_ranks(
                [float(tr._bad_streak >= cfg.max_bad_steps), tr.c.train_seconds], info, tr.device)
            if bad > 0:
                last_snapshot = _rollback(tr, last_snapshot, say)
                continue
            if hooks.report is not None and main:
                hooks.report(_live(tr))
            if tr.tick_due() or tr.done() or stop:
                _tick(tr, say)
            if stop or tr.done() or tr.c.cur_nimg - tr.c.last_snap_nimg >= cfg.snap_kimg * 1000:
                last_snapshot = _snapshot(tr, info, say) or last_snapshot
            if stop:
                signum = signals.signum or 2
                name = "SIGINT" if signum == 2 else ("SIGTERM" if signum == 15 else f"signal {signum}")
                raise TrainingInterrupted(f"stopped by {name} at {tr.c.cur_nimg / 1000:.1f} kimg; the snapshot "
                                          f"{last_snapshot} is complete; continue with --resume auto.",
                                          signum if signals.signum else 2, last_snapshot)
    return last_snapshot


def _tick(tr: Trainer, say) -> None:
    rec = tr.end_tick()
    if tr.info.is_main:
        tr.run.append_stats(rec)
        line = _status_line(rec)
        tr.run.log(line)
        say(line)


def _decide_precision(tr: Trainer, info: dist_utils.DistInfo, recorded: str | None, redecide: str | None,
                      say) -> None:
    """The run's precision, decided once before the first step: `auto` is timed on rank 0 and every rank
    takes its choice; the probe's seconds count on the training clock (--minutes). On resume, a precision
    other than the recorded one is said in one line (and in log.txt and config.json)."""
    cfg, main = tr.cfg, info.is_main
    if cfg.precision == "auto":
        tp = dist_utils.broadcast_object(decide(tr) if main else None, info)
    elif recorded is not None and cfg.precision == recorded:
        tp = None   # the run's own precision: config.json keeps how it was decided
    else:
        tp = decide(tr, cfg.precision)
    if tp is None:
        return
    scalers_dropped = recorded == "fp16" and tp.precision != "fp16"
    fresh_scalers = recorded is not None and recorded != "fp16" and tp.precision == "fp16"
    tr.resolve_precision(tp)
    tr.c.train_seconds += tp.seconds   # the probe is part of the run's time
    tr.c.wall_seconds += tp.seconds
    tr._tick_train_s0 = tr.c.train_seconds
    if recorded is None or (tp.precision == recorded and redecide is None):
        return
    tp.changed_from = recorded
    tp.note = (resume_note(recorded, redecide, tp) if redecide else
               f"note: the run trained in {recorded}; resuming in {tp.precision} as --precision asks")
    tp.note += ("; the fp16 loss scalers' state is dropped" if scalers_dropped else "") + (
        "; fp16 starts fresh loss scalers" if fresh_scalers else "")
    if fresh_scalers and tr.model_cfg.arch == "stylegan2" and tr.model_cfg.conv_clamp is None:
        tp.note += " (this model has no conv_clamp: fp16 overflows are more likely)"
    if main:
        tr.run.log(tp.note)
    say(tp.note)


def _snapshot(tr: Trainer, info: dist_utils.DistInfo, say) -> Path | None:
    tr.c.last_snap_nimg = tr.c.cur_nimg
    finite = not dist_utils.any_flag(not tr.params_finite(), info, tr.device)   # the same answer on every rank
    if not finite:
        say("not writing a snapshot: some parameters are not finite.")
        tr._bad_streak = tr.cfg.max_bad_steps
        return None
    if info.enabled:
        _check_ranks_agree(tr, info)
    path = tr.write_snapshot() if info.is_main else None
    return dist_utils.broadcast_object(path, info)   # every rank knows the snapshot to roll back to


def _check_ranks_agree(tr: Trainer, info: dist_utils.DistInfo) -> None:
    """Every rank must hold the same G, D and G_ema (stylegan2-ada check_ddp_consistency)."""
    import torch.distributed as dist

    with torch.no_grad():
        tensors = [t.detach().double() for m in (tr.G, tr.D, tr.G_ema) for t in m.state_dict().values()]
        sums = torch.stack([t.sum() for t in tensors] + [t.abs().sum() for t in tensors])
    lo, hi = sums.clone(), sums.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    if not torch.equal(lo, hi):
        raise RuntimeError("the ranks' networks differ; this is a bug in sgan's distributed training")


def _rollback(tr: Trainer, last_snapshot: Path | None, say) -> Path | None:
    cfg = tr.cfg
    if tr.c.rollbacks >= cfg.max_rollbacks or last_snapshot is None:
        raise TrainingDiverged(
            f"training diverged: losses or gradients stayed non-finite for {cfg.max_bad_steps} steps after "
            f"{tr.c.rollbacks} rollback(s); the last good snapshot {last_snapshot} is kept. Try a lower --lr, "
            "a larger --r1-gamma, or --precision fp32.")
    rollbacks, skipped = tr.c.rollbacks + 1, tr.c.skipped_steps
    say(f"non-finite losses or gradients for {cfg.max_bad_steps} steps at {tr.c.cur_nimg / 1000:.1f} kimg: "
        f"rolling back to {last_snapshot.name} with fresh random draws (rollback {rollbacks} of {cfg.max_rollbacks}).")
    tr.load_state(last_snapshot)
    tr.c.rollbacks, tr.c.reseed, tr.c.skipped_steps = rollbacks, tr.c.reseed + rollbacks, skipped
    tr._bad_streak = 0
    return last_snapshot


def _live(tr: Trainer) -> dict[str, Any]:
    c, cfg, pt = tr.c, tr.cfg, tr.point
    if cfg.by_time:
        done, total = c.train_seconds, cfg.minutes * 60.0
    else:
        done, total = c.cur_nimg / 1000.0, cfg.total_kimg
    return {"kimg": c.cur_nimg / 1000.0, "resolution": pt.resolution, "phase": pt.phase, "alpha": pt.alpha,
            "lod": pt.lod, "done": done, "total": total, "unit": "s" if cfg.by_time else "kimg",
            "train_seconds": c.train_seconds, "step": c.step,
            "images_per_s": (c.cur_nimg - c.tick_start_nimg) / max(c.train_seconds - tr._tick_train_s0, 1e-9)}


def _write_config(tr: Trainer, command_line: list[str], device: torch.device, info: dist_utils.DistInfo,
                  resumed_from: Path | None) -> None:
    previous: dict[str, Any] = {}
    p = tr.run.path / "config.json"
    if p.is_file():
        try:
            previous = json.loads(p.read_text())
        except ValueError:
            previous = {}
    starts = list(previous.get("starts", []))
    starts.append({"command_line": command_line, "resumed_from": str(resumed_from) if resumed_from else None,
                   "kimg": tr.c.cur_nimg / 1000.0, "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                   "precision": tr.cfg.precision})
    tr.run.write_json("config.json", {
        "train": tr.cfg.to_dict(), "model": tr.model_cfg.to_dict(), "data": str(tr.data),
        "schedule": [dataclasses.asdict(ph) | {"length": None if ph.length == float("inf") else ph.length}
                     for ph in tr.phases],
        "schedule_unit": "seconds" if tr.cfg.by_time else "kimg",
        "command_line": command_line, "sgan_version": __version__, "torch_version": torch.__version__,
        "device": describe_device(device), "cuda": getattr(tr, "cuda_setup", None) and tr.cuda_setup.to_dict(),
        "world_size": info.world_size, "procs": procs_record(info.world_size, tr.procs_choice), "starts": starts,
        "precision": tr.precision_choice.to_dict() if tr.precision_choice else previous.get(
            "precision", {"precision": tr.cfg.precision, "requested": tr.cfg.precision, "timings_ms": {}}),
        "compile": tr.compile_choice.to_dict() if tr.compile_choice else None,
    })
