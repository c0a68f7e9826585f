"""The objective of StyleGAN with progressive growing (NVlabs/stylegan training/loss.py): what its two
phases compute and back-propagate.

    Dmain  D's loss on reals and fakes (logistic, WGAN-GP's critic + drift, or hinge), with R1 on the
           reals (lazy: every r1_interval steps, scaled by it) or WGAN-GP's gradient penalty on
           interpolates, all in one backward (the official single D optimizer step)
    Gmain  G's loss on D(G(z))

Every image D sees goes through `augment` (ADA / DiffAugment: the global draw, this rank's slice);
`autocast` is the training precision, `double_backward` the context the penalties need (eager
networks), `d_pair` one D call on reals and fakes (the minibatch-stddev groups of two calls). The
draws (fakes, their labels, WGAN-GP's mixing factors u) come in from sgan.train.latents; `accumulate`
returns the loss terms by name (for the tick's statistics) and D's logits (ADA's signs).
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable

import torch

from sgan.train import losses

PHASES = ("Dmain", "Gmain")


class ProgressiveObjective:
    def __init__(self, D: torch.nn.Module, *, loss: str, r1_gamma: float, r1_interval: int, wgan_lambda: float,
                 wgan_target: float, wgan_drift: float, augment: Callable[[torch.Tensor], torch.Tensor],
                 autocast: Callable[[], Any], d_pair: Callable[..., tuple[torch.Tensor, torch.Tensor]],
                 double_backward: Callable[[], Any] = contextlib.nullcontext) -> None:
        assert loss in losses.LOSSES, loss
        self.D, self.loss = D, loss
        self.r1_gamma, self.r1_interval = r1_gamma, r1_interval
        self.wgan_lambda, self.wgan_target, self.wgan_drift = wgan_lambda, wgan_target, wgan_drift
        self.augment, self.autocast, self.d_pair, self.double_backward = augment, autocast, d_pair, double_backward

    def r1_due(self, step: int) -> bool:
        return self.loss != "wgan-gp" and self.r1_gamma > 0 and step % self.r1_interval == 0

    def accumulate(self, phase: str, *, fakes: torch.Tensor, c_fake: torch.Tensor | None, lod: float, scaler: Any,
                   reals: torch.Tensor | None = None, c_real: torch.Tensor | None = None, u: torch.Tensor | None = None,
                   r1: bool = False) -> dict[str, Any]:
        """Forward and backward (through `scaler.scale`) of `phase`: {"terms": {name: loss}, "loss": their
        sum, and for Dmain "real_logits", "fake_logits"}."""
        if phase == "Gmain":
            with self.autocast():
                terms = {"G_loss": losses.g_loss(self.loss, self.D(self.augment(fakes), c_fake, lod=lod))}
            scaler.scale(terms["G_loss"]).backward()
            return {"terms": terms, "loss": terms["G_loss"]}
        assert phase == "Dmain" and reals is not None, phase
        out = self._d_terms(reals, c_real, fakes.detach(), c_fake, u, lod, r1, scaler.penalty_scale)
        out["loss"] = sum(out["terms"].values())
        scaler.scale(out["loss"]).backward()
        return out

    def _d_terms(self, reals: torch.Tensor, c_real: torch.Tensor | None, fakes: torch.Tensor,
                 c_fake: torch.Tensor | None, u: torch.Tensor | None, lod: float, r1: bool,
                 penalty_scale: float) -> dict[str, Any]:
        aug, D = self.augment, self.D
        with self.autocast():
            if r1:
                reals.requires_grad_(True)
                with self.double_backward():
                    real_logits = D(aug(reals), c_real, lod=lod)
                fake_logits = D(aug(fakes), c_fake, lod=lod)
            else:
                real_logits, fake_logits = self.d_pair(aug(reals), aug(fakes), lod, c_real, c_fake)
            terms = dict(losses.d_loss_terms(self.loss, real_logits, fake_logits, wgan_drift=self.wgan_drift))
            if r1:
                terms["D_r1"] = losses.r1_penalty(real_logits, reals, self.r1_gamma,
                                                  scale=penalty_scale) * self.r1_interval
            if self.loss == "wgan-gp" and self.wgan_lambda > 0:
                mixed = losses.interpolate(reals, fakes.to(reals.dtype), u).requires_grad_(True)
                with self.double_backward():
                    terms["D_gp"] = losses.wgan_gp_penalty(D(aug(mixed), c_real, lod=lod), mixed,
                                                           lam=self.wgan_lambda, target=self.wgan_target,
                                                           scale=penalty_scale)
        return {"terms": terms, "real_logits": real_logits, "fake_logits": fake_logits}
