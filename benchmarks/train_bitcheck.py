"""Bit-identity check of training: a few tiny runs on the library API, one sha256 per run over
G, D, G_ema, both optimizers' states, the training counters (StyleGAN2's pl_mean among them), the
logged losses, ADA's state and the fp16 loss scalers' state.

    PYTHONPATH=. python benchmarks/train_bitcheck.py [--out hashes.json] [--compare hashes.json]

Run it before and after a change to sgan/train/: the same seeds must give the same hashes, for
both architectures, with and without ADA, labels (--cond), style mixing, WGAN-GP and fp16 (emulated on the CPU:
the run pretends the CPU has native float16, as tests/test_train_fp16.py does). `--compare` exits
1 when a hash differs; a hash the reference file does not hold (a run or state added after it was
written) is reported, not compared."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import torch

TINY = {
    "stylegan1": {"fmap_max": 8, "fmap_min": 4, "z_dim": 16, "w_dim": 16, "mapping_fmaps": 16},
    "stylegan2": {"channel_max": 8, "z_dim": 16, "w_dim": 16, "mapping_fmaps": 16},
}
# name -> (arch, TrainConfig changes); every run: 12 steps of batch 8 (0.096 kimg), seed 3.
RUNS = {
    "sg1-logistic": ("stylegan1", dict(lod_training_kimg=0.024, lod_transition_kimg=0.024, r1_interval=2)),
    "sg1-wgangp-reuse": ("stylegan1", dict(lod_training_kimg=0.024, lod_transition_kimg=0.024, loss="wgan-gp",
                                           fresh_g_latents=False, minibatch_repeats=2)),
    "sg1-ada-cond": ("stylegan1", dict(lod_training_kimg=0.024, lod_transition_kimg=0.024, aug="ada",
                                       aug_kimg=0.5, aug_interval=2, aug_target=0.01, cond=True)),
    "sg2": ("stylegan2", dict()),
    "sg2-ada-cond": ("stylegan2", dict(aug="ada", aug_kimg=0.5, aug_interval=2, aug_target=0.01, cond=True)),
    "sg2-ada-cond-nomix": ("stylegan2", dict(aug="ada", aug_kimg=0.5, aug_interval=2, aug_target=0.01, cond=True,
                                             style_mixing_prob=0.0)),
    "sg2-diffaug-nomix": ("stylegan2", dict(aug="diffaug", style_mixing_prob=0.0)),
    "sg2-fp16": ("stylegan2", dict(precision="fp16")),
    "sg1-fp16": ("stylegan1", dict(lod_training_kimg=0.024, lod_transition_kimg=0.024, precision="fp16")),
}
STEPS, BATCH = 12, 8


def _feed(h, obj) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous().reshape(-1)
        h.update(f"T{t.dtype}{tuple(obj.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            h.update(f"K{k}".encode())
            _feed(h, obj[k])
    elif isinstance(obj, (list, tuple)):
        h.update(f"L{len(obj)}".encode())
        for x in obj:
            _feed(h, x)
    else:
        h.update(repr(obj).encode())


def _digest(obj) -> str:
    h = hashlib.sha256()
    _feed(h, obj)
    return h.hexdigest()[:16]


def run_one(name: str, data: Path, work: Path) -> dict[str, str]:
    from sgan.checkpoint import load_checkpoint
    from sgan.train import preset_config, train

    arch, changes = RUNS[name]
    cfg = preset_config("tiny", arch=arch)
    values = dict(model=dict(TINY[arch]), seed=3, batch_base=BATCH, total_kimg=STEPS * BATCH / 1000.0,
                  snap_kimg=1000.0, tick_kimg_base=0.04, compile="off", **changes)
    values.setdefault("precision", "fp32")
    if hasattr(cfg, "replace"):
        cfg = cfg.replace(**values)
    else:
        for k, v in values.items():
            setattr(cfg, k, v)
    out = work / name
    result = train(cfg, data, out, device="cpu", threads=1)
    ckpt = load_checkpoint(result.snapshot)
    extra = ckpt.extra
    stats = [{k: v for k, v in rec.items() if k.startswith(("G_", "D_", "aug_", "acc_")) or k in ("kimg", "step")}
             for rec in (json.loads(line) for line in (out / "stats.jsonl").read_text().splitlines())]
    counters = {k: v for k, v in extra["counters"].items() if not k.endswith("_seconds")}
    return {"G": _digest(ckpt.G), "D": _digest(ckpt.D), "G_ema": _digest(ckpt.G_ema),
            "opt": _digest([extra["opt_G"], extra["opt_D"]]), "counters": _digest(counters),
            "stats": _digest(stats), "aug": _digest(extra.get("augment")), "scalers": _digest(extra.get("grad_scalers"))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="write the hashes here (JSON)")
    ap.add_argument("--compare", type=Path, help="compare with hashes written before")
    ap.add_argument("--only", default="", help="comma-separated run names (default: all)")
    args = ap.parse_args()

    import sgan.device
    from sgan.data.prepare import prepare_dataset

    # fp16 trains off CUDA only where the CPU has native float16: pretend it has (emulated, exact).
    sgan.device.cpu_flags = lambda path="/proc/cpuinfo": {"avx2", "avx512_fp16"}
    torch.set_num_threads(1)
    names = [n for n in args.only.split(",") if n] or list(RUNS)
    hashes: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "shapes.lmdb"
        prepare_dataset("builtin:shapes", data, max_size=16, min_size=4, count=96, workers=1)
        for name in names:
            hashes[name] = run_one(name, data, Path(tmp))
            print(f"{name:20s} " + " ".join(f"{k}={v}" for k, v in hashes[name].items()), flush=True)
    if args.out:
        args.out.write_text(json.dumps(hashes, indent=1, sort_keys=True) + "\n")
    if args.compare:
        want = json.loads(args.compare.read_text())
        new = [f"{n}:{k}" for n in names for k in hashes[n] if k not in want.get(n, {})]
        if new:
            print(f"not in {args.compare.name} (not compared): {', '.join(new)}")
        bad = [n for n in names if any(want[n][k] != v for k, v in hashes[n].items() if k in want.get(n, {}))]
        for n in bad:
            diff = [k for k, v in hashes[n].items() if k in want[n] and want[n][k] != v]
            print(f"DIFFERS: {n}: {', '.join(diff)}")
        print("all identical" if not bad else f"{len(bad)} of {len(names)} runs differ")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
