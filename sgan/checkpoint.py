"""Checkpoints: tensors and plain values only, loaded with torch.load(weights_only=True).

A snapshot file holds::

    {"format": "sgan-checkpoint", "format_version": 1, "sgan_version": "...",
     "config": "<ModelConfig as JSON>", "G": state_dict, "G_ema": state_dict, "D": state_dict,
     "extra": {...plain values and tensors, e.g. training state...},
     "checksums": {"algo": "crc32", "tensors": {"G_ema/<name>": "<crc>", ...}}}

Loading checks every entry's type and the config's bounds, verifies the checksums (files written
before they existed load unchecked) and compares shapes on the meta device before allocating
(sgan.checkpoint_checks).

Opening a file never runs code. Writes are atomic (sgan.fileio). A training run folder holds
`latest.json` = {"snapshot": "<file name>", "kimg": ...}, written after the snapshot is complete;
every loader accepts the folder wherever it accepts a snapshot.
"""

from __future__ import annotations

import json
import os
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable

import torch

from sgan import __version__
from sgan.checkpoint_checks import (STATE_DICTS, all_tensors, check_against_model, check_config_fields, check_finite,
                                    check_payload, check_zip_expansion, tensor_checksums, verify_checksums)
from sgan.errors import CheckpointError
from sgan.fileio import atomic_write, atomic_write_json
from sgan.nn import Discriminator, Generator, ModelConfig, make_discriminator, make_generator

class NotAnSganCheckpoint(CheckpointError):
    """A readable file that is not an sgan checkpoint (perhaps a foreign one: sgan.formats opens those)."""


FORMAT = "sgan-checkpoint"
FORMAT_VERSION = 1
LATEST_POINTER = "latest.json"


@dataclass
class Checkpoint:
    path: Path
    config: ModelConfig
    G: dict[str, torch.Tensor]
    G_ema: dict[str, torch.Tensor]
    D: dict[str, torch.Tensor] | None
    extra: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION
    sgan_version: str = __version__


def save_checkpoint(path: str | os.PathLike, *, config: ModelConfig, G: torch.nn.Module, G_ema: torch.nn.Module,
                    D: torch.nn.Module | None, extra: dict[str, Any] | None = None,
                    write: Callable[[Any, BinaryIO], None] | None = None) -> Path:
    """Save G, G_ema and D with the model config, atomically. `write(obj, f)` defaults to torch.save."""
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "sgan_version": __version__,
        "config": json.dumps(config.to_dict(), sort_keys=True),
        "G": _cpu_state(G),
        "G_ema": _cpu_state(G_ema),
        "D": _cpu_state(D) if D is not None else None,
        "extra": extra or {},
    }
    payload["checksums"] = tensor_checksums(payload)
    writer = write or (lambda obj, f: torch.save(obj, f))
    return atomic_write(path, lambda f: writer(payload, f))


def _cpu_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def write_latest_pointer(run_dir: str | os.PathLike, snapshot: str | os.PathLike, *, kimg: float) -> Path:
    """Point the run folder at its newest complete snapshot (call after the snapshot is written)."""
    return atomic_write_json(Path(run_dir) / LATEST_POINTER, {"snapshot": Path(snapshot).name, "kimg": kimg})


def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A snapshot file as it is, or a run folder's latest complete snapshot."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{p}: no such file or folder; give a snapshot file (.pt) or a training run folder.")
    if p.is_file():
        return p
    pointer = p / LATEST_POINTER
    if not pointer.is_file():
        raise CheckpointError(f"{p}: this folder has no {LATEST_POINTER}, so it holds no complete snapshot yet; "
                              "give a snapshot file or a run folder written by `sgan train`.")
    try:
        name = json.loads(pointer.read_text())["snapshot"]
    except (ValueError, KeyError, TypeError):
        raise CheckpointError(f"{pointer}: unreadable snapshot pointer; give a snapshot file directly.") from None
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise CheckpointError(f"{pointer}: the snapshot entry is {name!r}, not a file name in {p}; "
                              "give a snapshot file directly.")
    target = p / name
    if not target.is_file():
        raise CheckpointError(f"{pointer} points at {name}, which is missing; give a snapshot file directly.")
    return target


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load a checkpoint (file or run folder) safely, with a clear error for anything else."""
    p = resolve_checkpoint(path)
    if p.stat().st_size == 0:
        raise CheckpointError(f"{p}: the file is empty (an interrupted copy?); use another snapshot.")
    check_zip_expansion(p, p)
    try:
        with warnings.catch_warnings():  # foreign pickles make torch warn before it refuses them
            warnings.simplefilter("ignore")
            data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # any refusal: name what the file looks like instead of a traceback
        raise NotAnSganCheckpoint(f"{p}: {_identify_foreign(p, err)}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise NotAnSganCheckpoint(f"{p}: {_describe_dict(data)}")
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(f"{p}: checkpoint format version {version} is newer than this sgan understands "
                              f"({FORMAT_VERSION}); upgrade sgan (pip install -U sgan).")
    check_payload(data, p, ModelConfig)
    try:
        raw_config = json.loads(data["config"])
    except ValueError:
        raise CheckpointError(f"{p}: the model config is not valid JSON; the checkpoint is damaged.") from None
    check_config_fields(raw_config, p, ModelConfig)
    verify_checksums(data, p)
    for key in STATE_DICTS:
        check_finite(all_tensors(data.get(key), key), p)
    try:
        config = ModelConfig.from_dict(raw_config)
        return Checkpoint(path=p, config=config, G=data["G"], G_ema=data["G_ema"], D=data.get("D"),
                          extra=data.get("extra") or {}, format_version=version,
                          sgan_version=str(data.get("sgan_version", "?")))
    except (KeyError, ValueError, TypeError) as err:
        raise CheckpointError(f"{p}: the sgan checkpoint is damaged ({err}); use another snapshot.") from None


def _identify_foreign(p: Path, err: Exception) -> str:
    """Name what a file that torch.load(weights_only=True) refused looks like."""
    with open(p, "rb") as f:
        head = f.read(1 << 20)
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(p) as zf:
                names = zf.namelist()
                pkl = next((n for n in names if n.endswith("data.pkl")), None)
                blob = zf.read(pkl) if pkl else b""
        except (zipfile.BadZipFile, OSError, EOFError):
            return "the file is truncated or corrupted (its zip archive is incomplete); use another snapshot."
        if b"argparse" in blob or b"Namespace" in blob:
            kind = "a rosinality StyleGAN checkpoint" if (b"g_ema" in blob or b"g_running" in blob) else "a PyTorch checkpoint"
            return (f"this looks like {kind} (it pickles an argparse Namespace), not an sgan checkpoint; "
                    "sgan loads only its own checkpoints, which never run code when opened.")
        return f"this is a PyTorch file that is not an sgan checkpoint ({type(err).__name__}); sgan loads only its own checkpoints."
    if head[:1] == b"\x80":
        if b"dnnlib" in head or b"torch_utils" in head:
            return ("this looks like an NVIDIA StyleGAN network pickle (.pkl, which runs code when loaded), "
                    f"not an sgan checkpoint; convert it once with `sgan import {p.name} --out model.pt` "
                    "(which runs none of its code).")
        return "this is a Python pickle, not an sgan checkpoint; sgan refuses pickles (they can run code)."
    if head[:1] in (b"{", b"["):
        return "this is a text/JSON file, not an sgan checkpoint; give a snapshot-*.pt file or a run folder."
    return "this is not an sgan checkpoint (unrecognised or truncated file); give a snapshot-*.pt file or a run folder."


def _describe_dict(data: Any) -> str:
    if isinstance(data, dict):
        keys = set(data)
        if {"g_running", "generator"} & keys or {"g_ema", "g", "d"} <= keys:
            return "this looks like a rosinality StyleGAN checkpoint, not an sgan checkpoint."
        if all(isinstance(v, torch.Tensor) for v in data.values()):
            return "this is a bare PyTorch state_dict, not an sgan checkpoint (no model config)."
    return "this is not an sgan checkpoint; give a snapshot-*.pt file written by sgan or a run folder."


def build_generator(ckpt: Checkpoint, *, ema: bool = True, device: torch.device | str = "cpu") -> Generator:
    """The generator of a checkpoint in eval mode without gradients (G_ema by default)."""
    check_against_model(lambda: make_generator(ckpt.config), ckpt.G_ema if ema else ckpt.G, ckpt.path,
                        "G_ema" if ema else "G")
    G = make_generator(ckpt.config)
    _load_state(G, ckpt.G_ema if ema else ckpt.G, ckpt.path, "G_ema" if ema else "G")
    return G.eval().requires_grad_(False).to(device)


def build_discriminator(ckpt: Checkpoint, *, device: torch.device | str = "cpu") -> Discriminator:
    if ckpt.D is None:
        raise CheckpointError(f"{ckpt.path}: this checkpoint holds no discriminator (an exported generator).")
    check_against_model(lambda: make_discriminator(ckpt.config), ckpt.D, ckpt.path, "D")
    D = make_discriminator(ckpt.config)
    _load_state(D, ckpt.D, ckpt.path, "D")
    return D.to(device)


def _load_state(module: torch.nn.Module, state: dict[str, torch.Tensor], path: Path, name: str) -> None:
    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else "shape mismatch"
        raise CheckpointError(f"{path}: the {name} weights do not fit the stored model config ({first}).") from None


def open_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """An sgan checkpoint (file or run folder). Foreign StyleGAN files (NVIDIA pickles, rosinality
    files) are opened by `sgan.formats.open_checkpoint`, which converts them in memory; this module
    knows nothing of them (imports flow formats -> checkpoint)."""
    return load_checkpoint(path)


def inference_generator(ckpt: Checkpoint, *, ema: bool = True, device: torch.device | str = "cpu") -> Generator:
    """`build_generator` plus, for an imported model, its original tool's sampling defaults
    (`G.sampling_defaults`: psi, cutoff and noise mode, used by sgan generate)."""
    G = build_generator(ckpt, ema=ema, device=device)
    record = ckpt.extra.get("import") if isinstance(ckpt.extra, dict) else None
    if isinstance(record, dict) and isinstance(record.get("defaults"), dict):
        G.sampling_defaults = dict(record["defaults"])
    return G


def load_generator(path: str | os.PathLike, *, device: torch.device | str = "cpu", ema: bool = True) -> Generator:
    """Load G_ema (or G) from a snapshot file or run folder, ready for inference (`sgan.load_generator`
    also takes foreign checkpoints)."""
    return inference_generator(open_checkpoint(path), ema=ema, device=device)
