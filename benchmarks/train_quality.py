"""Time-to-quality of a training run on builtin:shapes: a shape classifier judges every snapshot.

    python benchmarks/train_quality.py runs/shapes --data data/shapes.lmdb [--samples 1000]

Works on StyleGAN 1 and StyleGAN2 (`--arch stylegan2`) runs; keep every snapshot (`--keep 0`) for a curve.

A small CNN is trained (once, cached beside the dataset) on the real 32 px shapes plus a junk
class (blurred blobs, patch-shuffled and averaged images, noise): a plain classifier is fooled by
blobs, the junk class is not. For each snapshot it prints the training minutes, kimg, resolution,
the fraction of G_ema samples (seeds, no truncation) that the classifier calls a shape with
p >= 0.9 ("strict"), the per-class split of those, and the Frechet distance between classifier
features of samples and held-out reals, with the real-vs-real floor.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg
from torch import nn

from sgan.checkpoint import build_generator, load_checkpoint
from sgan.data.lmdb_dataset import MultiResolutionDataset
from sgan.data.shapes import SHAPE_CLASSES, render_shapes
from sgan.latent import z_from_seed
from sgan.nn.layers import upscale2d

JUNK = len(SHAPE_CLASSES)


class ShapeNet(nn.Module):
    def __init__(self, classes: int = JUNK + 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(64, 64, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(64, 128, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Flatten(), nn.Linear(128 * 16, 128), nn.LeakyReLU(0.2))
        self.head = nn.Linear(128, classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.body(x)
        return self.head(f), f


def junk(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Images that are not a clean shape: blobs, shuffled patches, blends, noise (x in [-1, 1])."""
    n = x.shape[0]
    kind = torch.randint(0, 4, [n], generator=g)
    blob = F.interpolate(F.avg_pool2d(x, 8), scale_factor=8, mode="bilinear", align_corners=False)
    p = x.unfold(2, 8, 8).unfold(3, 8, 8).reshape(n, 3, 16, 8, 8)
    perm = torch.randperm(16, generator=g)
    shuffled = p[:, :, perm].reshape(n, 3, 4, 4, 8, 8).permute(0, 1, 2, 4, 3, 5).reshape(n, 3, 32, 32)
    blend = 0.5 * (x + x.roll(1, 0))
    noise = F.interpolate(torch.rand(n, 3, 8, 8, generator=g) * 2 - 1, scale_factor=4, mode="bilinear",
                          align_corners=False)
    out = torch.stack([blob, shuffled, blend, noise], 1)[torch.arange(n), kind]
    return out


def real_images(data: Path) -> tuple[torch.Tensor, torch.Tensor]:
    ds = MultiResolutionDataset(data, resolution=32)
    imgs = np.stack([ds.image(i) for i in range(ds.num_images)])
    labels = np.array([int(ds.label(i)[0]) for i in range(ds.num_images)])
    return torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5 - 1, torch.from_numpy(labels)


def train_classifier(data: Path, cache: Path) -> ShapeNet:
    net = ShapeNet()
    if cache.is_file():
        net.load_state_dict(torch.load(cache, weights_only=True))
        return net.eval()
    x, y = real_images(data)
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    for epoch in range(3):
        perm = torch.randperm(len(x), generator=g)
        for i in range(0, len(x), 128):
            xb, yb = x[perm[i:i + 128]], y[perm[i:i + 128]]
            jb = junk(xb, g)
            logits, _ = net(torch.cat([xb, jb]))
            loss = F.cross_entropy(logits, torch.cat([yb, torch.full_like(yb, JUNK)]))
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"classifier epoch {epoch}: loss {loss.item():.4f}", flush=True)
    torch.save(net.state_dict(), cache)
    return net.eval()


@torch.no_grad()
def judge(net: ShapeNet, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    probs, feats = [], []
    for i in range(0, len(x), 256):
        logits, f = net(x[i:i + 256])
        probs.append(logits.softmax(1))
        feats.append(f)
    return torch.cat(probs).numpy(), torch.cat(feats).double().numpy()


def frechet(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * covmean.real))


def summary(probs: np.ndarray) -> dict:
    top, conf = probs.argmax(1), probs.max(1)
    strict = (top != JUNK) & (conf >= 0.9)
    split = [round(float((strict & (top == k)).sum()) / max(int(strict.sum()), 1), 3) for k in range(JUNK)]
    return {"strict": round(float(strict.mean()), 4), "junk": round(float((top == JUNK).mean()), 4), "split": split}


@torch.no_grad()
def samples(path: Path, n: int) -> tuple[torch.Tensor, dict]:
    ckpt = load_checkpoint(path)
    G = build_generator(ckpt)
    counters = ckpt.extra.get("counters", {})
    from sgan.train.config import TrainConfig
    from sgan.train.schedule import build_phases, point_at

    cfg = TrainConfig.from_dict(json.loads(ckpt.extra["train_config"]))
    if cfg.arch == "stylegan2":  # fixed resolution
        lod = 0.0
    else:
        phases = build_phases(cfg.start_resolution, cfg.resolution, *cfg.phase_lengths())
        lod = point_at(counters["sched_progress"], phases, cfg.resolution).lod
    out = []
    for i in range(0, n, 100):
        z = torch.stack([z_from_seed(s, G.z_dim) for s in range(i, min(i + 100, n))])
        img = G.synthesis(G.map(z), lod=lod, noise_mode="const").clamp(-1, 1)
        out.append(upscale2d(img, 32 // img.shape[-1]))
    return torch.cat(out), {"kimg": counters["cur_nimg"] / 1000, "minutes": counters["train_seconds"] / 60,
                            "lod": round(lod, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--every", type=int, default=1, help="judge every n-th snapshot")
    args = ap.parse_args()
    torch.manual_seed(0)
    net = train_classifier(args.data, args.data.parent / (args.data.name + ".shapenet.pt"))
    held, attrs = render_shapes(2000, seed=12345, size=32)
    held = torch.from_numpy(held).permute(0, 3, 1, 2).float() / 127.5 - 1
    train_x, _ = real_images(args.data)
    p_held, f_held = judge(net, held)
    _, f_train = judge(net, train_x[:2000])
    print(json.dumps({"real_heldout": summary(p_held), "fd_floor": round(frechet(f_held, f_train), 3)}), flush=True)
    snaps = sorted(args.run.glob("snapshot-*.pt"), key=lambda p: int(re.findall(r"\d+", p.name)[0]))
    for path in snaps[::args.every]:
        x, info = samples(path, args.samples)
        probs, feats = judge(net, x)
        print(json.dumps({"snapshot": path.name, **info, **summary(probs), "fd": round(frechet(f_held, feats), 2)}),
              flush=True)


if __name__ == "__main__":
    main()
