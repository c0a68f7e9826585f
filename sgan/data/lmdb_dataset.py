"""`MultiResolutionDataset`: the torch Dataset that training reads, over an sgan or rosinality LMDB.

- `resolution` can be changed between steps (progressive growing); a size the database does not
  hold is a DataError that lists the sizes it has.
- Items are `(image, label)`: the image a uint8 tensor [3, r, r] (convert on the device:
  `x.float() / 127.5 - 1`), the label a float32 tensor of the numeric attributes in the order of
  `label_names` (an empty tensor when the database has none).
- x-flip doubles the index space instead of drawing random numbers: index `i < N` is image `i`,
  index `N + i` is image `i` mirrored left-right (labels mirrored too, as the metadata says: `cx`
  becomes `1 - cx`, `rotation` becomes `-rotation`). Which images a step sees is then decided by
  the sampler and its seed alone, so runs are reproducible and resumable.
- The LMDB environment is opened lazily in the process that reads (LMDB environments are not
  fork-safe), one per process and database (`layout.shared_env`), reopened when the process id
  changes, and never pickled: the dataset works with a DataLoader at num_workers 0, 2 or more,
  with fork or spawn.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from sgan.data import images, layout
from sgan.data.labels import class_value_problem
from sgan.errors import DataError


class MultiResolutionDataset(Dataset):
    """Images of one LMDB at a changeable resolution, with optional deterministic x-flip."""

    def __init__(self, path: str | Path, *, resolution: int, xflip: bool = False, check_records: bool = True):
        self.path = Path(path)
        self.xflip = bool(xflip)
        self._real = os.path.realpath(self.path)
        header = layout.read_header(layout.shared_env(self.path, self._real), self.path)
        self.metadata: dict[str, Any] | None = header["metadata"]
        self.layout: str = header["layout"]
        self.sizes: list[int] = sorted(header["sizes"])
        self.num_images: int = header["length"]
        labels = (self.metadata or {}).get("labels") or {}
        self.label_names: list[str] = list(labels.get("names", []))
        self._flip_ops = [(j, labels.get("xflip", {}).get(name)) for j, name in enumerate(self.label_names)
                          if labels.get("xflip", {}).get(name)]
        field_name = labels.get("class_field")
        self._class_j = self.label_names.index(field_name) if field_name in self.label_names else None
        self._num_classes = len(labels.get("classes") or [])
        # Per-record BLAKE2b (databases that store it): each record is checked the first time this process
        # reads it, so a record altered after `prepare-dataset` is refused by name instead of trained on.
        self.check_records = bool(check_records) and (self.metadata or {}).get("checksums") == layout.CHECKSUM_ALGO
        self._checked: set[bytes] = set()
        self._resolution = 0
        self.resolution = resolution

    # -- resolution --------------------------------------------------------------------------

    @property
    def resolution(self) -> int:
        return self._resolution

    @resolution.setter
    def resolution(self, value: int) -> None:
        value = int(value)
        if value not in self.sizes:
            raise DataError(f"{self.path} has no {value}x{value} images (it holds "
                            f"{', '.join(str(s) for s in self.sizes)}); train at one of those sizes or prepare "
                            f"the dataset again with --min-size/--max-size covering {value}.")
        self._resolution = value

    # -- access ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return self.num_images * (2 if self.xflip else 1)

    def _txn_get(self, key: bytes) -> bytes | None:
        # Looked up on every read: opens lazily in each (DataLoader worker) process.
        env = layout.shared_env(self.path, self._real)
        with env.begin(write=False, buffers=False) as txn:
            return txn.get(key)

    def _check_record(self, index: int, key: bytes, data: bytes) -> None:
        if not self.check_records or key in self._checked:
            return
        raw = self._txn_get(layout.checksum_key(index))
        try:
            sums = json.loads(raw.decode("utf-8")) if raw is not None else None
        except (UnicodeDecodeError, ValueError):
            sums = None
        digest = sums.get(key.decode()) if isinstance(sums, dict) else None
        if digest != layout.record_checksum(data):
            what = ("has no valid checksum record" if digest is None else
                    "does not match the checksum written with it (the record was altered)")
            raise DataError(f"{self.path}: record {key.decode()} {what}; run `sgan dataset verify {self.path}` "
                            "and prepare the dataset again.")
        self._checked.add(key)

    def _split(self, index: int) -> tuple[int, bool]:
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} is out of range for a dataset of {len(self)} items")
        return index % self.num_images, index >= self.num_images

    def image(self, index: int, resolution: int | None = None) -> np.ndarray:
        """Image `index` (0 .. num_images-1, no flip) as RGB uint8 [r, r, 3]."""
        r = self._resolution if resolution is None else int(resolution)
        key = layout.image_key(r, index)
        data = self._txn_get(key)
        if data is None:
            raise DataError(f"{self.path}: record {key.decode()} is missing; run `sgan dataset verify {self.path}` "
                            f"and prepare the dataset again.")
        try:
            arr = images.decode_record(data)
        except (OSError, ValueError, SyntaxError) as err:
            raise DataError(f"{self.path}: record {key.decode()} does not decode ({err}); run `sgan dataset verify "
                            f"{self.path}` and prepare the dataset again.") from None
        self._check_record(index, key, data)
        if arr.shape != (r, r, 3):
            raise DataError(f"{self.path}: record {key.decode()} is {arr.shape[1]}x{arr.shape[0]}, not {r}x{r}; "
                            f"prepare the dataset again.")
        return arr

    def label(self, index: int) -> np.ndarray:
        """The float32 label vector of image `index` (no flip); empty when there are no labels."""
        if not self.label_names:
            return np.zeros(0, dtype=np.float32)
        data = self._txn_get(layout.label_key(index))
        if data is None or len(data) != 4 * len(self.label_names):
            raise DataError(f"{self.path}: the label of image {index} is missing or has the wrong length; "
                            f"prepare the dataset again.")
        self._check_record(index, layout.label_key(index), data)
        label = layout.decode_label(data)
        if not np.isfinite(label).all() or self._class_j is not None:
            why = ("it holds NaN or infinity" if not np.isfinite(label).all() else
                   class_value_problem(float(label[self._class_j]), self._num_classes))
            if why:
                raise DataError(f"{self.path}: record {layout.label_key(index).decode()}: {why}; run `sgan dataset "
                                f"verify {self.path}` and prepare the dataset again.")
        return label

    def attributes(self, index: int) -> dict | None:
        """All recorded attributes of item `index` (flipped items report their source image's)."""
        base, _flip = self._split(index)
        data = self._txn_get(layout.attrs_key(base))
        return None if data is None else json.loads(data.decode("utf-8"))

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        base, flip = self._split(int(index))
        arr = self.image(base)
        label = self.label(base)
        if flip:
            arr = arr[:, ::-1]
            label = flip_label(label, self._flip_ops)
        image = torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
        return image, torch.from_numpy(label)

    # The dataset holds no environment, only its path: it pickles (spawn workers) as it is.

    def close(self) -> None:
        """Close this process's environment of the database (reopened by the next read)."""
        layout.close_env(self.path)

    def __repr__(self) -> str:
        return (f"MultiResolutionDataset({str(self.path)!r}, resolution={self.resolution}, xflip={self.xflip}, "
                f"images={self.num_images}, sizes={self.sizes}, layout={self.layout!r})")


def flip_label(label: np.ndarray, ops: list[tuple[int, str]]) -> np.ndarray:
    """Mirror a label vector left-right: `one_minus` (x positions), `negate` (angles), `mirror_angle`."""
    if not ops:
        return label
    out = label.copy()
    for j, op in ops:
        if op == "one_minus":
            out[j] = 1.0 - out[j]
        elif op == "negate":
            out[j] = -out[j]
        elif op == "mirror_angle":  # a direction at angle a (degrees, y down) mirrors to 180 - a
            out[j] = (180.0 - out[j] + 180.0) % 360.0 - 180.0
    return out
