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
from pathlib import Path
from typing import Any

import torch

from sgan import distributed as dist_utils
from sgan.checkpoint import load_checkpoint
from sgan.errors import CheckpointError
from sgan.train.compiled import eager
from sgan.train.config import TrainConfig
from sgan.train.ema import ema_beta, update_ema
from sgan.train.loop import Hooks, Trainer, _set_requires_grad, cpu_threads
from sgan.train.objectives.stylegan2 import SG2Draws, StyleGAN2Objective
from sgan.train.presets_sg2 import check_batch, lazy_adam
from sgan.train.reals import RealStream, to_float
from sgan.train.regularizers import draw_crossover, pl_noise
from sgan.train.scaler import load_scaler_states, make_scalers
from sgan.train.schedule import Point, build_phases
from sgan.train.state import Counters, restore_rng, unpack

GMAIN, GREG, DMAIN = 1, 2, 3   # purposes of the per-step generators


@dataclass
class Counters2(Counters):
    """The StyleGAN 1 counters plus the path-length running mean (float32 value, stored exactly)."""

    pl_mean: float = 0.0


def top_channels(model_cfg: Any) -> int:
    """Feature maps at the output resolution (for the CPU thread policy)."""
    if model_cfg.arch == "stylegan2":
        return int(model_cfg.channels(model_cfg.resolution))
    return int(model_cfg.nf(model_cfg.resolution_log2 - 1))


def preflight(cfg: TrainConfig, data: Path, world_size: int) -> None:
    """The checks of a StyleGAN2 run that need the dataset, before anything is written."""
    stream = RealStream(data, mirror=cfg.mirror, seed=cfg.seed)
    try:
        if cfg.resolution is None:
            cfg.resolution = max(stream.sizes)
        cfg.validate()
        check_batch(cfg, cfg.model_config(), world_size)
        stream.check_sizes([cfg.resolution])
    finally:
        stream.close()


class StyleGAN2Trainer(Trainer):
    """Networks, optimizers and counters of a StyleGAN2 run; the driver runs it like a Trainer."""

    def __init__(self, cfg: TrainConfig, data: Path, out: Path, *, device: torch.device,
                 info: dist_utils.DistInfo, hooks: Hooks, threads: int | None = None) -> None:
        super().__init__(cfg, data, out, device=device, info=info, hooks=hooks, threads=threads)
        self._G_params = list(self.G.parameters())
        self.objective = self._objective()
        self._reg_sums: dict[str, list[float]] = {}

    # -- set-up ------------------------------------------------------------------------------

    def _plan(self) -> list:
        """One fixed resolution: check the minibatch shapes and the dataset's size; one phase, forever."""
        check_batch(self.cfg, self.model_cfg, self.info.world_size)
        self.stream.check_sizes([self.cfg.resolution])
        return build_phases(self.cfg.resolution, self.cfg.resolution, 0.0, 0.0)

    def _objective(self) -> StyleGAN2Objective:
        """The StyleGAN2 losses (sgan.train.objectives.stylegan2) with this run's precision, compile
        state, noise input, paired D call and cross-process path-length mean."""
        cfg, info = self.cfg, self.info

        def augment(x: torch.Tensor) -> torch.Tensor:   # every image D sees: the global draw, this rank's slice
            batch = cfg.batch_at(cfg.resolution, info.world_size)
            return self.aug(x, n_global=batch, sl=slice(info.rank, batch, info.world_size))

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

    def load_state(self, ckpt_path: Path) -> None:
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
        except (RuntimeError, ValueError, KeyError) as err:
            raise CheckpointError(f"{ckpt.path}: the weights do not fit this run ({str(err).splitlines()[0]}).") from None
        self.c = Counters2(**vars(st.counters), pl_mean=float(ckpt.extra["counters"].get("pl_mean", 0.0)))
        self.objective.load_state_dict({"pl_mean": self.c.pl_mean})
        self.point = self._point(0.0)
        restore_rng(st.rng)
        self._tick_train_s0 = self.c.train_seconds   # the next tick's img/s counts from here
        if "augment" in ckpt.extra:
            self.aug.load_state_dict(ckpt.extra["augment"])
        load_scaler_states(self.scalers, st.scalers)

    # -- randomness --------------------------------------------------------------------------

    def _draws(self, gen: torch.Generator, batch: int) -> SG2Draws:
        """z, the style-mixing z and crossover, and per-sample noise generators of this rank's
        share of a global minibatch of `batch`."""
        sl = slice(self.info.rank, batch, self.info.world_size)
        z_dim = self.model_cfg.z_dim
        z = torch.randn([batch, z_dim], generator=gen)[sl]
        z2 = torch.randn([batch, z_dim], generator=gen)[sl]
        cutoff = draw_crossover(gen, self.model_cfg.num_ws, self.cfg.style_mixing_prob)
        noise_seeds = torch.randint(0, 2 ** 62, [batch], generator=gen)[sl].tolist()
        noise = [torch.Generator(device=self.device).manual_seed(s) for s in noise_seeds]
        c = None
        if self.labels is not None:  # fakes' classes follow the dataset's
            c = self.labels.draw(gen, batch, sl).to(self.device)
        return SG2Draws(z=z.to(self.device), c=c, z2=z2.to(self.device), cutoff=cutoff, noise=noise)

    # -- forward passes ----------------------------------------------------------------------

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
        if self.auto_threads:
            threads = self.step_threads(res, batch)
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
        reals = to_float(self.stream.batch(c.data_position, batch, res), self.device)
        c_real = (self.labels.of_items(self.stream.indices(c.data_position, batch)).to(self.device)
                  if self.labels is not None else None)
        self.stream.prefetch(c.data_position + batch, batch, res)
        obj = self.objective
        terms: dict[str, torch.Tensor] = {}
        ok = True

        # Gmain: maximise D's logits for generated images.
        _set_requires_grad(self._D_params, False)
        self.opt_G.zero_grad(set_to_none=True)
        st = obj.accumulate("Gmain", draws=self._draws(self._step_generator(GMAIN), batch), scaler=self.scaler_G,
                            track_w_avg=False)
        terms["G_loss"] = st["G_loss"]
        good, w_mean = self._finish(self.G, self._G_params, self.opt_G, st["G_loss"], st["w_means"][0])
        ok &= good
        obj.update_w_avg(w_mean)

        # Greg: path-length regularisation on batch / pl_batch_shrink samples.
        if cfg.pl_weight > 0 and c.step % cfg.g_reg_interval == 0:
            ok &= self._path_length_phase(batch)

        # Dmain: minimise D's logits for generated images, maximise them for reals.
        draws = self._draws(self._step_generator(DMAIN), batch)
        _set_requires_grad(self._D_params, True)
        self.opt_D.zero_grad(set_to_none=True)
        st = obj.accumulate("Dmain", draws=draws, reals=reals, c_real=c_real, scaler=self.scaler_D, track_w_avg=False)
        terms["D_real"], terms["D_fake"] = st["D_real"], st["D_fake"]
        flag = torch.tensor([1.0 if stop_requested else 0.0], device=self.device)
        signs = self.aug.observe(st["real_logits"], st["fake_logits"])
        good, riders = self._finish(self.D, self._D_params, self.opt_D, st["D_real"] + st["D_fake"],
                                    torch.cat([st["w_means"][0], flag, signs]))
        ok &= good
        n_signs = signs.numel()
        self.aug.update(riders[-n_signs:], batch=batch)  # r_t and ADA's p
        riders = riders[:-n_signs]
        obj.update_w_avg(riders[:-1])
        stop = bool(riders[-1] > 0) if info.enabled else stop_requested

        # Dreg: lazy R1 on the same reals.
        if cfg.r1_gamma > 0 and c.step % cfg.r1_interval == 0:
            self.opt_D.zero_grad(set_to_none=True)
            st = obj.accumulate("Dreg", reals=reals, c_real=c_real, gain=cfg.r1_interval, scaler=self.scaler_Dreg)
            good, _ = self._finish(self.D, self._D_params, self.opt_D, st["D_r1"], None, self.scaler_Dreg)
            ok &= good
            if self.scaler_Dreg.last != "overflow":  # an fp16 overflow skip has no penalty value to average
                self._add_reg("D_r1", st["D_r1"])
        _set_requires_grad(self._D_params, False)

        update_ema(self.G_ema, self.G, ema_beta(batch, cfg.ema_kimg, cur_nimg=c.cur_nimg, rampup=cfg.ema_rampup))
        c.cur_nimg += batch
        c.data_position += batch
        c.step += 1
        if ok:
            self._bad_streak = 0
        else:
            c.skipped_steps += 1
            self._bad_streak += 1
        for k, v in terms.items():
            self._tick_sums[k] = self._tick_sums.get(k, 0.0) + float(v.detach())
        self._tick_count += 1
        return stop

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
            good, w_mean = self._finish(self.G, self._G_params, self.opt_G, st["G_reg_loss"], st["w_means"][0],
                                        self.scaler_Greg)
        if st["pl_mean_finite"]:
            self.c.pl_mean = float(st["pl_mean"])
        self.objective.update_w_avg(w_mean)
        if self.scaler_Greg.last != "overflow":
            self._add_reg("G_pl", st["G_pl"])
        return good and (st["pl_mean_finite"] or self.scaler_Greg.last == "overflow")

    # -- ticks -------------------------------------------------------------------------------

    def _add_reg(self, key: str, value: torch.Tensor) -> None:
        s = self._reg_sums.setdefault(key, [0.0, 0])
        s[0] += float(value.detach())
        s[1] += 1

    def end_tick(self) -> dict[str, Any]:
        record = super().end_tick()
        for key, (total, count) in self._reg_sums.items():
            record[key] = round(total / max(count, 1), 6)
        record["pl_mean"] = round(self.c.pl_mean, 6)
        self._reg_sums = {}
        return record
