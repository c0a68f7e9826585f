"""The StyleGAN2 training loop (NVlabs/stylegan2-ada-pytorch training_loop.py + loss.py).

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
(`_finish`: all-reduce with named riders, nan_to_num, loss scaler, Adam). Everything else (run
folder, snapshots, ticks, resume, signals, rollbacks, torchrun) is the Trainer's. All randomness of
step k comes from sgan.train.latents, seeded by (seed, rollbacks, k, phase), drawn for the global
minibatch and sliced by rank, so resume is bit-identical and N processes compute what one computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sgan import distributed as dist_utils
from sgan.train.compiled import eager
from sgan.train.config import TrainConfig
from sgan.train.ema import ema_beta, update_ema
from sgan.train.hooks import Hooks
from sgan.train.latents import stylegan2_draws
from sgan.train.loop import Trainer
from sgan.train.objectives.stylegan2 import SG2Draws, StyleGAN2Objective
from sgan.train.reals import to_float
from sgan.train.regularizers import pl_noise
from sgan.train.scaler import make_scalers
from sgan.train.schedule import Point
from sgan.train.state import Counters
from sgan.train.stats import Riders
from sgan.train.threads import cpu_threads, set_requires_grad, top_channels

GMAIN, GREG, DMAIN = 1, 2, 3   # purposes of the per-step generators


@dataclass
class Counters2(Counters):
    """The StyleGAN 1 counters plus the path-length running mean (float32 value, stored exactly)."""

    pl_mean: float = 0.0


class StyleGAN2Trainer(Trainer):
    """Networks, optimizers and counters of a StyleGAN2 run; the driver runs it like a Trainer."""

    def __init__(self, cfg: TrainConfig, data: Path, out: Path, *, device: torch.device,
                 info: dist_utils.DistInfo, hooks: Hooks, threads: int | None = None) -> None:
        super().__init__(cfg, data, out, device=device, info=info, hooks=hooks, threads=threads)
        self._G_params = list(self.G.parameters())

    # -- set-up ------------------------------------------------------------------------------

    def _objective(self) -> StyleGAN2Objective:
        """The StyleGAN2 losses (sgan.train.objectives.stylegan2) with this run's precision, compile
        state, noise input, paired D call and cross-process path-length mean."""
        cfg, info = self.cfg, self.info

        def augment(x: torch.Tensor) -> torch.Tensor:   # every image D sees: the global draw, this rank's slice
            batch = cfg.batch_at(cfg.resolution, info.world_size)
            return self.aug(x, n_global=batch, sl=self.share.of(batch))

        return StyleGAN2Objective(
            self.G, self.D, augment=augment,
            r1_gamma=cfg.r1_gamma, pl_weight=cfg.pl_weight, pl_decay=cfg.pl_decay, pl_batch_shrink=cfg.pl_batch_shrink,
            style_mixing_prob=cfg.style_mixing_prob, g_reg_interval=cfg.g_reg_interval, r1_interval=cfg.r1_interval,
            w_avg_beta=self.model_cfg.w_avg_beta, autocast=self._autocast,
            double_backward=lambda: eager(self.compiled),  # double backward: compiled graphs cannot
            noise_input=lambda noise, n: self._noise(noise, 0.0, n),
            d_pair=lambda reals, fakes, c_real, c_fake: self._d_pair(reals, fakes, 0.0, c_real, c_fake),
            reduce_mean=(lambda t: dist_utils.all_reduce_mean_(t, info)) if info.enabled else None)

    @property
    def pl_mean(self) -> torch.Tensor:
        return self.objective.pl_mean

    def _counters(self) -> Counters2:
        return Counters2()

    def _make_scalers(self, precision: str) -> None:
        self.scalers = make_scalers(self.device, precision, ("G", "D", "G_reg", "D_reg"))
        self.scaler_G, self.scaler_D = self.scalers["G"], self.scalers["D"]
        self.scaler_Greg, self.scaler_Dreg = self.scalers["G_reg"], self.scalers["D_reg"]

    def step_threads(self, res: int, batch: int) -> int:
        return cpu_threads(batch=batch, channels=top_channels(self.model_cfg), resolution=res,
                           max_threads=self._max_threads)

    def _point(self, progress: float) -> Point:
        return Point(lod=0.0, resolution=self.cfg.resolution, phase="fixed", alpha=1.0, phase_index=0)

    def _restore_counters(self, counters: Counters, extra: dict[str, Any]) -> Counters2:
        c = Counters2(**vars(counters), pl_mean=float(extra["counters"].get("pl_mean", 0.0)))
        self.objective.load_state_dict({"pl_mean": c.pl_mean})
        return c

    # -- randomness --------------------------------------------------------------------------

    def _draws(self, gen: torch.Generator, batch: int) -> SG2Draws:
        """z, the style-mixing z and crossover, and per-sample noise generators of this rank's
        share of a global minibatch of `batch` (sgan.train.latents)."""
        return SG2Draws(**stylegan2_draws(gen, batch=batch, share=self.share, z_dim=self.model_cfg.z_dim,
                                          num_ws=self.model_cfg.num_ws, mixing_prob=self.cfg.style_mixing_prob,
                                          device=self.device, labels=self.labels))

    # -- one step ----------------------------------------------------------------------------

    def step(self, stop_requested: bool) -> bool:
        """One minibatch: Gmain, Greg (lazy), Dmain, Dreg (lazy). True when any rank asked to stop."""
        cfg, c, info = self.cfg, self.c, self.info
        self._check_precision()
        res = cfg.resolution
        batch = cfg.batch_at(res, info.world_size)
        self._set_threads(res, batch)
        reals = to_float(self.stream.batch(c.data_position, batch, res), self.device)
        c_real = (self.labels.of_items(self.stream.indices(c.data_position, batch)).to(self.device)
                  if self.labels is not None else None)
        self.stream.prefetch(c.data_position + batch, batch, res)
        obj = self.objective
        terms: dict[str, torch.Tensor] = {}
        ok = True

        # Gmain: maximise D's logits for generated images.
        set_requires_grad(self._D_params, False)
        self.opt_G.zero_grad(set_to_none=True)
        st = obj.accumulate("Gmain", draws=self._draws(self._step_generator(GMAIN), batch), scaler=self.scaler_G,
                            track_w_avg=False)
        terms["G_loss"] = st["G_loss"]
        good, got = self._finish(self.G, self.opt_G, self.scaler_G, st["G_loss"], Riders(w_mean=st["w_means"][0]),
                                 clean=self._G_params)
        ok &= good
        obj.update_w_avg(got["w_mean"])

        # Greg: path-length regularisation on batch / pl_batch_shrink samples.
        if cfg.pl_weight > 0 and c.step % cfg.g_reg_interval == 0:
            ok &= self._path_length_phase(batch)

        # Dmain: minimise D's logits for generated images, maximise them for reals.
        draws = self._draws(self._step_generator(DMAIN), batch)
        set_requires_grad(self._D_params, True)
        self.opt_D.zero_grad(set_to_none=True)
        st = obj.accumulate("Dmain", draws=draws, reals=reals, c_real=c_real, scaler=self.scaler_D, track_w_avg=False)
        terms["D_real"], terms["D_fake"] = st["D_real"], st["D_fake"]
        riders = Riders(w_mean=st["w_means"][0], stop=torch.tensor([1.0 if stop_requested else 0.0], device=self.device),
                        signs=self.aug.observe(st["real_logits"], st["fake_logits"]))
        good, got = self._finish(self.D, self.opt_D, self.scaler_D, st["D_real"] + st["D_fake"], riders,
                                 clean=self._D_params)
        ok &= good
        self.aug.update(got["signs"], batch=batch)  # r_t and ADA's p
        obj.update_w_avg(got["w_mean"])
        stop = bool(got["stop"] > 0) if info.enabled else stop_requested

        # Dreg: lazy R1 on the same reals.
        if cfg.r1_gamma > 0 and c.step % cfg.r1_interval == 0:
            ok &= self._r1_phase(reals, c_real)
        set_requires_grad(self._D_params, False)

        update_ema(self.G_ema, self.G, ema_beta(batch, cfg.ema_kimg, cur_nimg=c.cur_nimg, rampup=cfg.ema_rampup))
        self._end_step(batch, ok)
        for k, v in terms.items():
            self.stats.add(k, v)
        self.stats.end_step()
        return stop

    def _r1_phase(self, reals: torch.Tensor, c_real: torch.Tensor | None) -> bool:
        self.opt_D.zero_grad(set_to_none=True)
        st = self.objective.accumulate("Dreg", reals=reals, c_real=c_real, gain=self.cfg.r1_interval,
                                       scaler=self.scaler_Dreg)
        good, _ = self._finish(self.D, self.opt_D, self.scaler_Dreg, st["D_r1"], None, clean=self._D_params)
        if self.scaler_Dreg.last != "overflow":  # an fp16 overflow skip has no penalty value to average
            self.stats.add_sample("D_r1", st["D_r1"])
        return good

    def _path_length_phase(self, batch: int) -> bool:
        cfg, info = self.cfg, self.info
        n_pl = batch // cfg.pl_batch_shrink
        gen = self._step_generator(GREG)
        draws = self._draws(gen, n_pl)
        res = cfg.resolution
        draws.pl_noise = pl_noise((n_pl, self.model_cfg.num_channels, res, res), gen)[info.rank::info.world_size]
        self.opt_G.zero_grad(set_to_none=True)
        st = self.objective.accumulate("Greg", pl_draws=draws, gain=cfg.g_reg_interval, scaler=self.scaler_Greg,
                                       track_w_avg=False)
        with eager(self.compiled):
            good, got = self._finish(self.G, self.opt_G, self.scaler_Greg, st["G_reg_loss"],
                                     Riders(w_mean=st["w_means"][0]), clean=self._G_params)
        if st["pl_mean_finite"]:
            self.c.pl_mean = float(st["pl_mean"])
        self.objective.update_w_avg(got["w_mean"])
        if self.scaler_Greg.last != "overflow":
            self.stats.add_sample("G_pl", st["G_pl"])
        return good and (st["pl_mean_finite"] or self.scaler_Greg.last == "overflow")

    # -- ticks -------------------------------------------------------------------------------

    def end_tick(self) -> dict[str, Any]:
        return super().end_tick() | {"pl_mean": round(self.c.pl_mean, 6)}
