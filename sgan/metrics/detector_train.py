"""`sgan detector train`: fit the offline detector on a labelled database.

Two kinds of database:
- `builtin:shapes` (it has the `shape_id` label): the shape class is learned with cross-entropy;
  each binary attribute (`BINARY_SPECS`) is the label above its median in the training images,
  learned with a logistic loss; the last tenth of the database is held out.
- any database with class labels (`--labels folders` or a dataset.json at prepare time,
  `builtin:digits`): the classes are learned with cross-entropy, no attributes; a tenth of each
  class (seeded) is held out; training images are shifted at random by up to 1/16 of their side
  (such datasets are small).

Unless `junk=False` (default: on for class datasets, off for shapes, whose detector stays as it
was) the detector learns one more class, `junk`, from corrupted reals (sgan.metrics.junk), so that
`sgan metrics modes` can tell a broken sample from a confident one. The held-out accuracy, the
junk recall and the real class distribution (counts over the whole database) are stored in the file.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from sgan.errors import DataError, UsageError
from sgan.metrics.junk import make_junk
from sgan.metrics.shapes_detector import JUNK, ShapesNet, save_detector
from sgan.data import layout
from sgan.data.labels import class_labels
from sgan.data.lmdb_dataset import MultiResolutionDataset
from sgan.data.shapes import ALL_SHAPE_CLASSES

# name -> (how it is computed from the label vector), all split at the training median.
BINARY_SPECS = {
    "right": ("cx",),
    "low": ("cy",),
    "large": ("size",),
    "hue_high": ("fg_hue",),
    "bright_background": ("bg_color[0]", "bg_color[1]", "bg_color[2]"),
}
REQUIRED = ("shape_id",)
MAX_RESOLUTION = 64
LS_MIN_ACCURACY = 0.75   # held-out accuracy below which an attribute is left out of LS
SHAPES_EPOCHS = 2
CLASS_IMAGES_SEEN = 20000  # class datasets: default epochs = this many training images shown (2..50 epochs)


def _open(path: str | Path):

    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such dataset; build one with `sgan prepare-dataset builtin:shapes {p} --max-size 32` "
                        f"(or from a folder with --labels folders).")
    probe = MultiResolutionDataset(p, resolution=_any_size(p))
    res = max(s for s in probe.sizes if s <= MAX_RESOLUTION) if min(probe.sizes) <= MAX_RESOLUTION else None
    if res is None or res < 8:
        raise DataError(f"{p} holds no images between 8 and {MAX_RESOLUTION} px; prepare it with --min-size 8 or less.")
    probe.resolution = res
    return probe


def _any_size(p: Path) -> int:

    header = layout.read_header(layout.shared_env(p, str(p.resolve())), p)
    return sorted(header["sizes"])[-1]


def _read_images(ds, n: int, progress) -> torch.Tensor:
    r = ds.resolution
    images = np.empty((n, 3, r, r), dtype=np.uint8)
    for i in range(n):
        images[i] = ds.image(i).transpose(2, 0, 1)
        if progress and ((i + 1) % 500 == 0 or i + 1 == n):
            progress(i + 1, n)
    return torch.from_numpy(images)


def _count(ds, limit: int | None) -> int:
    n = ds.num_images if limit is None else min(limit, ds.num_images)
    if n < 20:
        raise DataError(f"{ds.path} holds {ds.num_images} images; the detector needs at least 20 (a few thousand is better).")
    return n


def load_training_data(path: str | Path, *, limit: int | None = None,
                       progress: Callable[[int, int], None] | None = None):
    """(images uint8 [N, 3, r, r], label matrix [N, L], label names, dataset) of a shapes database."""
    ds = _open(path)
    names = ds.label_names
    missing = [n for n in REQUIRED if n not in names]
    if missing:
        raise DataError(f"{ds.path}: the images have no {', '.join(missing)} label, so it is not a builtin:shapes "
                        f"database; build one with `sgan prepare-dataset builtin:shapes OUT.lmdb --max-size 32`.")
    n = _count(ds, limit)
    labels = np.empty((n, len(names)), dtype=np.float32)
    for i in range(n):
        labels[i] = ds.label(i)
    return _read_images(ds, n, progress), labels, names, ds


def _shapes_targets(labels: np.ndarray, names: list[str], n_train: int, ds):

    shape_ids = labels[:, names.index("shape_id")].astype(np.int64)
    present = sorted(set(shape_ids[:n_train].tolist()))
    if len(present) < 2:
        raise DataError(f"{ds.path}: the training images show only one shape class; the detector needs several.")
    class_of = {sid: k for k, sid in enumerate(present)}
    targets_cls = torch.tensor([class_of.get(s, -100) for s in shape_ids])
    binary, bin_cols = [], []
    for name, sources in BINARY_SPECS.items():
        if all(s in names for s in sources):
            value = labels[:, [names.index(s) for s in sources]].mean(axis=1)
            threshold = float(np.median(value[:n_train]))
            binary.append({"name": name, "source": list(sources), "threshold": threshold})
            bin_cols.append(value > threshold)
    n = labels.shape[0]
    targets_bin = torch.from_numpy(np.stack(bin_cols, axis=1).astype(np.float32)) if bin_cols else torch.zeros(n, 0)
    class_names = [ALL_SHAPE_CLASSES[s] if s < len(ALL_SHAPE_CLASSES) else f"class{s}" for s in present]
    return targets_cls, targets_bin, class_names, binary


def _class_split(indices: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, held-out) image indices: a seeded tenth of every class with 2 or more images held out."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xDE7]))
    held = []
    for k in np.unique(indices):
        members = np.flatnonzero(indices == k)
        if members.size >= 2:
            held.append(rng.permutation(members)[:max(1, members.size // 10)])
    held_idx = np.sort(np.concatenate(held)) if held else np.empty(0, dtype=np.int64)
    train_idx = np.setdiff1d(np.arange(indices.size), held_idx)
    return train_idx, held_idx


def train_detector(data_path: str | Path, out: str | Path, *, epochs: int | None = None, batch: int = 128,
                   lr: float = 2e-3, seed: int = 0, limit: int | None = None, device: torch.device | str = "cpu",
                   channels: tuple[int, int, int] = (16, 32, 64), feature_dim: int = 128, junk: bool | None = None,
                   progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Train the detector on `data_path` (shapes or class labels, see the module docstring), save it
    to `out` atomically, return a summary. `epochs` None: 2 for shapes, about 20k images shown
    (2 to 50 epochs) for class datasets; `junk` None: off for shapes, on for class datasets."""
    if (epochs is not None and epochs < 1) or batch < 1:
        raise UsageError("--epochs and --batch must be at least 1.")
    t0 = time.perf_counter()
    device = torch.device(device)
    report = (lambda what: (lambda done, total: progress(what, done, total))) if progress else (lambda what: None)
    ds = _open(data_path)
    if all(n in ds.label_names for n in REQUIRED):
        images, labels, names, ds = load_training_data(data_path, limit=limit, progress=report("reading images"))
        n = images.shape[0]
        n_val = max(1, n // 10)
        train_idx, held_idx = np.arange(n - n_val), np.arange(n - n_val, n)
        targets_cls, targets_bin, class_names, binary = _shapes_targets(labels, names, n - n_val, ds)
        label_source, epochs = "shape_id", epochs or SHAPES_EPOCHS
        junk = bool(junk)
    else:

        try:
            cl = class_labels(ds.path)
        except DataError:
            raise DataError(f"{ds.path} has no class labels, so the detector has nothing to learn; prepare it with "
                            f"`sgan prepare-dataset SRC {ds.path} --labels folders` (one folder per class) or a "
                            f"dataset.json, or use a labelled built-in (builtin:shapes, builtin:digits).") from None
        n = _count(ds, limit)
        cls_all = cl.indices[:n]
        train_idx, held_idx = _class_split(cls_all, seed)
        present = sorted(set(cls_all[train_idx].tolist()))
        if len(present) < 2:
            raise DataError(f"{ds.path}: the images show only one class ({cl.names[present[0]] if present else '-'}); "
                            f"the detector needs two or more.")
        class_of = {c: k for k, c in enumerate(present)}
        targets_cls = torch.tensor([class_of.get(int(c), -100) for c in cls_all])
        targets_bin = torch.zeros(n, 0)
        class_names, binary = [cl.names[c] for c in present], []
        images = _read_images(ds, n, report("reading images"))
        label_source = "class"
        epochs = epochs or int(min(50, max(2, math.ceil(CLASS_IMAGES_SEEN / max(1, train_idx.size)))))
        junk = True if junk is None else bool(junk)
    if junk and JUNK in class_names:
        raise DataError(f"{ds.path} has a class called {JUNK!r}, the name of the detector's own junk class; "
                        f"rename it or pass --no-junk.")
    k_real = len(class_names)
    counts = np.bincount(targets_cls[targets_cls >= 0].numpy(), minlength=k_real)
    config = {"resolution": ds.resolution, "channels": list(channels), "feature_dim": feature_dim,
              "class_names": class_names + ([JUNK] if junk else []), "binary": binary, "dataset": str(ds.path),
              "dataset_images": n, "seed": seed, "epochs": epochs, "label_source": label_source,
              "junk_class": JUNK if junk else None, "real_counts": counts.tolist(),
              "real_distribution": [round(float(c) / max(1, counts.sum()), 6) for c in counts]}
    g = torch.Generator().manual_seed(seed)
    g_junk = torch.Generator().manual_seed(seed + 0x5EED)
    shift = ds.resolution // 16 if label_source == "class" else 0   # class datasets: few images, shift them
    net = ShapesNet(config)
    net.init_weights(g)
    net.to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    n_train = int(train_idx.size)
    train_t = torch.from_numpy(train_idx)
    steps_per_epoch = max(1, n_train // batch)
    total_steps = steps_per_epoch * epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total_steps, pct_start=0.15)
    step = 0
    for _ in range(epochs):
        order = train_t[torch.randperm(n_train, generator=g)]
        for k in range(steps_per_epoch):
            idx = order[k * batch:(k + 1) * batch]
            x = images[idx].float() / 127.5 - 1.0
            y = targets_cls[idx]
            if shift:
                x = random_shift(x, shift, generator=g_junk)
            if junk:
                extra = make_junk(x, max(1, round(len(idx) / k_real)), generator=g_junk)
                x = torch.cat([x, extra])
                y = torch.cat([y, torch.full([extra.shape[0]], k_real, dtype=y.dtype)])
            _, cls, bin_logits = net(x.to(device))
            loss = F.cross_entropy(cls, y.to(device))
            if bin_logits.shape[1]:
                loss = loss + F.binary_cross_entropy_with_logits(bin_logits[:len(idx)], targets_bin[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if progress and (step % 20 == 0 or step == total_steps):
                progress("training", step, total_steps)
    net.eval()
    held_t = torch.from_numpy(held_idx)
    heldout = evaluate(net, images[held_t], targets_cls[held_t], targets_bin[held_t], device=device)
    if junk:
        heldout.update(evaluate_junk(net, images[held_t], k_real, seed=seed, device=device))
    net.config["heldout"] = heldout
    # Attributes the detector cannot read reliably would only add noise to linear separability;
    # "is_junk" is no attribute of an image at all.
    net.config["ls_exclude"] = ([k for k, acc in heldout["attribute_accuracy"].items() if acc < LS_MIN_ACCURACY]
                                + ([f"is_{JUNK}"] if junk else []))
    net.to("cpu")
    save_detector(out, net)
    return {"out": str(out), "resolution": ds.resolution, "classes": class_names, "junk_class": config["junk_class"],
            "label_source": label_source, "attributes": net.attribute_names, "train_images": n_train,
            "heldout_images": int(held_idx.size), "heldout": heldout, "ls_exclude": net.config["ls_exclude"],
            "real_distribution": dict(zip(class_names, config["real_distribution"])), "epochs": epochs,
            "time_s": round(time.perf_counter() - t0, 1)}


def random_shift(x: torch.Tensor, shift: int, *, generator: torch.Generator) -> torch.Tensor:
    """Each image moved by up to `shift` px in x and y (edge pixels repeated), from `generator`."""
    n, _, h, w = x.shape
    padded = F.pad(x, (shift, shift, shift, shift), mode="replicate")
    dx = torch.randint(0, 2 * shift + 1, [n], generator=generator)
    dy = torch.randint(0, 2 * shift + 1, [n], generator=generator)
    return torch.stack([padded[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(n)])


@torch.no_grad()
def evaluate(net: ShapesNet, images: torch.Tensor, cls: torch.Tensor, binary: torch.Tensor, *,
             device: torch.device, batch: int = 256) -> dict:
    """Held-out class accuracy (argmax over every class, junk included) and per-attribute accuracy."""
    correct, total = 0, 0
    bin_correct = torch.zeros(binary.shape[1])
    for i in range(0, images.shape[0], batch):
        x = images[i:i + batch].to(device).float() / 127.5 - 1.0
        _, c, b = net(x)
        known = cls[i:i + batch] >= 0
        correct += int((c.argmax(1).cpu() == cls[i:i + batch])[known].sum())
        total += int(known.sum())
        bin_correct += ((b.cpu() > 0).float() == binary[i:i + batch]).float().sum(0)
    n = max(images.shape[0], 1)
    return {"class_accuracy": round(correct / max(total, 1), 4),
            "attribute_accuracy": {name: round(float(a) / n, 4) for name, a in zip(net.binary_names, bin_correct)}}


@torch.no_grad()
def evaluate_junk(net: ShapesNet, images: torch.Tensor, junk_index: int, *, seed: int, device: torch.device,
                  batch: int = 256) -> dict:
    """Of held-out reals: the share called junk; of as many junk images made from them: the share called junk."""
    if images.shape[0] == 0:
        return {"reals_called_junk": 0.0, "junk_recall": 0.0}
    x = images.float() / 127.5 - 1.0
    fake = make_junk(x, x.shape[0], generator=torch.Generator().manual_seed(seed + 0xBAD))

    def share(t: torch.Tensor) -> float:
        hits = sum(int((net(t[i:i + batch].to(device))[1].argmax(1) == junk_index).sum())
                   for i in range(0, t.shape[0], batch))
        return round(hits / t.shape[0], 4)

    return {"reals_called_junk": share(x), "junk_recall": share(fake)}
