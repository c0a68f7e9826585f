"""GAN losses of the official StyleGAN (training/loss.py), as functions of D's outputs.

- `logistic`: G non-saturating logistic softplus(-D(G(z))); D softplus(D(fake)) + softplus(-D(real))
  plus the R1 penalty gamma/2 * ||grad_x D(x)||^2 on reals (gamma 10, the StyleGAN default).
- `wgan-gp`: the ProGAN loss: G -D(G(z)); D D(fake) - D(real) + lambda * (||grad D(x_hat)|| - target)^2
  / target^2 on random interpolates (lambda 10, target 1) + drift epsilon * D(real)^2 (0.001).
- `hinge`: G -D(G(z)); D relu(1 - D(real)) + relu(1 + D(fake)), optional R1.

Every term is the mean over the (local) minibatch; the trainer averages gradients over ranks,
which gives the mean over the global minibatch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("logistic", "wgan-gp", "hinge")


def g_loss(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    fake_logits = fake_logits.float()
    if kind == "logistic":
        return F.softplus(-fake_logits).mean()
    if kind in ("wgan-gp", "hinge"):
        return (-fake_logits).mean()
    raise ValueError(f"unknown loss {kind!r}; choose one of {', '.join(LOSSES)}")


def d_loss_terms(kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor, *,
                 wgan_drift: float = 0.001) -> dict[str, torch.Tensor]:
    """The data terms of D's loss (no gradient penalty), each already a mean."""
    real_logits, fake_logits = real_logits.float(), fake_logits.float()
    if kind == "logistic":
        return {"D_real": F.softplus(-real_logits).mean(), "D_fake": F.softplus(fake_logits).mean()}
    if kind == "wgan-gp":
        return {"D_real": (-real_logits).mean(), "D_fake": fake_logits.mean(),
                "D_drift": wgan_drift * real_logits.square().mean()}
    if kind == "hinge":
        return {"D_real": F.relu(1.0 - real_logits).mean(), "D_fake": F.relu(1.0 + fake_logits).mean()}
    raise ValueError(f"unknown loss {kind!r}; choose one of {', '.join(LOSSES)}")


def input_grad(logits: torch.Tensor, inputs: torch.Tensor, *, scale: float = 1.0) -> torch.Tensor:
    """grad_x sum(D(x)) [N, ...], differentiable (create_graph) for a penalty. `scale`: the fp16 loss
    scale S; the gradient of S * sum(D(x)) is taken and multiplied by 1/S (AMP recipe)."""
    out = logits.float().sum()
    (grad,) = torch.autograd.grad(outputs=out * scale if scale != 1.0 else out, inputs=inputs, create_graph=True,
                                  only_inputs=True)
    return grad.float() * (1.0 / scale) if scale != 1.0 else grad


def input_grad_sqnorm(logits: torch.Tensor, inputs: torch.Tensor, *, scale: float = 1.0) -> torch.Tensor:
    """||grad_x sum(D(x))||^2 per sample [N], differentiable (create_graph) for the penalty."""
    return input_grad(logits, inputs, scale=scale).float().square().flatten(1).sum(dim=1)


def r1_penalty(real_logits: torch.Tensor, reals: torch.Tensor, gamma: float, *, scale: float = 1.0) -> torch.Tensor:
    """gamma / 2 * E ||grad D(x_real)||^2 (Mescheder et al. 2018; StyleGAN D_logistic_simplegp)."""
    return input_grad_sqnorm(real_logits, reals, scale=scale).mean() * (gamma * 0.5)


def wgan_gp_penalty(critic_at_mix: torch.Tensor, mixed: torch.Tensor, *, lam: float = 10.0,
                    target: float = 1.0, scale: float = 1.0) -> torch.Tensor:
    """lambda * E (||grad D(x_hat)|| - target)^2 / target^2 (ProGAN D_wgan_gp)."""
    norm = (input_grad_sqnorm(critic_at_mix, mixed, scale=scale) + 1e-12).sqrt()
    return lam * ((norm - target) / target).square().mean()


def interpolate(reals: torch.Tensor, fakes: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """x_hat = lerp(real, fake, u) with u [N] uniform in [0, 1) (official mixing_factors)."""
    return torch.lerp(reals, fakes, u.view(-1, 1, 1, 1).to(reals.dtype))
