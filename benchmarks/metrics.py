"""Metrics speed: Inception feature extraction (images/s) and an FID over 10k images with the offline detector.

    python benchmarks/metrics.py --images 32 --batch 8
    python benchmarks/metrics.py --fid-model runs/shapes --fid-data data/shapes.lmdb --fid-detector shapes-detector.pt

The Inception network runs with random weights (speed does not depend on them); when pytorch-fid
(and torchvision) are importable, its network is built from sgan's state_dict and timed on the same inputs.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import torch


def time_inception(images: int, batch: int, size: int) -> dict:
    from sgan.metrics.inception import FIDInceptionV3, preprocess

    torch.manual_seed(0)
    net = FIDInceptionV3().eval()
    x = torch.randint(0, 256, (images, 3, size, size), dtype=torch.uint8)
    with torch.no_grad():
        net(preprocess(x[:2]))  # warm-up
        t0 = time.perf_counter()
        for i in range(0, images, batch):
            net(preprocess(x[i:i + batch]))
        ours = images / (time.perf_counter() - t0)
    out = {"sgan_inception_img_s": round(ours, 2), "images": images, "batch": batch, "input_px": size}
    try:
        import pytorch_fid.inception as pfi
    except ImportError:
        out["pytorch_fid"] = "not installed"
        return out
    sd = net.state_dict()
    pfi.load_state_dict_from_url = lambda *a, **k: sd
    ref = pfi.InceptionV3([3], resize_input=True, normalize_input=True).eval()
    with torch.no_grad():
        ref(x[:2].float() / 255)
        t0 = time.perf_counter()
        for i in range(0, images, batch):
            ref(x[i:i + batch].float() / 255)
        out["pytorch_fid_img_s"] = round(images / (time.perf_counter() - t0), 2)
    return out


def time_fid(model: str, data: str, detector: str, num: int, batch: int) -> dict:
    from sgan.checkpoint import load_generator
    from sgan.metrics import fid

    G = load_generator(model)
    t0 = time.perf_counter()
    res = fid(G, data_path=data, detector=detector, num=num, num_real=num, batch=batch, use_cache=False)
    return {"fid_wall_s": round(time.perf_counter() - t0, 1), "fid": round(res["fid"], 4), "num_gen": num,
            "num_real": num, "detector": res["detector"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--size", type=int, default=256, help="input size before the resize to 299")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--fid-model")
    ap.add_argument("--fid-data")
    ap.add_argument("--fid-detector")
    ap.add_argument("--fid-num", type=int, default=10000)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(), "loadavg": os.getloadavg()[0]}
    if args.images:
        result.update(time_inception(args.images, args.batch, args.size))
    if args.fid_model:
        result.update(time_fid(args.fid_model, args.fid_data, args.fid_detector, args.fid_num, 64))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
