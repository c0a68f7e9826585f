"""sha256 of a tiny StyleGAN2 run's G, D, G_ema, optimizer and augmentation states after 8 steps,
through the library API (sgan.train.train): the bit-identity check of a refactoring of the StyleGAN2
training math (issue 19). Run it before and after a change; the hashes must be equal.

    PYTHONPATH=. python benchmarks/train_sg2_hashes.py                 # every case, one process each
    PYTHONPATH=. python benchmarks/train_sg2_hashes.py --case ada-cond-mix

Cases (the `tiny` preset at 16 px, batch 8: path length every 2nd step, R1 every 4th, so Greg runs
4 times and Dreg twice): ADA + labels with style mixing 0.9 and without mixing; fp32 without ADA;
fp16 (on the amx CPU profile, where torch's CPU float16 autocast trains, emulated where the CPU
lacks it) with mixing. Each prints one line per state: its sha256 and the case.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CASES = {
    "ada-cond-mix": dict(precision="fp32", aug="ada", aug_kimg=0.2, aug_interval=2, aug_target=0.01, cond=True, style_mixing_prob=0.9),
    "ada-cond-nomix": dict(precision="fp32", aug="ada", aug_kimg=0.2, aug_interval=2, aug_target=0.01, cond=True, style_mixing_prob=0.0),
    "plain-mix": dict(precision="fp32", style_mixing_prob=0.9),
    "fp16-mix": dict(precision="fp16", style_mixing_prob=0.9),
}
STEPS, BATCH = 8, 8


def digest(obj, h) -> None:
    """Feed a nested state (dicts in key order, lists, tensors by dtype, shape and bytes) into h."""
    import torch

    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous().reshape(-1)
        h.update(f"T{obj.dtype}{list(obj.shape)}".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            h.update(f"K{k!r}".encode())
            digest(obj[k], h)
    elif isinstance(obj, (list, tuple)):
        h.update(f"L{len(obj)}".encode())
        for v in obj:
            digest(v, h)
    else:
        h.update(f"V{obj!r}".encode())


def sha(obj) -> str:
    h = hashlib.sha256()
    digest(obj, h)
    return h.hexdigest()


def run_case(name: str) -> None:
    import torch

    from sgan.checkpoint import load_checkpoint
    from sgan.data.prepare import prepare_dataset
    from sgan.train import preset_config, train
    from sgan.train.state import unpack

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "shapes.lmdb"
        prepare_dataset("builtin:shapes", data, max_size=16, min_size=4, count=96, workers=1)
        cfg = preset_config("tiny", arch="stylegan2")
        cfg.model = {"channel_max": 8, "z_dim": 16, "w_dim": 16, "mapping_fmaps": 16}
        for k, v in dict(CASES[name], total_kimg=STEPS * BATCH / 1000, resolution=16).items():
            setattr(cfg, k, v)
        torch.manual_seed(0)
        result = train(cfg, data, Path(tmp) / "run", device="cpu", threads=1)
        ck = load_checkpoint(result.snapshot)
        st = unpack(ck.extra, ck.path)
        assert st.counters.step == STEPS, st.counters.step
        states = {"G": ck.G, "D": ck.D, "G_ema": ck.G_ema, "opt_G": st.opt_G, "opt_D": st.opt_D,
                  "pl_mean": ck.extra["counters"]["pl_mean"], "augment": ck.extra.get("augment"),
                  "grad_scalers": ck.extra.get("grad_scalers")}
        for key, value in states.items():
            print(f"{sha(value)}  {name}  {key}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", choices=sorted(CASES), help="one case in this process (default: all, one process each)")
    args = ap.parse_args()
    if args.case:
        run_case(args.case)
        return
    for name in CASES:
        env = dict(os.environ, SGAN_CPU_PROFILE="amx" if name.startswith("fp16") else os.environ.get("SGAN_CPU_PROFILE", ""))
        subprocess.run([sys.executable, __file__, "--case", name], check=True, env=env)


if __name__ == "__main__":
    main()
