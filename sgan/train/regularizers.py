"""The StyleGAN2 regularisers and their helpers (stylegan2-ada-pytorch training/loss.py,
training/training_loop.py), as plain functions of tensors.

- Path-length regularisation: y ~ N(0, I) / sqrt(H*W) of the image's shape; the length of a
  sample is sqrt(mean over the num_ws styles of sum over w_dim of (d(sum(img*y))/d ws)^2); the
  running mean pl_mean <- lerp(pl_mean, mean(length), pl_decay); the penalty is
  (length - pl_mean)^2, weighted by pl_weight and, being lazy, by its interval.
- R1 on reals is sgan.train.losses.r1_penalty (gamma/2 * ||grad D(x)||^2), lazy every 16
  minibatches and multiplied by the interval.
- Style mixing: ONE crossover per minibatch, drawn as the official `run_G` draws it: a cutoff
  uniform in [1, num_ws), kept with probability `prob`, else num_ws (no mixing).
- Before every optimizer step the gradients go through nan_to_num(nan=0, +-inf=+-1e5).
"""

from __future__ import annotations

import math

import torch

GRAD_CLAMP = 1e5


def pl_noise(shape: tuple[int, int, int, int], generator: torch.Generator) -> torch.Tensor:
    """randn(shape) / sqrt(H * W): the path-length probe y for images of `shape` [N, C, H, W]."""
    assert len(shape) == 4, shape
    return torch.randn(list(shape), generator=generator) / math.sqrt(shape[2] * shape[3])


def path_length_grads(img: torch.Tensor, ws: torch.Tensor, noise: torch.Tensor, *, scale: float = 1.0) -> torch.Tensor:
    """J_w^T y = d sum(img * y) / d ws [N, num_ws, w_dim], differentiable. `scale`: the fp16 loss
    scale S; the gradient of S * sum(img * y) is taken and multiplied by 1/S."""
    assert img.ndim == 4 and ws.ndim == 3 and noise.shape == img.shape, (img.shape, ws.shape, noise.shape)
    out = (img.float() * noise).sum()
    (grad,) = torch.autograd.grad(outputs=out * scale if scale != 1.0 else out, inputs=ws, create_graph=True,
                                  only_inputs=True)
    return grad.float() * (1.0 / scale) if scale != 1.0 else grad


def lengths_of(grads: torch.Tensor) -> torch.Tensor:
    """||J_w^T y|| per sample [N]: sqrt(mean over styles of sum over w_dim of grad^2)."""
    return grads.float().square().sum(dim=2).mean(dim=1).sqrt()


def path_lengths(img: torch.Tensor, ws: torch.Tensor, noise: torch.Tensor, *, scale: float = 1.0) -> torch.Tensor:
    """||J_w^T y|| per sample [N], differentiable (path_length_grads, then lengths_of)."""
    return lengths_of(path_length_grads(img, ws, noise, scale=scale))


def path_length_loss(lengths: torch.Tensor, pl_mean: torch.Tensor, *, decay: float,
                     global_mean: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(loss, new pl_mean, penalty per sample) of one path-length phase.

    The official code computes pl_mean' = lerp(pl_mean, mean(lengths), decay) *with* its gradient
    and the loss mean((lengths - pl_mean')^2), so d loss / d length_j is
    2/N (length_j - pl_mean') - 2 decay / N (mean(lengths) - pl_mean'). `global_mean` is the mean
    length over all processes (the local mean in one process); the loss below has exactly that
    gradient when each process's gradient is averaged over the processes, so N processes compute
    what one process computes for the whole minibatch.
    """
    assert lengths.ndim == 1 and pl_mean.ndim == 0, (lengths.shape, pl_mean.shape)
    mean = lengths.detach().mean() if global_mean is None else global_mean.detach().reshape([])
    new_mean = pl_mean.lerp(mean.to(pl_mean.dtype), decay)
    target = new_mean.to(lengths.dtype)
    penalty = (lengths - target).square()
    loss = penalty.mean() - 2.0 * decay * (mean - target) * lengths.mean()
    return loss, new_mean.detach(), penalty.detach()


def draw_crossover(generator: torch.Generator, num_ws: int, prob: float) -> int:
    """The official style-mixing draw, once per minibatch: cutoff ~ U[1, num_ws), kept with
    probability `prob`, else num_ws (every layer from the first w)."""
    cutoff = int(torch.randint(1, max(num_ws, 2), [], generator=generator))
    return mixing_cutoff(cutoff, float(torch.rand([], generator=generator)), num_ws=num_ws, prob=prob)


def mixing_cutoff(cutoff: int, coin: float, *, num_ws: int, prob: float) -> int:
    """The effective crossover of a drawn `cutoff` in [1, num_ws) and `coin` in [0, 1): the cutoff
    iff coin < prob, else num_ws (no mixing; the official torch.where(rand < prob, cutoff, num_ws))."""
    return cutoff if coin < prob and num_ws > 1 else num_ws


def mix_at(ws: torch.Tensor, ws2: torch.Tensor, cutoff: int) -> torch.Tensor:
    """ws with the layers from `cutoff` on taken from ws2 (the official ws[:, cutoff:] = ws2[:, cutoff:])."""
    assert ws.shape == ws2.shape and ws.ndim == 3, (ws.shape, ws2.shape)
    if cutoff >= ws.shape[1]:
        return ws
    return torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)


def nan_to_num_grads_(params: list[torch.Tensor]) -> None:
    """The official clean-up before every optimizer step: NaN -> 0, +-inf -> +-1e5."""
    for p in params:
        if p.grad is not None:
            torch.nan_to_num_(p.grad, nan=0.0, posinf=GRAD_CLAMP, neginf=-GRAD_CLAMP)
