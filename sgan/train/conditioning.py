"""Labels while training a conditional model (`sgan train --cond`).

Reals carry the class of the image the stream picked; fakes take the classes of dataset images
drawn uniformly at random (StyleGAN2-ADA training_loop.py: `training_set.get_label(randint)`), so
they follow the empirical class distribution. Drawn for the global minibatch from a step
generator and sliced by rank, like every other draw of the loop. c is the one-hot class vector.
"""

from __future__ import annotations

from pathlib import Path

import torch

from sgan.data.labels import ClassLabels, class_labels
from sgan.errors import DataError, UsageError


class TrainLabels:
    def __init__(self, data: Path) -> None:
        try:
            self.labels: ClassLabels = class_labels(data)
        except DataError as err:
            raise UsageError(f"--cond: {err}") from None
        if self.labels.c_dim < 2:
            raise UsageError(f"--cond: {data} holds a single class; conditional training needs two or more.")
        self.table = torch.nn.functional.one_hot(torch.as_tensor(self.labels.indices), self.labels.c_dim).float()

    @property
    def c_dim(self) -> int:
        return self.labels.c_dim

    @property
    def names(self) -> list[str]:
        return list(self.labels.names)

    def of_items(self, items: list[int]) -> torch.Tensor:
        """c of stream items (indices beyond the dataset are mirrored copies: same class)."""
        idx = torch.as_tensor(items, dtype=torch.long) % self.table.shape[0]
        return self.table.index_select(0, idx)

    def draw(self, generator: torch.Generator, batch: int, sl: slice) -> torch.Tensor:
        """c of `batch` fakes (global), this rank's slice."""
        idx = torch.randint(0, self.table.shape[0], [batch], generator=generator)[sl]
        return self.table.index_select(0, idx)
