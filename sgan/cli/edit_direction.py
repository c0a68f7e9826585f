"""`sgan edit --direction FILE.npz:K`: seeds moved along a direction of `sgan directions` (strip and video)."""

from __future__ import annotations

import math
from pathlib import Path

from sgan.cli._common import check_out_dir, check_out_file, console, parse_int_list, pick_precision
from sgan.errors import UsageError

MAX_SEEDS = 64     # rows of the strip


def run_direction_edit(*, ckpt: Path, direction: str, seeds: str | None, strength: str | None, steps: int | None,
                       layers: str | None, trunc: float | None, trunc_cutoff: int | None, noise_mode: str | None,
                       class_: str | None, out: Path | None, video: Path | None, seconds: float, fps: float,
                       scale: int, device: str, precision: str) -> None:
    import torch

    from sgan.device import check_precision, configure_cuda, resolve_device
    from sgan.fileio import atomic_write_json
    from sgan.play.classes import load_class_generator
    from sgan.play.directions import check_fits, layer_indices, load_directions, parse_direction_spec, pick_direction
    from sgan.play.directions_edit import parse_strengths, render_strip, seed_ws, strength_text, sweep_animation
    from sgan.play.figures import labelled_grid
    from sgan.play.generate import check_render_options, sampling_options
    from sgan.play.provenance import checkpoint_fields, png_text, provenance
    from sgan.play.video import auto_scale, frame_count, write_video
    from sgan.viz import save_png

    # every input is checked before a model is timed or a file written: a bad one is one line
    if seeds is None:
        raise UsageError("--direction moves seeds: give --seeds such as 0-3 (one row of the strip each).")
    seed_list = parse_int_list(seeds, option="--seeds", max_count=MAX_SEEDS)
    strengths = parse_strengths("-3..3" if strength is None else strength, steps)
    if trunc_cutoff is not None and trunc_cutoff < 0:
        raise UsageError("--trunc-cutoff must be zero or more (the number of layers truncated from the coarsest).")
    if out is None and video is None:
        raise UsageError("give --out FOLDER (strip.png) and/or --video FILE.mp4 for the edit along --direction.")
    if out is not None:
        check_out_dir(out, "--out")
    if video is not None:
        check_out_file(video, "--video", suffixes=(".mp4",))
        num_frames = frame_count(seconds, fps)
    path, key = parse_direction_spec(direction)
    dirs = load_directions(path)
    k = pick_direction(dirs, key, source=str(path))
    dev = resolve_device(device)
    check_precision(precision, dev)
    configure_cuda(dev)
    G = load_class_generator(ckpt, class_, device=dev)
    warning = check_fits(dirs, w_dim=G.w_dim, num_ws=G.num_ws,
                         checkpoint_sha256=checkpoint_fields(ckpt).get("checkpoint_sha256"), source=str(path))
    if warning:
        console.print(warning, highlight=False, soft_wrap=True)
    moved_layers = layer_indices(layers, G) if layers is not None else dirs.layers.tolist()
    trunc, trunc_cutoff, noise_mode, _ = sampling_options(G, truncation_psi=trunc, truncation_cutoff=trunc_cutoff,
                                                          noise_mode=noise_mode)
    check_render_options(G, truncation_psi=trunc, truncation_cutoff=trunc_cutoff, noise_mode=noise_mode)
    if video is not None and noise_mode not in ("const", "none"):
        raise UsageError(f"--noise-mode {noise_mode}: a video uses const or none (other noise would flicker).")
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UsageError(f"--out {out} cannot be created ({err.strerror or err}); choose another folder.") from None
    choice = pick_precision(precision, G, dev, batch=len(strengths))   # the work starts here
    name = dirs.names[k]
    prov = provenance(command="edit", precision=choice, checkpoint=ckpt, direction=f"{path}:{name}",
                      direction_method=dirs.method, truncation_psi=trunc,
                      truncation_cutoff="all" if trunc_cutoff is None else trunc_cutoff, noise_mode=noise_mode,
                      layers=moved_layers, **{"class": getattr(G, "class_name", None)})
    d = torch.from_numpy(dirs.directions[k]).to(dev)
    ws = seed_ws(G, seed_list, truncation_psi=trunc, truncation_cutoff=trunc_cutoff)
    written = []
    if out is not None:
        cells = render_strip(G, seed_list, d, strengths, moved_layers, truncation_psi=trunc,
                             truncation_cutoff=trunc_cutoff, noise_mode=noise_mode, precision=choice.precision)
        strip = labelled_grid(cells, col_labels=[strength_text(s) for s in strengths],
                              row_labels=[f"seed {s}" for s in seed_list], scale=scale)
        save_png(out / "strip.png", strip, text=png_text(prov, strengths=strengths, seeds=seeds))
        written.append(f"{out}/strip.png ({len(seed_list)} seeds x {len(strengths)} strengths)")
    if video is not None:
        cols = math.ceil(math.sqrt(len(seed_list)))
        anim = sweep_animation(ws, d, lo=min(strengths), hi=max(strengths), layers=moved_layers,
                               num_frames=num_frames, cols=cols)
        rows_n = math.ceil(len(seed_list) / cols)
        info = write_video(G, anim, video, fps=fps, scale=scale or auto_scale(G.resolution, cols, rows_n),
                           noise_mode=noise_mode, precision=choice.precision, text=png_text(prov))
        written.append(f"{video} ({info['frames']} frames)")
    if out is not None:
        atomic_write_json(out / "edit.json", {
            "checkpoint": str(ckpt), "direction": str(path), "index": k, "name": name, "method": dirs.method,
            "score": float(dirs.scores[k]), "seeds": seed_list, "strengths": strengths, "layers": moved_layers,
            "truncation_psi": trunc, "truncation_cutoff": "all" if trunc_cutoff is None else trunc_cutoff,
            "noise_mode": noise_mode, "files": {"strip": "strip.png", **({"video": str(video)} if video else {})},
            "precision": choice.precision, "provenance": prov})
    console.print(f"Wrote {' and '.join(written)} along {name}.", highlight=False, soft_wrap=True)
