"""The Trainer: one run's networks, optimizers, counters and run folder, and the one phase runner.

What differs between the architectures (objective, loss scalers, draws, counters, schedule point,
the step's phases, tick fields) lives in one object per architecture, held as `Trainer.arch`:
sgan.train.steps_progressive (StyleGAN) and sgan.train.steps_stylegan2 (StyleGAN2). A run is a
function of its counters: resuming from a snapshot continues bit-identically on the same machine,
and N ranks compute what one process computes for the same global minibatch.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any

import torch

from sgan import distributed as dist_utils
from sgan.device import PRECISIONS, autocast
from sgan.checkpoint import load_checkpoint
from sgan.errors import CheckpointError
from sgan.nn import make_discriminator, make_generator
from sgan.train.augment import Augmentation
from sgan.train.compiled import compile_counts, noise_input
from sgan.train.config import TrainConfig
from sgan.train.hooks import Hooks, log_to
from sgan.train.conditioning import TrainLabels
from sgan.train.finetune import freeze_d
from sgan.train.latents import Share, step_generator
from sgan.train.plan import plan
from sgan.train.precision import decide
from sgan.train.reals import RealStream
from sgan.train.run import RunFolder
from sgan.train.scaler import load_scaler_states, make_scalers, scaler_gauges
from sgan.train.state import restore_rng, unpack
from sgan.train.snapshot import fakes_grid, write_snapshot
from sgan.train.stats import Riders, TickStats, memory_mb
from sgan.train.steps_progressive import ProgressiveSteps
from sgan.train.steps_stylegan2 import StyleGAN2Steps
from sgan.train.threads import INITIAL_THREADS

ARCHS = {"stylegan1": ProgressiveSteps, "stylegan2": StyleGAN2Steps}
"""The step object of each architecture (TrainConfig.arch)."""


class Trainer:
    """Holds the networks, optimizers and counters of one run."""

    precision_choice = None   # a sgan.train.precision.TrainPrecision once resolve_precision has run
    compile_choice = None     # a sgan.train.compiled.CompileChoice once setup_compile has run
    compiled = False          # G's and D's pieces compiled (sgan.train.compiled)
    procs_choice = None       # a sgan.train.procs.ProcsChoice when --procs chose the processes

    def __init__(self, cfg: TrainConfig, data: Path, out: Path, *, device: torch.device,
                 info: dist_utils.DistInfo, hooks: Hooks, threads: int | None = None) -> None:
        self.cfg, self.data, self.info, self.hooks, self.device = cfg, data, info, hooks, device
        self.run = RunFolder(out)
        self.stream = RealStream(data, mirror=cfg.mirror, seed=cfg.seed, rank=info.rank, world_size=info.world_size)
        self.share = Share(info.rank, info.world_size)
        self.labels = TrainLabels(data) if cfg.cond else None   # c_dim = the dataset's number of classes
        self.plan = plan(cfg, self.stream.sizes, info.world_size, data=self.stream.dataset.path,
                         c_dim=self.labels.c_dim if self.labels is not None else None)
        self.cfg = cfg = self.plan.cfg      # the run's own copy (the caller's config is not changed)
        self.model_cfg = self.plan.model
        self.phases = list(self.plan.phases)
        torch.manual_seed(cfg.seed)  # network initialisation only; training draws from step generators
        self.G = make_generator(self.model_cfg).to(device)
        self.D = make_discriminator(self.model_cfg).to(device)
        dist_utils.broadcast_module_(self.G, info)
        dist_utils.broadcast_module_(self.D, info)
        self.frozen_d = freeze_d(self.D, cfg.freeze_d)
        self._D_params = [p for p in self.D.parameters() if p.requires_grad]
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.arch = ARCHS[cfg.arch](self)   # what the architecture does differently (sgan.train.steps_*)
        self.opt_G, self.opt_D = self._adam(self.G), self._adam(self.D)
        self._make_scalers(cfg.precision)  # fp16 loss scaling (else no-ops)
        self.aug = Augmentation(cfg.aug, seed=cfg.seed, pipe=cfg.aug_pipe, policy=cfg.aug_policy, fixed_p=cfg.aug_p,
                                target=cfg.aug_target, interval=cfg.aug_interval, kimg=cfg.aug_kimg,
                                log=log_to(hooks, self.run) if info.is_main else None)
        self.c = self.arch.counters()
        self.point = self.arch.point(0.0)
        self.objective = self.arch.objective()   # the architecture's losses (sgan.train.objectives)
        self.stats = TickStats()
        self._bad_streak = 0
        self._tick_t0 = time.perf_counter()
        self._tick_train_s0 = 0.0
        if threads is not None:
            torch.set_num_threads(threads)
        self._max_threads = max(torch.get_num_threads(), INITIAL_THREADS)
        self.auto_threads = device.type == "cpu" and threads is None  # one thread for small convs

    # -- set-up -----------------------------------------------------------------------------

    def _adam(self, module: torch.nn.Module) -> torch.optim.Adam:
        """A fresh Adam of G or D with the plan's settings (StyleGAN2: the lazy-regularisation correction)."""
        s = self.plan.adam("G" if module is self.G else "D")
        return torch.optim.Adam(module.parameters(), lr=s.lr, betas=s.betas, eps=s.eps, foreach=True)

    def _make_scalers(self, precision: str) -> None:
        """The architecture's fp16 loss scalers (no-ops in another precision)."""
        self.scalers = make_scalers(self.device, precision, self.arch.scaler_names)
        self.scaler_G, self.scaler_D = self.scalers["G"], self.scalers["D"]

    def _progress(self) -> float:
        return self.c.train_seconds if self.cfg.by_time else self.c.cur_nimg / 1000.0

    def done(self) -> bool:
        if self.cfg.by_time:
            return self.c.train_seconds >= self.cfg.minutes * 60.0
        return self.c.cur_nimg >= self.cfg.total_kimg * 1000.0

    def load_state(self, ckpt_path: Path) -> None:
        """Everything a snapshot holds back into the run: networks, optimizers, counters, the process
        RNGs, the augmentation's p and the loss scalers (the architecture's own in `_restore_counters`)."""
        ckpt = load_checkpoint(ckpt_path)
        st = unpack(ckpt.extra, ckpt.path)
        if ckpt.config.arch != self.model_cfg.arch:
            raise CheckpointError(f"{ckpt.path} holds a {ckpt.config.arch} model; this run trains "
                                  f"{self.model_cfg.arch}; resume it with --arch {ckpt.config.arch}.")
        if ckpt.config != self.model_cfg:
            raise CheckpointError(f"{ckpt.path}: its model config differs from this run's; resume it with its own "
                                  "options (see config.json) or start a new --out folder.")
        try:
            self.G.load_state_dict(ckpt.G)
            self.G_ema.load_state_dict(ckpt.G_ema)
            self.D.load_state_dict(ckpt.D)
            self.opt_G.load_state_dict(st.opt_G)
            self.opt_D.load_state_dict(st.opt_D)
        except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise CheckpointError(f"{ckpt.path}: the weights do not fit this run ({str(err).splitlines()[0]}).") from None
        self.c = self.arch.restore_counters(st.counters, ckpt.extra)
        self.point = self.arch.point(self.c.sched_progress)
        restore_rng(st.rng)
        self._tick_train_s0 = self.c.train_seconds   # the next tick's img/s counts from here
        if "augment" in ckpt.extra:
            self.aug.load_state_dict(ckpt.extra["augment"])
            self.stats.load_d_accuracy_state(ckpt.extra["augment"].get("tick"))   # the tick's D accuracies
        load_scaler_states(self.scalers, st.scalers)

    # -- randomness --------------------------------------------------------------------------

    def _step_generator(self, purpose: int) -> torch.Generator:
        return step_generator(self.cfg.seed, self.c.reseed, self.c.step, purpose)

    # -- forward passes ----------------------------------------------------------------------

    def _autocast(self):
        self._check_precision()
        return autocast(self.device, self.cfg.precision)

    def _check_precision(self) -> None:
        """A step computes in a decided precision: `auto` is resolved once, before the first step."""
        if self.cfg.precision not in PRECISIONS:
            raise RuntimeError(f"Trainer.step: the training precision is still {self.cfg.precision!r}; decide it "
                               "before the first step with Trainer.resolve_precision() (sgan.train.driver does).")

    def resolve_precision(self, choice=None):
        """Decide the precision (sgan.train.precision.decide: `auto` times one G + D forward and backward
        of this step on copies of G and D, touching nothing of the run), or take `choice` (a TrainPrecision:
        rank 0's in a multi-process run). fp16 gets fresh loss scalers, another precision drops them."""
        if choice is None:
            choice = decide(self, self.cfg.precision)
        self.cfg.precision, self.precision_choice = choice.precision, choice
        if (choice.precision == "fp16") != self.scaler_G.enabled:
            self._make_scalers(choice.precision)
        return choice

    def _noise(self, generators: Any, lod: float, n: int) -> Any:
        return noise_input(self.G.synthesis, generators, lod=lod, n=n, device=self.device, compiled=self.compiled)

    def _d_pair(self, reals: torch.Tensor, fakes: torch.Tensor, lod: float, c_real: torch.Tensor | None = None,
                c_fake: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """D on reals and fakes in one batch, interleaved so every minibatch-stddev group holds
        only reals or only fakes (exactly the groups of two separate calls)."""
        n = reals.shape[0]
        g = min(self.model_cfg.mbstd_group_size, n) if self.model_cfg.mbstd_group_size > 1 else 1
        if n % g:
            return self.D(reals, c_real, lod=lod), self.D(fakes, c_fake, lod=lod)
        shape = reals.shape[1:]
        both = torch.stack([reals.reshape(g, n // g, *shape), fakes.reshape(g, n // g, *shape)], dim=1)
        c_both = None
        if c_real is not None:
            c_both = torch.stack([c_real.reshape(g, n // g, -1), c_fake.reshape(g, n // g, -1)], dim=1).reshape(2 * n, -1)
        logits = self.D(both.reshape(2 * n, *shape), c_both, lod=lod).reshape(g, 2, n // g)
        return logits[:, 0].reshape(n, 1), logits[:, 1].reshape(n, 1)

    # -- gradients ---------------------------------------------------------------------------

    def _reduce_grads(self, module: torch.nn.Module, extra: torch.Tensor | None = None) -> tuple[bool, torch.Tensor | None]:
        """Average gradients over ranks (with `extra` values riding along); True if all finite."""
        params = [p for p in module.parameters() if p.grad is not None]
        grads = [p.grad for p in params]
        if self.info.enabled:
            parts = [g.reshape(-1) for g in grads] + ([extra.reshape(-1).float()] if extra is not None else [])
            flat = torch.cat(parts)
            dist_utils.all_reduce_mean_(flat, self.info)
            offset = 0
            for g in grads:
                g.copy_(flat[offset:offset + g.numel()].view_as(g))
                offset += g.numel()
            extra = flat[offset:] if extra is not None else None
            finite = bool(torch.isfinite(flat).all())
        else:
            finite = bool(torch.isfinite(torch.stack(torch._foreach_norm(grads)).sum())) if grads else True
        return finite, extra

    def _finish(self, module: torch.nn.Module, opt: torch.optim.Optimizer, scaler: Any, loss: torch.Tensor,
                riders: Riders | None, *, clean: list[torch.Tensor] | None = None) -> tuple[bool, dict[str, torch.Tensor]]:
        """The one phase runner, after a phase's backward: average the gradients over ranks (with the
        named `riders` along), the loss scaler's unscale / overflow skip, nan_to_num of `clean`'s gradients
        (StyleGAN2: then always a step) or skip a non-finite step (StyleGAN), the Adam step.
        (True unless the step was bad, the riders averaged over ranks by name)."""
        ok, flat = self._reduce_grads(module, riders.flat() if riders is not None else None)
        ok = scaler.finish(opt, grads_ok=ok, loss=loss, clean=clean)   # fp16 overflow skips are not bad
        return ok, riders.unpack(flat) if riders is not None else {}

    # -- one step (the architecture's, sgan.train.steps_*) --------------------------------------

    def step(self, stop_requested: bool) -> bool:
        """One training step of the architecture's phases. Returns True when any rank asked to stop."""
        return self.arch.step(stop_requested)

    def step_threads(self, res: int, batch: int) -> int:
        """Torch threads of a CPU step at `res` with this process's share of `batch`."""
        return self.arch.step_threads(res, batch)

    def _set_threads(self, res: int, batch: int) -> None:
        if self.auto_threads:
            threads = self.step_threads(res, batch)
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        """Every image D sees (ADA / DiffAugment): the global draw of this step's minibatch, this rank's slice."""
        batch = self.cfg.batch_at(self.point.resolution, self.info.world_size)
        return self.aug(x, n_global=batch, sl=self.share.of(batch))

    def _end_step(self, batch: int, ok: bool) -> None:
        """Counters after a step; a bad (non-finite) step extends the streak that triggers a rollback."""
        c = self.c
        c.cur_nimg += batch
        c.data_position += batch
        c.step += 1
        if ok:
            self._bad_streak = 0
        else:
            c.skipped_steps += 1
            self._bad_streak += 1

    # -- grids and snapshots (sgan.train.snapshot) --------------------------------------------

    def fakes_grid(self) -> Any:
        return fakes_grid(self)

    def params_finite(self) -> bool:
        tensors = list(self.G.parameters()) + list(self.D.parameters()) + list(self.G_ema.parameters())
        return bool(torch.isfinite(torch.stack(torch._foreach_norm(tensors)).sum()))

    def write_snapshot(self) -> Path:
        return write_snapshot(self)

    # -- ticks -------------------------------------------------------------------------------

    def tick_due(self) -> bool:
        return self.c.cur_nimg - self.c.tick_start_nimg >= self.cfg.tick_kimg_at(self.point.resolution) * 1000

    def end_tick(self) -> dict[str, Any]:
        now = time.perf_counter()
        c, pt = self.c, self.point
        nimg = c.cur_nimg - c.tick_start_nimg
        train_s = c.train_seconds - self._tick_train_s0
        wall = now - self._tick_t0
        record: dict[str, Any] = {
            "tick": c.tick, "kimg": round(c.cur_nimg / 1000.0, 3), "step": c.step, "resolution": pt.resolution,
            "lod": round(pt.lod, 5), "alpha": round(pt.alpha, 5), "phase": pt.phase,
            "batch": self.cfg.batch_at(pt.resolution, self.info.world_size), "lr": self.cfg.lr_at(pt.resolution),
            "sec_per_kimg": round(train_s / max(nimg / 1000.0, 1e-9), 3), "images_per_s": round(nimg / max(train_s, 1e-9), 2),
            "tick_seconds": round(wall, 2), "train_seconds": round(c.train_seconds, 2),
            "skipped_steps": c.skipped_steps, "rollbacks": c.rollbacks, "memory_mb": memory_mb(self.device),
        }
        gauges = self.aug.gauges() | scaler_gauges(self.scalers)   # aug_p, aug_rt; fp16: grad_scale, overflow_steps
        record.update(self.stats.record(gauges | (compile_counts() if self.compiled else {})))
        record.update(self.arch.tick_extras())
        c.tick += 1
        c.tick_start_nimg = c.cur_nimg
        self._tick_t0, self._tick_train_s0 = now, c.train_seconds
        return record
