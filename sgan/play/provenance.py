"""What made an output, written with it: the precision, the sgan version, the checkpoint (path and
SHA-256) and the sampling options (seed, truncation_psi, noise mode, class).

Every PNG that generate, mix, video, project, figure and edit write carries these as PNG text chunks
(`Image.open(path).text`); every latent file (.npy) gets a JSON sidecar with the same fields
(NAME.npy -> NAME.json), or they join the sidecar the command writes already (project, edit, figure).
"""

from __future__ import annotations

import hashlib
import json
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

from sgan.fileio import atomic_write_json
from sgan import __version__
from sgan.checkpoint import resolve_checkpoint


@lru_cache(maxsize=8)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_fields(path: str | os.PathLike) -> dict[str, Any]:
    """{"checkpoint": the snapshot file a path names (a run folder: its latest snapshot), "checkpoint_sha256"}."""

    try:
        file = Path(resolve_checkpoint(path))
    except Exception:  # a foreign file the loader imports on the fly: the path as given
        file = Path(path)
    fields: dict[str, Any] = {"checkpoint": str(file)}
    try:
        st = file.stat()
        if file.is_file():
            fields["checkpoint_sha256"] = _sha256(str(file.resolve()), st.st_size, st.st_mtime_ns)
    except OSError:
        pass
    return fields


def provenance(*, command: str, precision: Any, checkpoint: str | os.PathLike | None = None,
               **fields: Any) -> dict[str, Any]:
    """The record of one command's outputs. `precision` is a PrecisionChoice (its concrete precision,
    what was asked and, for auto, why) or a name; `fields` are the sampling options (None left out)."""

    record: dict[str, Any] = {"sgan_version": __version__, "command": command}
    if hasattr(precision, "precision"):
        record["precision"] = precision.precision
        record["precision_requested"] = precision.requested
        if precision.timings_ms:
            record["precision_reason"] = precision.reason
    else:
        record["precision"] = str(precision)
    if checkpoint is not None:
        record.update(checkpoint_fields(checkpoint))
    record.update({k: v for k, v in fields.items() if v is not None})
    return record


def png_text(record: Mapping[str, Any], **more: Any) -> dict[str, str]:
    """`record` (and `more`, e.g. one image's seed) as PNG text chunks: strings kept, the rest as JSON,
    with a `Software` chunk (the PNG standard's keyword for the program that wrote the file)."""
    merged = {**record, **{k: v for k, v in more.items() if v is not None}}
    text = {k: v if isinstance(v, str) else json.dumps(v) for k, v in merged.items()}
    if "sgan_version" in merged:
        text["Software"] = f"sgan {merged['sgan_version']}"
    return text


def sidecar_path(latent_path: str | os.PathLike) -> Path:
    """NAME.npy -> NAME.json, beside it."""
    return Path(latent_path).with_suffix(".json")


def write_latent_sidecar(latent_path: str | os.PathLike, record: Mapping[str, Any], **more: Any) -> Path:
    """Write `record` (and `more`) as the JSON sidecar of a latent file, atomically."""
    body = {"latent": Path(latent_path).name, **record, **{k: v for k, v in more.items() if v is not None}}
    return atomic_write_json(sidecar_path(latent_path), body)
