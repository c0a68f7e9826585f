"""Every random draw of a training step, from generators seeded by the run's counters.

The generator of step k's purpose p is seeded by mix_seed(seed, reseed, k, p) (reseed grows at
every rollback), so a run is a function of its counters: resuming continues bit-identically. Each
draw is made for the global minibatch and sliced by rank (rank r of W takes every W-th sample from
r), so N processes draw what one process draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from sgan.train.regularizers import draw_crossover


def mix_seed(*values: int) -> int:
    """A 63-bit seed from several integers (SeedSequence hashing, stable across platforms)."""
    lo, hi = (int(x) for x in np.random.SeedSequence([int(v) & 0xFFFFFFFF for v in values]).generate_state(2, np.uint32))
    return (lo + (hi << 32)) & ((1 << 63) - 1)      # Python ints: the same under numpy 1.x and 2.x promotion


def step_generator(seed: int, reseed: int, step: int, purpose: int) -> torch.Generator:
    """The CPU generator of one purpose (a phase's draws) of one step."""
    return torch.Generator().manual_seed(mix_seed(seed, reseed, step, purpose))


@dataclass(frozen=True)
class Share:
    """This process's share of a global minibatch: samples rank, rank + world_size, ..."""

    rank: int = 0
    world_size: int = 1

    def of(self, batch: int) -> slice:
        return slice(self.rank, batch, self.world_size)


def noise_generators(gen: torch.Generator, batch: int, share: Share, device: torch.device) -> list[torch.Generator]:
    """One generator per sample of this rank for the synthesis noise maps (seeded from `gen`)."""
    seeds = torch.randint(0, 2 ** 62, [batch], generator=gen)[share.of(batch)].tolist()
    return [torch.Generator(device=device).manual_seed(s) for s in seeds]


def progressive_draws(gen: torch.Generator, *, batch: int, share: Share, z_dim: int, num_ws: int, cur_layers: int,
                      mixing_prob: float, device: torch.device, labels: Any = None) -> dict[str, Any]:
    """The draws of a StyleGAN (progressive) G pass, in this order: z, the style-mixing z2, whether to
    mix and the crossover (one per minibatch, among the `cur_layers` styles in use, as the official
    G_style), the noise generators, the WGAN-GP mixing factors u, and the fakes' labels."""
    sl = share.of(batch)
    z = torch.randn([batch, z_dim], generator=gen)[sl]
    z2 = torch.randn([batch, z_dim], generator=gen)[sl]
    mix = bool(torch.rand([], generator=gen) < mixing_prob) and cur_layers > 1
    cut = int(torch.randint(1, max(cur_layers, 2), [], generator=gen))
    crossover = torch.full([z.shape[0]], cut if mix else num_ws, dtype=torch.int64)
    noise = noise_generators(gen, batch, share, device)
    u = torch.rand([batch], generator=gen)[sl]
    out = {"z": z.to(device), "z2": z2.to(device), "crossover": crossover.to(device), "noise": noise,
           "u": u.to(device)}
    if labels is not None:  # fakes' classes follow the dataset's
        out["c"] = labels.draw(gen, batch, sl).to(device)
    return out


def stylegan2_draws(gen: torch.Generator, *, batch: int, share: Share, z_dim: int, num_ws: int, mixing_prob: float,
                    device: torch.device, labels: Any = None) -> dict[str, Any]:
    """The draws of a StyleGAN2 G pass, in this order: z, the style-mixing z2, the crossover (one per
    minibatch, as the official run_G: sgan.train.regularizers.draw_crossover), the noise generators
    and the fakes' labels (None when unconditional)."""
    sl = share.of(batch)
    z = torch.randn([batch, z_dim], generator=gen)[sl]
    z2 = torch.randn([batch, z_dim], generator=gen)[sl]
    cutoff = draw_crossover(gen, num_ws, mixing_prob)
    noise = noise_generators(gen, batch, share, device)
    c = labels.draw(gen, batch, sl).to(device) if labels is not None else None
    return {"z": z.to(device), "c": c, "z2": z2.to(device), "cutoff": cutoff, "noise": noise}
