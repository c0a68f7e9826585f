"""Feeding real images: a resumable, rank-aware infinite sampler, decoding ahead, fading reals.

Which image a step sees is a function of (seed, position) only: position p of the stream is item
`perm_e[p mod L]` of epoch e = p div L, where perm_e is a permutation seeded by (seed, e) and L the
dataset length (doubled by x-flip mirroring). A global minibatch takes positions [p, p + B); rank
r of W takes every W-th of them starting at r (the strided split keeps the minibatch-stddev groups
of a 1-process run). Resuming only needs p.

Small datasets (the default up to 1 GiB per resolution) are decoded once per resolution into one
uint8 tensor; larger ones are decoded a batch ahead on a thread pool.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
from pathlib import Path

import numpy as np
import torch

from sgan.data import layout
from sgan.data.lmdb_dataset import MultiResolutionDataset
from sgan.errors import DataError
from sgan.nn.layers import downscale2d, upscale2d
from sgan.train.latents import mix_seed

CACHE_BYTES = 1 << 30


class RealStream:
    """uint8 minibatches [b, C, r, r] of a multi-resolution LMDB, by stream position."""

    def __init__(self, path: str | Path, *, mirror: bool, seed: int, rank: int = 0, world_size: int = 1,
                 cache_bytes: int = CACHE_BYTES, threads: int = 4) -> None:
        path = Path(path)
        if not path.exists():
            raise DataError(f"{path}: no such dataset; prepare one with `sgan prepare-dataset SOURCE {path}`.")
        self.dataset = MultiResolutionDataset(path, resolution=max(dataset_sizes(path)), xflip=mirror)
        self.num_images = self.dataset.num_images
        if self.num_images < 1:
            raise DataError(f"{path}: the dataset is empty; prepare it again.")
        self.length = len(self.dataset)
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.cache_bytes = cache_bytes
        self._perms: dict[int, torch.Tensor] = {}
        self._cache: dict[int, torch.Tensor] = {}
        self._pool = cf.ThreadPoolExecutor(max_workers=threads, thread_name_prefix="sgan-data")
        self._ahead: tuple[tuple[int, int, int], cf.Future] | None = None

    @property
    def sizes(self) -> list[int]:
        return list(self.dataset.sizes)

    def check_sizes(self, needed: list[int]) -> None:
        missing = [s for s in needed if s not in self.dataset.sizes]
        if missing:
            raise DataError(f"{self.dataset.path} has no {', '.join(f'{s}x{s}' for s in missing)} images "
                            f"(it holds {', '.join(str(s) for s in self.dataset.sizes)}); prepare it again with "
                            f"--min-size {min(needed)} --max-size {max(needed)}, or change --start-resolution/--resolution.")

    # -- positions -> indices ----------------------------------------------------------------

    def _perm(self, epoch: int) -> torch.Tensor:
        perm = self._perms.get(epoch)
        if perm is None:
            g = torch.Generator().manual_seed(mix_seed(self.seed, 0x5EED, epoch))
            perm = torch.randperm(self.length, generator=g)
            self._perms = {e: p for e, p in self._perms.items() if e >= epoch - 1}
            self._perms[epoch] = perm
        return perm

    def indices(self, position: int, batch: int) -> list[int]:
        """Dataset indices of this rank's share of the global minibatch at `position`."""
        out = []
        for p in range(position + self.rank, position + batch, self.world_size):
            epoch, j = divmod(p, self.length)
            out.append(int(self._perm(epoch)[j]))
        return out

    # -- decoding ----------------------------------------------------------------------------

    def _cached(self, resolution: int) -> torch.Tensor | None:
        if resolution in self._cache:
            return self._cache[resolution]
        if self.num_images * 3 * resolution * resolution > self.cache_bytes:
            return None
        self._cache.clear()  # one resolution at a time
        chunks = list(self._pool.map(lambda lo: self._decode_range(lo, resolution),
                                     range(0, self.num_images, 1024)))
        self._cache[resolution] = torch.cat(chunks)
        return self._cache[resolution]

    def _decode_range(self, lo: int, resolution: int) -> torch.Tensor:
        hi = min(lo + 1024, self.num_images)
        arr = np.stack([self.dataset.image(i, resolution) for i in range(lo, hi)])
        return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()

    def _load(self, indices: list[int], resolution: int) -> torch.Tensor:
        idx = torch.tensor(indices, dtype=torch.long)
        base, flip = idx % self.num_images, idx >= self.num_images
        cache = self._cached(resolution)
        if cache is not None:
            x = cache.index_select(0, base)
        else:
            x = torch.from_numpy(np.stack([self.dataset.image(int(i), resolution) for i in base])).permute(0, 3, 1, 2)
        if bool(flip.any()):
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        return x.contiguous()

    def batch(self, position: int, batch: int, resolution: int) -> torch.Tensor:
        """This rank's uint8 images [batch / world, C, r, r] at stream `position`."""
        key = (position, batch, resolution)
        if self._ahead is not None and self._ahead[0] == key:
            x = self._ahead[1].result()
        else:
            x = self._load(self.indices(position, batch), resolution)
        self._ahead = None
        return x

    def prefetch(self, position: int, batch: int, resolution: int) -> None:
        """Start decoding the minibatch a later `batch()` call will ask for."""
        if self._cached(resolution) is not None:
            return  # indexing the cache is cheaper than a thread hop
        key = (position, batch, resolution)
        self._ahead = (key, self._pool.submit(self._load, self.indices(position, batch), resolution))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.dataset.close()


def dataset_sizes(path: Path) -> list[int]:
    """The image sizes an LMDB holds (its header), without opening the images."""
    env = layout.open_env(path)
    try:
        return layout.read_header(env, path)["sizes"]
    finally:
        env.close()


def to_float(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 [N, C, r, r] -> float32 in [-1, 1] on `device`."""
    assert images.dtype == torch.uint8 and images.ndim == 4, (images.dtype, images.shape)
    return images.to(device, non_blocking=True).float().div_(127.5).sub_(1.0)


def fade_reals(x: torch.Tensor, lod: float) -> torch.Tensor:
    """The official process_reals fade: lerp(x, upscale(downscale(x)), frac(lod))."""
    frac = lod - math.floor(lod)
    if frac <= 0.0:
        return x
    return torch.lerp(x, upscale2d(downscale2d(x)), frac)
