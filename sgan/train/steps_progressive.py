"""One StyleGAN (progressive growing) step on a Trainer: the schedule point, the draws, D's and G's
phases on the progressive objective (sgan.train.objectives.progressive), EMA and w_avg.

One step = one D step and one G step on a global minibatch (official D_repeats 1). All the
randomness of step k (z, style-mixing choices, noise maps, gradient-penalty mixing factors) comes
from generators seeded by (seed, rollbacks, k), drawn for the global minibatch and sliced by rank.
The Trainer holds this object as `tr.arch` and asks it for what differs between architectures:
its objective, loss scalers, counters, schedule point, CPU threads, step and tick fields.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from sgan.nn.styles import mix_styles
from sgan.train.compiled import eager
from sgan.train.ema import ema_beta, update_ema
from sgan.train.latents import progressive_draws
from sgan.train.objectives.progressive import ProgressiveObjective
from sgan.train.reals import fade_reals, to_float
from sgan.train.schedule import Point, optimizer_reset_needed, point_at
from sgan.train.state import Counters
from sgan.train.stats import Riders
from sgan.train.threads import cpu_threads, set_requires_grad

D_STEP, G_STEP = 1, 2   # purposes of the per-step generators (the D phase's draws, fresh G draws)


class ProgressiveSteps:
    """What a StyleGAN (progressive) run does differently, given the Trainer `tr` it steps."""

    scaler_names = ("G", "D")

    def __init__(self, tr: Any) -> None:
        self.tr = tr

    # -- set-up ------------------------------------------------------------------------------

    def objective(self) -> ProgressiveObjective:
        tr, cfg = self.tr, self.tr.cfg
        return ProgressiveObjective(
            tr.D, loss=cfg.loss, r1_gamma=cfg.r1_gamma, r1_interval=cfg.r1_interval, wgan_lambda=cfg.wgan_lambda,
            wgan_target=cfg.wgan_target, wgan_drift=cfg.wgan_drift, augment=tr._augment, autocast=tr._autocast,
            d_pair=tr._d_pair, double_backward=lambda: eager(tr.compiled))  # double backward: compiled graphs cannot

    def counters(self) -> Counters:
        return Counters()

    def restore_counters(self, counters: Counters, extra: dict[str, Any]) -> Counters:
        return counters

    def point(self, progress: float) -> Point:
        return point_at(progress, self.tr.phases, self.tr.cfg.resolution)

    def step_threads(self, res: int, batch: int) -> int:
        """Torch threads of a CPU step at `res` with this process's share of `batch` (cpu_threads)."""
        tr = self.tr
        return cpu_threads(batch=batch, channels=tr.model_cfg.nf(int(math.log2(res)) - 1), resolution=res,
                           max_threads=tr._max_threads)

    def tick_extras(self) -> dict[str, Any]:
        return {}

    # -- randomness and G ----------------------------------------------------------------------

    def latents(self, gen: torch.Generator, batch: int, cur_layers: int) -> dict[str, Any]:
        """z, z2, crossover and noise generators of this rank's share of a global minibatch."""
        tr = self.tr
        return progressive_draws(gen, batch=batch, share=tr.share, z_dim=tr.model_cfg.z_dim,
                                 num_ws=tr.model_cfg.num_ws, cur_layers=cur_layers,
                                 mixing_prob=tr.cfg.style_mixing_prob, device=tr.device, labels=tr.labels)

    def generate(self, lat: dict[str, Any], lod: float) -> tuple[torch.Tensor, torch.Tensor]:
        tr, num_ws = self.tr, self.tr.model_cfg.num_ws
        with tr._autocast():
            w = tr.G.mapping(lat["z"], lat.get("c"))
            ws = w.unsqueeze(1).expand(-1, num_ws, -1)
            if tr.cfg.style_mixing_prob > 0:
                w2 = tr.G.mapping(lat["z2"], lat.get("c")).unsqueeze(1).expand(-1, num_ws, -1)
                ws = mix_styles(ws, w2, lat["crossover"])
            img = tr.G.synthesis(ws, lod=lod, noise_mode="random", generator=tr._noise(lat["noise"], lod, len(ws)))
        return img, w

    # -- one step ----------------------------------------------------------------------------

    def step(self, stop_requested: bool) -> bool:
        """One D + one G step. Returns True when any rank asked to stop."""
        tr = self.tr
        tr._check_precision()
        res, lod, batch = self._schedule_step()
        cur_layers = tr.model_cfg.num_ws - 2 * int(math.floor(lod))
        reals, c_real = self._reals(res, lod, batch)
        lat = self.latents(tr._step_generator(D_STEP), batch, cur_layers)
        fakes, w = self.generate(lat, lod)
        terms: dict[str, torch.Tensor] = {}
        ok_D = self._d_phase(terms, reals, c_real, fakes, w, lat, lod, batch)
        # official StyleGAN training_loop.py runs Gs_update_op with the D step, before the G step
        update_ema(tr.G_ema, tr.G, ema_beta(batch, tr.cfg.ema_kimg, cur_nimg=tr.c.cur_nimg, rampup=tr.cfg.ema_rampup))
        if tr.cfg.fresh_g_latents:
            lat = self.latents(tr._step_generator(G_STEP), batch, cur_layers)
            fakes, w = None, None   # the G phase runs G on its own draws
        ok_G, stop = self._g_phase(terms, fakes, w, lat, lod, stop_requested)
        tr._end_step(batch, ok_D and ok_G)
        overflow = "overflow" in (tr.scaler_D.last, tr.scaler_G.last)  # fp16: a skipped step's
        for k, v in terms.items():                                     # penalty may be inf: not averaged
            if not (overflow and not bool(torch.isfinite(v))):
                tr.stats.add(k, v)
        tr.stats.end_step()
        return stop

    def _schedule_step(self) -> tuple[int, float, int]:
        """The schedule point of this step (taken every minibatch_repeats steps), the optimizer reset at
        a new lod, the CPU threads and the learning rate; (resolution, lod, global minibatch)."""
        tr = self.tr
        cfg, c = tr.cfg, tr.c
        if c.step % cfg.minibatch_repeats == 0:
            c.sched_progress = tr._progress()
            tr.point = self.point(c.sched_progress)
        pt = tr.point
        if optimizer_reset_needed(None if c.prev_lod < 0 else c.prev_lod, pt.lod) and cfg.reset_optimizer:
            tr.opt_G, tr.opt_D = tr._adam(tr.G), tr._adam(tr.D)
        c.prev_lod = pt.lod
        batch = cfg.batch_at(pt.resolution, tr.info.world_size)
        tr._set_threads(pt.resolution, batch)
        lr = cfg.lr_at(pt.resolution)
        for opt in (tr.opt_G, tr.opt_D):
            for group in opt.param_groups:
                group["lr"] = lr
        return pt.resolution, pt.lod, batch

    def _reals(self, res: int, lod: float, batch: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        """This rank's reals of the step (faded during a fade-in) and their labels; the next batch is
        decoded ahead unless the schedule may change resolution."""
        tr = self.tr
        c, cfg = tr.c, tr.cfg
        reals_u8 = tr.stream.batch(c.data_position, batch, res)
        if c.step % cfg.minibatch_repeats != cfg.minibatch_repeats - 1:
            tr.stream.prefetch(c.data_position + batch, batch, res)
        reals = fade_reals(to_float(reals_u8, tr.device), lod)
        c_real = (tr.labels.of_items(tr.stream.indices(c.data_position, batch)).to(tr.device)
                  if tr.labels is not None else None)
        return reals, c_real

    def _d_phase(self, terms: dict[str, torch.Tensor], reals: torch.Tensor, c_real: torch.Tensor | None,
                 fakes: torch.Tensor, w: torch.Tensor, lat: dict[str, Any], lod: float, batch: int) -> bool:
        """The objective's Dmain, the phase runner, ADA's update and w_avg; True unless bad."""
        tr = self.tr
        set_requires_grad(tr._D_params, True)
        tr.opt_D.zero_grad(set_to_none=True)
        st = tr.objective.accumulate("Dmain", fakes=fakes, c_fake=lat.get("c"), lod=lod, scaler=tr.scaler_D,
                                     reals=reals, c_real=c_real, u=lat["u"], r1=tr.objective.r1_due(tr.c.step))
        terms.update(st["terms"])
        riders = Riders(w_mean=w.detach().float().mean(dim=0), signs=tr.aug.observe(st["real_logits"], st["fake_logits"]))
        ok, got = tr._finish(tr.D, tr.opt_D, tr.scaler_D, st["loss"], riders)
        tr.aug.update(got["signs"], batch=batch)  # r_t and ADA's p
        tr.stats.add_d_accuracy(got["signs"])
        self._track_w_avg(got["w_mean"])         # official: w_avg moves in every mapping pass that trains
        return ok

    def _g_phase(self, terms: dict[str, torch.Tensor], fakes: torch.Tensor | None, w: torch.Tensor | None,
                 lat: dict[str, Any], lod: float, stop_requested: bool) -> tuple[bool, bool]:
        """G's loss on fresh draws (or the D phase's fakes), the phase runner and w_avg; (not bad, stop)."""
        tr = self.tr
        set_requires_grad(tr._D_params, False)
        fresh = fakes is None
        if fresh:
            fakes, w = self.generate(lat, lod)
        tr.opt_G.zero_grad(set_to_none=True)
        st = tr.objective.accumulate("Gmain", fakes=fakes, c_fake=lat.get("c"), lod=lod, scaler=tr.scaler_G)
        terms.update(st["terms"])
        riders = Riders(w_mean=w.detach().float().mean(dim=0),
                        stop=torch.tensor([1.0 if stop_requested else 0.0], device=tr.device))
        ok, got = tr._finish(tr.G, tr.opt_G, tr.scaler_G, st["loss"], riders)
        if fresh:                                # a second mapping pass this step (the reused fakes have none)
            self._track_w_avg(got["w_mean"])
        return ok, (bool(got["stop"] > 0) if tr.info.enabled else stop_requested)

    def _track_w_avg(self, w_mean: torch.Tensor | None) -> None:
        """w_avg <- lerp(mean w of a mapping pass (over all ranks), w_avg, w_avg_beta), if finite."""
        tr = self.tr
        if w_mean is not None and bool(torch.isfinite(w_mean).all()):
            tr.G.mapping.w_avg.copy_(w_mean.lerp(tr.G.mapping.w_avg, tr.model_cfg.w_avg_beta))
