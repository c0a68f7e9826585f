"""Projection steps/s and video frames/s on this machine (random-weight models: speed only).

    python benchmarks/project_video.py                       # cpu preset, 32 and 64 px
    python benchmarks/project_video.py --res 256 --preset paper --device cuda

Projection: `steps` steps of sgan.play.project.project (W+, pixel-gradient loss, noise maps optimised).
Video: a 2-seed walk rendered and encoded to mp4 at --batch frames per pass (frames/s of the whole
pipeline: mapping, synthesis, uint8 conversion, ffmpeg libx264 crf 18), and rendering alone.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from sgan.nn import Generator, ModelConfig
from sgan.play.project import ProjectConfig, project, w_statistics
from sgan.play.project_loss import PixelGradientLoss
from sgan.play.video import auto_scale, iter_frames, seed_keys, walk_animation, write_video
from sgan.viz import to_uint8


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--res", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--preset", default="cpu")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--frames", type=int, default=60)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    print(f"torch {torch.__version__}, {dev}, {torch.get_num_threads()} threads, load {os.getloadavg()[0]:.1f}")
    print("| res | preset | projection steps/s | video frames/s (render + encode) | render only frames/s |")
    print("|---:|---|---:|---:|---:|")
    for res in args.res:
        torch.manual_seed(0)
        G = Generator(ModelConfig.preset(args.preset, res)).eval().requires_grad_(False).to(dev)
        stats = w_statistics(G, 1000, torch.Generator(device=dev).manual_seed(0))
        with torch.no_grad():
            target = to_uint8(G.synthesis(G.map(torch.randn(1, G.z_dim, device=dev)), noise_mode="const"))[0]
        cfg = ProjectConfig(steps=args.steps, w_avg_samples=1000)
        project(G, target, PixelGradientLoss(), cfg=ProjectConfig(steps=3), generator=torch.Generator(device=dev), w_stats=stats)
        t = time.perf_counter()
        project(G, target, PixelGradientLoss(), cfg=cfg, generator=torch.Generator(device=dev).manual_seed(1), w_stats=stats)
        steps_s = args.steps / (time.perf_counter() - t)
        keys = seed_keys(G, [0, 1], space="w", truncation_psi=1.0, truncation_cutoff=None)
        anim = walk_animation(G, keys, space="w", cells=1, cols=1, frames_per_key=args.frames - 1, loop=False)
        scale = auto_scale(res, 1, 1)
        t = time.perf_counter()
        for _ in iter_frames(G, anim, scale=scale, batch=args.batch):
            pass
        render_s = anim.num_frames / (time.perf_counter() - t)
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            write_video(G, anim, os.path.join(tmp, "v.mp4"), scale=scale, batch=args.batch)
            video_s = anim.num_frames / (time.perf_counter() - t)
        print(f"| {res} | {args.preset} | {steps_s:.1f} | {video_s:.1f} | {render_s:.1f} |")


if __name__ == "__main__":
    main()
