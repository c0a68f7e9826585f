"""Cost of augmentation per image: ADA (bgc, at p = 0.2, 0.6 and 1) and DiffAugment, forward alone and
forward + backward (the gradient with respect to the input, as the G step and R1 need), at 32 and
64 px, float32, on this machine; beside it one CPU-preset StyleGAN 1 training step per image.

    python benchmarks/augment.py [--batch 32] [--repeats 15] [--threads N]

The arms are measured round-robin (repeat 1 of every arm, then repeat 2, ...), so load from other
processes spreads over all of them; medians in microseconds per image, and each arm's ratio to
DiffAugment measured in the same rounds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from sgan.train.augment import Augmentation

ARMS = [("diffaug", dict(kind="diffaug")), ("ada p=0.2", dict(kind="ada", p=0.2)),
        ("ada p=0.6", dict(kind="ada", p=0.6)), ("ada p=1", dict(kind="ada", p=1.0)),
        ("ada p=1, gather resampler", dict(kind="ada", p=1.0, resampler="gather"))]


def once(aug: Augmentation, x: torch.Tensor, backward: bool) -> float:
    xi = x.clone().requires_grad_(backward)
    t0 = time.perf_counter()
    y = aug(xi)
    if backward:
        y.square().sum().backward()
    return time.perf_counter() - t0


def train_step_per_image(res: int, batch: int) -> float:
    """Seconds per image of a cpu-preset StyleGAN 1 step at lod 0 (G and D at `res`)."""
    from sgan.nn import ModelConfig, make_discriminator, make_generator
    from sgan.train.losses import d_loss_terms, g_loss

    torch.manual_seed(0)
    cfg = ModelConfig.preset("cpu", res)
    G, D = make_generator(cfg), make_discriminator(cfg)
    reals = torch.randn(batch, 3, res, res)
    times = []
    for i in range(4):
        t0 = time.perf_counter()
        fakes = G(torch.randn(batch, cfg.z_dim))
        t = d_loss_terms("logistic", D(reals), D(fakes.detach()))
        (t["D_real"] + t["D_fake"]).backward()
        g_loss("logistic", D(fakes)).backward()
        if i:
            times.append(time.perf_counter() - t0)
    return statistics.median(times) / batch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(json.dumps({"torch": torch.__version__, "threads": torch.get_num_threads(), "batch": args.batch}))
    for res in (32, 64):
        x = torch.randn(args.batch, 3, res, res, generator=torch.Generator().manual_seed(0))
        augs = []
        for _name, kw in ARMS:
            kw = dict(kw)
            augs.append(Augmentation(kw.pop("kind"), seed=0, **kw))
        fwd = {name: [] for name, _ in ARMS}
        both = {name: [] for name, _ in ARMS}
        for r in range(args.repeats + 1):
            for (name, _), aug in zip(ARMS, augs):
                f, b = once(aug, x, False), once(aug, x, True)
                if r:  # the first round warms up
                    fwd[name].append(f)
                    both[name].append(b)
        step = train_step_per_image(res, min(args.batch, 16))
        base = statistics.median(fwd["diffaug"])
        for name, _ in ARMS:
            f, b = statistics.median(fwd[name]), statistics.median(both[name])
            print(json.dumps({"res": res, "arm": name, "us_per_img_fwd": round(f / args.batch * 1e6, 1),
                              "us_per_img_fwd_bwd": round(b / args.batch * 1e6, 1), "fwd_vs_diffaug": round(f / base, 1)}))
        print(json.dumps({"res": res, "cpu_preset_train_step_us_per_img": round(step * 1e6, 1)}))


if __name__ == "__main__":
    main()
