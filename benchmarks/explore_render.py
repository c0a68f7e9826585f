"""How long one change on the `sgan explore` page takes to render on this machine.

For StyleGAN2 models of each resolution and width preset (random weights: the time does not depend on
them): the render of one state by the explorer's library (mapping, truncation, style mixing and one
direction, synthesis, to uint8) and the full round trip of the page's request (POST /api/render to the
server in a thread: JSON, render, PNG encoding, base64), median and best of --reps, per thread count.

    python benchmarks/explore_render.py                               # 256 px, paper and cpu widths, 1 and 2 threads
    python benchmarks/explore_render.py --res 64 128 256 --presets paper half cpu --threads 2 --reps 7
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from sgan.checkpoint import save_checkpoint  # noqa: E402
from sgan.nn import ModelConfig, make_discriminator, make_generator  # noqa: E402
from sgan.play.explore.render import Explorer  # noqa: E402
from sgan.play.explore.server import ExploreApp, make_server, serve_in_thread  # noqa: E402
from sgan.play.explore.state import parse_state  # noqa: E402


def model_file(folder: Path, preset: str, res: int) -> Path:
    torch.manual_seed(0)
    cfg = ModelConfig.preset(preset, res, arch="stylegan2")
    G = make_generator(cfg)
    return save_checkpoint(folder / f"sg2-{preset}-{res}.pt", config=cfg, G=G, G_ema=G, D=make_discriminator(cfg))


def directions_file(folder: Path, w_dim: int, num_ws: int) -> Path:
    q, _ = np.linalg.qr(np.random.RandomState(0).randn(w_dim, 2))
    path = folder / f"dirs-{w_dim}-{num_ws}.npz"
    np.savez(path, directions=q.T.astype(np.float32), scores=np.ones(2, np.float32), method=np.array("sefa"),
             layers=np.arange(num_ws), names=np.array(["a", "b"]), checkpoint_sha256=np.array(""),
             w_dim=np.array(w_dim), num_ws=np.array(num_ws))
    return path


def times_ms(fn, reps: int) -> list[float]:
    fn()                                                    # warm-up
    out = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--res", type=int, nargs="+", default=[256])
    parser.add_argument("--presets", nargs="+", default=["paper", "cpu"])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--reps", type=int, default=5)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, cpu capability {torch.backends.cpu.get_cpu_capability()}")
    print("| preset | res | channels at res | threads | render median ms | render best ms | page round trip median ms |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for res in args.res:
            for preset in args.presets:
                ckpt = model_file(folder, preset, res)
                cfg = ModelConfig.preset(preset, res, arch="stylegan2")
                probe = Explorer(ckpt)
                ex = Explorer(ckpt, directions=directions_file(folder, probe.G.w_dim, probe.G.num_ws))
                app = ExploreApp(ex, out_dir=folder / "out")
                server = make_server(app)
                serve_in_thread(server)
                url = server.url.replace("/?", "/api/render?")
                seed = iter(range(10 ** 6))

                def page_state() -> dict:
                    return {"seed": next(seed), "truncation_psi": 0.7, "mix_seed": 1, "mix_styles": "coarse",
                            "directions": [1.0, 0.0]}

                def render() -> None:
                    ex.render(parse_state(page_state(), ex.facts, defaults=ex.defaults))

                counter = iter(range(10 ** 6))

                def round_trip() -> None:
                    body = json.dumps({"client": "bench", "request": next(counter), "state": page_state()}).encode()
                    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
                    with urllib.request.urlopen(req, timeout=600) as resp:
                        assert resp.status == 200
                        resp.read()

                for threads in args.threads:
                    torch.set_num_threads(threads)
                    r = times_ms(render, args.reps)
                    t = times_ms(round_trip, args.reps)
                    print(f"| {preset} | {res} | {cfg.channels(res)} | {threads} | {statistics.median(r):.0f} | "
                          f"{min(r):.0f} | {statistics.median(t):.0f} |", flush=True)
                server.shutdown()
                server.server_close()


if __name__ == "__main__":
    main()
