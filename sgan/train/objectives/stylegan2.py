"""The StyleGAN2 objective (stylegan2-ada-pytorch training/loss.py `StyleGAN2Loss`), one phase at a time.

    objective = StyleGAN2Objective(G, D, r1_gamma=10.0, g_reg_interval=4, r1_interval=16)
    stats = objective.accumulate("Gmain", draws=SG2Draws(z=z, z2=z2, cutoff=cutoff, noise=gens))
    stats = objective.accumulate("Greg", pl_draws=SG2Draws(z=z[:n // 2], ..., pl_noise=y), gain=4)
    stats = objective.accumulate("Dmain", draws=..., reals=x, c_real=c)
    stats = objective.accumulate("Dreg", reals=x, c_real=c, gain=16)

Phases (`gain`: the phase's interval, 1 for the main phases; the lazy regularisation multiplies
the regulariser by its interval):

    Gmain  softplus(-D(G(z))) * gain
    Greg   pl_weight * (|J_w^T y| - pl_mean')^2 * gain on batch / pl_batch_shrink samples, pl_mean'
           = lerp(pl_mean, mean |J_w^T y|, pl_decay) *with* its gradient (sgan.train.regularizers)
    Dmain  (softplus(D(G(z))) + softplus(-D(x))) * gain, G without a graph
    Dreg   gamma/2 * |grad_x D(x)|^2 * gain
    Gboth  Gmain + Greg, Dboth  Dmain + Dreg: no lazy regularisation (interval None), one step each

`accumulate(phase, ...)` runs the forward passes and the backward of the gain-weighted loss (through
`scaler.scale` when an fp16 loss scaler is given; its `penalty_scale` for the inner gradients) and
returns detached statistics: NVIDIA's names with per-sample values (`Loss/scores/fake` [N, 1],
`Loss/signs/fake`, `Loss/G/loss`, `Loss/pl_penalty` [n], `Loss/G/reg`, `Loss/scores/real`,
`Loss/signs/real`, `Loss/D/loss`, `Loss/r1_penalty` [N], `Loss/D/reg`), the intermediates
`pl_grads` [n, num_ws, w_dim], `pl_lengths` [n] and `r1_grads` [N, C, R, R], sgan's tick scalars (`G_loss`, `G_pl`, `D_real`, `D_fake`, `D_r1`), the logits
(`real_logits`, `fake_logits`, for ADA) and `w_means` (the mean w of each main mapping pass, in
order). Which parameters require a gradient, zeroing the gradients, their all-reduce, nan_to_num,
the optimizer step and the loss scaler's step are the caller's (the phase runner's), as in NVIDIA's
training_loop.py; so is freezing D in the G phases (G is frozen here for the D phases' forward).
After the phase every trainable parameter of its network has a gradient (zero where the loss does
not depend on it, as NVIDIA's `x * 0` terms make it), so Adam steps all of them alike.

State: `pl_mean` (a float32 scalar tensor, updated by Greg/Gboth when finite; `state_dict()` /
`load_state_dict()`), and G's `mapping.w_avg`, updated as the official mapping does (lerp of the
batch mean of w toward w_avg by w_avg_beta, in every pass of the main mapping, never the style-mixing
one) right after the phase's backward when `track_w_avg` (the default), else left to the caller,
who reduces `w_means` over processes first and calls `update_w_avg`.

Every random number comes in through `SG2Draws`; the objective draws nothing itself (ADA's `augment`
draws its own). Under several processes, `reduce_mean` averages the batch-mean path length over
them, so every process's penalty uses the global-batch mean (one process: the official formula).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.nn.functional as F

from sgan.nn.inputs import Generators
from sgan.train.losses import input_grad
from sgan.train.regularizers import lengths_of, mix_at, path_length_grads, path_length_loss

PHASES = ("Gmain", "Greg", "Gboth", "Dmain", "Dreg", "Dboth")
ContextFactory = Callable[[], contextlib.AbstractContextManager]


@dataclass
class SG2Draws:
    """Every random number of one generator pass: z [N, z_dim], labels c [N, c_dim] (None when
    unconditional), the style-mixing second latent z2 [N, z_dim] and effective crossover `cutoff`
    (num_ws or None: no mixing), the synthesis noise (`noise`: one torch.Generator per sample, or
    explicit maps {layer_idx: [N, 1, R, R]}, see sgan.nn.inputs.Generators) and the path-length
    probe `pl_noise` [N, C, H, W], already divided by sqrt(H * W) (Greg and Gboth only)."""

    z: torch.Tensor
    c: torch.Tensor | None = None
    z2: torch.Tensor | None = None
    cutoff: int | None = None
    noise: Generators = None
    pl_noise: torch.Tensor | None = None

    def __post_init__(self) -> None:
        n = self.z.shape[0]
        assert self.z.ndim == 2, self.z.shape
        assert self.z2 is None or self.z2.shape == self.z.shape, (self.z.shape, self.z2.shape)
        assert self.c is None or (self.c.ndim == 2 and self.c.shape[0] == n), self.c.shape
        assert self.pl_noise is None or (self.pl_noise.ndim == 4 and self.pl_noise.shape[0] == n), self.pl_noise.shape


class _NoScaler:
    penalty_scale = 1.0

    @staticmethod
    def scale(loss: torch.Tensor) -> torch.Tensor:
        return loss


class StyleGAN2Objective:
    """The StyleGAN2 losses and regularisers of G and D; see the module docstring for the interface.

    `augment`: applied to every image D sees (None: none); `autocast`: a context factory around
    every forward pass (the training precision); `double_backward`: one around the regularisers'
    forward passes (compiled modules must run eagerly there); `noise_input(noise, n)`: what the
    synthesis gets for `SG2Draws.noise` (a compiled run draws the maps ahead); `d_pair(reals, fakes,
    c_real, c_fake)`: D on both at once (default two calls); `reduce_mean(t)`: in-place mean over
    processes of the batch-mean path length (None in one process)."""

    def __init__(self, G: torch.nn.Module, D: torch.nn.Module, *, augment: Callable | None = None,
                 r1_gamma: float, pl_weight: float = 2.0, pl_decay: float = 0.01, pl_batch_shrink: int = 2,
                 style_mixing_prob: float = 0.9, g_reg_interval: int | None = 4, r1_interval: int | None = 16,
                 w_avg_beta: float | None = None, autocast: ContextFactory = contextlib.nullcontext,
                 double_backward: ContextFactory = contextlib.nullcontext,
                 noise_input: Callable[[Generators, int], Generators] | None = None,
                 d_pair: Callable | None = None, reduce_mean: Callable[[torch.Tensor], Any] | None = None) -> None:
        self.G, self.D, self.augment = G, D, augment
        self.r1_gamma, self.pl_weight, self.pl_decay = float(r1_gamma), float(pl_weight), float(pl_decay)
        self.pl_batch_shrink, self.style_mixing_prob = int(pl_batch_shrink), float(style_mixing_prob)
        self.g_reg_interval, self.r1_interval = g_reg_interval, r1_interval
        self.w_avg_beta = float(G.mapping.w_avg_beta if w_avg_beta is None else w_avg_beta)
        self.autocast, self.double_backward = autocast, double_backward
        self.noise_input, self.d_pair, self.reduce_mean = noise_input, d_pair, reduce_mean
        self.pl_mean = torch.zeros([], dtype=torch.float32, device=G.mapping.w_avg.device)

    # -- the phase list and state -------------------------------------------------------------

    def phases(self) -> list[tuple[str, str, int]]:
        """[(phase, network 'G' or 'D', interval)] in the official order; a phase's gain is its interval.
        Lazy regularisation (an interval) gives main + reg phases; interval None one 'both' phase."""
        out: list[tuple[str, str, int]] = []
        nets = (("G", self.g_reg_interval, self.pl_weight), ("D", self.r1_interval, self.r1_gamma))
        for net, interval, weight in nets:
            if interval is None:
                out.append((f"{net}both", net, 1))
            else:
                out.append((f"{net}main", net, 1))
                if weight > 0:
                    out.append((f"{net}reg", net, int(interval)))
        return out

    def state_dict(self) -> dict[str, float]:
        return {"pl_mean": float(self.pl_mean)}

    def load_state_dict(self, state: dict[str, float]) -> None:
        self.pl_mean = torch.tensor(float(state.get("pl_mean", 0.0)), dtype=torch.float32,
                                    device=self.pl_mean.device)

    @torch.no_grad()
    def update_w_avg(self, w_mean: torch.Tensor | None) -> None:
        """w_avg <- lerp(w_mean, w_avg, w_avg_beta) (skipped for a non-finite mean)."""
        if w_mean is not None and bool(torch.isfinite(w_mean).all()):
            w_avg = self.G.mapping.w_avg
            w_avg.copy_(w_mean.to(w_avg.dtype).lerp(w_avg, self.w_avg_beta))

    # -- forward passes -----------------------------------------------------------------------

    def run_G(self, draws: SG2Draws) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(images, ws, mean w) as the official run_G: w broadcast to every layer, the layers from
        the crossover on from z2 (mapped too when the crossover is num_ws); mean w of the first z."""
        num_ws = self.G.num_ws
        with self.autocast():
            w = self.G.mapping(draws.z, draws.c)
            ws = w.unsqueeze(1).repeat(1, num_ws, 1)
            if self.style_mixing_prob > 0:
                if draws.z2 is None:
                    raise ValueError("style mixing is on: the draws need z2 and a cutoff")
                w2 = self.G.mapping(draws.z2, draws.c)
                ws = mix_at(ws, w2.unsqueeze(1).repeat(1, num_ws, 1), num_ws if draws.cutoff is None else draws.cutoff)
            noise = draws.noise if self.noise_input is None else self.noise_input(draws.noise, len(ws))
            img = self.G.synthesis(ws, noise_mode="random", generator=noise)
        return img, ws, w.detach().float().mean(dim=0)

    def _aug(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.augment is None else self.augment(x)

    def _frozen_G(self, draws: SG2Draws) -> tuple[torch.Tensor, torch.Tensor]:
        """G's images without a graph into G (as the official D phases), and the mean w."""
        params = list(self.G.parameters())
        flags = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad_(False)
        try:
            img, _, w_mean = self.run_G(draws)
        finally:
            for p, flag in zip(params, flags):
                p.requires_grad_(flag)
        return img, w_mean

    def _pair(self, reals: torch.Tensor, fakes: torch.Tensor, c_real, c_fake) -> tuple[torch.Tensor, torch.Tensor]:
        if self.d_pair is not None:
            return self.d_pair(reals, fakes, c_real, c_fake)
        return self.D(reals, c_real), self.D(fakes, c_fake)

    # -- the phases ---------------------------------------------------------------------------

    def accumulate(self, phase: str, *, draws: SG2Draws | None = None, pl_draws: SG2Draws | None = None,
                   reals: torch.Tensor | None = None, c_real: torch.Tensor | None = None, gain: float = 1.0,
                   scaler: Any = None, track_w_avg: bool = True) -> dict[str, Any]:
        """Forward and backward of `phase` (one of PHASES) weighted by `gain`; detached statistics.
        `draws`: the main generator pass (Gmain, Dmain, Gboth, Dboth); `pl_draws`: the path-length
        pass (Greg, Gboth: its own draws, pl_noise included); `reals` [N, C, R, R] and their labels
        (D phases)."""
        if phase not in PHASES:
            raise ValueError(f"unknown StyleGAN2 phase {phase!r}; choose one of {', '.join(PHASES)}")
        scaler = scaler or _NoScaler()
        stats: dict[str, Any] = {"w_means": []}
        if phase in ("Gmain", "Gboth"):
            self._need(phase, draws=draws)
            self._g_main(draws, gain, scaler, stats, track_w_avg)
        if phase in ("Greg", "Gboth"):
            self._need(phase, pl_draws=pl_draws)
            with self.double_backward():
                self._g_reg(pl_draws, gain, scaler, stats, track_w_avg)
        if phase == "Dmain":
            self._need(phase, draws=draws, reals=reals)
            self._d_main(draws, reals, c_real, gain, scaler, stats, track_w_avg)
        if phase == "Dreg":
            self._need(phase, reals=reals)
            self._d_reg(reals, c_real, gain, scaler, stats)
        if phase == "Dboth":
            self._need(phase, draws=draws, reals=reals)
            self._d_both(draws, reals, c_real, gain, scaler, stats, track_w_avg)
        self._complete_grads(self.G if phase[0] == "G" else self.D)
        return stats

    @staticmethod
    def _complete_grads(net: torch.nn.Module) -> None:
        """Every trainable parameter of the phase's network has a gradient after the phase, zero where
        the loss does not depend on it (the ToRGB biases in Greg, D's last biases in Dreg), as the
        official loss's `x * 0` terms give: so Adam steps every parameter in every phase (step count,
        second-moment decay) exactly as NVIDIA's, instead of skipping those with no gradient."""
        for p in net.parameters():
            if p.requires_grad and p.grad is None:
                p.grad = torch.zeros_like(p)

    @staticmethod
    def _need(phase: str, **given: Any) -> None:
        missing = [k for k, v in given.items() if v is None]
        if missing:
            raise ValueError(f"phase {phase} needs {', '.join(missing)}")

    def _main_w(self, w_mean: torch.Tensor, stats: dict[str, Any], track_w_avg: bool) -> None:
        stats["w_means"].append(w_mean)
        if track_w_avg:
            self.update_w_avg(w_mean)

    def _g_main(self, draws: SG2Draws, gain: float, scaler: Any, stats: dict[str, Any], track_w_avg: bool) -> None:
        img, _, w_mean = self.run_G(draws)
        with self.autocast():
            logits = self.D(self._aug(img), draws.c).float()
            per_sample = F.softplus(-logits)
            loss = per_sample.mean()
        scaler.scale(loss if gain == 1 else loss * gain).backward()
        self._main_w(w_mean, stats, track_w_avg)
        stats.update({"Loss/scores/fake": logits.detach(), "Loss/signs/fake": logits.detach().sign(),
                      "Loss/G/loss": per_sample.detach(), "G_loss": loss.detach()})

    def _g_reg(self, draws: SG2Draws, gain: float, scaler: Any, stats: dict[str, Any], track_w_avg: bool) -> None:
        if draws.pl_noise is None:
            raise ValueError("the path-length pass needs pl_noise in its draws")
        img, ws, w_mean = self.run_G(draws)
        grads = path_length_grads(img, ws, draws.pl_noise.to(img.device), scale=scaler.penalty_scale)
        lengths = lengths_of(grads)
        batch_mean = lengths.detach().mean().reshape(1)
        if self.reduce_mean is not None:
            self.reduce_mean(batch_mean)  # equal shares: the mean of the means is the global-batch mean
        loss, new_mean, penalty = path_length_loss(lengths, self.pl_mean, decay=self.pl_decay, global_mean=batch_mean)
        scaler.scale(loss * (self.pl_weight * gain)).backward()
        finite = bool(torch.isfinite(new_mean))
        if finite:
            self.pl_mean = new_mean
        self._main_w(w_mean, stats, track_w_avg)
        stats.update({"Loss/pl_penalty": penalty, "Loss/G/reg": penalty * self.pl_weight, "pl_lengths": lengths.detach(),
                      "pl_grads": grads.detach(),
                      "pl_mean": new_mean, "pl_mean_finite": finite, "G_pl": penalty.mean(),
                      "G_reg_loss": loss.detach()})

    def _d_main(self, draws: SG2Draws, reals: torch.Tensor, c_real, gain: float, scaler: Any,
                stats: dict[str, Any], track_w_avg: bool) -> None:
        fakes, w_mean = self._frozen_G(draws)
        with self.autocast():
            real_logits, fake_logits = self._pair(self._aug(reals), self._aug(fakes), c_real, draws.c)
            real_logits, fake_logits = real_logits.float(), fake_logits.float()
            real_term, fake_term = F.softplus(-real_logits), F.softplus(fake_logits)
            d_real, d_fake = real_term.mean(), fake_term.mean()
        loss = d_real + d_fake
        scaler.scale(loss if gain == 1 else loss * gain).backward()
        self._main_w(w_mean, stats, track_w_avg)
        self._d_stats(stats, real_logits, fake_logits)
        stats.update({"Loss/D/loss": (real_term + fake_term).detach(), "D_real": d_real.detach(),
                      "D_fake": d_fake.detach()})

    def _r1(self, reals: torch.Tensor, c_real, scaler: Any, stats: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(D's logits, |grad_x D(x)|^2 per sample) on the reals, differentiable; stats['r1_grads']."""
        reals_r = reals.detach().requires_grad_(True)
        with self.autocast(), self.double_backward():
            logits = self.D(self._aug(reals_r), c_real)
        grads = input_grad(logits, reals_r, scale=scaler.penalty_scale)
        stats["r1_grads"] = grads.detach()
        return logits, grads.float().square().flatten(1).sum(dim=1)

    def _d_reg(self, reals: torch.Tensor, c_real, gain: float, scaler: Any, stats: dict[str, Any]) -> None:
        logits, sqnorm = self._r1(reals, c_real, scaler, stats)
        r1 = sqnorm.mean() * (self.r1_gamma * 0.5)
        scaler.scale(r1 * gain).backward()
        self._d_stats(stats, logits.float(), None)
        stats.update({"Loss/r1_penalty": sqnorm.detach(), "Loss/D/reg": sqnorm.detach() * (self.r1_gamma * 0.5),
                      "D_r1": r1.detach()})

    def _d_both(self, draws: SG2Draws, reals: torch.Tensor, c_real, gain: float, scaler: Any,
                stats: dict[str, Any], track_w_avg: bool) -> None:
        fakes, w_mean = self._frozen_G(draws)
        with self.autocast():
            fake_logits = self.D(self._aug(fakes), draws.c).float()
        real_logits, sqnorm = self._r1(reals, c_real, scaler, stats)
        real_logits = real_logits.float()
        real_term, fake_term = F.softplus(-real_logits), F.softplus(fake_logits)
        r1 = sqnorm.mean() * (self.r1_gamma * 0.5)
        loss = fake_term.mean() + real_term.mean() + r1
        scaler.scale(loss if gain == 1 else loss * gain).backward()
        self._main_w(w_mean, stats, track_w_avg)
        self._d_stats(stats, real_logits, fake_logits)
        stats.update({"Loss/D/loss": (real_term + fake_term).detach(), "D_real": real_term.mean().detach(),
                      "D_fake": fake_term.mean().detach(), "Loss/r1_penalty": sqnorm.detach(),
                      "Loss/D/reg": sqnorm.detach() * (self.r1_gamma * 0.5), "D_r1": r1.detach()})

    @staticmethod
    def _d_stats(stats: dict[str, Any], real_logits: torch.Tensor, fake_logits: torch.Tensor | None) -> None:
        if fake_logits is not None:
            stats.update({"Loss/scores/fake": fake_logits.detach(), "Loss/signs/fake": fake_logits.detach().sign(),
                          "fake_logits": fake_logits.detach()})
        stats.update({"Loss/scores/real": real_logits.detach(), "Loss/signs/real": real_logits.detach().sign(),
                      "real_logits": real_logits.detach()})
