"""One StyleGAN2 step on a Trainer (NVlabs/stylegan2-ada-pytorch training_loop.py + loss.py).

Fixed resolution, no progressive growing. One step = one minibatch, run as the official phases
in their order, each with its own Adam step:

    Gmain  softplus(-D(G(z)))                                   every step
    Greg   path length: pl_weight * (|J^T y| - pl_mean)^2 * k_G  every k_G = g_reg_interval steps,
           on batch / pl_batch_shrink samples
    Dmain  softplus(D(G(z))) + softplus(-D(x))                  every step
    Dreg   gamma/2 * |grad D(x)|^2 * k_D                        every k_D = r1_interval steps

with Adam (lr * c, betas ** c), c = k / (k + 1) for the lazy regularisation; each phase draws
its own z; style mixing with one crossover per minibatch; w_avg follows the mapping passes of
Gmain, Greg and Dmain (not the second z of style mixing); gradients go through nan_to_num;
G_ema with beta = 0.5 ** (batch / ema_nimg), ema_nimg = min(ema_kimg * 1000, cur_nimg * rampup).

The losses are the StyleGAN2 objective's (sgan.train.objectives.stylegan2, checked against NVIDIA's
training iteration); every phase's optimizer step goes through the Trainer's one phase runner
(`_finish`: all-reduce with named riders, nan_to_num, loss scaler, Adam). The Trainer holds this
object as `tr.arch` (as sgan.train.steps_progressive for StyleGAN); everything else (run folder,
snapshots, ticks, resume, signals, rollbacks, torchrun) is the Trainer's. All randomness of step k
comes from sgan.train.latents, seeded by (seed, rollbacks, k, phase), drawn for the global minibatch
and sliced by rank, so resume is bit-identical and N processes compute what one computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from sgan import distributed as dist_utils
from sgan.train.compiled import eager
from sgan.train.ema import ema_beta, update_ema
from sgan.train.latents import stylegan2_draws
from sgan.train.objectives.stylegan2 import SG2Draws, StyleGAN2Objective
from sgan.train.reals import to_float
from sgan.train.regularizers import pl_noise
from sgan.train.schedule import Point
from sgan.train.state import Counters
from sgan.train.stats import Riders
from sgan.train.threads import cpu_threads, set_requires_grad, top_channels

GMAIN, GREG, DMAIN = 1, 2, 3   # purposes of the per-step generators


@dataclass
class Counters2(Counters):
    """The StyleGAN 1 counters plus the path-length running mean (float32 value, stored exactly)."""

    pl_mean: float = 0.0


class StyleGAN2Steps:
    """What a StyleGAN2 run does differently, given the Trainer `tr` it steps."""

    scaler_names = ("G", "D", "G_reg", "D_reg")

    def __init__(self, tr: Any) -> None:
        self.tr = tr
        self._G_params = list(tr.G.parameters())
        # one fixed resolution: the tick line's and the grid's point never moves
        self._point = Point(lod=0.0, resolution=tr.cfg.resolution, phase="fixed", alpha=1.0, phase_index=0)

    # -- set-up ------------------------------------------------------------------------------

    def objective(self) -> StyleGAN2Objective:
        """The StyleGAN2 losses (sgan.train.objectives.stylegan2) with this run's precision, compile
        state, noise input, paired D call and cross-process path-length mean."""
        tr, cfg, info = self.tr, self.tr.cfg, self.tr.info
        return StyleGAN2Objective(
            tr.G, tr.D, augment=tr._augment,
            r1_gamma=cfg.r1_gamma, pl_weight=cfg.pl_weight, pl_decay=cfg.pl_decay, pl_batch_shrink=cfg.pl_batch_shrink,
            style_mixing_prob=cfg.style_mixing_prob, g_reg_interval=cfg.g_reg_interval, r1_interval=cfg.r1_interval,
            w_avg_beta=tr.model_cfg.w_avg_beta, autocast=tr._autocast,
            double_backward=lambda: eager(tr.compiled),  # double backward: compiled graphs cannot
            noise_input=lambda noise, n: tr._noise(noise, 0.0, n),
            d_pair=lambda reals, fakes, c_real, c_fake: tr._d_pair(reals, fakes, 0.0, c_real, c_fake),
            reduce_mean=(lambda t: dist_utils.all_reduce_mean_(t, info)) if info.enabled else None)

    def counters(self) -> Counters2:
        return Counters2()

    def restore_counters(self, counters: Counters, extra: dict[str, Any]) -> Counters2:
        c = Counters2(**vars(counters), pl_mean=float(extra["counters"].get("pl_mean", 0.0)))
        self.tr.objective.load_state_dict({"pl_mean": c.pl_mean})
        return c

    def point(self, progress: float) -> Point:
        return self._point

    def step_threads(self, res: int, batch: int) -> int:
        tr = self.tr
        return cpu_threads(batch=batch, channels=top_channels(tr.model_cfg), resolution=res,
                           max_threads=tr._max_threads)

    def tick_extras(self) -> dict[str, Any]:
        return {"pl_mean": round(self.tr.c.pl_mean, 6)}

    # -- randomness --------------------------------------------------------------------------

    def draws(self, gen: torch.Generator, batch: int) -> SG2Draws:
        """z, the style-mixing z and crossover, and per-sample noise generators of this rank's
        share of a global minibatch of `batch` (sgan.train.latents)."""
        tr = self.tr
        return SG2Draws(**stylegan2_draws(gen, batch=batch, share=tr.share, z_dim=tr.model_cfg.z_dim,
                                          num_ws=tr.model_cfg.num_ws, mixing_prob=tr.cfg.style_mixing_prob,
                                          device=tr.device, labels=tr.labels))

    # -- one step ----------------------------------------------------------------------------

    def step(self, stop_requested: bool) -> bool:
        """One minibatch: Gmain, Greg (lazy), Dmain, Dreg (lazy). True when any rank asked to stop."""
        tr = self.tr
        cfg, c = tr.cfg, tr.c
        tr._check_precision()
        res = cfg.resolution
        batch = cfg.batch_at(res, tr.info.world_size)
        tr._set_threads(res, batch)
        reals = to_float(tr.stream.batch(c.data_position, batch, res), tr.device)
        c_real = (tr.labels.of_items(tr.stream.indices(c.data_position, batch)).to(tr.device)
                  if tr.labels is not None else None)
        tr.stream.prefetch(c.data_position + batch, batch, res)
        terms: dict[str, torch.Tensor] = {}
        ok = self._g_main(terms, batch)
        if cfg.pl_weight > 0 and c.step % cfg.g_reg_interval == 0:
            ok &= self._path_length_phase(batch)
        good, stop = self._d_main(terms, reals, c_real, batch, stop_requested)
        ok &= good
        if cfg.r1_gamma > 0 and c.step % cfg.r1_interval == 0:
            ok &= self._r1_phase(reals, c_real)
        set_requires_grad(tr._D_params, False)
        update_ema(tr.G_ema, tr.G, ema_beta(batch, cfg.ema_kimg, cur_nimg=c.cur_nimg, rampup=cfg.ema_rampup))
        tr._end_step(batch, ok)
        for k, v in terms.items():
            tr.stats.add(k, v)
        tr.stats.end_step()
        return stop

    def _g_main(self, terms: dict[str, torch.Tensor], batch: int) -> bool:
        """Gmain: maximise D's logits for generated images."""
        tr, obj = self.tr, self.tr.objective
        set_requires_grad(tr._D_params, False)
        tr.opt_G.zero_grad(set_to_none=True)
        st = obj.accumulate("Gmain", draws=self.draws(tr._step_generator(GMAIN), batch), scaler=tr.scaler_G,
                            track_w_avg=False)
        terms["G_loss"] = st["G_loss"]
        good, got = tr._finish(tr.G, tr.opt_G, tr.scaler_G, st["G_loss"], Riders(w_mean=st["w_means"][0]),
                               clean=self._G_params)
        obj.update_w_avg(got["w_mean"])
        return good

    def _d_main(self, terms: dict[str, torch.Tensor], reals: torch.Tensor, c_real: torch.Tensor | None,
                batch: int, stop_requested: bool) -> tuple[bool, bool]:
        """Dmain: minimise D's logits for generated images, maximise them for reals; (not bad, stop)."""
        tr, obj = self.tr, self.tr.objective
        draws = self.draws(tr._step_generator(DMAIN), batch)
        set_requires_grad(tr._D_params, True)
        tr.opt_D.zero_grad(set_to_none=True)
        st = obj.accumulate("Dmain", draws=draws, reals=reals, c_real=c_real, scaler=tr.scaler_D, track_w_avg=False)
        terms["D_real"], terms["D_fake"] = st["D_real"], st["D_fake"]
        riders = Riders(w_mean=st["w_means"][0], stop=torch.tensor([1.0 if stop_requested else 0.0], device=tr.device),
                        signs=tr.aug.observe(st["real_logits"], st["fake_logits"]))
        good, got = tr._finish(tr.D, tr.opt_D, tr.scaler_D, st["D_real"] + st["D_fake"], riders, clean=tr._D_params)
        tr.aug.update(got["signs"], batch=batch)  # r_t and ADA's p
        tr.stats.add_d_accuracy(got["signs"])
        obj.update_w_avg(got["w_mean"])
        return good, (bool(got["stop"] > 0) if tr.info.enabled else stop_requested)

    def _r1_phase(self, reals: torch.Tensor, c_real: torch.Tensor | None) -> bool:
        """Dreg: lazy R1 on the same reals."""
        tr = self.tr
        scaler = tr.scalers["D_reg"]
        tr.opt_D.zero_grad(set_to_none=True)
        st = tr.objective.accumulate("Dreg", reals=reals, c_real=c_real, gain=tr.cfg.r1_interval, scaler=scaler)
        good, _ = tr._finish(tr.D, tr.opt_D, scaler, st["D_r1"], None, clean=tr._D_params)
        if scaler.last != "overflow":  # an fp16 overflow skip has no penalty value to average
            tr.stats.add_sample("D_r1", st["D_r1"])
        return good

    def _path_length_phase(self, batch: int) -> bool:
        """Greg: path-length regularisation on batch / pl_batch_shrink samples."""
        tr = self.tr
        cfg, info, scaler = tr.cfg, tr.info, tr.scalers["G_reg"]
        n_pl = batch // cfg.pl_batch_shrink
        gen = tr._step_generator(GREG)
        draws = self.draws(gen, n_pl)
        res = cfg.resolution
        draws.pl_noise = pl_noise((n_pl, tr.model_cfg.num_channels, res, res), gen)[info.rank::info.world_size]
        tr.opt_G.zero_grad(set_to_none=True)
        st = tr.objective.accumulate("Greg", pl_draws=draws, gain=cfg.g_reg_interval, scaler=scaler, track_w_avg=False)
        with eager(tr.compiled):
            good, got = tr._finish(tr.G, tr.opt_G, scaler, st["G_reg_loss"], Riders(w_mean=st["w_means"][0]),
                                   clean=self._G_params)
        if st["pl_mean_finite"]:
            tr.c.pl_mean = float(st["pl_mean"])
        tr.objective.update_w_avg(got["w_mean"])
        if scaler.last != "overflow":
            tr.stats.add_sample("G_pl", st["G_pl"])
        return good and (st["pl_mean_finite"] or scaler.last == "overflow")
