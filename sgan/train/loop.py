"""The training loop: `train(config, data, out)`.

One step = one D step and one G step on a global minibatch (official D_repeats 1). All the
randomness of step k (z, style-mixing choices, noise maps, gradient-penalty mixing factors) comes
from generators seeded by (seed, rollbacks, k), drawn for the global minibatch and sliced by rank,
so a run is a function of its counters: resuming from a snapshot continues bit-identically on the
same machine, and N ranks compute what one process computes for the same global minibatch.
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Any

import torch

from sgan import distributed as dist_utils
from sgan.device import PRECISIONS, autocast
from sgan.checkpoint import load_checkpoint
from sgan.errors import CheckpointError
from sgan.nn import make_discriminator, make_generator
from sgan.nn.styles import mix_styles
from sgan.train import losses
from sgan.train.augment import Augmentation
from sgan.train.compiled import compile_counts, eager, noise_input
from sgan.train.config import TrainConfig
from sgan.train.hooks import Hooks, log_to
from sgan.train.conditioning import TrainLabels
from sgan.train.ema import ema_beta, update_ema
from sgan.train.finetune import freeze_d
from sgan.train.objectives.progressive import ProgressiveObjective
from sgan.train.latents import Share, progressive_draws, step_generator
from sgan.train.plan import plan
from sgan.train.precision import decide
from sgan.train.reals import RealStream, fade_reals, to_float
from sgan.train.run import RunFolder
from sgan.train.scaler import load_scaler_states, make_scalers, tick_record as scaler_tick
from sgan.train.schedule import Point, optimizer_reset_needed, point_at
from sgan.train.state import Counters, restore_rng, unpack
from sgan.train.snapshot import fakes_grid, write_snapshot
from sgan.train.stats import Riders, TickStats, memory_mb
from sgan.train.threads import INITIAL_THREADS, cpu_threads, set_requires_grad

class Trainer:
    """Holds the networks, optimizers and counters of one run."""

    precision_choice = None   # a sgan.train.precision.TrainPrecision once resolve_precision has run
    compile_choice = None     # a sgan.train.compiled.CompileChoice once setup_compile has run
    compiled = False          # G's and D's pieces compiled (sgan.train.compiled)

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
        self.opt_G, self.opt_D = self._optimizers()
        self._make_scalers(cfg.precision)  # fp16 loss scaling (else no-ops)
        self.aug = Augmentation(cfg.aug, seed=cfg.seed, pipe=cfg.aug_pipe, policy=cfg.aug_policy, fixed_p=cfg.aug_p,
                                target=cfg.aug_target, interval=cfg.aug_interval, kimg=cfg.aug_kimg,
                                log=log_to(hooks, self.run) if info.is_main else None)
        self.c = self._counters()
        self.point = self._point(0.0)
        self.objective = self._objective()   # the architecture's losses (sgan.train.objectives)
        self.stats = TickStats()
        self._bad_streak = 0
        self._tick_t0 = time.perf_counter()
        self._tick_train_s0 = 0.0
        if threads is not None:
            torch.set_num_threads(threads)
        self._max_threads = max(torch.get_num_threads(), INITIAL_THREADS)
        self.auto_threads = device.type == "cpu" and threads is None  # one thread for small convs

    # -- set-up (the StyleGAN2 trainer overrides these) ----------------------------------------

    def _optimizers(self) -> tuple[torch.optim.Adam, torch.optim.Adam]:
        return self._adam(self.G), self._adam(self.D)

    def _counters(self) -> Counters:
        return Counters()

    def _adam(self, module: torch.nn.Module) -> torch.optim.Adam:
        """A fresh Adam of G or D with the plan's settings (StyleGAN2: the lazy-regularisation correction)."""
        s = self.plan.adam("G" if module is self.G else "D")
        return torch.optim.Adam(module.parameters(), lr=s.lr, betas=s.betas, eps=s.eps, foreach=True)

    def _make_scalers(self, precision: str) -> None:
        self.scalers = make_scalers(self.device, precision)
        self.scaler_G, self.scaler_D = self.scalers["G"], self.scalers["D"]

    def _progress(self) -> float:
        return self.c.train_seconds if self.cfg.by_time else self.c.cur_nimg / 1000.0

    def _point(self, progress: float) -> Point:
        return point_at(progress, self.phases, self.cfg.resolution)

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
        self.c = self._restore_counters(st.counters, ckpt.extra)
        self.point = self._point(self.c.sched_progress)
        restore_rng(st.rng)
        self._tick_train_s0 = self.c.train_seconds   # the next tick's img/s counts from here
        if "augment" in ckpt.extra:
            self.aug.load_state_dict(ckpt.extra["augment"])
        load_scaler_states(self.scalers, st.scalers)

    def _restore_counters(self, counters: Counters, extra: dict[str, Any]) -> Counters:
        return counters

    # -- randomness --------------------------------------------------------------------------

    def _step_generator(self, purpose: int) -> torch.Generator:
        return step_generator(self.cfg.seed, self.c.reseed, self.c.step, purpose)

    def _latents(self, gen: torch.Generator, batch: int, cur_layers: int) -> dict[str, Any]:
        """z, z2, crossover and noise generators of this rank's share of a global minibatch."""
        return progressive_draws(gen, batch=batch, share=self.share, z_dim=self.model_cfg.z_dim,
                                 num_ws=self.model_cfg.num_ws, cur_layers=cur_layers,
                                 mixing_prob=self.cfg.style_mixing_prob, device=self.device, labels=self.labels)

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

    def step_threads(self, res: int, batch: int) -> int:
        """Torch threads of a CPU step at `res` with this process's share of `batch` (cpu_threads)."""
        return cpu_threads(batch=batch, channels=self.model_cfg.nf(int(math.log2(res)) - 1), resolution=res,
                           max_threads=self._max_threads)

    def _generate(self, lat: dict[str, Any], lod: float) -> tuple[torch.Tensor, torch.Tensor]:
        with self._autocast():
            w = self.G.mapping(lat["z"], lat.get("c"))
            ws = w.unsqueeze(1).expand(-1, self.model_cfg.num_ws, -1)
            if self.cfg.style_mixing_prob > 0:
                w2 = self.G.mapping(lat["z2"], lat.get("c")).unsqueeze(1).expand(-1, self.model_cfg.num_ws, -1)
                ws = mix_styles(ws, w2, lat["crossover"])
            img = self.G.synthesis(ws, lod=lod, noise_mode="random", generator=self._noise(lat["noise"], lod, len(ws)))
        return img, w

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

    # -- one step ----------------------------------------------------------------------------

    def step(self, stop_requested: bool) -> bool:
        """One D + one G step. Returns True when any rank asked to stop."""
        self._check_precision()
        res, lod, batch = self._schedule_step()
        cur_layers = self.model_cfg.num_ws - 2 * int(math.floor(lod))
        reals, c_real = self._reals(res, lod, batch)
        lat = self._latents(self._step_generator(1), batch, cur_layers)
        fakes, w = self._generate(lat, lod)
        terms: dict[str, torch.Tensor] = {}
        ok_D = self._d_phase(terms, reals, c_real, fakes, w, lat, lod, batch)
        # official StyleGAN training_loop.py runs Gs_update_op with the D step, before the G step
        update_ema(self.G_ema, self.G, ema_beta(batch, self.cfg.ema_kimg, cur_nimg=self.c.cur_nimg,
                                                rampup=self.cfg.ema_rampup))
        if self.cfg.fresh_g_latents:
            lat = self._latents(self._step_generator(2), batch, cur_layers)
            fakes, w = None, None   # the G phase runs G on its own draws
        ok_G, stop = self._g_phase(terms, fakes, w, lat, lod, stop_requested)
        self._end_step(batch, ok_D and ok_G)
        overflow = "overflow" in (self.scaler_D.last, self.scaler_G.last)  # fp16: a skipped step's
        for k, v in terms.items():                                         # penalty may be inf: not averaged
            if not (overflow and not bool(torch.isfinite(v))):
                self.stats.add(k, v)
        self.stats.end_step()
        return stop

    def _schedule_step(self) -> tuple[int, float, int]:
        """The schedule point of this step (taken every minibatch_repeats steps), the optimizer reset at
        a new lod, the CPU threads and the learning rate; (resolution, lod, global minibatch)."""
        cfg, c = self.cfg, self.c
        if c.step % cfg.minibatch_repeats == 0:
            c.sched_progress = self._progress()
            self.point = self._point(c.sched_progress)
        pt = self.point
        if optimizer_reset_needed(None if c.prev_lod < 0 else c.prev_lod, pt.lod) and cfg.reset_optimizer:
            self.opt_G, self.opt_D = self._adam(self.G), self._adam(self.D)
        c.prev_lod = pt.lod
        batch = cfg.batch_at(pt.resolution, self.info.world_size)
        self._set_threads(pt.resolution, batch)
        lr = cfg.lr_at(pt.resolution)
        for opt in (self.opt_G, self.opt_D):
            for group in opt.param_groups:
                group["lr"] = lr
        return pt.resolution, pt.lod, batch

    def _set_threads(self, res: int, batch: int) -> None:
        if self.auto_threads:
            threads = self.step_threads(res, batch)
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)

    def _reals(self, res: int, lod: float, batch: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This rank's reals of the step (faded during a fade-in) and their labels; the next batch is
        decoded ahead unless the schedule may change resolution."""
        c, cfg = self.c, self.cfg
        reals_u8 = self.stream.batch(c.data_position, batch, res)
        if c.step % cfg.minibatch_repeats != cfg.minibatch_repeats - 1:
            self.stream.prefetch(c.data_position + batch, batch, res)
        reals = fade_reals(to_float(reals_u8, self.device), lod)
        c_real = (self.labels.of_items(self.stream.indices(c.data_position, batch)).to(self.device)
                  if self.labels is not None else None)
        return reals, c_real

    def _objective(self) -> Any:
        cfg = self.cfg
        return ProgressiveObjective(
            self.D, loss=cfg.loss, r1_gamma=cfg.r1_gamma, r1_interval=cfg.r1_interval, wgan_lambda=cfg.wgan_lambda,
            wgan_target=cfg.wgan_target, wgan_drift=cfg.wgan_drift, augment=self._augment, autocast=self._autocast,
            d_pair=self._d_pair, double_backward=lambda: eager(self.compiled))  # double backward: compiled graphs cannot

    def _augment(self, x: torch.Tensor) -> torch.Tensor:
        """Every image D sees (ADA / DiffAugment): the global draw of this step's minibatch, this rank's slice."""
        batch = self.cfg.batch_at(self.point.resolution, self.info.world_size)
        return self.aug(x, n_global=batch, sl=self.share.of(batch))

    def _d_phase(self, terms: dict[str, torch.Tensor], reals: torch.Tensor, c_real: torch.Tensor | None,
                 fakes: torch.Tensor, w: torch.Tensor, lat: dict[str, Any], lod: float, batch: int) -> bool:
        """The objective's Dmain, the phase runner, ADA's update and w_avg; True unless bad."""
        set_requires_grad(self._D_params, True)
        self.opt_D.zero_grad(set_to_none=True)
        st = self.objective.accumulate("Dmain", fakes=fakes, c_fake=lat.get("c"), lod=lod, scaler=self.scaler_D,
                                       reals=reals, c_real=c_real, u=lat["u"], r1=self.objective.r1_due(self.c.step))
        terms.update(st["terms"])
        riders = Riders(w_mean=w.detach().float().mean(dim=0), signs=self.aug.observe(st["real_logits"], st["fake_logits"]))
        ok, got = self._finish(self.D, self.opt_D, self.scaler_D, st["loss"], riders)
        self.aug.update(got["signs"], batch=batch)  # r_t and ADA's p
        self._track_w_avg(got["w_mean"])           # official: w_avg moves in every mapping pass that trains
        return ok

    def _g_phase(self, terms: dict[str, torch.Tensor], fakes: torch.Tensor | None, w: torch.Tensor | None,
                 lat: dict[str, Any], lod: float, stop_requested: bool) -> tuple[bool, bool]:
        """G's loss on fresh draws (or the D phase's fakes), the phase runner and w_avg; (not bad, stop)."""
        set_requires_grad(self._D_params, False)
        fresh = fakes is None
        if fresh:
            fakes, w = self._generate(lat, lod)
        self.opt_G.zero_grad(set_to_none=True)
        st = self.objective.accumulate("Gmain", fakes=fakes, c_fake=lat.get("c"), lod=lod, scaler=self.scaler_G)
        terms.update(st["terms"])
        riders = Riders(w_mean=w.detach().float().mean(dim=0),
                        stop=torch.tensor([1.0 if stop_requested else 0.0], device=self.device))
        ok, got = self._finish(self.G, self.opt_G, self.scaler_G, st["loss"], riders)
        if fresh:                                  # a second mapping pass this step (the reused fakes have none)
            self._track_w_avg(got["w_mean"])
        return ok, (bool(got["stop"] > 0) if self.info.enabled else stop_requested)

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

    def _track_w_avg(self, w_mean: torch.Tensor | None) -> None:
        """w_avg <- lerp(mean w of a mapping pass (over all ranks), w_avg, w_avg_beta), if finite."""
        if w_mean is not None and bool(torch.isfinite(w_mean).all()):
            self.G.mapping.w_avg.copy_(w_mean.lerp(self.G.mapping.w_avg, self.model_cfg.w_avg_beta))

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
        record.update(self.aug.tick_record())  # aug_p, aug_rt, acc_real, acc_fake
        record.update(scaler_tick(self.scalers))  # fp16: grad_scale, overflow_steps
        if self.compiled:
            record.update(compile_counts())
        record.update(self.stats.record())
        c.tick += 1
        c.tick_start_nimg = c.cur_nimg
        self._tick_t0, self._tick_train_s0 = now, c.train_seconds
        return record
