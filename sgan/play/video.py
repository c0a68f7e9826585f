"""Videos: interpolation walks through seeds or latents, noise and truncation animations.

Frames are rendered in small batches and handed one at a time to ffmpeg (the binary that the
imageio-ffmpeg wheel ships), so memory stays flat however long the video. The mp4 is written to
a hidden temp file beside the target and renamed when complete, so an interrupted render never
leaves a half-written file under the final name.

Walks: Z keyframes joined by slerp (then mapped and truncated, like the paper's PPL in Z) or W+
keyframes joined by lerp. With `loop` the path closes (the last keyframe runs back to the
first) and the video stops one frame short of the start, so it plays seamlessly on repeat.

`interp="cubic"` joins W+ keyframes by a cubic spline instead, as NVlabs/stylegan3's gen_video.py
does: with `loop`, gen_video's construction exactly (the K keyframes tiled 2 + 1 + 2 times at x =
-2K .. 3K - 1, scipy's not-a-knot interpolating cubic spline through them, frame i at x = i /
frames_per_key, K frames_per_key frames, float64 cast to float32); without `loop`, the not-a-knot
spline through the K keyframes alone (K >= 4), frame i at i / frames_per_key, ending on the last key.

StyleGAN3 input sweeps (`transform_animation`): fixed W+ per cell while the input transform
(gen_images.py's --translate / --rotate) moves from a start to an end value.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from sgan.device import autocast, check_precision
from sgan.errors import SganError, UsageError
from sgan.latent import lerp, noise_generator, slerp, z_from_seed
from sgan.nn import Generator
from sgan.nn.stylegan3.transform import input_layer, input_transform
from sgan.play.noise_maps import noise_resolutions, use_noise_maps
from sgan.viz import image_grid, save_png, to_uint8, upscale_nearest

SPACES = ("z", "w")
EASINGS = ("linear", "cosine")
INTERPS = ("linear", "cubic")
GEN_VIDEO_WRAPS = 2           # gen_video.py tiles the keyframes this many times on each side
MACRO_BLOCK = 16


# ----------------------------------------------------------------------------- ffmpeg output

def ffmpeg_exe() -> str:
    """The ffmpeg binary of imageio-ffmpeg (or $IMAGEIO_FFMPEG_EXE); a clear error if there is none."""
    try:
        import imageio_ffmpeg
    except ImportError:
        raise SganError("writing video needs the imageio-ffmpeg package; install it with "
                        "`pip install imageio-ffmpeg` (it ships an ffmpeg binary).") from None
    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as err:  # imageio-ffmpeg raises RuntimeError when it finds no binary
        raise SganError(f"no ffmpeg binary found ({' '.join(str(err).split())[:120]}); reinstall imageio-ffmpeg "
                        "(`pip install --force-reinstall imageio-ffmpeg`) or point IMAGEIO_FFMPEG_EXE at an ffmpeg.") from None
    if not exe or not os.path.isfile(exe):
        raise SganError(f"the ffmpeg binary {exe!r} does not exist; reinstall imageio-ffmpeg or set IMAGEIO_FFMPEG_EXE.")
    return exe


def pad_to_block(frame: np.ndarray, block: int = MACRO_BLOCK) -> np.ndarray:
    """Pad an [H, W, 3] frame with black to multiples of `block` (ffmpeg would rescale it otherwise)."""
    h, w = frame.shape[:2]
    ph, pw = -h % block, -w % block
    if ph == 0 and pw == 0:
        return frame
    return np.pad(frame, ((0, ph), (0, pw), (0, 0)))


class VideoWriter:
    """An mp4 (libx264, yuv420p) written frame by frame; optionally every frame as PNG too.

    Use as a context manager: on success the file is renamed into place, on error removed."""

    def __init__(self, path: str | os.PathLike, *, fps: float = 30.0, crf: int = 18, codec: str = "libx264",
                 frames_dir: str | os.PathLike | None = None, text: Mapping[str, str] | None = None) -> None:
        if not fps > 0:
            raise UsageError(f"--fps must be more than 0, got {fps}.")
        if not 0 <= crf <= 51:
            raise UsageError(f"--crf must lie in 0-51 (0 lossless, 18 visually lossless, 23 x264's default), got {crf}.")
        self.path = Path(path)
        self.fps, self.crf, self.codec = fps, crf, codec
        self.frames_dir = Path(frames_dir) if frames_dir is not None else None
        self.text = dict(text or {})    # PNG text chunks of the frames; the mp4's `comment` holds them as JSON
        self.count = 0
        self.size: tuple[int, int] | None = None
        self._gen = None
        self._tmp = self.path.with_name(f".{self.path.stem}.partial{self.path.suffix or '.mp4'}")
        self._exe = ffmpeg_exe()

    def __enter__(self) -> "VideoWriter":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.frames_dir is not None:
            self.frames_dir.mkdir(parents=True, exist_ok=True)
        return self

    def write(self, frame: np.ndarray) -> None:
        """Append one uint8 [H, W, 3] frame (every frame the same size)."""
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frames must be uint8 [H, W, 3], got {frame.dtype} {list(frame.shape)}")
        if self.frames_dir is not None:
            save_png(self.frames_dir / f"frame{self.count:06d}.png", frame,
                     text={**self.text, "frame": str(self.count)} if self.text else None)
        frame = pad_to_block(frame)
        if self._gen is None:
            self._start(frame.shape[1], frame.shape[0])
        elif (frame.shape[1], frame.shape[0]) != self.size:
            raise ValueError(f"frame {self.count} is {frame.shape[1]}x{frame.shape[0]}, the video is {self.size}")
        try:
            self._gen.send(np.ascontiguousarray(frame))
        except (OSError, RuntimeError, StopIteration) as err:
            raise SganError(f"ffmpeg stopped while writing {self.path} ({' '.join(str(err).split())[:160]}); "
                            "check the disk space and that the folder is writable.") from None
        self.count += 1

    def _start(self, width: int, height: int) -> None:
        import imageio_ffmpeg

        self.size = (width, height)
        metadata = ["-metadata", "comment=" + json.dumps(self.text)] if self.text else []
        self._gen = imageio_ffmpeg.write_frames(
            str(self._tmp), self.size, fps=self.fps, codec=self.codec, quality=None, pix_fmt_in="rgb24",
            pix_fmt_out="yuv420p", macro_block_size=MACRO_BLOCK, output_params=["-crf", str(self.crf)] + metadata,
            ffmpeg_log_level="error")
        try:
            self._gen.send(None)
        except (OSError, RuntimeError) as err:
            raise SganError(f"could not start ffmpeg for {self.path} ({' '.join(str(err).split())[:160]}).") from None

    def __exit__(self, exc_type, exc, tb) -> None:
        gen, self._gen = self._gen, None
        try:
            if gen is not None:
                gen.close()
        except (OSError, RuntimeError) as err:
            if exc_type is None:
                self._tmp.unlink(missing_ok=True)
                raise SganError(f"ffmpeg failed to finish {self.path} ({' '.join(str(err).split())[:160]}).") from None
        if exc_type is not None or self.count == 0:
            self._tmp.unlink(missing_ok=True)
            if exc_type is None:
                raise SganError(f"no frames were rendered, so {self.path} was not written.")
            return
        os.replace(self._tmp, self.path)


def read_video_frames(path: str | os.PathLike) -> Iterator[np.ndarray]:
    """Decode an mp4 back to uint8 [H, W, 3] frames (for tests and checks)."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    for raw in reader:
        yield np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3)


# ----------------------------------------------------------------------------- layout

def parse_grid(text: str | None) -> tuple[int, int] | None:
    """`2x3` -> (columns 2, rows 3); None or empty -> None."""
    if text is None or not text.strip():
        return None
    parts = text.lower().replace("*", "x").split("x")
    try:
        cols, rows = (int(p) for p in parts)
    except ValueError:
        raise UsageError(f"--grid {text!r}: write COLSxROWS such as 2x2 or 4x2.") from None
    if cols < 1 or rows < 1 or cols * rows > 256:
        raise UsageError(f"--grid {text!r}: columns and rows must be 1 or more (at most 256 cells).")
    return cols, rows


def auto_scale(cell: int, cols: int, rows: int, min_side: int = 256) -> int:
    """The nearest-neighbour enlargement that makes the frame's short side at least `min_side`."""
    short = cell * min(cols, rows)
    return max(1, math.ceil(min_side / short)) if short < min_side else 1


def assemble_frame(cells: np.ndarray, cols: int, scale: int) -> np.ndarray:
    """uint8 [cells, H, W, C] -> one RGB frame, cells row by row, enlarged `scale` times."""
    if cells.shape[-1] == 1:
        cells = np.repeat(cells, 3, axis=-1)
    frame = image_grid(cells, cols=cols) if len(cells) > 1 else cells[0]
    return upscale_nearest(frame, scale)


# ----------------------------------------------------------------------------- time

def segment_positions(num_keys: int, frames_per_key: int, *, loop: bool, easing: str = "linear") -> np.ndarray:
    """For each frame, (index of the segment's first keyframe, fraction 0..1 along the segment).

    Without loop: (num_keys - 1) * frames_per_key + 1 frames, the last exactly on the last key.
    With loop: num_keys * frames_per_key frames; the segment after the last key returns to key 0,
    and the frame after the last would be frame 0 again."""
    if easing not in EASINGS:
        raise UsageError(f"--easing {easing!r}: choose linear or cosine.")
    if frames_per_key < 1:
        raise UsageError("the video would have zero frames: raise --seconds-per-seed or --fps.")
    if num_keys < 2:
        raise UsageError("a walk needs at least two keyframes: give two or more seeds or latents per grid cell.")
    total = num_keys * frames_per_key if loop else (num_keys - 1) * frames_per_key + 1
    pos = np.arange(total, dtype=np.float64) / frames_per_key
    seg = np.minimum(np.floor(pos), num_keys - (1 if loop else 2)).astype(np.int64)
    frac = pos - seg
    if easing == "cosine":
        frac = 0.5 - 0.5 * np.cos(np.pi * frac)
    return np.stack([seg, frac], axis=1)


def frame_count(seconds: float, fps: float) -> int:
    n = int(round(seconds * fps))
    if n < 1:
        raise UsageError(f"{seconds} s at {fps} fps is zero frames; raise --seconds or --fps.")
    return n


# ----------------------------------------------------------------------------- frame sources

# A frame source maps frame indices to (ws [B * cells, num_ws, w_dim], noise maps per layer
# [B * cells, 1, r, r] or None for the model's const noise).
FrameSource = Callable[[Sequence[int]], tuple[torch.Tensor, list[torch.Tensor] | None]]


# A transform source maps one frame index to the StyleGAN3 input transform of that frame:
# (translate (x, y) in image widths, rotate in degrees).
TransformSource = Callable[[int], tuple[tuple[float, float], float]]


@dataclass
class Animation:
    source: FrameSource
    num_frames: int
    cells: int
    cols: int
    description: str
    transforms: TransformSource | None = None   # StyleGAN3 input sweeps: frames are rendered one at a time


def seed_keys(G: Generator, seeds: Sequence[int], *, space: str, truncation_psi: float,
              truncation_cutoff: int | None) -> torch.Tensor:
    """Keyframes for seeds: z [K, z_dim] in Z, or truncated W+ [K, num_ws, w_dim] in W."""
    if space not in SPACES:
        raise UsageError(f"--space {space!r}: choose z (slerp) or w (lerp).")
    device = next(G.parameters()).device
    z = torch.stack([z_from_seed(s, G.z_dim) for s in seeds]).to(device)
    if space == "z":
        return z
    with torch.no_grad():
        return G.map(z, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)


def cubic_splines(keys: torch.Tensor, *, loop: bool) -> list:
    """Per cell, the not-a-knot cubic spline of its keyframes (keys [cells, K, num_ws, w_dim]) as a
    function of the keyframe position x (key k at x = k), float64: with loop gen_video.py's tiled
    spline (see the module notes), without it the spline through the K keys."""
    from scipy.interpolate import make_interp_spline

    cells, k = keys.shape[:2]
    y = keys.detach().cpu().double().numpy()
    if loop:
        x = np.arange(-k * GEN_VIDEO_WRAPS, k * (GEN_VIDEO_WRAPS + 1))
        return [make_interp_spline(x, np.tile(y[c], [2 * GEN_VIDEO_WRAPS + 1, 1, 1]), k=3, axis=0) for c in range(cells)]
    if k < 4:
        raise UsageError(f"--interp cubic without --loop needs 4 or more keyframes per cell, got {k}; "
                         "give more seeds or latents, add --loop (gen_video.py's closed path) or use --interp linear.")
    return [make_interp_spline(np.arange(k), y[c], k=3, axis=0) for c in range(cells)]


def walk_animation(G: Generator, keys: torch.Tensor, *, space: str, cells: int, cols: int, frames_per_key: int,
                   loop: bool, easing: str = "linear", truncation_psi: float = 1.0,
                   truncation_cutoff: int | None = None, interp: str = "linear") -> Animation:
    """Interpolate keyframes: keys [cells * K, ...] (cell c's keys are keys[c*K:(c+1)*K]),
    z [z_dim] (slerp, then mapped and truncated) or W+ [num_ws, w_dim] (lerp, or with interp
    "cubic" gen_video.py's cubic spline)."""
    if interp not in INTERPS:
        raise UsageError(f"--interp {interp!r}: choose linear or cubic.")
    if interp == "cubic" and space != "w":
        raise UsageError("--interp cubic interpolates in W (as gen_video.py); use --space w.")
    if len(keys) % cells:
        raise UsageError(f"{len(keys)} keyframes do not split evenly into {cells} grid cells; "
                         f"give a multiple of {cells} seeds or latents.")
    k = len(keys) // cells
    pos = segment_positions(k, frames_per_key, loop=loop, easing=easing)
    per_cell = keys.reshape(cells, k, *keys.shape[1:])
    if interp == "cubic":
        splines = cubic_splines(per_cell, loop=loop)
        x = pos[:, 0] + pos[:, 1]                          # keyframe position of each frame

        def spline_source(indices: Sequence[int]) -> tuple[torch.Tensor, None]:
            at = x[list(indices)]
            ws = np.stack([spline(at) for spline in splines], axis=1)      # [B, cells, num_ws, w_dim] float64
            return torch.from_numpy(ws).float().flatten(0, 1).to(keys.device), None

        return Animation(spline_source, len(pos), cells, cols,
                         f"cubic-spline walk through {k} keyframes per cell in W (as gen_video.py)")
    nxt = torch.roll(per_cell, -1, dims=1)                # key i+1 (the last wraps to key 0)

    def source(indices: Sequence[int]) -> tuple[torch.Tensor, None]:
        seg = torch.as_tensor(pos[list(indices), 0], dtype=torch.long)
        frac = torch.as_tensor(pos[list(indices), 1], dtype=torch.float32, device=keys.device)
        a = per_cell[:, seg].transpose(0, 1).flatten(0, 1)  # [B * cells, ...] frame-major
        b = nxt[:, seg].transpose(0, 1).flatten(0, 1)
        t = frac.repeat_interleave(cells).view(-1, *([1] * (keys.ndim - 1)))
        x = slerp(a, b, t) if space == "z" else lerp(a, b, t)
        x = torch.where(t == 0, a, torch.where(t == 1, b, x))   # keyframes exactly, not up to rounding
        if space == "z":
            return G.map(x, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff), None
        return x, None

    return Animation(source, len(pos), cells, cols, f"walk through {k} keyframes per cell in {space.upper()}")


def noise_animation(G: Generator, ws: torch.Tensor, seeds: Sequence[int], *, cols: int, frames_per_key: int,
                    num_keys: int, loop: bool) -> Animation:
    """Fixed W+ per cell (ws [cells, num_ws, w_dim]) under smoothly changing noise: between
    noise keyframes n_k and n_k+1 the maps are cos(a) n_k + sin(a) n_k+1 with a = pi/2 * t, which
    keeps every pixel's noise standard normal (no fading of the texture mid-way)."""
    if not noise_resolutions(G):
        raise UsageError(f"--mode noise animates the noise inputs, and this {G.cfg.arch} model has none "
                         "(StyleGAN3's synthesis is deterministic); try --mode walk or an input sweep (--rotate-sweep).")
    cells = len(ws)
    pos = segment_positions(num_keys, frames_per_key, loop=loop)
    device = ws.device
    keys = []                                              # per layer: [cells, K, 1, r, r]
    gens = [noise_generator(s) for s in seeds]
    draws = [[torch.randn([num_keys, 1, r, r], generator=g) for r in noise_resolutions(G)] for g in gens]
    for layer in range(len(noise_resolutions(G))):
        keys.append(torch.stack([d[layer] for d in draws]).to(device))

    def source(indices: Sequence[int]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        seg = torch.as_tensor(pos[list(indices), 0], dtype=torch.long)
        angle = torch.as_tensor(pos[list(indices), 1], dtype=torch.float32, device=device) * (math.pi / 2)
        angle = angle.repeat_interleave(cells).view(-1, 1, 1, 1)
        maps = []
        for key in keys:
            a = key[:, seg].transpose(0, 1).flatten(0, 1)
            b = key[:, (seg + 1) % num_keys].transpose(0, 1).flatten(0, 1)
            maps.append(a * torch.cos(angle) + b * torch.sin(angle))
        return ws.repeat(len(indices), 1, 1), maps

    return Animation(source, len(pos), cells, cols, f"noise animation through {num_keys} noise keyframes")


def sweep_positions(num_frames: int, *, loop: bool, easing: str = "linear") -> np.ndarray:
    """t in [0, 1] per frame: start to end (the last frame exactly the end), or with loop there and
    back (cosine: the frame after the last would be the first)."""
    if easing not in EASINGS:
        raise UsageError(f"--easing {easing!r}: choose linear or cosine.")
    if num_frames < 1:
        raise UsageError("the video would have zero frames: raise --seconds or --fps.")
    i = np.arange(num_frames, dtype=np.float64)
    if loop:
        return 0.5 - 0.5 * np.cos(2 * np.pi * i / num_frames)
    t = i / max(num_frames - 1, 1)
    return 0.5 - 0.5 * np.cos(np.pi * t) if easing == "cosine" else t


def transform_animation(G: Generator, ws: torch.Tensor, *, cols: int, num_frames: int,
                        translate: tuple[tuple[float, float], tuple[float, float]] | None = None,
                        rotate: tuple[float, float] | None = None, loop: bool = False,
                        easing: str = "linear") -> Animation:
    """A StyleGAN3 input sweep: each cell's W+ (ws [cells, num_ws, w_dim]) fixed while the input is
    translated from translate[0] to translate[1] (image widths) and/or rotated from rotate[0] to
    rotate[1] degrees, as gen_images.py's --translate / --rotate at each frame."""
    if getattr(getattr(G, "cfg", None), "arch", None) != "stylegan3":
        raise UsageError("--translate-sweep / --rotate-sweep move the input of a StyleGAN3 model; "
                         f"this model is {getattr(getattr(G, 'cfg', None), 'arch', 'not one')}.")
    input_layer(G)
    if ws.ndim != 3 or ws.shape[1:] != (G.num_ws, G.w_dim):
        raise ValueError(f"ws must be [cells, {G.num_ws}, {G.w_dim}], got {list(ws.shape)}")
    if translate is None and rotate is None:
        raise UsageError("an input sweep needs --translate-sweep and/or --rotate-sweep.")
    (t0, t1), (r0, r1) = translate or ((0.0, 0.0), (0.0, 0.0)), rotate or (0.0, 0.0)
    t = sweep_positions(num_frames, loop=loop, easing=easing)
    cells = len(ws)

    def source(indices: Sequence[int]) -> tuple[torch.Tensor, None]:
        return ws.repeat(len(indices), 1, 1), None

    def transforms(index: int) -> tuple[tuple[float, float], float]:
        a = float(t[index])
        return (t0[0] + a * (t1[0] - t0[0]), t0[1] + a * (t1[1] - t0[1])), r0 + a * (r1 - r0)

    parts = ([f"translate ({t0[0]:g}, {t0[1]:g}) -> ({t1[0]:g}, {t1[1]:g})"] if translate else []) + \
            ([f"rotate {r0:g} -> {r1:g} deg"] if rotate else [])
    return Animation(source, num_frames, cells, cols, "input sweep: " + ", ".join(parts), transforms=transforms)


def truncation_animation(G: Generator, seeds: Sequence[int], *, cols: int, psi_from: float, psi_to: float,
                         num_frames: int, loop: bool, truncation_cutoff: int | None = None) -> Animation:
    """One seed per cell while psi moves from psi_from to psi_to (eased); with loop it returns."""
    device = next(G.parameters()).device
    z = torch.stack([z_from_seed(s, G.z_dim) for s in seeds]).to(device)
    with torch.no_grad():
        w = G.map(z)                                       # untruncated W+
    cells = len(seeds)
    if loop:
        phase = np.arange(num_frames) / num_frames         # 0 -> 1 -> back to 0, seamless
        t = 0.5 - 0.5 * np.cos(2 * np.pi * phase)
    else:
        t = 0.5 - 0.5 * np.cos(np.pi * np.arange(num_frames) / max(num_frames - 1, 1))
    psis = psi_from + (psi_to - psi_from) * t
    num_ws = w.shape[1]
    cutoff = num_ws if truncation_cutoff is None else min(truncation_cutoff, num_ws)
    mask = (torch.arange(num_ws, device=device) < cutoff).view(1, 1, -1, 1)

    def source(indices: Sequence[int]) -> tuple[torch.Tensor, None]:
        psi = torch.as_tensor(psis[list(indices)], dtype=torch.float32, device=device).view(-1, 1, 1, 1)
        avg = G.w_avg.view(1, 1, 1, -1)
        out = torch.where(mask, avg + psi * (w.unsqueeze(0) - avg), w.unsqueeze(0))   # [B, cells, num_ws, w_dim]
        return out.flatten(0, 1), None

    return Animation(source, num_frames, cells, cols, f"truncation psi {psi_from:g} -> {psi_to:g}")


# ----------------------------------------------------------------------------- rendering

@torch.no_grad()
def iter_frames(G: Generator, anim: Animation, *, scale: int = 1, batch: int = 8,
                noise_mode: str = "const", precision: str = "fp32") -> Iterator[np.ndarray]:
    """Render the animation's frames in batches of `batch` frames (in `precision`: fp32, bf16 or fp16
    autocast); yields uint8 [H, W, 3] frames."""
    if anim.num_frames < 1:
        raise UsageError("the video would have zero frames.")
    if noise_mode not in ("const", "none"):
        raise UsageError(f"--noise-mode {noise_mode!r}: a video uses const (the stored maps) or none "
                         "(random noise would flicker; use --mode noise for a noise animation).")
    for start in range(0, anim.num_frames, 1 if anim.transforms is not None else batch):
        indices = list(range(start, min(start + batch, anim.num_frames))) if anim.transforms is None else [start]
        ws, maps = anim.source(indices)
        with autocast(ws.device, check_precision(precision, ws.device)):
            if anim.transforms is not None:
                shift, angle = anim.transforms(start)
                with input_transform(G, translate=shift, rotate=angle):
                    img = G.synthesis(ws, noise_mode=noise_mode)
            elif maps is not None:
                with use_noise_maps(G, maps):
                    img = G.synthesis(ws, noise_mode="const")
            else:
                img = G.synthesis(ws, noise_mode=noise_mode)
        img = img.float()
        cells = to_uint8(img).reshape(len(indices), anim.cells, *img.shape[2:], img.shape[1])
        for frame_cells in cells:
            yield assemble_frame(frame_cells, anim.cols, scale)


def write_video(G: Generator, anim: Animation, path: str | os.PathLike, *, fps: float = 30.0, crf: int = 18,
                scale: int = 1, batch: int = 8, noise_mode: str = "const", frames_dir: str | os.PathLike | None = None,
                progress: Callable[[int, int], None] | None = None, precision: str = "fp32",
                text: Mapping[str, str] | None = None) -> dict:
    """Render and encode; returns {"frames", "width", "height", "fps", "seconds"}. `text`: what made the
    video (sgan.play.provenance.png_text), in each frame PNG's text chunks and the mp4's comment."""
    with VideoWriter(path, fps=fps, crf=crf, frames_dir=frames_dir, text=text) as writer:
        for frame in iter_frames(G, anim, scale=scale, batch=batch, noise_mode=noise_mode, precision=precision):
            writer.write(frame)
            if progress:
                progress(writer.count, anim.num_frames)
    width, height = writer.size or (0, 0)
    return {"frames": writer.count, "width": width, "height": height, "fps": fps, "seconds": writer.count / fps}
