"""The training state stored in a snapshot's `extra`: plain values and tensors only.

Everything here loads with torch.load(weights_only=True): optimizer state_dicts, counters, the
config as JSON, and the process RNG states (torch as a uint8 tensor, numpy's legacy state as a
list, Python's as nested tuples of ints). The loop itself draws all its randomness from
generators seeded by (seed, step), so the counters alone fix what comes next; the process RNG
states are restored too so that anything else drawing from them continues as it would have.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch

from sgan.errors import CheckpointError

STATE_VERSION = 1


@dataclass
class Counters:
    """Where the run stands; all of it goes into the snapshot."""

    step: int = 0                  # optimizer steps done (one D + one G step each)
    cur_nimg: int = 0              # real images shown (global)
    data_position: int = 0         # position of the data stream (equals cur_nimg, kept separately)
    sched_progress: float = 0.0    # progress (kimg or s) at which the schedule point was last taken
    prev_lod: float = -1.0         # lod of the previous step (-1: none yet), for optimizer resets
    train_seconds: float = 0.0     # seconds spent in training steps (drives --minutes schedules)
    wall_seconds: float = 0.0      # total seconds including snapshots and grids
    tick: int = 0
    tick_start_nimg: int = 0
    last_snap_nimg: int = 0
    reseed: int = 0                # bumped at every rollback, so a replay does not repeat the same draws
    rollbacks: int = 0
    skipped_steps: int = 0         # optimizer steps skipped for non-finite losses or gradients

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Counters":
        """Counters from a snapshot; a value of the wrong type or a non-finite or absurd one is a
        ValueError (the caller names the snapshot)."""
        import math

        if not isinstance(d, dict):
            raise ValueError(f"counters are {type(d).__name__}, not a dict")
        kinds = {f.name: type(f.default) for f in fields(cls)}
        out = {}
        for k, v in d.items():
            if k not in kinds:
                continue
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and abs(v) < 2 ** 62
            if kinds[k] is int and not isinstance(v, int):
                ok = False
            if not ok:
                raise ValueError(f"counter {k} = {v!r} is not a valid {kinds[k].__name__}")
            out[k] = v
        return cls(**out)


def capture_rng() -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": random.getstate(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "numpy" in state:
        kind, keys, pos, has_gauss, cached = state["numpy"]
        np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    if "python" in state:
        v = state["python"]
        random.setstate((v[0], tuple(v[1]), v[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def pack(*, counters: Counters, config: dict[str, Any], opt_G: dict, opt_D: dict, world_size: int,
         scalers: dict[str, Any] | None = None) -> dict[str, Any]:
    """`scalers`: the fp16 loss scalers' state (sgan.train.scaler.scaler_states), stored only when there is one."""
    out = {
        "train_state_version": STATE_VERSION,
        "counters": asdict(counters),
        "train_config": json.dumps(config, sort_keys=True),
        "opt_G": opt_G,
        "opt_D": opt_D,
        "rng": capture_rng(),
        "world_size": world_size,
    }
    if scalers is not None:
        out["grad_scalers"] = scalers
    return out


@dataclass
class Unpacked:
    counters: Counters
    config: dict[str, Any]
    opt_G: dict
    opt_D: dict
    rng: dict[str, Any]
    world_size: int
    scalers: dict[str, Any] | None = None


def unpack(extra: dict[str, Any], path: Any) -> Unpacked:
    if "counters" not in extra or "opt_G" not in extra:
        raise CheckpointError(f"{path}: this snapshot holds no training state (an exported or inference-only "
                              "checkpoint); resume from a snapshot written by `sgan train`.")
    version = extra.get("train_state_version")
    if not isinstance(version, int) or version > STATE_VERSION:
        raise CheckpointError(f"{path}: training state version {version} is newer than this sgan understands; upgrade sgan.")
    try:
        config = json.loads(extra["train_config"])
        for name in ("opt_G", "opt_D"):
            if not isinstance(extra[name], dict):
                raise TypeError(f"{name} is {type(extra[name]).__name__}, not an optimizer state")
        if not isinstance(config, dict) or not isinstance(extra.get("rng") or {}, dict):
            raise TypeError("the training config or RNG state is not a dict")
        if not isinstance(extra.get("grad_scalers") or {}, dict):
            raise TypeError("the loss scalers' state is not a dict")
        return Unpacked(counters=Counters.from_dict(extra["counters"]), config=config,
                        opt_G=extra["opt_G"], opt_D=extra["opt_D"], rng=extra.get("rng") or {},
                        world_size=int(extra.get("world_size", 1)), scalers=extra.get("grad_scalers"))
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: the training state is damaged ({err}); resume from another snapshot.") from None
