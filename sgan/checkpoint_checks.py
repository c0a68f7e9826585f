"""Checks of a checkpoint before anything is built from it: tensor checksums, field types, bounds.

- Checksums: `tensor_checksums(payload)` is a CRC-32 of every tensor's bytes (with its dtype and
  shape), keyed by its path in the payload (`G_ema/synthesis.b8.conv0.weight`,
  `extra/opt_G/state/0/exp_avg`). `save_checkpoint` stores them as `payload["checksums"]`;
  `verify_checksums` recomputes them on load (about 1 s per GB of tensors) and names the damaged
  tensors. `checksums["fields"]` is a CRC-32 of every non-tensor field (config JSON, versions,
  counters and other plain values of `extra`, `fields_checksum`). Files without checksums (older
  sgan) load unchecked; files without the fields checksum load with a one-line note.
- Density: `dense_problem` refuses tensors with zero or overlapping strides or a storage smaller than
  their shape (a small file describing a huge tensor), `check_zip_expansion` zip members that claim
  far more bytes than they store (decompression bombs), both before anything is read or copied;
  `check_finite` names a tensor holding NaN or infinity.
- Types and bounds: `check_payload` refuses state dicts that are not {str: Tensor}, extras that
  are not dicts and model configs whose fields have the wrong type or absurd sizes, so that a
  crafted file cannot make sgan allocate without bound or fail with a traceback.
- Shapes: `check_against_model` builds the network on the `meta` device (no memory) and compares
  every parameter and buffer shape with the stored ones before the real network is allocated.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from sgan.errors import CheckpointError

CHECKSUM_ALGO = "crc32"
FIELD_KEYS = ("format", "format_version", "sgan_version", "config", "extra")  # covered by checksums["fields"]
log = logging.getLogger("sgan.checkpoint")
STATE_DICTS = ("G", "G_ema", "D")

# Upper bounds of integer model settings (far above any published StyleGAN; a crafted file with more is refused).
INT_BOUNDS: dict[str, tuple[int, int]] = {
    "resolution": (4, 4096), "num_channels": (1, 4), "z_dim": (1, 4096), "w_dim": (1, 4096), "c_dim": (0, 100000),
    "mapping_layers": (1, 64), "mapping_fmaps": (1, 4096), "fmap_base": (1, 1 << 17), "fmap_max": (1, 4096),
    "fmap_min": (1, 4096), "mbstd_group_size": (0, 1024), "mbstd_num_features": (0, 64),
    "channel_base": (1, 1 << 17), "channel_max": (1, 4096), "cmap_dim": (0, 4096), "d_mapping_layers": (0, 64),
    "sg3_channel_base": (1, 1 << 18), "sg3_channel_max": (1, 4096), "sg3_num_layers": (1, 64),
    "sg3_num_critical": (0, 64), "sg3_margin_size": (0, 1024), "sg3_filter_size": (1, 64), "sg3_conv_kernel": (1, 7),
    "sg3_lrelu_upsampling": (1, 8),
}
DEFAULT_INT_BOUND = (0, 1 << 16)   # any other integer field a later version adds


def _tensors(obj: Any, prefix: str) -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(obj, torch.Tensor):
        yield prefix, obj
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            yield from _tensors(obj[k], f"{prefix}/{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _tensors(v, f"{prefix}/{i}")


def _crc(t: torch.Tensor) -> str:
    t = t.detach().cpu().contiguous()
    head = f"{t.dtype}{tuple(t.shape)}".encode()
    data = t.reshape(-1).view(torch.uint8).numpy() if t.numel() else b""
    return f"{zlib.crc32(data, zlib.crc32(head)):08x}"


def _plain(obj: Any) -> Any:
    """A canonical JSON-able form of the non-tensor values (tensors stand as their dtype and shape; floats
    exactly, as hex; keys tagged with their type so that 0 and "0" differ)."""
    if isinstance(obj, torch.Tensor):
        return ["tensor", str(obj.dtype), list(obj.shape)]
    if isinstance(obj, dict):
        return ["dict", sorted([f"{type(k).__name__}:{k}", _plain(v)] for k, v in obj.items())]
    if isinstance(obj, (list, tuple)):
        return [type(obj).__name__, [_plain(v) for v in obj]]
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, int):
        return ["int", str(obj)]
    if isinstance(obj, float):
        return ["float", obj.hex()]
    return ["other", type(obj).__name__, repr(obj)[:200]]


def fields_checksum(payload: dict[str, Any]) -> str:
    """CRC-32 of every non-tensor field: the config JSON, versions, counters and other values of `extra`."""
    text = json.dumps([[k, _plain(payload.get(k))] for k in FIELD_KEYS], separators=(",", ":"))
    return f"{zlib.crc32(text.encode()):08x}"


def tensor_checksums(payload: dict[str, Any]) -> dict[str, Any]:
    """{"algo": "crc32", "tensors": {path: crc}, "fields": crc} over G, G_ema, D, the tensors of `extra`
    and (fields) every non-tensor value."""
    sums: dict[str, str] = {}
    for key in STATE_DICTS + ("extra",):
        for path, t in _tensors(payload.get(key), key):
            sums[path] = _crc(t)
    return {"algo": CHECKSUM_ALGO, "tensors": sums, "fields": fields_checksum(payload)}


def verify_checksums(data: dict[str, Any], path: Path) -> bool:
    """Compare the stored checksums with the tensors; False if the file has none (older sgan)."""
    stored = data.get("checksums")
    if stored is None:
        return False
    if not isinstance(stored, dict) or stored.get("algo") != CHECKSUM_ALGO or not isinstance(stored.get("tensors"), dict):
        raise CheckpointError(f"{path}: the checksum table is damaged; use another snapshot.")
    now = tensor_checksums(data)["tensors"]
    expected = stored["tensors"]
    bad = sorted(k for k in set(now) | set(expected) if now.get(k) != expected.get(k))
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise CheckpointError(f"{path}: damaged: the bytes of {shown} do not match the checksums stored when "
                              "the snapshot was written; use another snapshot.")
    if "fields" not in stored:
        log.warning("note: %s was written before sgan checksummed its config and counters; they load unchecked.",
                    path.name)
    elif stored["fields"] != fields_checksum(data):
        raise CheckpointError(f"{path}: damaged: the model config, counters or other non-tensor fields do not "
                              "match the checksum stored when the snapshot was written; use another snapshot.")
    return True


def dense_problem(t: torch.Tensor) -> str | None:
    """Why `t` is not a dense tensor that owns its bytes (zero or overlapping strides, a storage smaller
    than its shape needs), or None. Checked before anything reads or copies the tensor, so that a small
    file cannot describe a huge tensor by repeating the same bytes."""
    if t.layout != torch.strided:
        return f"it is a {t.layout} tensor, not a dense one"
    if t.is_complex():
        return f"it holds complex numbers ({t.dtype}), which no StyleGAN weight is"
    if t.numel() == 0:
        return None
    expected = 1
    for stride, size in sorted((st, sz) for sz, st in zip(t.shape, t.stride()) if sz != 1):
        if stride != expected:
            return (f"its strides {list(t.stride())} for shape {list(t.shape)} repeat or skip elements "
                    "(a dense tensor is expected)")
        expected *= size
    need = (t.storage_offset() + t.numel()) * t.element_size()
    if t.untyped_storage().nbytes() < need:
        return f"its storage holds {t.untyped_storage().nbytes()} bytes, its shape needs {need}"
    return None


def check_dense(tensors: Iterator[tuple[str, torch.Tensor]], path: Path | str) -> None:
    """Refuse the first tensor of (name, tensor) pairs that is not dense, naming it."""
    for name, t in tensors:
        why = dense_problem(t)
        if why:
            raise CheckpointError(f"{path}: the tensor {name} is refused: {why}; the file is damaged or crafted.")


def check_finite(tensors: Iterator[tuple[str, torch.Tensor]], path: Path | str) -> None:
    """Refuse the first floating-point tensor that holds NaN or infinity, naming it."""
    for name, t in tensors:
        if t.is_floating_point() and t.numel() and not bool(torch.isfinite(t).all()):
            raise CheckpointError(f"{path}: the tensor {name} holds NaN or infinite values; "
                                  "the weights are damaged (such a model renders blank images).")


def check_zip_expansion(file: Any, path: Path | str, *, ratio: int = 16, slack: int = 1 << 20) -> None:
    """Refuse a zip (torch.save) file whose members claim more uncompressed bytes than a tensor file can
    hold: torch.save stores members uncompressed, so a member that expands more than `ratio` times its
    compressed size (plus `slack`) is a decompression bomb. Only the central directory is read."""
    import zipfile

    pos = file.tell() if hasattr(file, "tell") else None
    try:
        with zipfile.ZipFile(file) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return                                            # not a zip, or damaged: torch.load names it
    finally:
        if pos is not None:
            file.seek(pos)
    for info in infos:
        if info.file_size > ratio * info.compress_size + slack:
            raise CheckpointError(f"{path}: the zip member {info.filename} claims {info.file_size} bytes from "
                                  f"{info.compress_size} compressed (a decompression bomb?); refused before reading it.")


def all_tensors(obj: Any, prefix: str) -> Iterator[tuple[str, torch.Tensor]]:
    return _tensors(obj, prefix)


def _check_state_dict(obj: Any, name: str, path: Path) -> None:
    if not isinstance(obj, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items()):
        raise CheckpointError(f"{path}: the {name} entry is {type(obj).__name__}, not a state dict of tensors; "
                              "the checkpoint is damaged or crafted.")


def check_config_fields(raw: Any, path: Path, config_cls: type) -> None:
    """Every field of a model config dict has its declared type and a bounded size."""
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: the model config is {type(raw).__name__}, not an object; the checkpoint is damaged.")
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    for key, value in raw.items():
        f = fields.get(key)
        if f is None:
            continue                                      # unknown keys: from_dict names them
        kind = type(f.default)
        if kind is bool:
            ok = isinstance(value, bool)
        elif kind is int:
            lo, hi = INT_BOUNDS.get(key, DEFAULT_INT_BOUND)
            ok = isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi
        elif kind is float:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) \
                and abs(value) <= 1e6
        elif kind is str:
            ok = isinstance(value, str) and len(value) <= 64
        else:
            ok = True
        if not ok:
            raise CheckpointError(f"{path}: the model config's {key} = {value!r} is not a valid value; "
                                  "the checkpoint is damaged or crafted.")


def check_payload(data: dict[str, Any], path: Path, config_cls: type) -> None:
    """Types of every entry before anything is built (the config is checked by `check_config_fields`)."""
    for name in ("G", "G_ema"):
        _check_state_dict(data.get(name), name, path)
    if data.get("D") is not None:
        _check_state_dict(data["D"], "D", path)
    if data.get("extra") is not None and not isinstance(data["extra"], dict):
        raise CheckpointError(f"{path}: the extra entry is {type(data['extra']).__name__}, not a dict; the checkpoint is damaged.")
    if not isinstance(data.get("config"), str):
        raise CheckpointError(f"{path}: the model config is missing or not JSON text; the checkpoint is damaged.")
    for key in STATE_DICTS + ("extra",):
        check_dense(_tensors(data.get(key), key), path)


def check_against_model(build: Callable[[], torch.nn.Module], state: dict[str, torch.Tensor], path: Path,
                        name: str) -> None:
    """Build the network on the meta device (no memory) and compare names and shapes with `state`."""
    try:
        with torch.device("meta"):
            model = build()
    except (RuntimeError, NotImplementedError, TypeError):
        return                                            # a network that cannot be built on meta: load_state_dict checks
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    stored = {k: tuple(v.shape) for k, v in state.items()}
    missing = sorted(set(expected) - set(stored))
    extra = sorted(set(stored) - set(expected))
    wrong = sorted(k for k in set(expected) & set(stored) if expected[k] != stored[k])
    if missing or extra or wrong:
        what = (f"missing {missing[0]}" if missing else f"unexpected {extra[0]}" if extra else
                f"{wrong[0]} is {list(stored[wrong[0]])}, the config needs {list(expected[wrong[0]])}")
        raise CheckpointError(f"{path}: the {name} weights do not fit the stored model config ({what}).")
