"""Reading a directions file (dirs.npz, written by `sgan directions`) for the explorer's sliders.

Keys: `directions` float32 [K, w_dim] (unit rows), `scores` float32 [K], `method` (0-d str), `layers`
int64 [L] (the ws indices a direction moves), `names` str [K], `checkpoint_sha256` (0-d str), `w_dim`
and `num_ws` (ints). Read with allow_pickle=False; every key is checked against the model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sgan.errors import DataError

REQUIRED = ("directions", "scores", "method", "layers", "names", "checkpoint_sha256", "w_dim", "num_ws")


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


def _scalar(data, key: str, path: Path):
    value = data[key]
    if value.ndim != 0:
        raise DataError(f"{path}: `{key}` must be a single value, got shape {list(value.shape)}.")
    return value.item()


def load_directions(path: str | os.PathLike, *, w_dim: int, num_ws: int) -> Directions:
    """The directions of `path`, checked against a model of `w_dim` and `num_ws`; DataError otherwise."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such directions file; make one with `sgan directions sefa CKPT --out dirs.npz`.")
    try:
        with np.load(p, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise DataError(f"{p}: not a directions .npz (a single array); make one with `sgan directions`.")
            missing = [k for k in REQUIRED if k not in data.files]
            if missing:
                raise DataError(f"{p}: not a directions file: it lacks {', '.join(missing)}; make one with `sgan directions`.")
            vectors = np.asarray(data["directions"])
            scores = np.asarray(data["scores"])
            layers = np.asarray(data["layers"])
            names = np.asarray(data["names"])
            method = str(_scalar(data, "method", p))
            sha = str(_scalar(data, "checkpoint_sha256", p))
            file_w_dim, file_num_ws = int(_scalar(data, "w_dim", p)), int(_scalar(data, "num_ws", p))
    except DataError:
        raise
    except (ValueError, OSError, EOFError, KeyError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"{p}: not a readable directions .npz ({first}).") from None
    if file_w_dim != w_dim or file_num_ws != num_ws:
        raise DataError(f"{p}: the directions are for a model with w_dim={file_w_dim}, num_ws={file_num_ws}; "
                        f"this model has w_dim={w_dim}, num_ws={num_ws}: they come from another model.")
    if vectors.ndim != 2 or vectors.shape[1] != w_dim or vectors.shape[0] < 1 or not np.issubdtype(vectors.dtype, np.floating):
        raise DataError(f"{p}: `directions` must be floats [K, {w_dim}] with K >= 1, got {vectors.dtype} {list(vectors.shape)}.")
    k = vectors.shape[0]
    if scores.shape != (k,) or not np.issubdtype(scores.dtype, np.number):
        raise DataError(f"{p}: `scores` must be [{k}] numbers (one per direction), got {list(scores.shape)}.")
    if names.shape != (k,) or names.dtype.kind not in "U":
        raise DataError(f"{p}: `names` must be [{k}] strings (one per direction), got {names.dtype} {list(names.shape)}.")
    if layers.ndim != 1 or layers.size < 1 or not np.issubdtype(layers.dtype, np.integer):
        raise DataError(f"{p}: `layers` must be a non-empty list of ws indices, got {layers.dtype} {list(layers.shape)}.")
    if layers.min() < 0 or layers.max() >= num_ws or len(set(layers.tolist())) != layers.size:
        raise DataError(f"{p}: `layers` must be distinct ws indices within 0-{num_ws - 1}, got {layers.tolist()}.")
    if not (np.isfinite(vectors).all() and np.isfinite(scores).all()):
        raise DataError(f"{p}: the directions or scores hold NaN or infinite values.")
    norms = np.linalg.norm(vectors.astype(np.float64), axis=1)
    if np.abs(norms - 1).max() > 1e-3:
        raise DataError(f"{p}: each direction must be a unit vector; row {int(np.abs(norms - 1).argmax())} has length "
                        f"{norms[np.abs(norms - 1).argmax()]:.4g}.")
    return Directions(path=p, vectors=vectors.astype(np.float32), scores=scores.astype(np.float32),
                      names=[str(n) for n in names], layers=sorted(int(i) for i in layers), method=method,
                      checkpoint_sha256=sha)
