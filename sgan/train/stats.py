"""Named values of a training step: the tick's loss collector and the values that ride along a
gradient all-reduce.

- `TickStats`: the one collector of a tick's values for stats.jsonl, by name. A term of every step
  (`add`) is averaged over the tick's steps (a lazy regulariser scaled by its interval, added on its
  steps only, thus averages to its per-step share, as the StyleGAN 1 loop always reported it); a
  term of some steps (`add_sample`) over the steps that had it (the StyleGAN2 regularisers); a
  ratio (`add_ratio`: D's accuracies acc_real / acc_fake from the all-reduced `signs`) as the sum
  of its numerators over the sum of its denominators; gauges (ADA's p and r_t, the fp16 loss
  scales and overflow count, compile counts) are read once, when the tick ends (`record`).
  fp16 overflow, one rule per kind: an overflow skip's non-finite loss term is left out (StyleGAN:
  a term that is not finite on a step where a scaler overflowed; StyleGAN2: a regulariser's sample
  on its overflow skip); the D accuracies count every step (the logits are finite either way).
- `Riders`: small tensors that travel in one all-reduce with the gradients (mean over ranks), packed
  and unpacked by name, never sliced by position at the call site.
"""

from __future__ import annotations

from typing import Any

import torch


class TickStats:
    def __init__(self) -> None:
        self._per_step: dict[str, float] = {}
        self._samples: dict[str, list[float]] = {}
        self._ratios: dict[str, list[float]] = {}
        self._steps = 0

    def add(self, name: str, value: torch.Tensor) -> None:
        """A term of this step, averaged over all the tick's steps."""
        self._per_step[name] = self._per_step.get(name, 0.0) + float(value.detach())

    def add_sample(self, name: str, value: torch.Tensor) -> None:
        """A term of some steps only, averaged over the steps that had it."""
        s = self._samples.setdefault(name, [0.0, 0])
        s[0] += float(value.detach())
        s[1] += 1

    def add_ratio(self, name: str, numerator: float, denominator: float) -> None:
        """A ratio over the tick: sum of numerators / sum of denominators (left out while 0)."""
        r = self._ratios.setdefault(name, [0.0, 0.0])
        r[0] += numerator
        r[1] += denominator

    def add_d_accuracy(self, signs: torch.Tensor) -> None:
        """acc_real / acc_fake from a D phase's all-reduced signs (Augmentation.observe's layout)."""
        _, n_real, real_pos, fake_neg, n_fake = (float(v) for v in signs.tolist())
        self.add_ratio("acc_real", real_pos, n_real)
        self.add_ratio("acc_fake", fake_neg, n_fake)

    def d_accuracy_state(self) -> dict[str, float]:
        """The tick's D-accuracy sums so far, as a snapshot keeps them (under its augment state's
        "tick", where snapshots before the collector held them)."""
        out: dict[str, float] = {}
        for name, num, den in (("acc_real", "real_pos", "n_real"), ("acc_fake", "fake_neg", "n_fake")):
            if name in self._ratios:
                out[num], out[den] = self._ratios[name]
        return out

    def load_d_accuracy_state(self, state: dict[str, float] | None) -> None:
        state = {k: float(v) for k, v in (state or {}).items()}
        self._ratios = {name: [state.get(num, 0.0), state.get(den, 0.0)]
                        for name, num, den in (("acc_real", "real_pos", "n_real"), ("acc_fake", "fake_neg", "n_fake"))
                        if num in state or den in state}

    def totals(self) -> dict[str, float]:
        """The sums so far of the every-step terms (tests compare two runs' ticks)."""
        return dict(self._per_step)

    def end_step(self) -> None:
        self._steps += 1

    def record(self, gauges: dict[str, Any] | None = None) -> dict[str, Any]:
        """The tick's values: `gauges` as read now, the ratios and means (6 decimals); a fresh start."""
        out: dict[str, Any] = dict(gauges or {})
        out.update({k: round(num / den, 6) for k, (num, den) in self._ratios.items() if den})
        out.update({k: round(v / max(self._steps, 1), 6) for k, v in self._per_step.items()})
        out.update({k: round(total / max(count, 1), 6) for k, (total, count) in self._samples.items()})
        self.__init__()
        return out


class Riders:
    """Named tensors packed into one flat float tensor (for an all-reduce) and unpacked by name."""

    def __init__(self, **values: torch.Tensor) -> None:
        self.shapes = {k: v.shape for k, v in values.items()}
        self.values = values

    def flat(self) -> torch.Tensor:
        return torch.cat([v.reshape(-1).float() for v in self.values.values()])

    def unpack(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        assert flat.numel() == sum(shape.numel() for shape in self.shapes.values()), (flat.shape, self.shapes)
        out, offset = {}, 0
        for k, shape in self.shapes.items():
            n = shape.numel()
            out[k] = flat[offset:offset + n].reshape(shape)
            offset += n
        return out


def memory_mb(device: torch.device) -> float:
    """Peak memory of this process: CUDA's allocator on a GPU, the resident set elsewhere."""
    if device.type == "cuda":
        return round(torch.cuda.max_memory_allocated(device) / 2 ** 20, 1)
    try:
        import resource   # POSIX only

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    except (ImportError, OSError):
        return 0.0
