"""What the trainer holds for augmentation: the kind (none, ada, diffaug), ADA's probability p and
its heuristic, the augmentation RNG, and D's overfitting signals.

The p heuristic (ADA paper §3, training_loop.py): r_t = E[sign(D(real))] over the last `interval`
minibatches (4); after every `interval` minibatches p += sign(r_t - target) * batch * interval /
(kimg * 1000), so p can move by 1 over `kimg` (500) thousand images. Unlike the official code p
is clamped to [0, 1], and a warning is logged when p passes 0.8 (above it the paper's augmentations
start to leak into the generated images). With a fixed p (`--aug-p`) r_t is measured but p stays.

Everything here is in `state_dict()` and goes into the snapshot: p, r_t, the sign sums collected
since the last adjustment, the minibatch counter and the state of the augmentation generator, so
an exact resume continues bit-identically.

Randomness: one torch.Generator, seeded from the run's seed, draws the parameters of every
augmented minibatch for the global minibatch; each rank applies its slice (N ranks augment as one
process does).
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from sgan.train.augment import ada, diffaug

AUG_KINDS = ("none", "ada", "diffaug")
LEAK_WARNING_P = 0.8


def adjust_p(p: float, rt: float, *, target: float, batch: int, interval: int, kimg: float) -> float:
    """One step of ADA's heuristic, clamped to [0, 1]."""
    sign = (rt > target) - (rt < target)
    return min(max(p + sign * batch * interval / (kimg * 1000.0), 0.0), 1.0)


class Augmentation:
    """Augments every image D sees and tunes ADA's p; see the module docstring."""

    def __init__(self, kind: str = "none", *, seed: int = 0, pipe: str = ada.DEFAULT_PIPE,
                 policy: str = diffaug.DEFAULT_POLICY, p: float = 0.0, fixed_p: float | None = None,
                 target: float = 0.6, interval: int = 4, kimg: float = 500.0, resampler: str = "grid_sample",
                 log: Callable[[str], None] | None = None) -> None:
        if kind not in AUG_KINDS:
            raise ValueError(f"augmentation must be one of {', '.join(AUG_KINDS)}, got {kind!r}")
        self.kind = kind
        self.ada = ada.AdaPipeline(pipe, resampler=resampler) if kind == "ada" else None
        self.diffaug = diffaug.DiffAugment(policy) if kind == "diffaug" else None
        self.fixed_p = fixed_p
        self.p = float(fixed_p if fixed_p is not None else p)
        self.target, self.interval, self.kimg = float(target), int(interval), float(kimg)
        self.rt: float | None = None
        self.generator = torch.Generator().manual_seed(int(seed) ^ 0x0ADA0ADA)
        self.log = log
        self.sign_sum, self.sign_count, self.batches = 0.0, 0.0, 0
        self.warned = False

    @property
    def enabled(self) -> bool:
        return self.kind != "none"

    # -- augmenting --------------------------------------------------------------------------

    def draw(self, n_global: int, height: int, width: int, sl: slice = slice(None)) -> dict[str, torch.Tensor] | None:
        """Parameters of one augmented minibatch (drawn for the global minibatch, sliced to `sl`)."""
        if self.kind == "ada":
            return ada.slice_params(self.ada.sample(n_global, p=self.p, generator=self.generator), sl)
        if self.kind == "diffaug":
            return diffaug.slice_params(diffaug.sample_params(n_global, height, width, policy=self.diffaug.policy,
                                                              generator=self.generator), sl)
        return None

    def apply(self, images: torch.Tensor, params: dict[str, torch.Tensor] | None) -> torch.Tensor:
        if params is None:
            return images
        if self.kind == "ada":
            return self.ada.apply(images, params)
        return diffaug.apply_params(images, params)

    def __call__(self, images: torch.Tensor, *, n_global: int | None = None, sl: slice = slice(None)) -> torch.Tensor:
        """Augment this rank's images (n_global: the global minibatch, default this batch)."""
        if not self.enabled:
            return images
        n = images.shape[0] if n_global is None else n_global
        return self.apply(images, self.draw(n, images.shape[2], images.shape[3], sl))

    # -- the heuristic -----------------------------------------------------------------------

    def observe(self, real_logits: torch.Tensor, fake_logits: torch.Tensor | None = None) -> torch.Tensor:
        """Signs and accuracies of this rank's D outputs: [sum sign(real), n real, n real > 0,
        n fake < 0, n fake] (to be summed over ranks before `update`)."""
        r = real_logits.detach().float().flatten()
        out = [r.sign().sum(), torch.tensor(float(r.numel()), device=r.device), (r > 0).float().sum()]
        if fake_logits is not None:
            f = fake_logits.detach().float().flatten()
            out += [(f < 0).float().sum(), torch.tensor(float(f.numel()), device=r.device)]
        else:
            out += [torch.zeros((), device=r.device), torch.zeros((), device=r.device)]
        return torch.stack(out)

    def update(self, stats: torch.Tensor, *, batch: int) -> None:
        """After a minibatch: add the (rank-summed) `observe` stats; every `interval` minibatches
        compute r_t and, with ADA and no fixed p, move p."""
        sign_sum, n_real, real_pos, fake_neg, n_fake = (float(v) for v in stats.tolist())
        self.sign_sum += sign_sum
        self.sign_count += n_real
        self.batches += 1
        if self.batches % self.interval:
            return
        if self.sign_count > 0:
            self.rt = self.sign_sum / self.sign_count
            if self.kind == "ada" and self.fixed_p is None:
                self.p = adjust_p(self.p, self.rt, target=self.target, batch=batch, interval=self.interval,
                                  kimg=self.kimg)
        self.sign_sum, self.sign_count = 0.0, 0.0
        if self.kind == "ada" and self.p > LEAK_WARNING_P and not self.warned:
            self.warned = True
            if self.log is not None:
                self.log(f"warning: ADA's p = {self.p:.3f} passed {LEAK_WARNING_P}; above it augmentations can "
                         "leak into the generated images (more data, a larger --aug-target or --aug-p can help).")
        elif self.p <= LEAK_WARNING_P:
            self.warned = False

    def gauges(self) -> dict[str, float]:
        """ADA's p and the last r_t, for a tick of stats.jsonl (the D accuracies: sgan.train.stats)."""
        rec: dict[str, float] = {}
        if self.kind == "ada":
            rec["aug_p"] = round(self.p, 6)
        if self.rt is not None:
            rec["aug_rt"] = round(self.rt, 6)
        return rec

    # -- state -------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "p": self.p, "rt": self.rt, "sign_sum": self.sign_sum,
                "sign_count": self.sign_count, "batches": self.batches, "warned": self.warned,
                "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.p = float(state["p"]) if self.fixed_p is None else self.fixed_p
        self.rt = None if state.get("rt") is None else float(state["rt"])
        self.sign_sum, self.sign_count = float(state["sign_sum"]), float(state["sign_count"])
        self.batches, self.warned = int(state["batches"]), bool(state["warned"])
        self.generator.set_state(state["generator"])
