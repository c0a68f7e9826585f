"""InterFaceGAN boundaries: a linear SVM in W between two groups of samples (Shen et al., CVPR 2020).

Labels come from a conditional model's classes (one class against the rest, or `--class A --vs B`)
or from an attribute detector's probabilities on generated images (the samples and the SVM of
linear separability, sgan.metrics.ls: `sample_for_ls`, `confident_labels`, `fit_linear_svm`). The
unit normal of the fitted hyperplane, pointing towards the positive group, is the direction; its
score is the SVM's accuracy on a held-out 30 % of the samples (InterFaceGAN's validation split). w
is centred before the fit, which moves only the intercept (liblinear regularises the intercept
like a feature, so an offset of w would otherwise bias the normal).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from sgan.errors import UsageError
from sgan.metrics.ls import confident_labels, fit_linear_svm, sample_for_ls
from sgan.play.directions import Directions

TRAIN_FRACTION = 0.7


def boundary(w: np.ndarray, y: np.ndarray, *, rng: np.random.Generator,
             train_fraction: float = TRAIN_FRACTION, what: str = "the labels") -> tuple[np.ndarray, float]:
    """(unit normal [w_dim] towards y = True, held-out accuracy) of a linear SVM on w [N, w_dim]."""
    w = np.asarray(w, np.float64)
    y = np.asarray(y).astype(bool)
    assert w.ndim == 2 and y.shape == (w.shape[0],), (w.shape, y.shape)
    if y.all() or not y.any():
        raise UsageError(f"{what}: every sample falls on one side, so there is no boundary to fit; "
                         "use more --samples or another attribute or class.")
    order = rng.permutation(len(y))
    cut = int(round(train_fraction * len(y)))
    train, held = order[:cut], order[cut:]
    if y[train].all() or not y[train].any():
        train, held = order, order[:0]
    x = w - w[train].mean(axis=0)
    normal, bias = fit_linear_svm(x[train], y[train])
    norm = np.linalg.norm(normal)
    if not norm > 0:
        raise UsageError(f"{what}: the SVM found no boundary (a zero normal); use more --samples.")
    test = held if len(held) else train
    accuracy = float(np.mean((x[test] @ normal + bias > 0) == y[test]))
    return normal / norm, accuracy


def attribute_directions(w: np.ndarray, probs: np.ndarray, names: Sequence[str], *, rng: np.random.Generator,
                         keep_fraction: float = 0.5, layers: Sequence[int], w_dim: int, num_ws: int,
                         checkpoint_sha256: str = "", on_skip: Callable[[str], None] | None = None) -> Directions:
    """One boundary per attribute: probs [N, A] of the attributes `names`, labels p >= 0.5 on the
    most confident `keep_fraction` of the samples (as linear separability prunes). An attribute
    that puts every kept sample on one side has no boundary: it is left out (told to `on_skip`);
    if none is left, that is an error."""
    w, probs = np.asarray(w), np.asarray(probs)
    if w.ndim != 2 or probs.ndim != 2 or w.shape[0] != probs.shape[0] or probs.shape[1] != len(names):
        raise ValueError(f"w [N, D], probs [N, {len(names)}] expected, got {list(w.shape)} and {list(probs.shape)}")
    num_keep = max(2, int(round(keep_fraction * w.shape[0])))
    rows, scores, kept = [], [], []
    for a, name in enumerate(names):
        keep, y = confident_labels(probs[:, a], num_keep)
        if y.all() or not y.any():
            if on_skip:
                on_skip(f"attribute {name}: all {len(y)} kept samples are {'positive' if y.all() else 'negative'}; "
                        "no boundary, left out.")
            continue
        d, acc = boundary(w[keep], y, rng=rng, what=f"attribute {name}")
        rows.append(d)
        scores.append(acc)
        kept.append(name)
    if not rows:
        raise UsageError(f"no attribute of {', '.join(names)} splits the samples in two, so there is no boundary; "
                         "use more --samples or a better-trained detector.")
    return Directions(directions=np.stack(rows), scores=scores, method="labels", layers=list(layers),
                      names=kept, checkpoint_sha256=checkpoint_sha256, w_dim=w_dim, num_ws=num_ws)


@torch.no_grad()
def class_latents(G, *, num_samples: int, classes: Sequence[int], rng: np.random.Generator, batch: int = 1000,
                  device: torch.device | str = "cpu") -> tuple[np.ndarray, np.ndarray]:
    """(w [N, w_dim], class [N]) of a conditional G (class not fixed): the same number of z per class."""
    c_dim = int(getattr(G, "c_dim", 0) or 0)
    per_class = max(1, num_samples // len(classes))
    ws, labels = [], []
    for k in classes:
        for start in range(0, per_class, batch):
            n = min(batch, per_class - start)
            z = torch.from_numpy(rng.standard_normal((n, G.z_dim)).astype(np.float32)).to(device)
            c = torch.nn.functional.one_hot(torch.full((n,), int(k)), c_dim).float().to(device)
            ws.append(G.mapping(z, c).double().cpu().numpy())
            labels.append(np.full(n, int(k)))
    return np.concatenate(ws), np.concatenate(labels)


def class_directions(G, *, class_names: Sequence[str], num_samples: int, rng: np.random.Generator,
                     layers: Sequence[int], positive: int | None = None, negative: int | None = None,
                     batch: int = 1000, device: torch.device | str = "cpu", checkpoint_sha256: str = "") -> Directions:
    """Boundaries between a conditional model's classes: each class against the rest, or, with
    `positive` and `negative`, one direction from class `negative` towards class `positive`."""
    c_dim = int(getattr(G, "c_dim", 0) or 0)
    if c_dim < 2:
        raise UsageError("labels from classes need a class-conditional model with two or more classes; "
                         "for an unconditional one give --detector (attributes of generated images).")
    if num_samples < 4:
        raise UsageError(f"--samples must be at least 4, got {num_samples}.")
    if (positive is None) != (negative is None):
        raise UsageError("--class and --vs go together: --class A --vs B gives the direction from B towards A.")
    if positive is not None and positive == negative:
        raise UsageError(f"--class and --vs name the same class ({class_names[positive]}); choose two classes.")
    classes = [positive, negative] if positive is not None else list(range(c_dim))
    w, labels = class_latents(G, num_samples=num_samples, classes=classes, rng=rng, batch=batch, device=device)
    rows, scores, names = [], [], []
    targets = [positive] if positive is not None else classes
    for k in targets:
        d, acc = boundary(w, labels == k, rng=rng, what=f"class {class_names[k]}")
        rows.append(d)
        scores.append(acc)
        names.append(f"class-{class_names[k]}" + (f"-vs-{class_names[negative]}" if negative is not None else ""))
    return Directions(directions=np.stack(rows), scores=scores, method="labels", layers=list(layers), names=names,
                      checkpoint_sha256=checkpoint_sha256, w_dim=G.w_dim, num_ws=G.num_ws)


def detector_directions(G, net, *, num_samples: int, seed: int, rng: np.random.Generator, layers: Sequence[int],
                        attributes: Sequence[str] | None = None, batch: int = 32, device: torch.device | str = "cpu",
                        checkpoint_sha256: str = "", progress: Callable[[int, int], None] | None = None,
                        on_skip: Callable[[str], None] | None = None) -> Directions:
    """Boundaries of the detector's attributes (`net.attribute_names`; by default those linear
    separability uses) on `num_samples` generated images (seeded as `sgan metrics ls`)."""
    if num_samples < 8:
        raise UsageError(f"--samples must be at least 8 for boundaries from detector labels, got {num_samples}.")
    names_all = list(net.attribute_names)
    if attributes:
        missing = [a for a in attributes if a not in names_all]
        if missing:
            raise UsageError(f"--attribute {', '.join(missing)}: the detector has {', '.join(names_all)}.")
        cols = [names_all.index(a) for a in attributes]
    else:
        cols = list(net.ls_attributes)
    _, w, probs = sample_for_ls(G, net, num=num_samples, batch=batch, seed=seed, trunc=1.0, device=device,
                                progress=progress)
    return attribute_directions(w, probs[:, cols], [names_all[i] for i in cols], rng=rng, layers=layers,
                                w_dim=G.w_dim, num_ws=G.num_ws, checkpoint_sha256=checkpoint_sha256, on_skip=on_skip)
