"""`sgan video`: latent walks through seeds or latent files, noise and truncation animations (mp4)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import List, Optional

import typer

from sgan.cli._common import (at_least, PRECISION_DEFAULT, PRECISION_HELP, check_out_dir, check_out_file, console, finite,
                              parse_int_list, pick_precision, progress_bar)
from sgan.cli.app import app
from sgan.errors import UsageError

EPILOG = """[b]Examples[/b]

  sgan video runs/shapes --seeds 0,1,2,3 --out walk.mp4
  sgan video runs/shapes --seeds 0-15 --grid 2x2 --loop --space z --seconds-per-seed 1.5 --out grid.mp4
  sgan video runs/shapes --latents proj/a.npy proj/b.npy proj/c.npy --out morph.mp4 --frames frames/
  sgan video runs/shapes --mode noise --seeds 0-3 --seconds 4 --loop --out noise.mp4
  sgan video runs/shapes --mode truncation --seeds 5 --psi-from 1 --psi-to -1 --out trunc.mp4
  sgan video sg3.pt --seeds 0-7 --grid 2x1 --interp cubic --loop --fps 60 --out walk.mp4   (as gen_video.py)
  sgan video sg3.pt --seeds 1 --translate-sweep 0,0:0.5,0 --seconds 3 --out slide.mp4     (StyleGAN3 only)
  sgan video sg3.pt --seeds 1,2 --rotate-sweep 0:360 --seconds 4 --out spin.mp4           (StyleGAN3 only)

Walks: --space w lerps truncated W+ keyframes, --space z slerps z then maps and truncates.
Grid: the seeds (or latents) are split into COLSxROWS cells, each cell walking through its share.
--loop closes the path (back to the first keyframe) and plays seamlessly on repeat.
--interp cubic: NVIDIA gen_video.py's cubic spline through the W keyframes (with --loop exactly its construction;
gen_video.py's own defaults are --interp cubic --loop --fps 60 --seconds-per-seed 2 --trunc 1).
Input sweeps (--mode transform, implied by --translate-sweep / --rotate-sweep; StyleGAN3 models only): each seed's
w fixed while the input moves as gen_images.py's --translate X,Y / --rotate DEG, from the first value to the
second over --seconds (with --loop there and back). A single value sweeps from 0.
"""

MODES = ("walk", "noise", "truncation", "transform")


def _sweep(text: str | None, option: str, size: int) -> tuple | None:
    """--translate-sweep X0,Y0:X1,Y1 (or X1,Y1 from 0,0) / --rotate-sweep A:B (or B from 0) -> (start, end)."""
    if text is None:
        return None
    ends = text.split(":")
    example = "0,0:0.5,0 (image widths)" if size == 2 else "0:360 (degrees)"
    try:
        values = [tuple(float(v) for v in end.split(",")) for end in ends]
    except ValueError:
        values = []
    if len(values) == 1:
        values = [(0.0,) * size] + values
    if len(values) != 2 or any(len(v) != size or not all(math.isfinite(x) for x in v) for v in values):
        raise UsageError(f"{option} {text!r}: give START:END such as {example}.")
    return tuple(values) if size == 2 else (values[0][0], values[1][0])


def _latent_paths(latents: List[str], extra: List[Path]) -> list[Path]:
    """--latents values (each a file, a comma list or a folder of .npy) plus extra positional files."""
    paths: list[Path] = []
    for value in latents:
        for part in value.split(","):
            part = part.strip()
            if not part:
                continue
            p = Path(part)
            if p.is_dir():
                found = sorted(p.glob("*.npy"))
                if not found:
                    raise UsageError(f"--latents {p}: the folder holds no .npy latents.")
                paths.extend(found)
            else:
                paths.append(p)
    return paths + list(extra)


@app.command("video", epilog=EPILOG)
def video_command(
    ckpt: Path = typer.Argument(..., metavar="CKPT", help="A snapshot file or a training run folder."),
    extra: Optional[List[Path]] = typer.Argument(None, metavar="[LATENT.npy ...]", help="More latent files (as --latents)."),
    out: Path = typer.Option(..., "--out", help="Output .mp4 (written atomically)."),
    mode: Optional[str] = typer.Option(None, "--mode", help="walk (interpolate keyframes; the default), noise (fixed w, moving noise), truncation (psi sweep) or transform (StyleGAN3 input sweep; implied by --translate-sweep/--rotate-sweep)."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Seeds, e.g. 0,1,2,3 or 0-15 (default 0-3)."),
    latents: Optional[List[str]] = typer.Option(None, "--latents", help="Latent .npy files (W or W+), a comma list or a folder; walk mode."),
    space: str = typer.Option("w", "--space", help="w: lerp in W+ (after truncation); z: slerp in Z, then map and truncate."),
    seconds_per_seed: float = typer.Option(2.0, "--seconds-per-seed", callback=finite(lo=0, lo_open=True), help="Seconds from one keyframe to the next (walk and noise modes)."),
    seconds: float = typer.Option(4.0, "--seconds", callback=finite(lo=0, lo_open=True), help="Length of a noise or truncation animation."),
    fps: float = typer.Option(30.0, "--fps", callback=finite(lo=0, lo_open=True), help="Frames per second."),
    loop: bool = typer.Option(False, "--loop", help="Close the path so the video loops seamlessly."),
    easing: str = typer.Option("linear", "--easing", help="linear (constant speed) or cosine (pause at keyframes)."),
    interp: str = typer.Option("linear", "--interp", help="Walks in W: linear (lerp between keyframes) or cubic (gen_video.py's cubic spline)."),
    translate_sweep: Optional[str] = typer.Option(None, "--translate-sweep", help="StyleGAN3: translate the input from X0,Y0 to X1,Y1 (image widths), e.g. 0,0:0.5,0."),
    rotate_sweep: Optional[str] = typer.Option(None, "--rotate-sweep", help="StyleGAN3: rotate the input from A to B degrees, e.g. 0:360."),
    grid: Optional[str] = typer.Option(None, "--grid", help="COLSxROWS cells, e.g. 2x2."),
    trunc: float = typer.Option(1.0, "--trunc", callback=finite(lo=-100, hi=100), help="Truncation psi for seed keyframes (1 = none)."),
    trunc_cutoff: Optional[int] = typer.Option(None, "--trunc-cutoff", help="Truncate only the first N styles (default all)."),
    psi_from: float = typer.Option(1.0, "--psi-from", callback=finite(), help="Truncation mode: psi at the start."),
    psi_to: float = typer.Option(-1.0, "--psi-to", callback=finite(), help="Truncation mode: psi at the end (with --loop it returns)."),
    noise_mode: str = typer.Option("const", "--noise-mode", help="Walks: const (stored noise maps) or none."),
    crf: int = typer.Option(18, "--crf", help="x264 quality: 0 lossless, 18 visually lossless, 23 default, 51 worst."),
    scale: int = typer.Option(0, "--scale", callback=at_least(0), help="Nearest-neighbour enlargement (0: until the frame is 256 px or more)."),
    frames: Optional[Path] = typer.Option(None, "--frames", help="Also write every frame as DIR/frameNNNNNN.png."),
    batch: int = typer.Option(8, "--batch", callback=at_least(1), help="Frames rendered per forward pass (memory stays flat)."),
    device: str = typer.Option("auto", "--device", help="auto, cpu, cuda or cuda:N."),
    precision: str = typer.Option(PRECISION_DEFAULT, "--precision", help=PRECISION_HELP),
    class_: Optional[str] = typer.Option(None, "--class", help="Class name or index, for a model trained with --cond."),
) -> None:
    """Render an mp4: a walk through seeds or latents, a noise animation or a truncation sweep."""
    import torch

    from sgan.device import check_precision, configure_cuda, resolve_device
    from sgan.latent import load_latent
    from sgan.play.classes import load_class_generator
    from sgan.play.provenance import png_text, provenance
    from sgan.play.video import (auto_scale, ffmpeg_exe, frame_count, noise_animation, parse_grid, seed_keys,
                            transform_animation, truncation_animation, walk_animation, write_video)

    sweeps = (_sweep(translate_sweep, "--translate-sweep", 2), _sweep(rotate_sweep, "--rotate-sweep", 1))
    swept = any(v is not None for v in sweeps)
    mode = (mode or ("transform" if swept else "walk")).lower()
    if mode not in MODES:
        raise UsageError(f"--mode {mode!r}: choose walk, noise, truncation or transform.")
    if swept != (mode == "transform"):
        raise UsageError("--mode transform needs --translate-sweep and/or --rotate-sweep, and those work only in that mode.")
    if interp not in ("linear", "cubic"):
        raise UsageError(f"--interp {interp!r}: choose linear or cubic.")
    if interp == "cubic" and (mode != "walk" or space != "w"):
        raise UsageError("--interp cubic is for walks in W (--mode walk --space w), as gen_video.py.")
    if not (math.isfinite(fps) and fps > 0):
        raise UsageError(f"--fps must be a positive number, got {fps}.")
    grid_shape = parse_grid(grid)
    latent_files = _latent_paths(latents or [], extra or [])
    if latent_files and mode not in ("walk", "transform"):
        raise UsageError("--latents work with --mode walk and input sweeps; noise and truncation animations take --seeds.")
    if latent_files and seeds is not None:
        raise UsageError("give --seeds or --latents, not both.")
    if latent_files and space == "z":
        raise UsageError("latent files are in W; use --space w with --latents.")
    if space not in ("w", "z"):
        raise UsageError(f"--space {space!r}: choose w (lerp in W+) or z (slerp in Z).")
    if noise_mode not in ("const", "none"):
        raise UsageError(f"--noise-mode {noise_mode!r}: a video uses const (the stored maps) or none "
                         "(random noise would flicker; use --mode noise for a noise animation).")
    if not 0 <= crf <= 51:
        raise UsageError(f"--crf must lie in 0-51 (0 lossless, 18 visually lossless, 23 x264's default), got {crf}.")
    if trunc_cutoff is not None and trunc_cutoff < 0:
        raise UsageError("--trunc-cutoff must be zero or more (the number of styles truncated from the coarsest).")
    seed_list = parse_int_list(seeds or "0-3", option="--seeds") if not latent_files else []
    _check_frame_count(mode, seconds_per_seed=seconds_per_seed, seconds=seconds, fps=fps, loop=loop,
                       keys=len(latent_files) or len(seed_list))
    check_out_file(out, "--out")
    if frames is not None:
        check_out_dir(frames, "--frames")
    ffmpeg_exe()                                            # a missing binary fails before any rendering
    dev = resolve_device(device)
    check_precision(precision, dev)
    configure_cuda(dev)  # CUDA: TF32 and cudnn.benchmark (sgan.device); a no-op on the CPU
    G = load_class_generator(ckpt, class_, device=dev)
    if mode == "transform" and getattr(G.cfg, "arch", None) != "stylegan3":
        raise UsageError(f"--translate-sweep / --rotate-sweep move the input of a StyleGAN3 model; this model is {G.cfg.arch}.")
    if mode == "noise" and G.cfg.arch == "stylegan3":
        raise UsageError("--mode noise animates the noise inputs, and StyleGAN3 models have none (their synthesis is "
                         "deterministic); try a walk or an input sweep (--rotate-sweep 0:360).")

    if mode == "walk":
        frames_per_key = int(round(seconds_per_seed * fps))
        if latent_files:
            keys = torch.stack([load_latent(p, num_ws=G.num_ws, w_dim=G.w_dim) for p in latent_files]).to(dev)
        else:
            keys = seed_keys(G, seed_list, space=space, truncation_psi=trunc, truncation_cutoff=trunc_cutoff)
        cols, rows = grid_shape or (1, 1)
        anim = walk_animation(G, keys, space=space if not latent_files else "w", cells=cols * rows, cols=cols,
                              frames_per_key=frames_per_key, loop=loop, easing=easing, truncation_psi=trunc,
                              truncation_cutoff=trunc_cutoff, interp=interp)
    else:
        n = len(latent_files) if latent_files else len(seed_list)
        if grid_shape is None:
            cols = math.ceil(math.sqrt(n))
            rows = math.ceil(n / cols)
        else:
            cols, rows = grid_shape
        if grid_shape is not None and cols * rows != n:
            raise UsageError(f"--grid {grid} has {cols * rows} cells but {n} seeds were given; one seed per cell.")
        if mode == "transform":
            if latent_files:
                ws = torch.stack([load_latent(p, num_ws=G.num_ws, w_dim=G.w_dim) for p in latent_files]).to(dev)
            else:
                ws = seed_keys(G, seed_list, space="w", truncation_psi=trunc, truncation_cutoff=trunc_cutoff)
            anim = transform_animation(G, ws, cols=cols, num_frames=frame_count(seconds, fps), translate=sweeps[0],
                                       rotate=sweeps[1], loop=loop, easing=easing)
        elif mode == "noise":
            from sgan.nn.styles import truncate

            total = frame_count(seconds, fps)
            frames_per_key = min(int(round(seconds_per_seed * fps)), total)
            if frames_per_key < 1:
                raise UsageError("the video would have zero frames: raise --seconds-per-seed or --fps.")
            segments = max(1, int(round(total / frames_per_key)))
            if loop and segments < 2:                       # a closed path needs two noise keyframes
                frames_per_key, segments = max(1, total // 2), 2
            num_keys = segments if loop else segments + 1
            z = torch.stack([seed_keys(G, [s], space="z", truncation_psi=1, truncation_cutoff=None)[0] for s in seed_list])
            with torch.no_grad():
                ws = truncate(G.map(z), G.w_avg, truncation_psi=trunc, truncation_cutoff=trunc_cutoff)
            anim = noise_animation(G, ws, seed_list, cols=cols, frames_per_key=frames_per_key, num_keys=num_keys, loop=loop)
        else:
            if not (math.isfinite(psi_from) and math.isfinite(psi_to)):
                raise UsageError("--psi-from and --psi-to must be finite numbers.")
            anim = truncation_animation(G, seed_list, cols=cols, psi_from=psi_from, psi_to=psi_to,
                                        num_frames=frame_count(seconds, fps), loop=loop, truncation_cutoff=trunc_cutoff)
    if anim.num_frames < 1:
        raise UsageError("the video would have zero frames: raise --seconds, --seconds-per-seed or --fps.")
    scale = scale or auto_scale(G.resolution, anim.cols, math.ceil(anim.cells / anim.cols))
    choice = pick_precision(precision, G, dev, batch=batch)     # every input checked: the work starts here
    record = provenance(command="video", precision=choice, checkpoint=ckpt, mode=mode,
                        seeds=None if latent_files else (seeds or "0-3"),
                        latents=[str(p) for p in latent_files] or None, space=space if mode == "walk" else None,
                        interp=interp if mode == "walk" else None, translate_sweep=translate_sweep, rotate_sweep=rotate_sweep,
                        truncation_psi=trunc if mode != "truncation" else None,
                        truncation_cutoff="all" if trunc_cutoff is None else trunc_cutoff,
                        noise_mode="animated" if mode == "noise" else noise_mode, fps=fps, loop=loop,
                        **{"class": getattr(G, "class_name", None)})
    with progress_bar(f"Rendering {out.name}", anim.num_frames, unit="frame") as report:
        info = write_video(G, anim, out, fps=fps, crf=crf, scale=scale, batch=batch, noise_mode=noise_mode,
                           precision=choice.precision, frames_dir=frames, progress=report, text=png_text(record))
    extra_note = f" and {info['frames']} PNGs in {frames}/" if frames else ""
    console.print(f"Wrote {out}: {anim.description}, {info['frames']} frames {info['width']}x{info['height']} "
                  f"at {fps:g} fps ({info['seconds']:.1f} s){extra_note}.")


MAX_FRAMES = 100_000   # about 55 minutes at 30 fps; every frame is rendered and encoded


def _check_frame_count(mode: str, *, seconds_per_seed: float, seconds: float, fps: float, loop: bool, keys: int) -> None:
    """Refuse, before anything is rendered, a video with more than MAX_FRAMES frames (the number named)."""
    from sgan.errors import UsageError

    if mode == "walk":
        segments = max(1, keys if loop else keys - 1)
        frames, why = seconds_per_seed * fps * segments, f"--seconds-per-seed x --fps x {segments} keyframe steps"
    else:
        frames, why = seconds * fps, "--seconds x --fps"
    if not frames <= MAX_FRAMES:
        raise UsageError(f"the video would have {frames:.4g} frames ({why}); sgan renders at most {MAX_FRAMES}: "
                         "lower --fps, --seconds or --seconds-per-seed.")
