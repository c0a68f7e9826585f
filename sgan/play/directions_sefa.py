"""SeFa, closed-form factorization of latent semantics (Shen & Zhou, CVPR 2021).

Every style layer starts with an affine map s = A_i w + b_i. Moving w by n changes the styles of
the chosen layers by A n, with A the affines of those layers stacked row-wise; the directions that
change them most are the unit n maximising |A n|^2 = n^T A^T A n: the eigenvectors of A^T A,
sorted here by eigenvalue, largest first (the eigenvalue is the direction's score).

Which affines: StyleGAN 1: the AdaIN style dense layer of every conv layer (scale and shift rows,
2C x w_dim); StyleGAN2: the modulation affine of every conv layer, and for the last ws index,
which drives only the final ToRGB, that ToRGB's affine; StyleGAN3: the affine of every synthesis
layer (ws 1 .. num_ws-1, the last one the ToRGB layer); ws 0 of StyleGAN3 drives only the Fourier
input's rotation and translation, not a style, so it has no affine here and is left out of
`layers`. The weights are the effective ones (equalized-learning-rate gain folded in).

Normalisation: with `normalize_rows` (the default) every row of A (one output unit's weight
vector) is scaled to unit length before A^T A, as the authors' code (genforce/sefa) does, so that
wide layers or layers with larger weights do not dominate; rosinality's closed_form_factorization.py
stacks the raw modulation weights (conv layers only) instead, which `normalize_rows=False` gives.
Eigenvectors have no inherent sign; each is flipped so its largest-magnitude component is positive.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from sgan.errors import UsageError
from sgan.play.directions import Directions


def _effective(affine) -> torch.Tensor:
    return (affine.weight.detach().double() * affine.weight_gain).cpu()


def style_affines(G) -> dict[int, list[torch.Tensor]]:
    """{ws index: effective weight matrices [out, w_dim] of the style affines that ws index drives}."""
    arch = getattr(G.cfg, "arch", "stylegan1")
    S = G.synthesis
    out: dict[int, list[torch.Tensor]] = {}
    if arch == "stylegan1":
        for block in S.blocks:
            for epi in (block.epi0, block.epi1):
                out.setdefault(int(epi.layer_idx), []).append(_effective(epi.affine))
    elif arch == "stylegan2":
        w_idx = 0
        for res in S.block_resolutions:
            block = getattr(S, f"b{res}")
            convs = [block.conv1] if block.num_conv == 1 else [block.conv0, block.conv1]
            for i, conv in enumerate(convs):
                out.setdefault(w_idx + i, []).append(_effective(conv.affine))
            if block.num_torgb and (w_idx + block.num_conv) not in out and block.is_last:
                out[w_idx + block.num_conv] = [_effective(block.torgb.affine)]
            w_idx += block.num_conv
    elif arch == "stylegan3":
        for i, name in enumerate(S.layer_names):
            out[i + 1] = [_effective(getattr(S, name).affine)]
    else:
        raise UsageError(f"sefa does not know the style layers of a {arch} model.")
    return out


def stacked_affines(G, layers: Sequence[int], *, normalize_rows: bool = True) -> tuple[torch.Tensor, list[int]]:
    """(A [sum of outputs, w_dim] float64, the ws indices of `layers` that have a style affine)."""
    table = style_affines(G)
    used = [i for i in sorted(set(int(x) for x in layers)) if i in table]
    if not used:
        raise UsageError(f"--layers {list(layers)} selects no style layer of this model (its style layers are ws "
                         f"{min(table)}-{max(table)}).")
    A = torch.cat([m for i in used for m in table[i]], dim=0)
    if normalize_rows:
        A = A / A.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return A, used


def fix_signs(vectors: np.ndarray) -> np.ndarray:
    """Rows flipped so that each row's largest-magnitude component is positive."""
    pick = np.abs(vectors).argmax(axis=1)
    sign = np.sign(vectors[np.arange(len(vectors)), pick])
    return vectors * np.where(sign == 0, 1.0, sign)[:, None]


def sefa(G, *, layers: Sequence[int], num: int | None = None, normalize_rows: bool = True,
         checkpoint_sha256: str = "") -> Directions:
    """The `num` (all w_dim when None) leading eigenvectors of A^T A for the style affines of `layers`."""
    if num is not None and not 1 <= num:
        raise UsageError(f"--num must be at least 1, got {num}.")
    A, used = stacked_affines(G, layers, normalize_rows=normalize_rows)
    assert A.shape[1] == G.w_dim, (A.shape, G.w_dim)
    values, vectors = torch.linalg.eigh(A.T @ A)             # ascending
    order = torch.argsort(values, descending=True)
    k = G.w_dim if num is None else min(num, G.w_dim)
    values, vectors = values[order][:k].numpy(), vectors[:, order][:, :k].T.numpy()
    return Directions(directions=fix_signs(vectors), scores=np.maximum(values, 0.0), method="sefa", layers=used,
                      names=[f"sefa-{i}" for i in range(k)], checkpoint_sha256=checkpoint_sha256,
                      w_dim=G.w_dim, num_ws=G.num_ws)
