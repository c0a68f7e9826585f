"""Atomic file writes: a temp file in the same folder, flush + fsync, rename, fsync the folder.

An interrupted write (exception, Ctrl-C, kill) leaves the previous file intact; readers never see
a half-written file under the final name. A temp file left by a killed writer (`.NAME.XXXX.tmp`) is
removed by the next write of the same NAME once it is STALE_TMP_SECONDS old. Files get the usual
mode (0666 less the umask), not mkstemp's 0600. A folder or file that cannot be written is an
`OutputError` (one line naming the path and the reason), not a traceback.
"""

from __future__ import annotations

import errno
import io
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np

from sgan.errors import SganError

STALE_TMP_SECONDS = 600   # a temp file untouched this long belongs to a writer that was killed
# errno values that mean "this place cannot be written", as opposed to a bug
_UNWRITABLE = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST, errno.EISDIR, errno.ENOSPC,
               errno.EDQUOT, errno.ENAMETOOLONG, errno.ENOENT, errno.EINVAL, errno.EIO, errno.ELOOP}


class OutputError(SganError):
    """An output file or folder that cannot be written (read-only, not a folder, no space...)."""


def _unwritable(path: Path, err: OSError) -> OutputError:
    reason = {errno.ENOTDIR: "a part of the path is a file, not a folder",
              errno.EEXIST: "a part of the path is a file, not a folder",
              errno.EROFS: "the file system is read-only", errno.ENOSPC: "the disk is full",
              errno.EDQUOT: "the disk quota is exceeded"}.get(err.errno, err.strerror or type(err).__name__)
    return OutputError(f"cannot write {path}: {reason}; choose another output path.")


def _file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _remove_stale_tmps(path: Path) -> None:
    """Remove `.NAME.XXXX.tmp` files of this NAME that no writer has touched for STALE_TMP_SECONDS."""
    now = time.time()
    try:
        candidates = list(path.parent.glob(f".{_glob_escape(path.name)}.*.tmp"))
    except OSError:
        return
    for old in candidates:
        try:
            if now - old.stat().st_mtime > STALE_TMP_SECONDS:
                old.unlink()
        except OSError:
            pass


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None]) -> Path:
    """Call `write(f)` on a temp file beside `path`, then move it over `path` in one step."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise IsADirectoryError(errno.EISDIR, "it is a folder")
        _remove_stale_tmps(path)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as err:
        if err.errno not in _UNWRITABLE:
            raise
        raise _unwritable(path, err) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EISDIR):
            raise _unwritable(path, err) from None
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return atomic_write_bytes(path, buf.getvalue())


def append_jsonl(path: str | os.PathLike, record: dict[str, Any]) -> None:
    """Append one JSON line (append-only logs such as stats.jsonl and metrics.jsonl)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
