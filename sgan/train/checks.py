"""Checks of a training configuration that need the model and the number of processes, run before
the run folder is touched."""

from __future__ import annotations

from sgan.errors import UsageError

# TrainConfig field -> the `sgan train` option that sets it, where the names differ.
OPTION_NAMES = {"total_kimg": "--kimg", "batch_base": "--batch", "lr_base": "--lr", "tick_kimg_base": "--tick",
                "lod_training_kimg": "--phase-kimg", "lod_transition_kimg": "--fade-kimg",
                "style_mixing_prob": "--mixing", "snap_kimg": "--snap", "fresh_g_latents": "--fresh-g-latents/--reuse-fakes",
                "reset_optimizer": "--reset-optimizer/--keep-optimizer", "max_bad_steps": "max_bad_steps (library)",
                "max_rollbacks": "max_rollbacks (library)"}


def option_name(field: str) -> str:
    """The command-line option of a TrainConfig field (`batch_base` -> `--batch`)."""
    return OPTION_NAMES.get(field, "--" + field.replace("_", "-"))


def schedule_resolutions(start_resolution: int, resolution: int) -> list[int]:
    out = [start_resolution]
    while out[-1] < resolution:
        out.append(out[-1] * 2)
    return out


def check_minibatch_groups(cfg, model_cfg, world_size: int) -> None:
    """Every process's minibatch at every resolution must split into minibatch-stddev groups of
    min(group, minibatch) samples, as the official reshape requires (it fails otherwise)."""
    group = int(getattr(model_cfg, "mbstd_group_size", 0) or 0)
    if group <= 1:
        return
    for res in schedule_resolutions(cfg.start_resolution, cfg.resolution):
        total = cfg.batch_at(res, world_size)
        local = total // max(world_size, 1)
        g = min(group, local)
        if local % g:
            fits = [b * world_size for b in range(group, 4 * group + 1, group)]
            per = f" ({local} per process x {world_size})" if world_size > 1 else ""
            raise UsageError(f"--batch {total}{per} at {res} px does not split into minibatch-stddev groups of {g}; "
                             f"use a multiple of {group * world_size} such as {', '.join(map(str, fits[:3]))} "
                             f"(or a value below {group * world_size} that divides evenly).")


def check_before_start(cfg, data, world_size: int) -> None:
    """The checks above on a copy of `cfg` whose resolution defaults to the dataset's largest size."""
    if cfg.resolution is None:
        from sgan.train.reals import _sizes

        cfg = type(cfg).from_dict(cfg.to_dict())
        cfg.resolution = max(_sizes(data))
    check_minibatch_groups(cfg, cfg.model_config(), world_size)
