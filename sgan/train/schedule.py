"""Progressive growing: the official StyleGAN schedule (NVlabs/stylegan training_loop.py).

Training starts at `start_resolution`; each later resolution first fades in (lod falls linearly
from k+1 to k) and then stabilises (lod stays k). `lod = log2(R / resolution)`. During a fade-in
the *new* resolution's minibatch, learning rate and tick length apply (the official
`resolution = 2 ** (log2 R - floor(lod))`).

Phase lengths are counted in a unit of "progress": thousands of real images (kimg, the paper's
way and the default) or seconds of training (`--minutes`, for small budgets where a slower step
would otherwise leave too little time for the last resolution). With equal lengths for every
resolution this is exactly the official formula; per-resolution lengths are a strict superset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class Phase:
    resolution: int
    kind: str            # "stabilize" or "fade"
    start: float         # progress at which the phase starts
    length: float        # math.inf for the last one


@dataclass(frozen=True)
class Point:
    """Where training stands at one moment of the schedule."""

    lod: float
    resolution: int      # the resolution whose tables apply (the new one during a fade-in)
    phase: str           # "stabilize" or "fade"
    alpha: float         # fade-in weight of the newest layers: 1 - frac(lod) (1 when stable)
    phase_index: int


def _length(table: float | Mapping[int, float], res: int) -> float:
    if isinstance(table, Mapping):
        return float(table[res])
    return float(table)


def build_phases(start_resolution: int, final_resolution: int, training: float | Mapping[int, float],
                 transition: float | Mapping[int, float]) -> list[Phase]:
    """The stabilise / fade-in phases from the start resolution to the final one.

    `training[res]` is how long resolution `res` is stabilised (the last resolution runs on
    forever), `transition[res]` how long it takes to fade `res` in.
    """
    assert start_resolution >= 4 and final_resolution >= start_resolution, (start_resolution, final_resolution)
    phases: list[Phase] = []
    t = 0.0
    res = start_resolution
    while True:
        if res > start_resolution:
            fade = _length(transition, res)
            if fade > 0:
                phases.append(Phase(res, "fade", t, fade))
                t += fade
        if res == final_resolution:
            phases.append(Phase(res, "stabilize", t, math.inf))
            return phases
        stab = _length(training, res)
        if stab > 0:
            phases.append(Phase(res, "stabilize", t, stab))
            t += stab
        res *= 2


def point_at(progress: float, phases: list[Phase], final_resolution: int) -> Point:
    """The lod, resolution, phase and alpha at `progress` (kimg or seconds)."""
    log2_final = int(math.log2(final_resolution))
    index = 0
    for i, ph in enumerate(phases):
        if progress >= ph.start:
            index = i
    ph = phases[index]
    lod_new = float(log2_final - int(math.log2(ph.resolution)))
    if ph.kind == "fade":
        frac = min(max((progress - ph.start) / ph.length, 0.0), 1.0)
        lod = lod_new + 1.0 - frac
        if lod <= lod_new:  # the fade is complete
            lod = lod_new
    else:
        lod = lod_new
    alpha = 1.0 - (lod - math.floor(lod))
    resolution = 2 ** (log2_final - int(math.floor(lod)))   # the official rule (the new one once lod < k+1)
    phase = "fade" if alpha < 1.0 else "stabilize"
    return Point(lod=lod, resolution=resolution, phase=phase, alpha=alpha, phase_index=index)


def official_lod(kimg: float, *, resolution_log2: int, lod_initial_resolution: int = 8,
                 lod_training_kimg: float = 600, lod_transition_kimg: float = 600) -> float:
    """The official `training_schedule` lod formula, kept verbatim for tests and reference."""
    phase_dur = lod_training_kimg + lod_transition_kimg
    phase_idx = int(math.floor(kimg / phase_dur)) if phase_dur > 0 else 0
    phase_kimg = kimg - phase_idx * phase_dur
    lod = float(resolution_log2)
    lod -= math.floor(math.log2(lod_initial_resolution))
    lod -= phase_idx
    if lod_transition_kimg > 0:
        lod -= max(phase_kimg - lod_training_kimg, 0.0) / lod_transition_kimg
    return max(lod, 0.0)


def table_lookup(table: Mapping[int, float], base: float, resolution: int) -> float:
    """`table.get(resolution, base)`, as the official minibatch_dict / G_lrate_dict lookups."""
    return table.get(resolution, base)


def optimizer_reset_needed(prev_lod: float | None, lod: float) -> bool:
    """The official reset_opt_for_new_lod test: floor or ceil of lod changed."""
    if prev_lod is None:
        return False
    return math.floor(lod) != math.floor(prev_lod) or math.ceil(lod) != math.ceil(prev_lod)
