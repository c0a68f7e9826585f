"""Named values of a training step: the tick's loss collector and the values that ride along a
gradient all-reduce.

- `TickStats`: every loss term by name. A term of every step (`add`) is averaged over the tick's
  steps (a lazy regulariser scaled by its interval, added on its steps only, thus averages to its
  per-step share, as the StyleGAN 1 loop always reported it); a term of some steps (`add_sample`) over
  the steps that had it (the StyleGAN2 regularisers). The caller leaves out what must not count
  (an fp16 overflow skip's non-finite penalty).
- `Riders`: small tensors that travel in one all-reduce with the gradients (mean over ranks), packed
  and unpacked by name, never sliced by position at the call site.
"""

from __future__ import annotations

import torch


class TickStats:
    def __init__(self) -> None:
        self._per_step: dict[str, float] = {}
        self._samples: dict[str, list[float]] = {}
        self._steps = 0

    def add(self, name: str, value: torch.Tensor) -> None:
        """A term of this step, averaged over all the tick's steps."""
        self._per_step[name] = self._per_step.get(name, 0.0) + float(value.detach())

    def add_sample(self, name: str, value: torch.Tensor) -> None:
        """A term of some steps only, averaged over the steps that had it."""
        s = self._samples.setdefault(name, [0.0, 0])
        s[0] += float(value.detach())
        s[1] += 1

    def totals(self) -> dict[str, float]:
        """The sums so far of the every-step terms (tests compare two runs' ticks)."""
        return dict(self._per_step)

    def end_step(self) -> None:
        self._steps += 1

    def record(self) -> dict[str, float]:
        """The tick's means (6 decimals), and a fresh start."""
        out = {k: round(v / max(self._steps, 1), 6) for k, v in self._per_step.items()}
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
