"""Mode coverage: which classes a generator draws, and how often, as told by a class detector.

A detector trained by `sgan detector train` (sgan.metrics.detector_train) gives each generated
image class probabilities over the dataset's K classes and, when trained with one, a `junk` class.
A sample is

- `junk` when its most likely class is junk (whatever the probability);
- `confident` when its most likely class is a real class with probability >= `threshold`;
- `unsure` otherwise.

With p_k = (confident samples of class k) / (confident samples) and q_k the real share of class k
(stored in the detector file: the class counts of its whole training database):

    entropy H(p) = -sum_k p_k log2 p_k                 (bits; K equal classes: log2 K)
    KL(p || q)  = sum_{k: p_k > 0} p_k log2(p_k / q_k)  (bits; 0 when p = q, finite when a class is missing)
    covered     = #{k : p_k >= cover_fraction * q_k}    (default cover_fraction 0.5: "at least half its share")

These are the numbers of the mode-dropping literature (Stacked-MNIST's modes covered and
KL(p_gen || p_data), VEEGAN / PacGAN / R3GAN), with the detector named beside them: an offline
detector's numbers are comparable only with the same detector file.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

DEFAULT_THRESHOLD = 0.8
DEFAULT_COVER_FRACTION = 0.5


def entropy_bits(p: Sequence[float]) -> float:
    """-sum p log2 p over the entries above 0."""
    p = np.asarray(p, dtype=np.float64)
    nz = p[p > 0]
    return float(-(nz * np.log2(nz)).sum()) + 0.0


def kl_bits(p: Sequence[float], q: Sequence[float]) -> float:
    """KL(p || q) in bits over the entries where p > 0 (inf where q is 0 there)."""
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    assert p.shape == q.shape, f"p and q must have one shape, got {p.shape} and {q.shape}"
    on = p > 0
    if np.any(q[on] <= 0):
        return math.inf
    return float((p[on] * np.log2(p[on] / q[on])).sum()) + 0.0


def class_stats(confident_counts: Sequence[int], real_distribution: Sequence[float], *, num_unsure: int,
                num_junk: int, class_names: Sequence[str], cover_fraction: float = DEFAULT_COVER_FRACTION) -> dict:
    """The mode-coverage numbers (see the module docstring) of a histogram of confident samples."""
    counts = np.asarray(confident_counts, dtype=np.int64)
    q = np.asarray(real_distribution, dtype=np.float64)
    k = len(class_names)
    assert counts.shape == (k,) and q.shape == (k,), f"expected {k} counts and shares, got {counts.shape}, {q.shape}"
    assert num_unsure >= 0 and num_junk >= 0 and np.all(counts >= 0)
    q = q / q.sum()
    n_conf = int(counts.sum())
    total = n_conf + num_unsure + num_junk
    p = counts / n_conf if n_conf else np.zeros(k)
    covered = [c for c, pk, qk in zip(class_names, p, q) if n_conf and pk >= cover_fraction * qk]
    return {
        "num_classes": k,
        "histogram": {c: round(float(v), 6) for c, v in zip(class_names, p)},
        "counts": {c: int(v) for c, v in zip(class_names, counts)},
        "real_distribution": {c: round(float(v), 6) for c, v in zip(class_names, q)},
        "entropy_bits": round(entropy_bits(p), 6) if n_conf else None,
        "max_entropy_bits": round(math.log2(k), 6),
        "real_entropy_bits": round(entropy_bits(q), 6),
        "kl_bits": round(kl_bits(p, q), 6) if n_conf else None,
        "covered": len(covered),
        "missing": [c for c in class_names if c not in covered],
        "cover_fraction": cover_fraction,
        "share_confident": round(n_conf / total, 6) if total else 0.0,
        "share_unsure": round(num_unsure / total, 6) if total else 0.0,
        "share_junk": round(num_junk / total, 6) if total else 0.0,
        "num_confident": n_conf,
    }


def sort_samples(probs: np.ndarray, *, junk_index: int | None, threshold: float) -> tuple[np.ndarray, int, int]:
    """(confident counts per real class [K], unsure, junk) of class probabilities [N, K (+1 junk)]."""
    probs = np.asarray(probs, dtype=np.float64)
    assert probs.ndim == 2 and probs.shape[1] >= 2, f"expected probabilities [N, classes], got {probs.shape}"
    top, conf = probs.argmax(axis=1), probs.max(axis=1)
    is_junk = (top == junk_index) if junk_index is not None else np.zeros(len(top), dtype=bool)
    sure = ~is_junk & (conf >= threshold)
    real = [i for i in range(probs.shape[1]) if i != junk_index]
    counts = np.array([int(np.sum(sure & (top == i))) for i in real], dtype=np.int64)
    return counts, int(np.sum(~is_junk & ~sure)), int(np.sum(is_junk))


class ClassProbabilities(torch.nn.Module):
    """The detector's class softmax as 'features' (uint8 images -> [N, classes]), for generated_features."""

    def __init__(self, net) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.dim = len(net.class_names)

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images.float() / 127.5 - 1.0)[1].float().softmax(dim=1)
