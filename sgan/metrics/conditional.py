"""Metrics of class-conditional models.

- With a class fixed (`sgan metrics fid CKPT --class K`: the generator carries `class_index`), the
  real images are that class's only: per-class FID / KID / precision-recall. Their features are
  not cached (the cache is keyed by the dataset's leading images).
- Without one, fakes take classes drawn from the dataset's labels (StyleGAN2-ADA's metrics do the
  same), from a generator seeded by the metric's seed.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from sgan.data.labels import class_labels, one_hot
from sgan.errors import DataError, UsageError
from sgan.latent import z_from_seed


class ClassSubset:
    """The images of one class of a MultiResolutionDataset, re-indexed from 0."""

    def __init__(self, ds: Any, indices: np.ndarray) -> None:
        self.ds, self.indices = ds, np.asarray(indices, dtype=np.int64)
        self.path, self.resolution = ds.path, ds.resolution
        self.num_images = int(len(self.indices))

    def image(self, i: int, resolution: int | None = None) -> np.ndarray:
        return self.ds.image(int(self.indices[i]), resolution)


class LabelSampled(nn.Module):
    """A conditional G whose mapping draws each sample's class from the dataset's labels."""

    def __init__(self, G: nn.Module, table: torch.Tensor, *, seed: int) -> None:
        super().__init__()
        self.G = G
        self.cfg, self.z_dim, self.w_dim, self.num_ws, self.resolution = G.cfg, G.z_dim, G.w_dim, G.num_ws, G.resolution
        self.c_dim = G.c_dim
        self.table = table
        self.gen = torch.Generator().manual_seed(int(seed) + 0x1AB)
        self.synthesis = G.synthesis
        outer = self

        class _Mapping(nn.Module):
            def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
                return outer.G.mapping(z, outer._draw(z) if c is None else c)

        self.mapping = _Mapping()
        self.mapping.w_avg = G.mapping.w_avg

    @property
    def w_avg(self) -> torch.Tensor:
        return self.G.w_avg

    def _draw(self, z: torch.Tensor) -> torch.Tensor:
        idx = torch.randint(0, self.table.shape[0], [z.shape[0]], generator=self.gen)
        return self.table.index_select(0, idx).to(z.device)

    def map(self, z: torch.Tensor, c: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        return self.G.map(z, self._draw(z) if c is None else c, **kwargs)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        return self.G(z, self._draw(z) if c is None else c, **kwargs)


def condition_for_metric(G: nn.Module, ds: Any, data_path: Any, *, seed: int) -> tuple[nn.Module, Any, bool]:
    """(G, real dataset, cache allowed) for a metric of G against ds."""
    c_dim = int(getattr(G, "c_dim", 0) or 0)
    if c_dim == 0:
        return G, ds, True

    try:
        labels = class_labels(data_path)
    except DataError as err:
        raise UsageError(f"the model is class-conditional but --data has no labels ({err})") from None
    if labels.c_dim > c_dim:
        raise UsageError(f"--data has {labels.c_dim} classes, the model {c_dim}; use the dataset it was trained on.")
    k = getattr(G, "class_index", None)
    if k is not None:
        subset = ClassSubset(ds, np.flatnonzero(labels.indices == k))
        if subset.num_images < 2:
            raise UsageError(f"--class {k}: the dataset holds {subset.num_images} image(s) of it; need 2 or more.")
        return G, subset, False
    table = torch.nn.functional.one_hot(torch.as_tensor(labels.indices), c_dim).float()
    return LabelSampled(G, table, seed=seed), ds, True


@torch.no_grad()
def class_accuracy(G: nn.Module, class_names: list[str], detector: nn.Module, *, num: int = 200, seed: int = 0,
                   batch: int = 100, truncation_psi: float = 1.0, device: torch.device | str = "cpu",
                   detector_classes: list[str] | None = None) -> dict[str, Any]:
    """For each class k of a conditional G: the fraction of `num` images generated with c = k
    (seeds seed..seed+num-1, const noise) that the offline detector classifies as k.
    `detector` maps images in [-1, 1] to (features, class logits, ...); its classes are matched to
    G's by name when `detector_classes` is given."""

    c_dim = int(getattr(G, "c_dim", 0) or 0)
    if c_dim == 0:
        raise ValueError("class accuracy needs a conditional generator")
    det_index = ([detector_classes.index(n) if n in detector_classes else -1 for n in class_names]
                 if detector_classes else list(range(c_dim)))
    per_class, confusion = {}, []
    for k, name in enumerate(class_names):
        preds = []
        for start in range(seed, seed + num, batch):
            seeds = range(start, min(start + batch, seed + num))
            z = torch.stack([z_from_seed(s, G.z_dim) for s in seeds]).to(device)
            c = one_hot([k] * len(z), c_dim).to(device)
            img = G.synthesis(G.map(z, c, truncation_psi=truncation_psi), noise_mode="const").float().clamp(-1, 1)
            preds.append(detector(img)[1].argmax(dim=1).cpu())
        p = torch.cat(preds)
        per_class[name] = round(float((p == det_index[k]).float().mean()), 4)
        confusion.append(torch.bincount(p, minlength=max(det_index) + 1).tolist())
    return {"per_class": per_class, "mean": round(float(np.mean(list(per_class.values()))), 4),
            "confusion": confusion, "num_per_class": num}
