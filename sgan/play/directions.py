"""Semantic directions in W: the dirs.npz file and picking one direction from it.

The methods that find directions live beside this module: SeFa in `directions_sefa`, GANSpace in
`directions_ganspace`, InterFaceGAN boundaries in `directions_labels`; `directions_edit` moves
latents along one. Every method returns a `Directions`, saved as an .npz with exactly these keys
(np.load(..., allow_pickle=False) reads it; no key holds a Python object):

    directions         float32 [K, w_dim]  unit rows
    scores             float32 [K]         eigenvalue (sefa), explained variance ratio (ganspace),
                                           held-out accuracy (labels)
    method             0-d str             "sefa", "ganspace" or "labels"
    layers             int64 [L]           the ws indices the directions were computed for and apply to
    names              str [K]             e.g. "sefa-0", "ganspace-3", "class-star", "is_circle"
    checkpoint_sha256  0-d str             SHA-256 of the checkpoint file they came from ("" if unknown)
    w_dim, num_ws      0-d int64           the model's latent shape
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
import numpy as np

from sgan.errors import DataError, UsageError
from sgan.fileio import atomic_write_bytes
from sgan.play.mixing import parse_model_styles

METHODS = ("sefa", "ganspace", "labels")
KEYS = ("directions", "scores", "method", "layers", "names", "checkpoint_sha256", "w_dim", "num_ws")
UNIT_TOLERANCE = 1e-3        # |norm - 1| a stored row may be off by (float32 rounding of a unit vector is ~1e-7)


@dataclass
class Directions:
    directions: np.ndarray       # float32 [K, w_dim], unit rows
    scores: np.ndarray           # float32 [K]
    method: str
    layers: np.ndarray           # int64 [L], ws indices
    names: list[str]
    checkpoint_sha256: str
    w_dim: int
    num_ws: int

    def __post_init__(self) -> None:
        d = np.asarray(self.directions, dtype=np.float64)
        if d.ndim != 2 or d.shape[0] < 1 or d.shape[1] != self.w_dim:
            raise ValueError(f"directions must be [K >= 1, {self.w_dim}], got {list(d.shape)}")
        norms = np.linalg.norm(d, axis=1, keepdims=True)
        if not np.all(norms > 0) or not np.isfinite(d).all():
            raise ValueError("every direction must be a finite, non-zero vector")
        self.directions = (d / norms).astype(np.float32)
        self.scores = np.asarray(self.scores, dtype=np.float32).reshape(-1)
        self.layers = np.asarray(self.layers, dtype=np.int64).reshape(-1)
        self.names = [str(n) for n in self.names]
        if self.scores.shape[0] != d.shape[0] or len(self.names) != d.shape[0]:
            raise ValueError(f"{d.shape[0]} directions need as many scores and names, got "
                             f"{self.scores.shape[0]} and {len(self.names)}")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.layers.size == 0 or self.layers.min() < 0 or self.layers.max() >= self.num_ws:
            raise ValueError(f"layers must be ws indices in 0-{self.num_ws - 1}, got {self.layers.tolist()}")

    def __len__(self) -> int:
        return self.directions.shape[0]

    def arrays(self) -> dict[str, np.ndarray]:
        return {"directions": self.directions, "scores": self.scores, "method": np.array(self.method),
                "layers": self.layers, "names": np.array(self.names, dtype=str),
                "checkpoint_sha256": np.array(self.checkpoint_sha256), "w_dim": np.array(self.w_dim, dtype=np.int64),
                "num_ws": np.array(self.num_ws, dtype=np.int64)}


def save_directions(path: str | os.PathLike, dirs: Directions) -> Path:
    """Write `dirs` as an uncompressed .npz, atomically (an interrupted write keeps the old file)."""
    buf = io.BytesIO()
    np.savez(buf, **dirs.arrays())
    return atomic_write_bytes(path, buf.getvalue())


def load_directions(path: str | os.PathLike) -> Directions:
    """Read and check a dirs.npz (allow_pickle=False); anything wrong is a one-line DataError."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: no such directions file; make one with `sgan directions sefa CKPT --out {p.name}`.")
    try:
        npz = np.load(p, allow_pickle=False)
        if not isinstance(npz, np.lib.npyio.NpzFile):
            raise DataError(f"{p}: a single array, not a directions .npz written by `sgan directions`.")
        with npz:
            missing = [k for k in KEYS if k not in npz.files]
            if missing:
                raise DataError(f"{p}: not a directions file (missing {', '.join(missing)}); "
                                "make one with `sgan directions`.")
            arrays = {k: npz[k] for k in KEYS}
    except DataError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DataError(f"{p}: not a readable directions .npz ({first}).") from None
    return _from_arrays(p, arrays)


def _scalar_int(p: Path, arrays: dict, key: str) -> int:
    a = arrays[key]
    if a.shape != () or not np.issubdtype(a.dtype, np.integer) or int(a) < 1:
        raise DataError(f"{p}: {key} must be a positive integer, got {a.dtype} {list(a.shape)}.")
    return int(a)


def _scalar_str(p: Path, arrays: dict, key: str) -> str:
    a = arrays[key]
    if a.shape != () or a.dtype.kind != "U":
        raise DataError(f"{p}: {key} must be a 0-d string array, got {a.dtype} {list(a.shape)}.")
    return str(a)


def _from_arrays(p: Path, arrays: dict[str, np.ndarray]) -> Directions:
    w_dim, num_ws = _scalar_int(p, arrays, "w_dim"), _scalar_int(p, arrays, "num_ws")
    method, sha = _scalar_str(p, arrays, "method"), _scalar_str(p, arrays, "checkpoint_sha256")
    d, scores, layers, names = arrays["directions"], arrays["scores"], arrays["layers"], arrays["names"]
    if method not in METHODS:
        raise DataError(f"{p}: method {method!r} is not one of {', '.join(METHODS)}.")
    if d.ndim != 2 or d.shape[1] != w_dim or d.shape[0] < 1 or not np.issubdtype(d.dtype, np.floating):
        raise DataError(f"{p}: directions must be float [K, w_dim={w_dim}] with K >= 1, got {d.dtype} {list(d.shape)}.")
    k = d.shape[0]
    if not np.isfinite(d).all():
        raise DataError(f"{p}: the directions hold NaN or infinite values.")
    norms = np.linalg.norm(d.astype(np.float64), axis=1)
    if np.abs(norms - 1).max() > UNIT_TOLERANCE:
        raise DataError(f"{p}: direction {int(np.abs(norms - 1).argmax())} has norm {norms.max():.4g}, not 1; "
                        "the file was not written by `sgan directions`.")
    if scores.shape != (k,) or not np.issubdtype(scores.dtype, np.number):
        raise DataError(f"{p}: scores must be [K={k}] numbers, got {scores.dtype} {list(scores.shape)}.")
    if not np.isfinite(scores).all():
        raise DataError(f"{p}: the scores hold NaN or infinite values.")
    if names.shape != (k,) or names.dtype.kind != "U":
        raise DataError(f"{p}: names must be [K={k}] strings, got {names.dtype} {list(names.shape)}.")
    if layers.ndim != 1 or layers.size < 1 or not np.issubdtype(layers.dtype, np.integer):
        raise DataError(f"{p}: layers must be a non-empty int array of ws indices, got {layers.dtype} {list(layers.shape)}.")
    if layers.min() < 0 or layers.max() >= num_ws or len(set(layers.tolist())) != layers.size:
        raise DataError(f"{p}: layers {layers.tolist()} must be distinct ws indices within 0-{num_ws - 1} (num_ws={num_ws}).")
    return Directions(directions=d, scores=scores, method=method, layers=layers, names=names.tolist(),
                      checkpoint_sha256=sha, w_dim=w_dim, num_ws=num_ws)


def parse_direction_spec(text: str) -> tuple[Path, str | None]:
    """`dirs.npz:K` -> (path, "K") with K an index or a name; `dirs.npz` alone -> (path, None)."""
    text = (text or "").strip()
    if not text:
        raise UsageError("--direction is empty; give FILE.npz:K such as dirs.npz:0.")
    head, sep, tail = text.rpartition(":")
    if sep and head and not tail.startswith(("/", "\\")) and not (len(head) == 1 and head.isalpha()):
        return Path(head), tail.strip()
    return Path(text), None


def pick_direction(dirs: Directions, key: str | None, *, source: str = "the file") -> int:
    """The row of `dirs` that `key` names (an index 0..K-1 or one of `dirs.names`)."""
    k = len(dirs)
    if key is None or key == "":
        raise UsageError(f"--direction: say which of the {k} directions of {source} to use, e.g. {source}:0 "
                         f"(names: {_names_text(dirs)}).")
    if key in dirs.names:
        return dirs.names.index(key)
    try:
        index = int(key)
    except ValueError:
        raise UsageError(f"--direction: {key!r} is neither an index 0-{k - 1} nor a name in {source} "
                         f"({_names_text(dirs)}).") from None
    if not 0 <= index < k:
        raise UsageError(f"--direction: index {index} is out of range; {source} holds {k} directions (0-{k - 1}).")
    return index


def _names_text(dirs: Directions, shown: int = 6) -> str:
    names = dirs.names[:shown]
    return ", ".join(names) + (f", ... ({len(dirs)} in all)" if len(dirs) > shown else "")


def check_fits(dirs: Directions, *, w_dim: int, num_ws: int, checkpoint_sha256: str | None,
               source: str = "the directions file") -> str | None:
    """A one-line UsageError where `dirs` does not fit the model's latent shape; a warning text
    (returned, for the caller to print) where the dims fit but the checkpoint differs."""
    if dirs.w_dim != w_dim or dirs.num_ws != num_ws:
        raise UsageError(f"{source} was made for w_dim={dirs.w_dim}, num_ws={dirs.num_ws} but this model has "
                         f"w_dim={w_dim}, num_ws={num_ws}; make directions for this model with `sgan directions`.")
    if dirs.checkpoint_sha256 and checkpoint_sha256 and dirs.checkpoint_sha256 != checkpoint_sha256:
        return (f"Warning: {source} comes from another checkpoint (sha256 {dirs.checkpoint_sha256[:12]}..., this one "
                f"{checkpoint_sha256[:12]}...); the latent shapes fit, so it is used anyway.")
    return None


def layer_indices(text: str | None, G, *, option: str = "--layers") -> list[int]:
    """`all`, `coarse`, `middle`, `fine`, `A-B`, `N` or a comma list -> sorted ws indices of generator
    G, with the coarse/middle/fine groups `sgan mix` uses (sgan.play.mixing.parse_model_styles:
    StyleGAN 1/2 by resolution, StyleGAN3 by cutoff band)."""

    if text is None or text.strip().lower() == "all":
        return list(range(G.num_ws))
    try:
        return parse_model_styles(text, G)
    except UsageError as err:
        raise UsageError(str(err).replace("--styles", option)) from None
