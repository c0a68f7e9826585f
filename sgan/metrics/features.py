"""Detector features of generated and real images, in batches, with progress and a statistics cache.

Generated images follow the official protocol: z ~ N(0, I) from a numpy Generator seeded by `seed`
(one stream, drawn batch after batch, so results do not depend on the batch size), per-sample noise
generators seeded by (seed, index), no truncation unless asked, and uint8 by
`(x * 127.5 + 128).clamp(0, 255)` truncated (round half up of (x + 1) * 127.5), the same path as reals.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from sgan.errors import DataError, UsageError
from sgan.fileio import atomic_write
from sgan.data import layout
from sgan.data.lmdb_dataset import MultiResolutionDataset
from sgan.metrics.fid import mean_cov

Progress = Callable[[int, int], None]
CACHE_VERSION = 1
CACHE_DIR_ENV = "SGAN_CACHE_DIR"


def to_uint8_official(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float -> uint8 by x * 127.5 + 128, clamp, truncate (as NVIDIA's tools)."""
    return (images * 127.5 + 128).clamp(0, 255).to(torch.uint8)


def noise_generators(seed: int, start: int, count: int, *, salt: int = 0) -> list[torch.Generator]:
    """One torch.Generator per sample, seeded by (seed, sample index): batch-size independent."""
    return [torch.Generator().manual_seed(int(np.random.SeedSequence([seed, salt, start + i]).generate_state(1)[0]))
            for i in range(count)]


def latent_stream(seed: int, z_dim: int, *, salt: int = 0) -> Callable[[int], np.ndarray]:
    """`draw(n) -> [n, z_dim]` float32 from one numpy stream: consecutive draws concatenate to the same numbers."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, salt]))

    def draw(n: int) -> np.ndarray:
        return rng.standard_normal((n, z_dim)).astype(np.float32)

    return draw


@torch.no_grad()
def generated_features(G, detector, *, num: int, batch: int = 32, seed: int = 0, trunc: float = 1.0,
                       device: torch.device | str = "cpu", progress: Progress | None = None) -> np.ndarray:
    """Features [num, D] of `num` images of G (see the module docstring)."""
    if num < 1 or batch < 1:
        raise UsageError("--num and --batch must be at least 1.")
    device = torch.device(device)
    draw = latent_stream(seed, G.z_dim)
    out = np.empty((num, detector.dim), dtype=np.float32)
    for start in range(0, num, batch):
        n = min(batch, num - start)
        z = torch.from_numpy(draw(n)).to(device)
        images = G(z, truncation_psi=trunc, noise_mode="random", generator=noise_generators(seed, start, n))
        out[start:start + n] = detector.features(to_uint8_official(images)).cpu().numpy()
        if progress:
            progress(start + n, num)
    return out


def open_dataset(path: str | os.PathLike, resolution: int):
    """The LMDB dataset at `resolution`, or a one-line DataError saying what is wrong."""

    p = Path(path)
    if not p.exists():
        raise DataError(f"--data {p}: no such dataset; give the .lmdb folder made by `sgan prepare-dataset`.")
    try:
        return MultiResolutionDataset(p, resolution=resolution)
    except DataError as err:
        raise DataError(f"--data {p}: {err}") from None
    except Exception as err:  # lmdb.Error and friends: a folder or file that is not a database
        raise DataError(f"--data {p}: not an sgan/rosinality LMDB dataset ({type(err).__name__}); "
                        f"build one with `sgan prepare-dataset SOURCE {p}`.") from None


def dataset_digest(ds, num: int, progress: Progress | None = None) -> str:
    """sha256 of the encoded records of the first `num` images at the dataset's resolution."""

    env = layout.shared_env(ds.path, os.path.realpath(ds.path))
    h = hashlib.sha256()
    with env.begin(write=False, buffers=False) as txn:
        for i in range(num):
            key = layout.image_key(ds.resolution, i)
            value = txn.get(key)
            if value is None:
                raise DataError(f"{ds.path}: record {key.decode()} is missing; prepare the dataset again.")
            h.update(key)
            h.update(len(value).to_bytes(8, "little"))
            h.update(value)
    return h.hexdigest()


@torch.no_grad()
def real_features(ds, detector, *, num: int, batch: int = 64, device: torch.device | str = "cpu",
                  progress: Progress | None = None) -> np.ndarray:
    """Features [num, D] of the first `num` images of the dataset (no flip)."""
    device = torch.device(device)
    out = np.empty((num, detector.dim), dtype=np.float32)
    for start in range(0, num, batch):
        n = min(batch, num - start)
        arr = np.stack([ds.image(i) for i in range(start, start + n)]).transpose(0, 3, 1, 2)
        out[start:start + n] = detector.features(torch.from_numpy(np.ascontiguousarray(arr)).to(device)).cpu().numpy()
        if progress:
            progress(start + n, num)
    return out


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sgan" / "metrics"


def cache_key(*, data_digest: str, detector, resolution: int, num: int) -> tuple[str, dict]:
    meta = {"cache_version": CACHE_VERSION, "data_sha256": data_digest, "detector": detector.name,
            "detector_sha256": detector.sha256, "detector_options": detector.options, "resolution": resolution,
            "num_real": num, "xflip": False}
    return hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:24], meta


def load_cached(path: Path, meta: dict) -> np.ndarray | None:
    """Cached features, or None when the file is absent, unreadable or keyed differently."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            if json.loads(str(data["meta"])) != meta:
                return None
            return np.array(data["features"])
    except (OSError, ValueError, KeyError):
        return None


def save_cached(path: Path, features: np.ndarray, meta: dict) -> None:
    """Write features, their mean and covariance (`mu`, `sigma`: pytorch-fid's .npz keys) atomically."""

    mu, sigma = mean_cov(features) if features.shape[0] > 1 else (features.mean(0), np.zeros((features.shape[1],) * 2))
    atomic_write(path, lambda f: np.savez(f, features=features, mu=mu, sigma=sigma, n=np.int64(features.shape[0]),
                                          meta=np.array(json.dumps(meta, sort_keys=True))))


def cached_real_features(ds, detector, *, num: int, batch: int = 64, device: torch.device | str = "cpu",
                         cache_dir: str | os.PathLike | None = None, use_cache: bool = True,
                         progress: Progress | None = None) -> tuple[np.ndarray, dict]:
    """Real features through the cache, keyed by the data's bytes, the detector's weights and options.
    Returns (features, info) with info {"cache": "hit"|"miss"|"off", "path": ...}."""
    if not use_cache:
        return real_features(ds, detector, num=num, batch=batch, device=device, progress=progress), {"cache": "off"}
    key, meta = cache_key(data_digest=dataset_digest(ds, num), detector=detector, resolution=ds.resolution, num=num)
    folder = Path(cache_dir) if cache_dir else default_cache_dir()
    path = folder / f"{Path(ds.path).name}-{ds.resolution}px-{key}.npz"
    feats = load_cached(path, meta)
    if feats is not None:
        if progress:
            progress(num, num)
        return feats, {"cache": "hit", "path": str(path)}
    feats = real_features(ds, detector, num=num, batch=batch, device=device, progress=progress)
    try:
        save_cached(path, feats, meta)
    except OSError as err:  # an unwritable cache folder costs time, not the result
        return feats, {"cache": f"not written ({err.strerror})", "path": str(path)}
    return feats, {"cache": "miss", "path": str(path)}
