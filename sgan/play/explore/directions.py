"""The explorer's view of a directions file (dirs.npz, written by `sgan directions`): the file is read
and checked by sgan.play.directions; this keeps what the sliders need, with its path."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sgan.play import directions as library


@dataclass(frozen=True)
class Directions:
    path: Path
    vectors: np.ndarray        # float32 [K, w_dim], unit rows
    scores: np.ndarray         # float32 [K]
    names: list[str]
    layers: list[int]          # ws indices the directions apply to
    method: str
    checkpoint_sha256: str

    def __len__(self) -> int:
        return int(self.vectors.shape[0])


def load_directions(path: str | os.PathLike, *, w_dim: int, num_ws: int) -> Directions:
    """The directions of `path`, checked against a model of `w_dim` and `num_ws` (one-line errors)."""
    dirs = library.load_directions(path)
    library.check_fits(dirs, w_dim=w_dim, num_ws=num_ws, checkpoint_sha256=None, source=str(path))
    return Directions(path=Path(path), vectors=dirs.directions, scores=dirs.scores, names=list(dirs.names),
                      layers=sorted(int(i) for i in dirs.layers), method=dirs.method,
                      checkpoint_sha256=dirs.checkpoint_sha256)
