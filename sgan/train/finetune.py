"""Starting from another model (`sgan train --init CKPT [--init-ema]`) and FreezeD (`--freeze-d N`).

--init copies G, G_ema and D from a checkpoint (a snapshot, a run folder, any sgan-format
checkpoint, or a foreign file `sgan generate` opens: an NVIDIA pickle or a rosinality file,
converted in memory by sgan.formats without running its code) into a new run with a fresh
optimizer and new counters; with `init_ema` G starts from the source's G_ema. Nothing is loaded
partially: every tensor must exist on both sides with the same shape, and the model configs must
agree on everything that gives the weights their meaning; otherwise the run is refused with the
names of the tensors (or settings) that differ, before the run folder is created (`open_init`).
(Official StyleGAN2-ADA copies what matches and silently leaves the rest random: issue #279.)

--freeze-d N freezes D's N highest-resolution layers, counting as StyleGAN2-ADA does: block by
block from the top resolution down, each fromrgb and each conv one layer (and each skip, in
architectures that have one); the 4x4 epilogue is never frozen. Frozen layers keep their weights
(requires_grad False; the trainer leaves them out of D's step).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from sgan.errors import CheckpointError, UsageError
from sgan.formats import open_checkpoint
from sgan.nn import make_discriminator, make_generator

# ModelConfig fields that do not change what the stored weights mean.
RUNTIME_FIELDS = ("fused_updown", "memory_format", "const_init", "mbstd_group_size", "w_avg_beta")


def _tensor_diffs(name: str, src: dict[str, torch.Tensor], dst: dict[str, torch.Tensor]) -> list[str]:
    out = []
    for k in sorted(set(src) | set(dst)):
        if k not in src:
            out.append(f"{name}.{k} (missing in the source)")
        elif k not in dst:
            out.append(f"{name}.{k} (not in this model)")
        elif tuple(src[k].shape) != tuple(dst[k].shape):
            out.append(f"{name}.{k} {list(src[k].shape)} vs {list(dst[k].shape)}")
    return out


def open_init(path: str | Path, model_cfg: Any) -> Any:
    """The checkpoint `--init path` names, checked against a run's ModelConfig before anything is
    written: settings and the names and shapes of every tensor (against G and D built on the meta
    device). sgan checkpoints, run folders and the foreign files `sgan generate` opens (NVIDIA pickles,
    rosinality files: converted in memory by sgan.formats, running none of their code)."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"--init {path}: no such file or folder; give a snapshot, a run folder or a checkpoint.")
    ckpt = open_checkpoint(p)
    with torch.device("meta"):
        G, D = make_generator(model_cfg), make_discriminator(model_cfg)
    _check_fits(path, ckpt, model_cfg, {"G": G.state_dict(), "G_ema": G.state_dict(), "D": D.state_dict()})
    return ckpt


def _sources(ckpt: Any, ema: bool) -> dict[str, dict[str, torch.Tensor]]:
    sources = {"G": ckpt.G_ema if ema else ckpt.G, "G_ema": ckpt.G_ema}
    if ckpt.D is not None:
        sources["D"] = ckpt.D
    return sources


def _check_fits(path: str | Path, ckpt: Any, model_cfg: Any, targets: dict[str, dict[str, torch.Tensor]],
                ema: bool = False) -> None:
    have, want = ckpt.config.to_dict(), model_cfg.to_dict()
    settings = [f"{k} {have.get(k)!r} vs {want.get(k)!r}" for k in sorted(set(have) | set(want))
                if k not in RUNTIME_FIELDS and have.get(k) != want.get(k)]
    diffs: list[str] = []
    for name, state in _sources(ckpt, ema).items():
        diffs += _tensor_diffs(name, state, targets[name])
    if diffs or settings:
        shown = diffs[:12] + ([f"... {len(diffs) - 12} more"] if len(diffs) > 12 else [])
        imported = isinstance(ckpt.extra, dict) and "import" in ckpt.extra
        raise CheckpointError(
            f"--init {path}: the model does not match this run's, nothing was loaded. "
            + (f"Tensors that differ: {'; '.join(shown)}. " if diffs else "")
            + (f"Settings that differ (source vs this run): {'; '.join(settings)}. " if settings else "")
            + ("Train with the source's settings (--preset, --resolution, --arch, --cond) or start from scratch."
               if imported else
               "Train with the source's settings (its config.json: --preset, --resolution, --cond) or start from scratch."))


def init_from(trainer: Any, path: str | Path, *, ema: bool = False, ckpt: Any = None) -> str:
    """Load the weights of `path` (or of `ckpt`, already opened by `open_init`) into the trainer's G,
    G_ema and D; returns a one-line summary."""
    if ckpt is None:
        ckpt = open_init(path, trainer.model_cfg)
    targets = {name: getattr(trainer, name).state_dict() for name in ("G", "G_ema", "D")}
    _check_fits(path, ckpt, trainer.model_cfg, targets, ema=ema)
    sources = _sources(ckpt, ema)
    with torch.no_grad():
        for name, state in sources.items():
            getattr(trainer, name).load_state_dict(state)
    missing_d = "" if "D" in sources else " (the checkpoint holds no D: D starts from random weights)"
    return f"initialised from {ckpt.path}{' (G from G_ema)' if ema else ''}{missing_d}"


def d_layer_groups(D: torch.nn.Module) -> list[tuple[str, list[torch.nn.Parameter]]]:
    """D's freezable layers in StyleGAN2-ADA's order (top resolution first): (name, parameters)."""
    groups: list[tuple[str, list[torch.nn.Parameter]]] = []
    if hasattr(D, "fromrgbs") and hasattr(D, "blocks"):  # StyleGAN 1: fromrgbs[i] is 2^(i+2) px, blocks[i] 2^(i+3)
        for r in range(D.resolution_log2, 2, -1):
            groups.append((f"fromrgbs.{r - 2}", list(D.fromrgbs[r - 2].parameters())))
            block = D.blocks[r - 3]
            groups.append((f"blocks.{r - 3}.conv0", list(block.conv0.parameters())))
            groups.append((f"blocks.{r - 3}.conv1", list(block.conv1.parameters())))
        return groups
    # StyleGAN2-ADA layout: blocks named b{res} with fromrgb / conv0 / conv1 / skip.
    res = getattr(D, "resolution", None) or getattr(D, "img_resolution", None)
    r = int(res) if res else 0
    while r > 4:
        block = getattr(D, f"b{r}", None)
        if block is None:
            break
        for part in ("fromrgb", "conv0", "conv1", "skip"):
            m = getattr(block, part, None)
            if isinstance(m, torch.nn.Module):
                groups.append((f"b{r}.{part}", list(m.parameters())))
        r //= 2
    if not groups:
        raise UsageError("--freeze-d: this discriminator's layers are not known to sgan.")
    return groups


def freeze_d(D: torch.nn.Module, n: int) -> list[str]:
    """Freeze D's n highest-resolution layers; returns their names."""
    if n <= 0:
        return []
    groups = d_layer_groups(D)
    if n > len(groups):
        raise UsageError(f"--freeze-d {n}: this discriminator has {len(groups)} freezable layers "
                         f"({groups[0][0]} ... {groups[-1][0]}); use at most {len(groups)}.")
    names = []
    for name, params in groups[:n]:
        for p in params:
            p.requires_grad_(False)
        names.append(name)
    return names

