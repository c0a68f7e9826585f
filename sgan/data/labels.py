"""Class labels: where they come from when a dataset is prepared, and how they are read back.

Sources (`sgan prepare-dataset SRC OUT --labels MODE`):
- `folders`: one folder per class; an image's class is the first folder of its path inside SRC,
  classes are numbered in sorted name order.
- `dataset.json`: StyleGAN2-ADA's file at the top of SRC, `{"labels": [["rel/path.png", int], ...]}`
  (or `{"labels": null}`: no labels); integer classes below MAX_CLASSES (100000), numbered as given,
  one entry per image (a duplicate is refused).
- `auto` (default): dataset.json when SRC has one, otherwise none. `none`: no labels.
`builtin:shapes` always stores its attributes; its class is `shape_id` (circle, square, ...).

Stored (sgan.data.layout): `label-NNNNN` holds the class index as one float32, and the metadata's
`labels` = {"names": ["class"], "dim": 1, "class_field": "class", "classes": [names]}; the
shapes dataset uses the same `class_field`/`classes` keys for its `shape_id`. A conditional model's
c is the one-hot vector of the class, c_dim = the largest class index + 1 (as StyleGAN2-ADA).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sgan.errors import DataError, UsageError
from sgan.data import layout

LABEL_MODES = ("auto", "folders", "dataset.json", "none")
DATASET_JSON = "dataset.json"


@dataclass
class SourceLabels:
    """Class index per source entry name, and the class names."""

    by_name: dict[str, int]
    classes: list[str]
    origin: str   # "folders" or "dataset.json"


def _read_dataset_json(kind: str, path: Path) -> bytes | None:
    if kind == "folder":
        p = path / DATASET_JSON
        return p.read_bytes() if p.is_file() else None
    if kind == "zip":
        with zipfile.ZipFile(path) as archive:
            try:
                return archive.read(DATASET_JSON)
            except KeyError:
                return None
    return None


def source_labels(mode: str, *, kind: str, path: Path | None, entries: list[str], spec: str) -> SourceLabels | None:
    """The labels of a folder or zip source under `mode` (see the module docstring)."""
    if mode not in LABEL_MODES:
        raise UsageError(f"--labels {mode!r}: choose {', '.join(LABEL_MODES)}.")
    if mode == "none":
        return None
    if kind == "builtin":
        if mode in ("folders", "dataset.json"):
            raise UsageError(f"--labels {mode} is for folders and zips; {spec} brings its own labels (or none).")
        return None
    raw = _read_dataset_json(kind, path) if mode in ("auto", "dataset.json") else None
    if mode == "dataset.json" and raw is None:
        raise DataError(f"{spec} has no {DATASET_JSON} at its top; write one ({{\"labels\": [[\"a/b.png\", 0], ...]}}) "
                        "or use --labels folders.")
    if raw is not None:
        return _from_dataset_json(raw, entries, spec)
    if mode == "folders":
        return _from_folders(entries, spec)
    return None


def _from_folders(entries: list[str], spec: str) -> SourceLabels:
    loose = [e for e in entries if "/" not in e]
    if loose:
        raise DataError(f"--labels folders needs every image in a class folder, but {loose[0]} is at the top of {spec} "
                        f"({len(loose)} such files); move it into a folder or drop --labels.")
    classes = sorted({e.split("/", 1)[0] for e in entries})
    if len(classes) < 2:
        raise DataError(f"--labels folders found one class folder ({classes[0] if classes else 'none'}) in {spec}; "
                        "put each class in its own folder.")
    index = {c: i for i, c in enumerate(classes)}
    return SourceLabels({e: index[e.split("/", 1)[0]] for e in entries}, classes, "folders")


def _from_dataset_json(raw: bytes, entries: list[str], spec: str) -> SourceLabels | None:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{spec}/{DATASET_JSON} is not valid JSON ({err}).") from None
    if not isinstance(data, dict) or "labels" not in data:
        raise DataError(f'{spec}/{DATASET_JSON} must be {{"labels": [["path", class], ...]}} or {{"labels": null}}.')
    if data["labels"] is None:
        return None
    by_name: dict[str, int] = {}
    for item in data["labels"]:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str)):
            raise DataError(f"{spec}/{DATASET_JSON}: each label must be [\"path\", class], got {str(item)[:60]}.")
        name, value = item[0].replace("\\", "/"), item[1]
        if isinstance(value, bool) or not isinstance(value, int):
            raise DataError(f"{spec}/{DATASET_JSON}: {name} has label {str(value)[:40]}; sgan reads integer classes "
                            "(vector labels are not supported).")
        if value < 0:
            raise DataError(f"{spec}/{DATASET_JSON}: {name} has the negative class {value}.")
        if value >= MAX_CLASSES:
            raise DataError(f"{spec}/{DATASET_JSON}: {name} has the class {str(value)[:40]}; class ids must be below "
                            f"{MAX_CLASSES} (a conditional model has one input per class up to the largest id).")
        if name in by_name:
            raise DataError(f"{spec}/{DATASET_JSON}: {name} is listed twice (classes {by_name[name]} and {value}); "
                            "give each image one label.")
        by_name[name] = value
    missing = [e for e in entries if e not in by_name]
    if missing:
        raise DataError(f"{spec}/{DATASET_JSON} has no label for {missing[0]} ({len(missing)} images without one); "
                        "label every image or remove the unlabelled ones.")
    used = {e: by_name[e] for e in entries}
    classes = [str(i) for i in range(max(used.values()) + 1)] if used else []
    return SourceLabels(used, classes, DATASET_JSON)


def class_metadata(classes: list[str], origin: str) -> dict[str, Any]:
    return {"names": ["class"], "dim": 1, "xflip": {}, "class_field": "class", "classes": list(classes),
            "origin": origin}


# ----------------------------------------------------------------------------- reading back

MAX_CLASSES = 100_000   # sgan's bound on c_dim (sgan.nn.config.SIZE_LIMITS); no class index reaches it


class DamagedLabel(DataError):
    """A stored class label that is not a class of the database (NaN, fractional, negative, too large)."""


def class_value_problem(value: float, num_classes: int) -> str | None:
    """Why a stored class label is not a class index below `num_classes` (MAX_CLASSES when the database
    lists no class names), or None."""
    limit = num_classes if num_classes > 0 else MAX_CLASSES
    if not np.isfinite(value):
        return f"the class label is {value}, not a number"
    if value != int(value) or not 0 <= value < limit:
        return (f"the class label {value:g} is not one of the {limit} classes (0 to {limit - 1})" if num_classes
                else f"the class label {value:g} is not a class index (0 to {limit - 1})")
    return None


@dataclass
class ClassLabels:
    """The class of every image of a database and the class names (index = class)."""

    indices: np.ndarray   # int64 [N]
    names: list[str]

    @property
    def c_dim(self) -> int:
        return len(self.names)

    def counts(self) -> list[int]:
        return np.bincount(self.indices, minlength=self.c_dim).tolist()


def class_labels(path: str | Path) -> ClassLabels:
    """The class labels of a dataset LMDB; DataError when it has none."""

    path = Path(path)
    env = layout.shared_env(path)
    header = layout.read_header(env, path)
    labels = (header["metadata"] or {}).get("labels") or {}
    field_name = labels.get("class_field")
    names = labels.get("names") or []
    if not field_name or field_name not in names:
        raise DataError(f"{path} has no class labels; prepare it with `sgan prepare-dataset SRC {path} --labels folders` "
                        "(one folder per class) or a dataset.json, or train without --cond.")
    j, dim = names.index(field_name), len(names)
    classes = list(labels.get("classes") or [])
    out = np.empty(header["length"], dtype=np.int64)
    with env.begin(write=False) as txn:
        for i in range(header["length"]):
            raw = txn.get(layout.label_key(i))
            if raw is None or len(raw) != 4 * dim:
                raise DamagedLabel(f"{path}: the label of image {i} is missing or damaged; prepare the dataset again.")
            problem = class_value_problem(float(layout.decode_label(raw)[j]), len(classes))
            if problem:
                raise DamagedLabel(f"{path}: record {layout.label_key(i).decode()}: {problem}; run `sgan dataset verify "
                                   f"{path}` and prepare the dataset again.")
            out[i] = int(layout.decode_label(raw)[j])
    c_dim = int(out.max()) + 1 if len(out) else 0
    names_out = [classes[k] if k < len(classes) else str(k) for k in range(c_dim)]
    return ClassLabels(out, names_out)


def resolve_class(spec: str | int, names: list[str]) -> int:
    """A class given by name or index -> its index; UsageError naming the classes otherwise."""
    text = str(spec).strip()
    if text in names:
        return names.index(text)
    try:
        k = int(text)
    except ValueError:
        k = -1
    if 0 <= k < len(names):
        return k
    shown = ", ".join(f"{i}={n}" for i, n in enumerate(names))
    raise UsageError(f"--class {spec}: not a class of this model; its classes are {shown}.")


def one_hot(indices: "np.ndarray | list[int]", c_dim: int):
    import torch

    idx = torch.as_tensor(np.asarray(indices, dtype=np.int64))
    return torch.nn.functional.one_hot(idx, c_dim).float()
