"""Looking at a dataset LMDB: `dataset_info`, `preview_grid`, `verify_dataset`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from sgan.data import images, layout
from sgan.data.labels import class_value_problem
from sgan.errors import DataError, UsageError
from sgan.data.labels import DamagedLabel, class_labels
from sgan.data.lmdb_dataset import MultiResolutionDataset

ProgressFn = Callable[[int, int], None]


def dataset_info(path: str | Path) -> dict[str, Any]:
    """Sizes, count, image format, channels, labels, source and bytes on disk of a dataset LMDB."""
    path = Path(path)
    env = layout.shared_env(path)
    header = layout.read_header(env, path)
    with env.begin(write=False) as txn:
        first = txn.get(layout.image_key(header["sizes"][-1], 0))
        entries = txn.stat()["entries"]
    meta = header["metadata"] or {}
    labels = meta.get("labels") or {}
    return {
        "path": str(path),
        "layout": header["layout"],
        "count": header["length"],
        "sizes": sorted(header["sizes"]),
        "channels": meta.get("channels", 3),
        "image_format": meta.get("image_format") or (images.record_format(first) if first else "unknown"),
        "quality": meta.get("quality"),
        "resample": meta.get("resample"),
        "labels": labels.get("names", []),
        "classes": _classes(path, labels),
        "source": meta.get("source"),
        "builtin": meta.get("builtin"),
        "format_version": meta.get("format_version"),
        "sgan_version": meta.get("sgan_version"),
        "created": meta.get("created"),
        "records": entries,
        "bytes_on_disk": layout.disk_bytes(path),
    }


def _classes(path: Path, labels: dict[str, Any]) -> list[dict[str, Any]] | None:
    """[{"index", "name", "images"}] per class when the database has class labels."""
    if not labels.get("class_field"):
        return None

    try:
        found = class_labels(path)
    except DamagedLabel:
        raise
    except DataError:
        return None
    return [{"index": i, "name": n, "images": c} for i, (n, c) in enumerate(zip(found.names, found.counts()))]


def preview_grid(path: str | Path, *, size: int = 64, count: int = 64, start: int = 0,
                 columns: int | None = None) -> np.ndarray:
    """A grid of images `start .. start+count-1` at `size` px as RGB uint8 [H, W, 3] (2 px gaps)."""

    if count < 1:
        raise UsageError(f"--count {count} must be 1 or more.")
    if columns is not None and columns < 1:
        raise UsageError(f"--columns {columns} must be 1 or more.")
    dataset = MultiResolutionDataset(path, resolution=_pick_size(path, size))
    n = min(count, dataset.num_images - start)
    if start < 0 or n <= 0:
        raise UsageError(f"--start {start} is past the end of {path} ({dataset.num_images} images).")
    cols = columns or int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    r, gap = dataset.resolution, 2
    grid = np.full((rows * (r + gap) - gap, cols * (r + gap) - gap, 3), 255, dtype=np.uint8)
    for k in range(n):
        y, x = divmod(k, cols)
        grid[y * (r + gap):y * (r + gap) + r, x * (r + gap):x * (r + gap) + r] = dataset.image(start + k)
    return grid


def _pick_size(path: str | Path, size: int) -> int:
    sizes = layout.read_header(layout.shared_env(path), path)["sizes"]
    if size not in sizes:
        raise UsageError(f"{path} has no {size}x{size} images; choose --size from {', '.join(map(str, sorted(sizes)))}.")
    return size


def save_grid(grid: np.ndarray, out: str | Path) -> Path:
    out = Path(out)
    if not out.parent.exists():
        raise DataError(f"the folder {out.parent} does not exist; create it first.")
    try:
        Image.fromarray(grid).save(out)
    except (ValueError, KeyError):
        raise UsageError(f"{out}: unknown image extension; use .png or .jpg.") from None
    return out


@dataclass
class VerifyReport:
    path: Path
    layout: str
    count: int
    sizes: list[int]
    records: int = 0
    problems: list[str] = field(default_factory=list)
    checksums: bool = False        # the database stores per-record checksums (and they were checked)

    @property
    def ok(self) -> bool:
        return not self.problems


MAX_PROBLEMS_LISTED = 1000


def _check_sums(txn, index: int, expected: list[bytes], problem: Callable[[str], None]) -> None:
    """Compare the records of image `index` with its checksum record (`sum-NNNNN`)."""
    key = layout.checksum_key(index)
    raw = txn.get(key)
    try:
        sums = json.loads(raw.decode("utf-8")) if raw is not None else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        sums = "bad"
    if not isinstance(sums, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in sums.items()):
        problem(f"{key.decode()}: {'missing' if raw is None else 'damaged'} checksum record; "
                f"the records of image {index} cannot be checked")
        return
    for name in expected:
        if name.decode("utf-8") not in sums:
            problem(f"{name.decode()}: has no checksum in {key.decode()}")
    for name, digest in sums.items():
        data = txn.get(name.encode("utf-8"))
        if data is not None and layout.record_checksum(data) != digest:
            problem(f"{name}: checksum mismatch, the record was altered after it was written")


def verify_dataset(path: str | Path, *, progress: ProgressFn | None = None) -> VerifyReport:
    """Decode every record of a dataset and report what is missing, broken or inconsistent."""
    path = Path(path)
    env = layout.shared_env(path)
    header = layout.read_header(env, path)
    meta = header["metadata"]
    sizes = sorted(header["sizes"])
    report = VerifyReport(path=path, layout=header["layout"], count=header["length"], sizes=sizes)
    report.checksums = (meta or {}).get("checksums") == layout.CHECKSUM_ALGO
    labels = (meta or {}).get("labels") or {}
    dim = len(labels.get("names", []))
    names = list(labels.get("names", []))
    class_j = names.index(labels["class_field"]) if labels.get("class_field") in names else None
    problems = report.problems

    def problem(text: str) -> None:
        if len(problems) < MAX_PROBLEMS_LISTED:
            problems.append(text)
        elif len(problems) == MAX_PROBLEMS_LISTED:
            problems.append("... more problems not listed")

    with env.begin(write=False) as txn:
        length_raw = txn.get(layout.LENGTH_KEY)
        if meta is not None and (length_raw is None or int(length_raw) != header["length"]):
            problem(f"`length` is {length_raw!r} but __meta__ says count {header['length']}")
        expected_format = (meta or {}).get("image_format")
        for i in range(header["length"]):
            for s in sizes:
                key = layout.image_key(s, i)
                data = txn.get(key)
                if data is None:
                    problem(f"{key.decode()}: missing")
                    continue
                report.records += 1
                fmt = images.record_format(data)
                if expected_format and fmt != expected_format:
                    problem(f"{key.decode()}: stored as {fmt}, metadata says {expected_format}")
                try:
                    arr = images.decode_record(data)
                except Exception as err:  # noqa: BLE001 - any decode failure is a problem to report
                    problem(f"{key.decode()}: does not decode ({type(err).__name__}: {err})")
                    continue
                if arr.shape != (s, s, 3):
                    problem(f"{key.decode()}: is {arr.shape[1]}x{arr.shape[0]}, expected {s}x{s}")
            if dim:
                raw = txn.get(layout.label_key(i))
                if raw is None or len(raw) != 4 * dim:
                    problem(f"{layout.label_key(i).decode()}: missing or not {dim} float32 values")
                elif not np.isfinite(layout.decode_label(raw)).all():
                    problem(f"{layout.label_key(i).decode()}: holds NaN or infinity")
                elif class_j is not None:
                    why = class_value_problem(float(layout.decode_label(raw)[class_j]), len(labels.get("classes") or []))
                    if why:
                        problem(f"{layout.label_key(i).decode()}: {why}")
                attrs = txn.get(layout.attrs_key(i))
                if attrs is not None:
                    try:
                        json.loads(attrs.decode("utf-8"))
                    except (UnicodeDecodeError, json.JSONDecodeError):
                        problem(f"{layout.attrs_key(i).decode()}: not valid JSON")
            if report.checksums:
                expected = [layout.image_key(s, i) for s in sizes] + ([layout.label_key(i)] if dim else [])
                _check_sums(txn, i, expected, problem)
            if progress is not None and (i % 256 == 255 or i == header["length"] - 1):
                progress(i + 1, header["length"])
    return report
