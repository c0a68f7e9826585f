"""Finding and loading the weight files of the standard detectors (never downloaded by sgan).

A weight file is looked up, in order, at:

1. the path given with `--detector-weights PATH` (`explicit=`);
2. the path in the file's environment variable (`SGAN_INCEPTION_WEIGHTS`, `SGAN_VGG16_WEIGHTS`);
3. `$SGAN_WEIGHTS_DIR/<file name>`;
4. the torch hub cache, `$TORCH_HOME/hub/checkpoints/<file name>` (default `~/.cache/torch/hub/checkpoints`),
   where pytorch-fid and torchvision keep these very files.

A missing file is a `DetectorError` naming the file, its checksum, where to put it and how to fetch
it on a networked machine. Loading checks every key and shape against sgan's network first, so a
wrong file fails with the keys that differ instead of half-loading.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from sgan.errors import DetectorError

WEIGHTS_DIR_ENV = "SGAN_WEIGHTS_DIR"


@dataclass(frozen=True)
class WeightFile:
    kind: str
    title: str
    filename: str
    sha256_prefix: str
    url: str
    env: str


WEIGHT_FILES = {
    "inception": WeightFile(
        "inception", "Inception-v3 FID weights (pytorch-fid)", "pt_inception-2015-12-05-6726825d.pth", "6726825d",
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
        "SGAN_INCEPTION_WEIGHTS"),
    "vgg16": WeightFile(
        "vgg16", "VGG16 ImageNet weights (torchvision)", "vgg16-397923af.pth", "397923af",
        "https://download.pytorch.org/models/vgg16-397923af.pth", "SGAN_VGG16_WEIGHTS"),
}

_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def hub_checkpoints_dir() -> Path:
    """torch hub's cache of weight files (honours TORCH_HOME); nothing is downloaded."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def candidate_paths(kind: str, explicit: str | os.PathLike | None = None) -> list[Path]:
    spec = WEIGHT_FILES[kind]
    paths = []
    if explicit:
        return [Path(explicit).expanduser()]
    if os.environ.get(spec.env):
        paths.append(Path(os.environ[spec.env]).expanduser())
    if os.environ.get(WEIGHTS_DIR_ENV):
        paths.append(Path(os.environ[WEIGHTS_DIR_ENV]).expanduser() / spec.filename)
    paths.append(hub_checkpoints_dir() / spec.filename)
    return paths


def locate(kind: str, explicit: str | os.PathLike | None = None) -> Path:
    """The weight file of `kind` ("inception" or "vgg16"), or a one-line DetectorError on how to get it."""
    spec = WEIGHT_FILES[kind]
    paths = candidate_paths(kind, explicit)
    for p in paths:
        if p.is_file():
            return p
    if explicit:
        raise DetectorError(f"--detector-weights {explicit}: no such file; give the {spec.title} file "
                            f"{spec.filename} (sha256 {spec.sha256_prefix}...).")
    hub = hub_checkpoints_dir()
    raise DetectorError(
        f"{spec.title} not found: sgan needs {spec.filename} (sha256 {spec.sha256_prefix}...) and does not download it; "
        f"put it in {hub}/ or pass --detector-weights PATH (or set {spec.env}); on a networked machine: "
        f"mkdir -p {hub} && curl -L -o {hub}/{spec.filename} {spec.url} . "
        f"Offline, train the built-in detector with `sgan detector train DATA.lmdb --out shapes-detector.pt` "
        f"and pass --detector shapes-detector.pt.")


def sha256_file(path: str | os.PathLike) -> str:
    """The file's sha256 (hex), remembered per (path, size, mtime) within the process."""
    p = Path(path)
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA_CACHE:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        _SHA_CACHE[key] = h.hexdigest()
    return _SHA_CACHE[key]


def read_state_dict(path: str | os.PathLike, what: str) -> dict[str, torch.Tensor]:
    """A tensor-only state_dict file, opened with weights_only=True (a file never runs code)."""
    p = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as err:  # refused pickles, truncated zips, text files...
        raise DetectorError(f"{p}: cannot read it as a {what} state_dict ({type(err).__name__}); give the plain "
                            f".pth weight file (TorchScript and pickled models are not accepted).") from None
    if isinstance(data, dict) and "state_dict" in data and isinstance(data["state_dict"], dict):
        data = data["state_dict"]
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise DetectorError(f"{p}: this is not a {what} state_dict (a dict of tensors); give the plain .pth weight file.")
    return data


def load_strict(module: nn.Module, state: dict[str, torch.Tensor], *, source: str, what: str,
                optional_prefixes: tuple[str, ...] = ()) -> None:
    """Load `state` into `module` after checking every key and shape; `num_batches_tracked` and keys
    under `optional_prefixes` (parts sgan does not use) may be missing from the file."""
    own = module.state_dict()
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")
               and not k.startswith(optional_prefixes)]
    unexpected = [k for k in state if k not in own]
    wrong = [f"{k} {list(state[k].shape)} (expected {list(own[k].shape)})" for k in own
             if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {', '.join(missing[:3])})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {', '.join(unexpected[:3])})")
        if wrong:
            parts.append(f"{len(wrong)} wrong shapes (e.g. {'; '.join(wrong[:3])})")
        raise DetectorError(f"{source}: not the {what} weights sgan expects: {'; '.join(parts)}.")
    merged = dict(own)
    merged.update({k: v.to(own[k].dtype) for k, v in state.items()})
    module.load_state_dict(merged, strict=True)
