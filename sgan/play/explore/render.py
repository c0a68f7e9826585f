"""The explorer's model: load once, render a state, save it.

Rendering is `sgan generate`'s: z from the seed (`z_from_seed`), `G.map` with truncation, then
`synthesize` with the seed's noise; style mixing copies layers as `sgan mix` does (`mix_rows_cols`),
directions add `strength * direction` to their layers, and StyleGAN3's input transform is
`input_transform` as in `sgan generate --translate/--rotate`. So an unmixed, unsteered state gives
the very pixels and W+ latent that `sgan generate --seeds S --save-latents` writes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shlex
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sgan.latent import save_latent, z_from_seed
from sgan.play.explore.directions import Directions, load_directions
from sgan.play.explore.state import ALL_NOISE_MODES, SEED_MAX, ExploreState, ModelFacts
from sgan.play.generate import sampling_options, synthesize
from sgan.play.mixing import mix_rows_cols, model_style_groups
from sgan.play.provenance import png_text, provenance, write_latent_sidecar
from sgan.viz import png_bytes, save_png, to_uint8
from sgan.checkpoint import inference_generator
from sgan.formats import open_checkpoint   # sgan checkpoints and foreign files (converted in memory)
from sgan.fileio import atomic_write_bytes
from sgan.nn.stylegan3 import input_transform
from sgan.play.classes import class_names, with_class


@dataclass
class Frame:
    image: np.ndarray          # uint8 [H, W, C]
    ws: torch.Tensor           # float32 [num_ws, w_dim] (after truncation, mixing and directions)
    ms: float                  # wall time of the rendering


class Explorer:
    """One model (and optional directions) ready to render states; not thread-safe (the server
    renders one state at a time)."""

    def __init__(self, ckpt: str | os.PathLike, *, device: torch.device | str = "cpu", precision: Any = "fp32",
                 directions: str | os.PathLike | None = None) -> None:

        self.ckpt_path = str(ckpt)
        self.device = torch.device(device)
        self.precision = precision            # a name or a sgan.device.PrecisionChoice
        opened = open_checkpoint(ckpt)
        self.G = inference_generator(opened, device=self.device)
        c_dim = int(getattr(self.G, "c_dim", 0) or 0)
        self.class_names = class_names(opened.extra, c_dim) if c_dim else []
        self._class_G: dict[int, torch.nn.Module] = {}
        self.arch = getattr(self.G.cfg, "arch", "stylegan1")
        psi, cutoff, noise, _ = sampling_options(self.G)
        self.defaults = {"truncation_psi": psi, "truncation_cutoff": cutoff, "noise_mode": noise}
        self.directions: Directions | None = None
        self.direction_range: list[float] = []
        if directions is not None:
            self.directions = load_directions(directions, w_dim=self.G.w_dim, num_ws=self.G.num_ws)
            self.direction_range = self._direction_spread()
        self.facts = ModelFacts(num_ws=self.G.num_ws, style_groups=model_style_groups(self.G), class_names=tuple(self.class_names),
                                num_directions=len(self.directions) if self.directions else 0,
                                has_input_transform=self.arch == "stylegan3")

    @property
    def precision_name(self) -> str:
        return getattr(self.precision, "precision", str(self.precision))

    def generator(self, class_index: int | None) -> torch.nn.Module:
        """G, or G with its class fixed (sgan.play.classes), cached per class."""
        if class_index is None:
            return self.G
        if class_index not in self._class_G:
            self._class_G[class_index] = with_class(self.G, class_index, self.class_names)
        return self._class_G[class_index]

    @torch.no_grad()
    def _direction_spread(self, samples: int = 256) -> list[float]:
        """Slider half-range per direction: 3 standard deviations of w along it over sampled z (the
        typical size of a real change), at least 1."""
        G = self.generator(0 if self.class_names else None)
        z = torch.stack([z_from_seed(s, G.z_dim) for s in range(samples)]).to(self.device)
        w = G.map(z)[:, 0].float().cpu().numpy()
        proj = w @ self.directions.vectors.T                     # [samples, K]
        return [float(max(1.0, round(3 * s, 1))) for s in proj.std(axis=0)]

    def info(self) -> dict[str, Any]:
        """What the page needs to build its controls."""
        groups = {k: [r[0], r[-1]] if r else None for k, r in self.facts.style_groups.items()}
        d = self.directions
        return {
            "checkpoint": self.ckpt_path, "arch": self.arch, "resolution": self.G.resolution, "num_ws": self.G.num_ws,
            "w_dim": self.G.w_dim, "classes": list(self.class_names), "noise_modes": list(ALL_NOISE_MODES),
            "defaults": dict(self.defaults),
            "style_groups": groups, "seed_max": SEED_MAX, "input_transform": self.facts.has_input_transform,
            "precision": self.precision_name,
            "directions": None if d is None else {
                "file": str(d.path), "method": d.method, "layers": d.layers, "names": d.names,
                "scores": [float(s) for s in d.scores], "range": self.direction_range},
        }

    @torch.no_grad()
    def latent(self, state: ExploreState) -> torch.Tensor:
        """The W+ latent [num_ws, w_dim] of a state."""
        G = self.generator(state.class_index)
        trunc = dict(truncation_psi=state.truncation_psi, truncation_cutoff=state.truncation_cutoff)
        ws = G.map(z_from_seed(state.seed, G.z_dim)[None].to(self.device), **trunc)
        if state.mixed:
            ws_b = G.map(z_from_seed(state.mix_seed, G.z_dim)[None].to(self.device), **trunc)
            ws = mix_rows_cols(ws, ws_b, list(state.mix_styles))[:, 0]
        if state.steered:
            ws = ws.clone()
            layers = self.directions.layers
            vectors = torch.from_numpy(self.directions.vectors).to(ws)
            step = (torch.tensor(state.directions, dtype=ws.dtype, device=ws.device)[:, None] * vectors).sum(0)
            ws[:, layers] += step
        return ws[0]

    def _transform(self, state: ExploreState):
        if not self.facts.has_input_transform or not state.transformed:
            return contextlib.nullcontext()
        return input_transform(self.G, translate=state.translate, rotate=state.rotate)

    @torch.no_grad()
    def render(self, state: ExploreState) -> Frame:
        start = time.perf_counter()
        ws = self.latent(state)
        with self._transform(state):
            img = synthesize(self.generator(state.class_index), ws[None], noise_mode=state.noise_mode,
                             seeds=[state.seed], device=self.device, precision=self.precision_name)
        image = to_uint8(img)[0]
        return Frame(image=image, ws=ws.float().cpu(), ms=(time.perf_counter() - start) * 1000)

    def png(self, frame: Frame) -> bytes:
        return png_bytes(frame.image)

    # ----- saving -----------------------------------------------------------------------------------

    def file_stem(self, state: ExploreState) -> str:
        """seedNNNN for a plain state (the names `sgan generate` uses), else seedNNNN-<hash of the settings>."""
        stem = f"seed{state.seed:04d}"
        if self.plain(state) and state.class_index is None:
            return stem
        digest = hashlib.sha256(json.dumps(state.to_dict(), sort_keys=True).encode()).hexdigest()[:8]
        return f"{stem}-{digest}"

    @staticmethod
    def plain(state: ExploreState) -> bool:
        return not (state.mixed or state.steered)

    def record(self, state: ExploreState) -> dict[str, Any]:
        d = self.directions
        steer = None
        if state.steered:
            steer = {"file": str(d.path), "layers": d.layers,
                     "strengths": {d.names[i]: s for i, s in enumerate(state.directions) if s != 0}}
        return provenance(
            command="explore", precision=self.precision, checkpoint=self.ckpt_path,
            truncation_psi=state.truncation_psi,
            truncation_cutoff="all" if state.truncation_cutoff is None else state.truncation_cutoff,
            noise_mode=state.noise_mode,
            **{"class": None if state.class_index is None else self.class_names[state.class_index]},
            mix_seed=state.mix_seed if state.mixed else None, mix_styles=list(state.mix_styles) if state.mixed else None,
            directions=steer, translate=list(state.translate) if state.transformed else None,
            rotate=state.rotate if state.transformed else None)

    def command(self, state: ExploreState, out_dir: str | os.PathLike) -> tuple[str | None, str]:
        """The command line that writes the same image and latent, and a sentence on what it writes."""
        cls = [] if state.class_index is None else ["--class", self.class_names[state.class_index]]
        trunc = ["--trunc", f"{state.truncation_psi:g}", "--trunc-cutoff",
                 str(self.G.num_ws if state.truncation_cutoff is None else state.truncation_cutoff)]
        move = []
        if state.transformed:
            move = ["--translate", f"{state.translate[0]:g},{state.translate[1]:g}", "--rotate", f"{state.rotate:g}"]
        if self.plain(state):
            argv = ["sgan", "generate", self.ckpt_path, "--seeds", str(state.seed), *trunc, "--noise-mode",
                    state.noise_mode, *cls, *move, "--precision", self.precision_name, "--save-latents",
                    "--outdir", str(out_dir)]
            return shlex.join(argv), f"writes seed{state.seed:04d}.png and .npy with these pixels and this latent"
        if state.mixed and not state.steered and not state.transformed:
            argv = ["sgan", "mix", self.ckpt_path, "--rows", str(state.seed), "--cols", str(state.mix_seed),
                    "--styles", ",".join(str(i) for i in state.mix_styles), *trunc, "--noise-mode", state.noise_mode,
                    *cls, "--precision", self.precision_name, "--out", str(Path(out_dir) / "mix.png")]
            return shlex.join(argv), "the bottom-right tile of its 2x2 grid is this image"
        if state.noise_mode in ("const", "none") and not state.transformed:
            stem = self.file_stem(state)
            latent = str(Path(out_dir) / f"{stem}.npy")
            argv = ["sgan", "mix", self.ckpt_path, "--coarse", latent, "--fine", latent, "--noise-mode",
                    state.noise_mode, *cls, "--precision", self.precision_name,
                    "--out", str(Path(out_dir) / f"{stem}-check.png")]
            return shlex.join(argv), "renders the saved W+ latent (each of its three tiles is this image)"
        return None, ("no single sgan command renders directions with this noise mode or input transform; "
                      "the saved W+ latent and the settings in the JSON sidecar reproduce it")

    def save(self, state: ExploreState, out_dir: str | os.PathLike) -> dict[str, Any]:
        """Render `state` and write STEM.png (provenance text chunks), STEM.npy (its W+ latent, as
        `generate --save-latents`), STEM.json (the latent's sidecar, with the settings and the command)
        and STEM.txt (the command line) into `out_dir`."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        frame = self.render(state)
        stem = self.file_stem(state)
        record = self.record(state)
        command, note = self.command(state, out)
        save_png(out / f"{stem}.png", frame.image, text=png_text(record, seed=state.seed))
        save_latent(out / f"{stem}.npy", frame.ws)
        write_latent_sidecar(out / f"{stem}.npy", record, seed=state.seed, image=f"{stem}.png",
                             shape=list(frame.ws.shape), explore_state=state.to_dict(),
                             reproduce={"command": command, "note": note})
        text = (command + "\n" if command else "") + f"# {note}\n"
        atomic_write_bytes(out / f"{stem}.txt", text.encode())
        names = [f"{stem}.{ext}" for ext in ("png", "npy", "json", "txt")]
        return {"files": [str(out / n) for n in names], "command": command, "note": note, "ms": frame.ms}
