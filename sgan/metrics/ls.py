"""Linear separability (StyleGAN paper §4.2; NVIDIA's linear_separability.py protocol).

For each binary attribute: take the detector's probability p that it holds, keep the `num_keep`
samples (half by default) whose max(p, 1 - p) is largest, label them y = [p >= 0.5], fit a linear SVM
(L2-regularised squared hinge, C = 1, intercept, as scikit-learn's LinearSVC defaults) on the latent
codes and predict the same points, then H(Y|X) = H(X, Y) - H(X) in bits of the 2x2 joint of
(prediction, label). The score is 2 ** sum over attributes of H(Y|X) (= exp of the sum in nats), for Z
and for W. A single-class attribute is predicted perfectly (H = 0), as the reference does.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.optimize import minimize

from sgan.errors import UsageError
from sgan.metrics.features import Progress, latent_stream, noise_generators


def fit_linear_svm(x: np.ndarray, y: np.ndarray, *, C: float = 1.0, tol: float = 1e-4,
                   max_iter: int = 1000) -> tuple[np.ndarray, float]:
    """Primal squared-hinge linear SVM: min 0.5 |beta|^2 + C sum max(0, 1 - s_i beta.[x_i, 1])^2,
    s = 2y - 1 (the intercept is a regularised feature of value 1, as liblinear). Returns (w, b)."""
    x = np.asarray(x, np.float64)
    s = np.where(np.asarray(y).astype(bool), 1.0, -1.0)
    xa = np.hstack([x, np.ones((x.shape[0], 1))])

    def objective(beta):
        margin = 1.0 - s * (xa @ beta)
        active = margin > 0
        m = margin[active]
        f = 0.5 * beta @ beta + C * m @ m
        grad = beta - 2.0 * C * (xa[active].T @ (s[active] * m))
        return f, grad

    res = minimize(objective, np.zeros(xa.shape[1]), jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "gtol": tol, "ftol": 1e-12})
    return res.x[:-1], float(res.x[-1])


def conditional_entropy_bits(pred: np.ndarray, target: np.ndarray) -> float:
    """H(Y|X) in bits of binary predictions X and targets Y, clipped at 0."""
    x = np.asarray(pred).astype(bool)
    y = np.asarray(target).astype(bool)
    joint = np.array([[np.mean(~x & ~y), np.mean(~x & y)], [np.mean(x & ~y), np.mean(x & y)]])
    return conditional_entropy_of_joint(joint)


def conditional_entropy_of_joint(joint: np.ndarray) -> float:
    """H(Y|X) = H(X, Y) - H(X) in bits for a joint table p[x][y]."""
    p = np.asarray(joint, np.float64)

    def h(q):
        q = q[q > 0]
        return float(-(q * np.log2(q)).sum())

    return max(0.0, h(p.ravel()) - h(p.sum(axis=1)))


def confident_labels(prob: np.ndarray, num_keep: int) -> tuple[np.ndarray, np.ndarray]:
    """(indices of the `num_keep` samples whose max(p, 1 - p) is largest, their labels p >= 0.5)."""
    p = np.asarray(prob, np.float64)
    confidence = np.maximum(p, 1.0 - p)
    keep = np.argsort(-confidence, kind="stable")[:num_keep]
    return keep, p[keep] >= 0.5


def attribute_entropy(latents: np.ndarray, prob: np.ndarray, num_keep: int) -> float:
    """H(Y|X) of one attribute: prune to the `num_keep` most confident, SVM, entropy."""
    keep, y = confident_labels(prob, num_keep)
    if y.all() or not y.any():
        return 0.0  # one class: assume perfect prediction, as the reference
    w, b = fit_linear_svm(latents[keep], y)
    pred = latents[keep].astype(np.float64) @ w + b > 0
    return conditional_entropy_bits(pred, y)


def separability(latents: np.ndarray, probs: np.ndarray, *, num_keep: int | None = None) -> tuple[float, list[float]]:
    """(2 ** sum H, per-attribute H) for latents [N, D] and attribute probabilities [N, A]."""
    latents, probs = np.asarray(latents), np.asarray(probs)
    assert latents.ndim == 2 and probs.ndim == 2 and latents.shape[0] == probs.shape[0], (latents.shape, probs.shape)
    num_keep = probs.shape[0] // 2 if num_keep is None else num_keep
    entropies = [attribute_entropy(latents, probs[:, a], num_keep) for a in range(probs.shape[1])]
    return float(2.0 ** sum(entropies)), entropies


def ls_scores(z: np.ndarray, w: np.ndarray, probs: np.ndarray, names: list[str], *,
              num_keep: int | None = None) -> dict:
    ls_z, h_z = separability(z, probs, num_keep=num_keep)
    ls_w, h_w = separability(w, probs, num_keep=num_keep)
    return {"ls_z": ls_z, "ls_w": ls_w,
            "attributes": {n: {"h_z": round(a, 5), "h_w": round(b, 5)} for n, a, b in zip(names, h_z, h_w)}}


@torch.no_grad()
def sample_for_ls(G, net, *, num: int, batch: int = 32, seed: int = 0, trunc: float = 1.0,
                  device: torch.device | str = "cpu", progress: Progress | None = None):
    """(z [num, z_dim], w [num, w_dim] (the last layer's), attribute probabilities [num, A]) of G's images."""
    if num < 4 or batch < 1:
        raise UsageError("linear separability needs --num of at least 4 and --batch of at least 1.")
    device = torch.device(device)
    draw = latent_stream(seed, G.z_dim)
    zs = np.empty((num, G.z_dim), np.float32)
    ws = np.empty((num, G.w_dim), np.float32)
    probs = None
    for start in range(0, num, batch):
        n = min(batch, num - start)
        z = torch.from_numpy(draw(n)).to(device)
        wl = G.map(z, truncation_psi=trunc)
        images = G.synthesis(wl, noise_mode="random", generator=noise_generators(seed, start, n)).float()
        p = net.attribute_probs(images).cpu().numpy()
        if probs is None:
            probs = np.empty((num, p.shape[1]), np.float32)
        zs[start:start + n], ws[start:start + n], probs[start:start + n] = z.cpu().numpy(), wl[:, -1].cpu().numpy(), p
        if progress:
            progress(start + n, num)
    return zs, ws, probs
