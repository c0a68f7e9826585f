"""Class-conditional models in the tools that use a trained model (`--class K`).

`load_class_generator(CKPT, class_spec)` loads G_ema and, for a conditional model, fixes its class:
the returned generator has the usual interface (`mapping(z)`, `map(z)`, `synthesis`, `w_avg`, ...)
with c set to the one-hot vector of the class, so generate, mix, video, project and the metrics
work unchanged. K is a class name (stored in the checkpoint by `sgan train --cond`) or an index.
An unconditional model given --class, or a conditional one without it, is a one-line error.
"""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn

from sgan.errors import UsageError
from sgan.checkpoint import inference_generator
from sgan.data.labels import one_hot, resolve_class
from sgan.formats import open_checkpoint


def class_names(extra: dict[str, Any], c_dim: int) -> list[str]:
    names = list(extra.get("classes") or [])
    return names if len(names) == c_dim else [str(i) for i in range(c_dim)]


class _FixedMapping(nn.Module):
    def __init__(self, mapping: nn.Module, c: torch.Tensor) -> None:
        super().__init__()
        self.inner = mapping
        self.register_buffer("c", c)
        self.z_dim, self.w_dim = mapping.z_dim, mapping.w_dim

    @property
    def w_avg(self) -> torch.Tensor:
        return self.inner.w_avg

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        return self.inner(z, self.c.expand(z.shape[0], -1).to(z.device) if c is None else c)

    def update_w_avg(self, w: torch.Tensor) -> None:
        self.inner.update_w_avg(w)


class ClassConditioned(nn.Module):
    """A conditional generator with its class fixed (see the module docstring)."""

    def __init__(self, G: nn.Module, c: torch.Tensor, *, class_index: int, class_name: str) -> None:
        super().__init__()
        self.G = G
        self.cfg, self.z_dim, self.w_dim, self.num_ws, self.resolution = G.cfg, G.z_dim, G.w_dim, G.num_ws, G.resolution
        self.c_dim = G.c_dim
        self.class_index, self.class_name = class_index, class_name
        self.sampling_defaults = getattr(G, "sampling_defaults", None)   # an imported model's original tool's
        self.mapping = _FixedMapping(G.mapping, c)
        self.synthesis = G.synthesis

    @property
    def w_avg(self) -> torch.Tensor:
        return self.G.w_avg

    def _c(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return self.mapping.c.expand(z.shape[0], -1).to(z.device) if c is None else c

    def map(self, z: torch.Tensor, c: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        return self.G.map(z, self._c(z, c), **kwargs)

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor:
        return self.G(z, self._c(z, c), **kwargs)


def with_class(G: nn.Module, class_spec: str | int | None, names: list[str], *, mixture_ok: bool = False) -> nn.Module:

    c_dim = int(getattr(G, "c_dim", 0) or 0)
    if c_dim == 0:
        if class_spec is not None:
            raise UsageError(f"--class {class_spec}: this model is unconditional (trained without --cond); drop --class.")
        return G
    if class_spec is None and mixture_ok:
        return G  # the caller draws classes itself (metrics against a dataset)
    if class_spec is None:
        shown = ", ".join(f"{i}={n}" for i, n in enumerate(names))
        raise UsageError(f"this model is class-conditional; pass --class NAME or INDEX (its classes: {shown}).")
    k = resolve_class(class_spec, names)
    c = one_hot([k], c_dim).to(next(G.parameters()).device)
    return ClassConditioned(G, c, class_index=k, class_name=names[k]).eval().requires_grad_(False)


def load_class_generator(path: str | os.PathLike, class_spec: str | int | None = None, *,
                         device: torch.device | str = "cpu", mixture_ok: bool = False) -> nn.Module:
    """G_ema of a checkpoint or run folder, with its class fixed when the model is conditional."""

    ckpt = open_checkpoint(path)
    G = inference_generator(ckpt, device=device)
    return with_class(G, class_spec, class_names(ckpt.extra, int(getattr(G, "c_dim", 0) or 0)), mixture_ok=mixture_ok)
