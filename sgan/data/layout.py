"""The dataset LMDB layout, shared by the writer, the reader and the inspection tools.

Keys (UTF-8):

- `f"{size}-{index:05d}"`: one encoded image (PNG by default, JPEG on request) per size and index,
  the layout of rosinality's prepare_data.py, so that its databases load too (`05d` is a minimum
  width: index 123456 is `256-123456`).
- `f"label-{index:05d}"`: the numeric labels of an image, little-endian float32, in the order of
  `metadata["labels"]["names"]` (only when the source has attributes).
- `f"attrs-{index:05d}"`: all attributes of an image as JSON (shape name, colours, ...).
- `f"sum-{index:05d}"`: JSON {record key: checksum} of every record written for that index (its
  images at each size, its label and attributes), `record_checksum` = BLAKE2b-64 hex, so that
  `sgan dataset verify` names an altered record. `__meta__["checksums"]` names the algorithm;
  databases without it (older sgan, rosinality) have no checksums and are decoded only.
- `length`: the number of images, as decimal text (as rosinality writes it).
- `__writing__`: present while a write is in progress, removed in the final transaction.
- `__meta__`: JSON metadata, written last, in the final transaction: a database without it was
  interrupted (or was made by another tool: rosinality's have `length` and no `__writing__`).
"""

from __future__ import annotations

import json
import numbers
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from sgan.errors import DataError

FORMAT_NAME = "sgan-lmdb"
FORMAT_VERSION = 1
META_KEY = b"__meta__"
WRITING_KEY = b"__writing__"
LENGTH_KEY = b"length"

# Sizes probed in a database without metadata (rosinality's hold 8..1024 or 128..1024).
PROBE_SIZES = tuple(2 ** k for k in range(2, 14))


def image_key(size: int, index: int) -> bytes:
    return f"{size}-{index:05d}".encode("utf-8")


def label_key(index: int) -> bytes:
    return f"label-{index:05d}".encode("utf-8")


def attrs_key(index: int) -> bytes:
    return f"attrs-{index:05d}".encode("utf-8")


CHECKSUM_ALGO = "blake2b-64"


def checksum_key(index: int) -> bytes:
    return f"sum-{index:05d}".encode("utf-8")


def record_checksum(data: bytes) -> str:
    """The checksum of one stored record (BLAKE2b with an 8-byte digest, hex)."""
    import hashlib

    return hashlib.blake2b(data, digest_size=8).hexdigest()


def numeric_labels(attrs: dict[str, Any]) -> tuple[list[str], list[float]]:
    """The numeric attributes of an image, flattened in key order: names and values.

    Numbers (bools as 0/1) keep their name; lists of numbers become `name[0]`, `name[1]`, ...;
    strings, dicts and lists of anything else are left out (they stay in the JSON attributes).
    """
    names: list[str] = []
    values: list[float] = []
    for key, value in attrs.items():
        if isinstance(value, (bool, numbers.Real)) and not isinstance(value, str):
            names.append(key)
            values.append(float(value))
        elif isinstance(value, (list, tuple)) and value and all(isinstance(v, numbers.Real) for v in value):
            for j, v in enumerate(value):
                names.append(f"{key}[{j}]")
                values.append(float(v))
    return names, values


def encode_label(values: list[float]) -> bytes:
    return np.asarray(values, dtype="<f4").tobytes()


def decode_label(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f4").copy()


def open_env(path: str | Path):
    """A read-only environment of `path` that the caller may close when done.

    It is this process's shared environment (`shared_env`) behind a handle whose `close()` does
    nothing, so that closing it cannot pull the environment from under a dataset reading the same
    database (py-lmdb refuses to open the same files twice in one process).
    """
    return _Handle(shared_env(path))


class _Handle:
    """Forwards everything to a shared environment except `close`."""

    def __init__(self, env):
        self._env = env

    def __getattr__(self, name: str):
        return getattr(self._env, name)

    def close(self) -> None:
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


def _open_readonly(path: str | Path):
    """Open an LMDB environment the way a reader should (rosinality's and B.6's flags)."""
    import lmdb

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path} does not exist; make it with `sgan prepare-dataset SOURCE {path}`.")
    if path.is_dir() and not (path / "data.mdb").exists():
        raise DataError(f"{path} is a folder without data.mdb, so not an LMDB dataset; "
                        f"make one with `sgan prepare-dataset {path} OUT.lmdb`.")
    try:
        return lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False,
                         max_readers=64, subdir=path.is_dir())
    except lmdb.Error as err:
        raise DataError(f"{path} cannot be opened as an LMDB database ({err}); "
                        f"rebuild it with `sgan prepare-dataset SOURCE {path} --overwrite`.") from None


# One read-only environment per database file per process: LMDB (and py-lmdb, which refuses a
# second open) forbids opening the same files twice in one process, and an environment inherited
# through fork must not be used in the child.
_ENVS: dict[str, tuple[int, int, Any]] = {}  # realpath -> (pid, inode of the data file, env)
_ENVS_LOCK = threading.Lock()


def _new_lock_after_fork() -> None:
    global _ENVS_LOCK
    _ENVS_LOCK = threading.Lock()  # a thread of the parent may have held it at the fork


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_after_fork)


def _data_inode(real: str) -> int:
    try:
        return os.stat(os.path.join(real, "data.mdb") if os.path.isdir(real) else real).st_ino
    except OSError:
        return -1


def shared_env(path: str | Path, real: str | None = None):
    """The read-only environment of `path` for this process, opened on first use.

    Reopened when the process is a fork of the one that opened it (the inherited handle is
    closed in the child only) or when the files were replaced (a database rebuilt with --overwrite).
    """
    real = real or os.path.realpath(path)
    entry = _ENVS.get(real)
    if entry is not None and entry[0] == os.getpid() and entry[1] == _data_inode(real):
        return entry[2]
    with _ENVS_LOCK:  # threads decoding ahead may ask at once; open once
        entry = _ENVS.get(real)
        if entry is not None:
            pid, inode, env = entry
            if pid == os.getpid() and inode == _data_inode(real):
                return env
            del _ENVS[real]
            try:
                env.close()
            except Exception:  # noqa: BLE001 - an unusable inherited handle is simply dropped
                pass
        env = _open_readonly(path)
        _ENVS[real] = (os.getpid(), _data_inode(real), env)
        return env


def close_env(path: str | Path) -> None:
    """Close this process's shared environment of `path`, if open."""
    entry = _ENVS.pop(os.path.realpath(path), None)
    if entry is not None and entry[0] == os.getpid():
        entry[2].close()


def read_header(env, path: str | Path) -> dict[str, Any]:
    """What the reader needs from a database: metadata (or None), length, sizes, layout name.

    Raises DataError for an interrupted write, an empty or foreign database.
    """
    with env.begin(write=False) as txn:
        writing = txn.get(WRITING_KEY)
        meta_raw = txn.get(META_KEY)
        length_raw = txn.get(LENGTH_KEY)
        if writing is not None:
            raise DataError(f"{path} is incomplete: its write was interrupted. "
                            f"Run `sgan prepare-dataset` again with --overwrite.")
        if meta_raw is not None:
            try:
                meta = json.loads(meta_raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError):
                raise DataError(f"{path}: the __meta__ record is not valid JSON; rebuild the database with --overwrite.") from None
            if meta.get("format") != FORMAT_NAME:
                raise DataError(f"{path}: __meta__ says format {meta.get('format')!r}, not {FORMAT_NAME!r}.")
            if int(meta.get("format_version", 0)) > FORMAT_VERSION:
                raise DataError(f"{path} was written by a newer sgan (format version {meta['format_version']}); "
                                f"upgrade sgan to read it.")
            return {"metadata": meta, "length": int(meta["count"]), "sizes": [int(s) for s in meta["sizes"]],
                    "layout": "sgan"}
        if length_raw is None:
            raise DataError(f"{path} holds no `length` key, so it is not a dataset made by sgan or rosinality's "
                            f"prepare_data.py; make one with `sgan prepare-dataset SOURCE {path}`.")
        try:
            length = int(length_raw.decode("utf-8"))
        except ValueError:
            raise DataError(f"{path}: the `length` key is {length_raw[:20]!r}, not a number.") from None
        sizes = [s for s in PROBE_SIZES if txn.get(image_key(s, 0)) is not None]
    if length <= 0 or not sizes:
        raise DataError(f"{path} holds no images (length {length}); prepare it again.")
    return {"metadata": None, "length": length, "sizes": sizes, "layout": "rosinality"}


def disk_bytes(path: str | Path) -> int:
    """Bytes on disk of an LMDB (its folder, or its single file)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total
