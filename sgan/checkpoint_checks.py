"""Checks of a checkpoint before anything is built from it: tensor checksums, field types, bounds.

- Checksums: `tensor_checksums(payload)` is a CRC-32 of every tensor's bytes (with its dtype and
  shape), keyed by its path in the payload (`G_ema/synthesis.b8.conv0.weight`,
  `extra/opt_G/state/0/exp_avg`). `save_checkpoint` stores them as `payload["checksums"]`;
  `verify_checksums` recomputes them on load (about 1 s per GB of tensors) and names the damaged
  tensors. Files without checksums (older sgan) load unchecked.
- Types and bounds: `check_payload` refuses state dicts that are not {str: Tensor}, extras that
  are not dicts and model configs whose fields have the wrong type or absurd sizes, so that a
  crafted file cannot make sgan allocate without bound or fail with a traceback.
- Shapes: `check_against_model` builds the network on the `meta` device (no memory) and compares
  every parameter and buffer shape with the stored ones before the real network is allocated.
"""

from __future__ import annotations

import dataclasses
import math
import zlib
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from sgan.errors import CheckpointError

CHECKSUM_ALGO = "crc32"
STATE_DICTS = ("G", "G_ema", "D")

# Upper bounds of integer model settings (far above any published StyleGAN; a crafted file with more is refused).
INT_BOUNDS: dict[str, tuple[int, int]] = {
    "resolution": (4, 4096), "num_channels": (1, 4), "z_dim": (1, 4096), "w_dim": (1, 4096), "c_dim": (0, 100000),
    "mapping_layers": (1, 64), "mapping_fmaps": (1, 4096), "fmap_base": (1, 1 << 17), "fmap_max": (1, 4096),
    "fmap_min": (1, 4096), "mbstd_group_size": (0, 1024), "mbstd_num_features": (0, 64),
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


def tensor_checksums(payload: dict[str, Any]) -> dict[str, Any]:
    """{"algo": "crc32", "tensors": {path: crc}} over G, G_ema, D and the tensors of `extra`."""
    sums: dict[str, str] = {}
    for key in STATE_DICTS + ("extra",):
        for path, t in _tensors(payload.get(key), key):
            sums[path] = _crc(t)
    return {"algo": CHECKSUM_ALGO, "tensors": sums}


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
    return True


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
