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

Everything else (run folder, snapshots, ticks, resume, signals, rollbacks, torchrun) is the
StyleGAN 1 Trainer's, shared through subclassing. All randomness of step k comes from generators
seeded by (seed, rollbacks, k, phase), drawn for the global minibatch and sliced by rank, so resume
is bit-identical and N processes compute what one computes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from sgan import distributed as dist_utils
from sgan.train.compiled import eager
from sgan.train.config import TrainConfig
from sgan.train.ema import ema_beta, update_ema
from sgan.train.hooks import Hooks
from sgan.train.loop import Trainer
from sgan.train.losses import r1_penalty
from sgan.train.plan import lazy_adam
from sgan.train.reals import to_float
from sgan.train.regularizers import (draw_crossover, mix_at, path_length_loss, path_lengths,
                                     pl_noise)
from sgan.train.scaler import make_scalers
from sgan.train.schedule import Point
from sgan.train.state import Counters
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
        self.pl_mean = torch.zeros([], device=device)

    # -- set-up ------------------------------------------------------------------------------

    def _optimizers(self) -> tuple[torch.optim.Adam, torch.optim.Adam]:
        return self._adam(self.G, self.cfg.g_reg_interval), self._adam(self.D, self.cfg.r1_interval)

    def _counters(self) -> Counters2:
        return Counters2()

    def _adam(self, module: torch.nn.Module, interval: int = 1) -> torch.optim.Adam:  # type: ignore[override]
        lr, betas = lazy_adam(self.cfg.lr_base, tuple(self.cfg.adam_betas), interval)
        return torch.optim.Adam(module.parameters(), lr=lr, betas=betas, eps=self.cfg.adam_eps, foreach=True)

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
        self.pl_mean = torch.tensor(c.pl_mean, dtype=torch.float32, device=self.device)
        return c

    # -- randomness --------------------------------------------------------------------------

    def _draws(self, gen: torch.Generator, batch: int) -> dict[str, Any]:
        """z, the style-mixing z and crossover, and per-sample noise generators of this rank's
        share of a global minibatch of `batch`."""
        sl = slice(self.info.rank, batch, self.info.world_size)
        z_dim = self.model_cfg.z_dim
        z = torch.randn([batch, z_dim], generator=gen)[sl]
        z2 = torch.randn([batch, z_dim], generator=gen)[sl]
        cutoff = draw_crossover(gen, self.model_cfg.num_ws, self.cfg.style_mixing_prob)
        noise_seeds = torch.randint(0, 2 ** 62, [batch], generator=gen)[sl].tolist()
        noise = [torch.Generator(device=self.device).manual_seed(s) for s in noise_seeds]
        out = {"z": z.to(self.device), "z2": z2.to(self.device), "cutoff": cutoff, "noise": noise}
        if self.labels is not None:  # fakes' classes follow the dataset's
            out["c"] = self.labels.draw(gen, batch, sl).to(self.device)
        return out

    # -- forward passes ----------------------------------------------------------------------

    def _run_G(self, lat: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(images, ws, mean w of the first z) as the official run_G: w broadcast to every layer,
        the layers from the crossover on from the second z."""
        num_ws = self.model_cfg.num_ws
        with self._autocast():
            w = self.G.mapping(lat["z"], lat.get("c"))
            ws = w.unsqueeze(1).repeat(1, num_ws, 1)
            if self.cfg.style_mixing_prob > 0:
                w2 = self.G.mapping(lat["z2"], lat.get("c"))
                ws = mix_at(ws, w2.unsqueeze(1).repeat(1, num_ws, 1), lat["cutoff"])
            img = self.G.synthesis(ws, noise_mode="random", generator=self._noise(lat["noise"], 0.0, len(ws)))
        return img, ws, w.detach().float().mean(dim=0)

    def _update_w_avg(self, w_mean: torch.Tensor | None) -> None:
        if w_mean is not None and bool(torch.isfinite(w_mean).all()):
            with torch.no_grad():
                w_avg = self.G.mapping.w_avg
                w_avg.copy_(w_mean.to(w_avg.dtype).lerp(w_avg, self.model_cfg.w_avg_beta))

    def _finish(self, module: torch.nn.Module, params: list[torch.Tensor], opt: torch.optim.Optimizer,
                loss: torch.Tensor, riders: torch.Tensor | None, scaler: Any = None) -> tuple[bool, torch.Tensor | None]:
        """Backward done: average gradients (riders along), nan_to_num, Adam step (fp16: unscaled after
        the all-reduce, skipped on overflow). True unless the step was bad (non-finite)."""
        ok, riders = self._reduce_grads(module, riders)
        scaler = scaler or (self.scaler_G if opt is self.opt_G else self.scaler_D)
        return scaler.finish(opt, grads_ok=ok, loss=loss, clean=params), riders

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
        sl = slice(info.rank, batch, info.world_size)

        def aug(x: torch.Tensor) -> torch.Tensor:  # every image D sees (global draw, this rank's slice)
            return self.aug(x, n_global=batch, sl=sl)

        terms: dict[str, torch.Tensor] = {}
        ok = True

        # Gmain: maximise D's logits for generated images.
        set_requires_grad(self._D_params, False)
        lat = self._draws(self._step_generator(GMAIN), batch)
        img, _, w_mean = self._run_G(lat)
        with self._autocast():
            terms["G_loss"] = F.softplus(-self.D(aug(img), lat.get("c")).float()).mean()
        self.opt_G.zero_grad(set_to_none=True)
        self.scaler_G.scale(terms["G_loss"]).backward()
        good, w_mean = self._finish(self.G, self._G_params, self.opt_G, terms["G_loss"], w_mean)
        ok &= good
        self._update_w_avg(w_mean)

        # Greg: path-length regularisation on batch / pl_batch_shrink samples.
        if cfg.pl_weight > 0 and c.step % cfg.g_reg_interval == 0:
            with eager(self.compiled):  # double backward: compiled graphs cannot
                ok &= self._path_length_phase(batch)

        # Dmain: minimise D's logits for generated images, maximise them for reals.
        lat = self._draws(self._step_generator(DMAIN), batch)
        set_requires_grad(self._G_params, False)  # as the official D phases: G runs without a graph
        fakes, _, w_mean = self._run_G(lat)
        set_requires_grad(self._G_params, True)
        set_requires_grad(self._D_params, True)
        with self._autocast():
            real_logits, fake_logits = self._d_pair(aug(reals), aug(fakes), 0.0, c_real, lat.get("c"))
            terms["D_real"] = F.softplus(-real_logits.float()).mean()
            terms["D_fake"] = F.softplus(fake_logits.float()).mean()
        loss_D = terms["D_real"] + terms["D_fake"]
        self.opt_D.zero_grad(set_to_none=True)
        self.scaler_D.scale(loss_D).backward()
        flag = torch.tensor([1.0 if stop_requested else 0.0], device=self.device)
        signs = self.aug.observe(real_logits, fake_logits)
        good, riders = self._finish(self.D, self._D_params, self.opt_D, loss_D, torch.cat([w_mean, flag, signs]))
        ok &= good
        n_signs = signs.numel()
        self.aug.update(riders[-n_signs:], batch=batch)  # r_t and ADA's p
        riders = riders[:-n_signs]
        self._update_w_avg(riders[:-1])
        stop = bool(riders[-1] > 0) if info.enabled else stop_requested

        # Dreg: lazy R1 on the same reals.
        if cfg.r1_gamma > 0 and c.step % cfg.r1_interval == 0:
            reals_r = reals.detach().requires_grad_(True)
            with self._autocast(), eager(self.compiled):  # double backward: compiled graphs cannot
                logits = self.D(aug(reals_r), c_real)
            r1 = r1_penalty(logits, reals_r, cfg.r1_gamma, scale=self.scaler_Dreg.penalty_scale)
            self.opt_D.zero_grad(set_to_none=True)
            self.scaler_Dreg.scale(r1 * cfg.r1_interval).backward()
            good, _ = self._finish(self.D, self._D_params, self.opt_D, r1, None, self.scaler_Dreg)
            ok &= good
            if self.scaler_Dreg.last != "overflow":  # an fp16 overflow skip has no penalty value to average
                self.stats.add_sample("D_r1", r1)
        set_requires_grad(self._D_params, False)

        update_ema(self.G_ema, self.G, ema_beta(batch, cfg.ema_kimg, cur_nimg=c.cur_nimg, rampup=cfg.ema_rampup))
        self._end_step(batch, ok)
        for k, v in terms.items():
            self.stats.add(k, v)
        self.stats.end_step()
        return stop

    def _path_length_phase(self, batch: int) -> bool:
        cfg, info = self.cfg, self.info
        n_pl = batch // cfg.pl_batch_shrink
        gen = self._step_generator(GREG)
        lat = self._draws(gen, n_pl)
        res = cfg.resolution
        noise = pl_noise((n_pl, self.model_cfg.num_channels, res, res), gen)[info.rank::info.world_size]
        img, ws, w_mean = self._run_G(lat)
        lengths = path_lengths(img, ws, noise.to(self.device), scale=self.scaler_Greg.penalty_scale)
        global_mean = lengths.detach().mean().reshape(1)
        dist_utils.all_reduce_mean_(global_mean, info)  # equal shares: the mean of means is the global mean
        loss, new_mean, penalty = path_length_loss(lengths, self.pl_mean, decay=cfg.pl_decay, global_mean=global_mean)
        self.opt_G.zero_grad(set_to_none=True)
        self.scaler_Greg.scale(loss * (cfg.pl_weight * cfg.g_reg_interval)).backward()
        good, w_mean = self._finish(self.G, self._G_params, self.opt_G, loss, w_mean, self.scaler_Greg)
        if bool(torch.isfinite(new_mean)):
            self.pl_mean = new_mean
            self.c.pl_mean = float(new_mean)
        self._update_w_avg(w_mean)
        if self.scaler_Greg.last != "overflow":
            self.stats.add_sample("G_pl", penalty.mean())
        return good and (bool(torch.isfinite(new_mean)) or self.scaler_Greg.last == "overflow")

    # -- ticks -------------------------------------------------------------------------------

    def end_tick(self) -> dict[str, Any]:
        return super().end_tick() | {"pl_mean": round(self.c.pl_mean, 6)}
