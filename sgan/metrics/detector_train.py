"""`sgan detector train`: fit the offline shapes detector on a `builtin:shapes` database.

The shape class is learned with cross-entropy; each binary attribute (`BINARY_SPECS`) is the
label above its median in the training images, learned with a logistic loss. The last tenth of
the database is held out and the detector's accuracy there is stored in the file.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from sgan.errors import DataError, UsageError
from sgan.metrics.shapes_detector import ShapesNet, save_detector

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


def _open(path: str | Path):
    from sgan.data.lmdb_dataset import MultiResolutionDataset

    p = Path(path)
    if not p.exists():
        raise DataError(f"{p}: no such dataset; build one with `sgan prepare-dataset builtin:shapes {p} --max-size 32`.")
    probe = MultiResolutionDataset(p, resolution=_any_size(p))
    res = max(s for s in probe.sizes if s <= MAX_RESOLUTION) if min(probe.sizes) <= MAX_RESOLUTION else None
    if res is None or res < 8:
        raise DataError(f"{p} holds no images between 8 and {MAX_RESOLUTION} px; prepare it with --min-size 8 or less.")
    probe.resolution = res
    return probe


def _any_size(p: Path) -> int:
    from sgan.data import layout

    header = layout.read_header(layout.shared_env(p, str(p.resolve())), p)
    return sorted(header["sizes"])[-1]


def load_training_data(path: str | Path, *, limit: int | None = None,
                       progress: Callable[[int, int], None] | None = None):
    """(images uint8 [N, 3, r, r], class ids [N], label matrix [N, L], label names) of a shapes database."""
    ds = _open(path)
    names = ds.label_names
    missing = [n for n in REQUIRED if n not in names]
    if missing:
        raise DataError(f"{ds.path}: the images have no {', '.join(missing)} label, so it is not a builtin:shapes "
                        f"database; build one with `sgan prepare-dataset builtin:shapes OUT.lmdb --max-size 32`.")
    n = ds.num_images if limit is None else min(limit, ds.num_images)
    if n < 20:
        raise DataError(f"{ds.path} holds {ds.num_images} images; the detector needs at least 20 (a few thousand is better).")
    r = ds.resolution
    images = np.empty((n, 3, r, r), dtype=np.uint8)
    labels = np.empty((n, len(names)), dtype=np.float32)
    for i in range(n):
        images[i] = ds.image(i).transpose(2, 0, 1)
        labels[i] = ds.label(i)
        if progress and (i + 1) % 500 == 0 or progress and i + 1 == n:
            progress(i + 1, n)
    return torch.from_numpy(images), labels, names, ds


def train_detector(data_path: str | Path, out: str | Path, *, epochs: int = 2, batch: int = 128, lr: float = 2e-3,
                   seed: int = 0, limit: int | None = None, device: torch.device | str = "cpu",
                   channels: tuple[int, int, int] = (16, 32, 64), feature_dim: int = 128,
                   progress: Callable[[str, int, int], None] | None = None) -> dict:
    """Train the shapes detector on `data_path`, save it to `out` atomically, return a summary."""
    if epochs < 1 or batch < 1:
        raise UsageError("--epochs and --batch must be at least 1.")
    t0 = time.perf_counter()
    device = torch.device(device)
    report = (lambda what: (lambda done, total: progress(what, done, total))) if progress else (lambda what: None)
    images, labels, names, ds = load_training_data(data_path, limit=limit, progress=report("reading images"))
    n = images.shape[0]
    n_val = max(1, n // 10)
    n_train = n - n_val
    shape_ids = labels[:, names.index("shape_id")].astype(np.int64)
    from sgan.data.shapes import ALL_SHAPE_CLASSES

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
    targets_bin = torch.from_numpy(np.stack(bin_cols, axis=1).astype(np.float32)) if bin_cols else torch.zeros(n, 0)

    config = {"resolution": ds.resolution, "channels": list(channels), "feature_dim": feature_dim,
              "class_names": [ALL_SHAPE_CLASSES[s] if s < len(ALL_SHAPE_CLASSES) else f"class{s}" for s in present],
              "binary": binary, "dataset": str(ds.path), "dataset_images": n, "seed": seed, "epochs": epochs}
    g = torch.Generator().manual_seed(seed)
    net = ShapesNet(config)
    net.init_weights(g)
    net.to(device).train()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps_per_epoch = max(1, n_train // batch)
    total_steps = steps_per_epoch * epochs
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total_steps, pct_start=0.15)
    step = 0
    for _ in range(epochs):
        order = torch.randperm(n_train, generator=g)
        for k in range(steps_per_epoch):
            idx = order[k * batch:(k + 1) * batch]
            x = images[idx].to(device).float() / 127.5 - 1.0
            _, cls, bin_logits = net(x)
            loss = F.cross_entropy(cls, targets_cls[idx].to(device))
            if bin_logits.shape[1]:
                loss = loss + F.binary_cross_entropy_with_logits(bin_logits, targets_bin[idx].to(device))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if progress and (step % 20 == 0 or step == total_steps):
                progress("training", step, total_steps)
    net.eval()
    heldout = evaluate(net, images[n_train:], targets_cls[n_train:], targets_bin[n_train:], device=device)
    net.config["heldout"] = heldout
    # Attributes the detector cannot read reliably would only add noise to linear separability.
    net.config["ls_exclude"] = [k for k, acc in heldout["attribute_accuracy"].items() if acc < LS_MIN_ACCURACY]
    net.to("cpu")
    save_detector(out, net)
    return {"out": str(out), "resolution": ds.resolution, "classes": config["class_names"],
            "attributes": net.attribute_names, "train_images": n_train, "heldout_images": n - n_train,
            "heldout": heldout, "ls_exclude": net.config["ls_exclude"], "epochs": epochs, "time_s": round(time.perf_counter() - t0, 1)}


@torch.no_grad()
def evaluate(net: ShapesNet, images: torch.Tensor, cls: torch.Tensor, binary: torch.Tensor, *,
             device: torch.device, batch: int = 256) -> dict:
    """Held-out class accuracy and per-attribute accuracy."""
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
