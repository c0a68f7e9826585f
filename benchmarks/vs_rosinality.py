"""sgan beside rosinality/style-based-gan-pytorch at the paper's widths, timed in one run.

    git clone https://github.com/rosinality/style-based-gan-pytorch /tmp/rosinality
    python benchmarks/vs_rosinality.py --repo /tmp/rosinality --res 8,16,32 --threads 2

Their `model.py` is imported at run time from --repo (nothing of theirs is in sgan). Both sides:
StyleGAN 1 at the official widths (mapping 8x512, 512 channels up to 32 px), batch 16, lod 0 (the
whole network at that resolution, no fade-in), fp32, the same torch threads.

- "G fwd": a generator forward from z with random noise, under torch.no_grad (images/s), and the
  fraction of the conv ceiling it reaches: (G forward FLOPs, counted on sgan's G) x images/s over
  the GFLOP/s of a bare 3x3 conv 512->512 forward at that resolution and batch.
- "step": one training step with WGAN-GP (their train.py's loss; n_critic 1): D on reals, on
  fakes and on the interpolates with the gradient penalty, Adam; then G with fresh z, Adam; then
  the EMA of G. sgan's side is `Trainer.step` of the `paper` preset with `--loss wgan-gp`, style
  mixing 0.9 on both sides.

Rounds alternate sgan / rosinality; each cell is the best round (least disturbed by other load).
Prints one table: images/s, sgan/rosinality ratio, and the conv-ceiling fractions.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib.util
import random
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train import make_trainer  # noqa: E402  (benchmarks/train.py)

from sgan.data.prepare import prepare_dataset  # noqa: E402
from sgan.nn import make_discriminator, make_generator  # noqa: E402


def load_theirs(repo: Path):
    spec = importlib.util.spec_from_file_location("rosinality_model", repo / "model.py")
    if spec is None or not (repo / "model.py").is_file():
        raise SystemExit(f"{repo}: no model.py here; pass a clone of rosinality/style-based-gan-pytorch.")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class TheirStep:
    """Their train.py's WGAN-GP step, on the CPU (no DataParallel)."""

    def __init__(self, model, res: int, batch: int) -> None:
        self.G = model.StyledGenerator(512)
        self.D = model.Discriminator(from_rgb_activate=True)
        self.G_running = copy.deepcopy(self.G).eval()
        self.opt_G = torch.optim.Adam(self.G.generator.parameters(), lr=0.001, betas=(0.0, 0.99))
        self.opt_G.add_param_group({"params": self.G.style.parameters(), "lr": 0.001 * 0.01, "mult": 0.01})
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=0.001, betas=(0.0, 0.99))
        self.step_index = {4 * 2 ** i: i for i in range(9)}[res]
        self.res, self.batch = res, batch
        self.reals = torch.rand(batch, 3, res, res) * 2 - 1

    def _z(self):
        if random.random() < 0.9:  # their --mixing: two codes per image
            return list(torch.randn(2, self.batch, 512).unbind(0))
        return torch.randn(self.batch, 512)

    def forward_only(self) -> torch.Tensor:
        with torch.no_grad():
            return self.G(torch.randn(self.batch, 512), step=self.step_index, alpha=-1)

    def step(self) -> None:
        G, D, s = self.G, self.D, self.step_index
        D.zero_grad()
        _requires_grad(G, False)
        _requires_grad(D, True)
        real_predict = D(self.reals, step=s, alpha=-1)
        real_predict = real_predict.mean() - 0.001 * (real_predict ** 2).mean()
        (-real_predict).backward()
        fake = G(self._z(), step=s, alpha=-1)
        fake_predict = D(fake, step=s, alpha=-1).mean()
        fake_predict.backward()
        eps = torch.rand(self.batch, 1, 1, 1)
        x_hat = (eps * self.reals + (1 - eps) * fake.detach()).requires_grad_(True)
        hat_predict = D(x_hat, step=s, alpha=-1)
        grad_x_hat = torch.autograd.grad(hat_predict.sum(), x_hat, create_graph=True)[0]
        (10 * ((grad_x_hat.view(self.batch, -1).norm(2, dim=1) - 1) ** 2).mean()).backward()
        self.opt_D.step()
        G.zero_grad()
        _requires_grad(G, True)
        _requires_grad(D, False)
        (-D(G(self._z(), step=s, alpha=-1), step=s, alpha=-1).mean()).backward()
        self.opt_G.step()
        with torch.no_grad():  # their accumulate(g_running, generator, 0.999)
            for p_ema, p in zip(self.G_running.parameters(), G.parameters()):
                p_ema.mul_(0.999).add_(p, alpha=0.001)


def _requires_grad(module: torch.nn.Module, flag: bool) -> None:
    for p in module.parameters():
        p.requires_grad_(flag)


def per_second(fn, *, seconds: float, batch: int) -> float:
    fn()  # warm-up
    n, t0 = 0, time.perf_counter()
    while n < 2 or time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return batch * n / (time.perf_counter() - t0)


def count_flops(fn) -> float:
    with torch.enable_grad(), FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def conv_ceiling(batch: int, res: int, seconds: float) -> float:
    """GFLOP/s of a bare 3x3 conv 512 -> 512 forward at this shape."""
    x, w = torch.randn(batch, 512, res, res), torch.randn(512, 512, 3, 3)
    with torch.no_grad():
        rate = per_second(lambda: F.conv2d(x, w, padding=1), seconds=seconds, batch=1)
    return rate * 2 * batch * 512 * 512 * 9 * res * res / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repo", type=Path, required=True, help="a clone of rosinality/style-based-gan-pytorch")
    ap.add_argument("--res", default="8,16,32")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seconds", type=float, default=3.0, help="time per cell and round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--fused", default="auto", choices=["auto", "always", "never"],
                    help="sgan's fused_updown for this run (transposed/strided conv vs separate up/down)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    theirs = load_theirs(args.repo)
    resolutions = [int(r) for r in args.res.split(",")]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, fp32, "
          f"sgan fused_updown {args.fused}")
    print(f"{'res':>4s} | {'G fwd sgan':>10s} {'rosin.':>8s} {'ratio':>6s} {'sgan/ceil':>9s} {'ros/ceil':>8s} | "
          f"{'step sgan':>9s} {'rosin.':>8s} {'ratio':>6s}")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "shapes.lmdb"
        prepare_dataset("builtin:shapes", data, max_size=max(resolutions), min_size=4, count=64, workers=1)
        for res in resolutions:
            torch.manual_seed(0)
            tr = make_trainer(data, Path(tmp) / f"run{res}", "paper", res, "wgan-gp", "none", args.batch,
                              threads=torch.get_num_threads())
            if args.fused != "auto":  # rebuild the networks with the other up/down form
                tr.model_cfg = dataclasses.replace(tr.model_cfg, fused_updown=args.fused)
                tr.G, tr.D = make_generator(tr.model_cfg), make_discriminator(tr.model_cfg)
                tr.G_ema = copy.deepcopy(tr.G).eval().requires_grad_(False)
                tr.opt_G, tr.opt_D = tr._adam(tr.G), tr._adam(tr.D)
            tr.cfg.style_mixing_prob = 0.9
            ours_G = tr.G

            def ours_forward() -> None:
                with torch.no_grad():
                    ours_G(torch.randn(args.batch, 512), noise_mode="random")

            ref = TheirStep(theirs, res, args.batch)
            g_flops = count_flops(lambda: ours_G(torch.randn(args.batch, 512))) / args.batch
            their_flops = count_flops(lambda: ref.G(torch.randn(args.batch, 512), step=ref.step_index)) / args.batch
            best = {"fo": 0.0, "ft": 0.0, "so": 0.0, "st": 0.0, "ceil": 0.0}
            for r in range(args.rounds):
                order = [("fo", ours_forward), ("ft", ref.forward_only), ("so", lambda: tr.step(False)),
                         ("st", ref.step)]
                if r % 2:
                    order = [order[1], order[0], order[3], order[2]]
                for key, fn in order:
                    best[key] = max(best[key], per_second(fn, seconds=args.seconds, batch=args.batch))
                best["ceil"] = max(best["ceil"], conv_ceiling(args.batch, res, args.seconds / 2))
            frac_o = best["fo"] * g_flops / 1e9 / best["ceil"]
            frac_t = best["ft"] * their_flops / 1e9 / best["ceil"]
            print(f"{res:4d} | {best['fo']:10.1f} {best['ft']:8.1f} {best['fo'] / best['ft']:6.2f} {frac_o:9.2f} "
                  f"{frac_t:8.2f} | {best['so']:9.2f} {best['st']:8.2f} {best['so'] / best['st']:6.2f}", flush=True)
            print(f"     G forward GFLOP/image: sgan {g_flops / 1e9:.3f}, rosinality {their_flops / 1e9:.3f}; "
                  f"conv ceiling {best['ceil']:.0f} GFLOP/s", flush=True)


if __name__ == "__main__":
    main()
