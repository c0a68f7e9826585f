"""Which foreign format a file is, and converting it into an sgan checkpoint (on disk or in memory)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping

from sgan.checkpoint import (Checkpoint, NotAnSganCheckpoint, inference_generator, load_checkpoint, resolve_checkpoint,
                             save_checkpoint)
from sgan.errors import CheckpointError, UsageError
from sgan.formats.common import FORMAT_TITLES, ImportFormatError, Imported
from sgan.formats.safe_pickle import PersistentObject, UnsafePickleError, load_foreign

FORMATS = tuple(FORMAT_TITLES)
log = logging.getLogger("sgan.formats")


def formats_text() -> str:
    return "; ".join(f"{k} ({v})" for k, v in FORMAT_TITLES.items())


def detect(data: Any) -> str | None:
    """The format of an opened foreign file, or None."""
    from sgan.formats import rosinality_sg1, stylegan3, tf_stylegan

    if tf_stylegan.is_tf_tuple(data):
        name = data[2].get("build_func_name")
        version = data[2].get("version", 0)
        if name == "G_style" or (isinstance(version, int) and version == 3):
            return "tf-stylegan"
        return "tf-stylegan2"
    if isinstance(data, Mapping):
        if isinstance(data.get("G_ema"), PersistentObject) or isinstance(data.get("G"), PersistentObject):
            return "stylegan3" if stylegan3.is_stylegan3(data.get("G_ema") or data.get("G")) else "ada"
        if rosinality_sg1.is_checkpoint(data) or rosinality_sg1.is_bare(data):
            return "rosinality-sg1"
        if _is_rosinality_sg2(data) or _is_rosinality_sg2(data.get("g_ema")):
            return "rosinality-sg2"
    return None


def _is_rosinality_sg2(sd: Any) -> bool:
    return isinstance(sd, Mapping) and "input.input" in sd and "conv1.conv.weight" in sd


def _is_sgan(data: Any) -> bool:
    return isinstance(data, Mapping) and data.get("format") == "sgan-checkpoint"


def import_file(path: str | os.PathLike, *, format: str = "auto", resolution: int | None = None,
                _data: Any = None) -> Imported:
    """Open a foreign checkpoint without running its code and convert it to sgan networks."""
    p = Path(path)
    if format != "auto" and format not in FORMATS:
        raise UsageError(f"--format {format!r}: choose auto or one of {', '.join(FORMATS)}.")
    if not p.is_file():
        raise CheckpointError(f"{p}: no such file; give a foreign checkpoint (.pkl, .pt, .model).")
    if p.stat().st_size == 0:
        raise CheckpointError(f"{p}: the file is empty (an interrupted download?).")
    data = _open(p) if _data is None else _data
    if _is_sgan(data):
        raise ImportFormatError(f"{p}: this is already an sgan checkpoint; use it directly.")
    found = detect(data)
    if format == "auto":
        if found is None:
            raise ImportFormatError(f"{p}: not a StyleGAN checkpoint sgan knows ({_describe(data)}); "
                                    f"known formats: {formats_text()}.")
        format = found
    elif found is not None and found != format:
        raise ImportFormatError(f"{p}: --format {format} given, but the file looks like {found} "
                                f"({FORMAT_TITLES[found]}); use --format auto.")
    if resolution is not None and format != "rosinality-sg1":
        raise UsageError("--resolution applies only to rosinality-sg1 files (they hold every block up to 1024 px); "
                         "other formats store their resolution.")
    try:
        return _convert(format, data, p, resolution)
    except ImportFormatError as err:
        msg = str(err)
        raise ImportFormatError(msg if msg.startswith(str(p)) else f"{p}: {msg}") from None
    except RecursionError:
        raise ImportFormatError(f"{p}: the file nests its structure too deeply for {format}; it is damaged or "
                                "crafted.") from None
    except MemoryError:
        raise ImportFormatError(f"{p}: converting it as {format} ran out of memory; the network it describes is "
                                "larger than this machine can hold (or the file is crafted).") from None
    except (KeyError, IndexError, AttributeError, TypeError, ValueError, RuntimeError) as err:
        raise ImportFormatError(f"{p}: the file does not have the layout of {format} "
                                f"({type(err).__name__}: {str(err)[:120]}).") from None


def _open(p: Path) -> Any:
    try:
        return load_foreign(p)
    except CheckpointError as err:
        msg = str(err)
        raise type(err)(msg if msg.startswith(str(p)) else f"{p}: {msg}") from None


def _convert(format: str, data: Any, path: Path, resolution: int | None) -> Imported:
    if format == "tf-stylegan":
        from sgan.formats import tf_stylegan
        return tf_stylegan.convert(data, path=path)
    if format == "tf-stylegan2":
        from sgan.formats import tf_stylegan2
        return tf_stylegan2.convert(data, path=path)
    if format == "ada":
        from sgan.formats import ada
        return ada.convert(data, path=path)
    if format == "stylegan3":
        from sgan.formats import stylegan3
        return stylegan3.convert(data, path=path)
    if format == "rosinality-sg1":
        from sgan.formats import rosinality_sg1
        return rosinality_sg1.convert(data, path=path, resolution=resolution)
    from sgan.formats import rosinality_sg2
    return rosinality_sg2.convert(data, path=path)


def _describe(data: Any) -> str:
    if isinstance(data, Mapping):
        keys = [str(k) for k in list(data)[:5]]
        return f"a dict with keys {', '.join(keys)}{', ...' if len(data) > 5 else ''}"
    return f"a {type(data).__name__}"


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def import_record(imp: Imported) -> dict[str, Any]:
    """What the checkpoint's `extra["import"]` keeps about its origin (plain values only)."""
    return {"format": imp.format, "source": imp.source.name, "sha256": sha256_of(imp.source),
            "found": list(imp.found), "left_behind": list(imp.left_behind), "notes": list(imp.notes),
            "defaults": json.loads(json.dumps(imp.defaults))}


def save_imported(imp: Imported, out: str | os.PathLike) -> Path:
    """Write the converted networks as an ordinary sgan checkpoint (atomically)."""
    return save_checkpoint(out, config=imp.config, G=imp.G if imp.G is not None else imp.G_ema, G_ema=imp.G_ema,
                           D=imp.D, extra={"import": import_record(imp)})


def checkpoint_in_memory(path: str | os.PathLike):
    """A foreign file as a `sgan.checkpoint.Checkpoint` (converted in memory, nothing written), or None
    when the file is not a known foreign format."""
    p = Path(path)
    try:
        data = _open(p)
    except UnsafePickleError:
        raise
    except CheckpointError:
        return None
    if _is_sgan(data) or detect(data) is None:
        return None
    imp = import_file(p, _data=data)
    log.warning("note: %s is a %s file; converted in memory (`sgan import %s --out model.pt` converts it once).",
                p.name, imp.format, p.name)
    state = lambda m: {k: v.detach().clone() for k, v in m.state_dict().items()}  # noqa: E731
    return Checkpoint(path=p, config=imp.config, G=state(imp.G if imp.G is not None else imp.G_ema),
                      G_ema=state(imp.G_ema), D=state(imp.D) if imp.D is not None else None,
                      extra={"import": import_record(imp)})


def open_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """An sgan checkpoint (file or run folder), or a foreign StyleGAN checkpoint (NVIDIA pickle,
    rosinality file) converted in memory without running its code, with a note."""
    try:
        return load_checkpoint(path)
    except NotAnSganCheckpoint:
        ckpt = checkpoint_in_memory(resolve_checkpoint(path))
        if ckpt is None:
            raise
        return ckpt


def load_generator(path: str | os.PathLike, *, device: Any = "cpu", ema: bool = True) -> Any:
    """G_ema (or G) of a snapshot file, run folder or foreign checkpoint, ready for inference."""
    return inference_generator(open_checkpoint(path), ema=ema, device=device)
