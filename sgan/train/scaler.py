"""Loss scaling for float16 training: one `LossScaler` per optimizer.

fp16 (`torch.amp.GradScaler`): every loss is multiplied by the scale S before backward, so small
gradients survive float16; the gradients are then averaged over ranks (sgan's own flat all_reduce),
unscaled *after* that, so the scaler's inf check sees the reduced gradients and every rank skips or
steps alike; a step whose gradients overflow is skipped and S halves (an "overflow" step: normal in
fp16, not a sign of divergence); after `growth_interval` good steps S doubles.
Gradient penalties (R1, WGAN-GP, path length) take the gradient of S * output with create_graph
and multiply it by 1/S before the penalty (PyTorch's AMP recipe "gradient penalty"), so their
values equal the unscaled ones; `penalty_scale` is S for that.

fp32 and bf16: a no-op object whose `scale` returns the loss itself and whose `finish` steps
exactly as the loops did before (bit-identical).
"""

from __future__ import annotations

from typing import Any

import torch

from sgan.train.regularizers import nan_to_num_grads_

OK, OVERFLOW, BAD = "ok", "overflow", "bad"
MIN_OVERFLOW_SCALE = 1.0
"""Non-finite gradients at a scale below this are divergence, not overflow: they count toward
max_bad_steps (16 halvings from the initial 2**16 reach it)."""


class LossScaler:
    """Loss scaling of one optimizer; `enabled` only for fp16."""

    def __init__(self, device: torch.device, precision: str, *, init_scale: float = 2.0 ** 16,
                 growth_interval: int = 2000) -> None:
        self.enabled = precision == "fp16"
        self.scaler = (torch.amp.GradScaler(device.type, init_scale=init_scale, growth_interval=growth_interval)
                       if self.enabled else None)
        self.overflows = 0    # steps skipped for overflow (cumulative, saved with the run)
        self.last = OK

    @property
    def penalty_scale(self) -> float:
        """S for a gradient penalty's inner gradient (1.0 without scaling)."""
        return float(self.scaler.get_scale()) if self.enabled else 1.0

    def get_scale(self) -> float | None:
        return float(self.scaler.get_scale()) if self.enabled else None

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        """S * loss, to call backward on (the loss itself without scaling)."""
        return self.scaler.scale(loss) if self.enabled else loss

    def finish(self, opt: torch.optim.Optimizer, *, grads_ok: bool, loss: torch.Tensor,
               clean: list[torch.Tensor] | None = None) -> bool:
        """The optimizer step after backward and the gradient all-reduce. `grads_ok`: the reduced
        gradients (and riders) are finite; `clean`: parameters whose gradients go through the
        official nan_to_num before a step that is always taken (StyleGAN2), else a step is taken only
        when everything is finite (StyleGAN). Returns False for a bad step (counts toward
        max_bad_steps); an fp16 overflow skip returns True and is counted in `overflows`."""
        loss_ok = bool(torch.isfinite(loss))
        if not self.enabled:  # exactly the loops' steps before loss scaling existed
            if clean is not None:
                nan_to_num_grads_(clean)
                opt.step()
            elif grads_ok and loss_ok:
                opt.step()
            self.last = OK if grads_ok and loss_ok else BAD
            return self.last == OK
        scale = float(self.scaler.get_scale())
        self.scaler.unscale_(opt)   # on the reduced gradients: the same inf check on every rank
        grads_finite = _grads_finite(opt)
        if grads_finite and grads_ok and loss_ok:
            self.scaler.step(opt)
            self.scaler.update()
            self.last = OK
        elif grads_finite:    # a non-finite loss or rider with finite gradients: not an overflow
            self.scaler.update(new_scale=scale)
            self.last = BAD
        else:                 # overflow: GradScaler skips the step and halves the scale
            self.scaler.step(opt)
            self.scaler.update()
            self.last = OVERFLOW if scale >= MIN_OVERFLOW_SCALE else BAD
            self.overflows += self.last == OVERFLOW
        return self.last != BAD

    def state_dict(self) -> dict[str, Any]:
        return {"scaler": self.scaler.state_dict(), "overflows": self.overflows} if self.enabled else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.enabled and state:
            self.scaler.load_state_dict(state["scaler"])
            self.overflows = int(state.get("overflows", 0))


def _grads_finite(opt: torch.optim.Optimizer) -> bool:
    grads = [p.grad for group in opt.param_groups for p in group["params"] if p.grad is not None]
    return bool(torch.isfinite(torch.stack(torch._foreach_norm(grads)).sum())) if grads else True


def make_scalers(device: torch.device, precision: str, names: tuple[str, ...] = ("G", "D")) -> dict[str, LossScaler]:
    """One scaler per name: G's and D's main losses; StyleGAN2 adds its regularisation phases
    (`G_reg`, `D_reg`), whose penalty gradients need scales of their own (a path-length gradient
    at the main loss's 2**15 overflows float16 where G's loss gradient does not)."""
    return {name: LossScaler(device, precision) for name in names}


def scaler_states(scalers: dict[str, LossScaler]) -> dict[str, Any] | None:
    """The scalers' state for a snapshot (None without loss scaling)."""
    if not any(s.enabled for s in scalers.values()):
        return None
    return {name: s.state_dict() for name, s in scalers.items()}


def load_scaler_states(scalers: dict[str, LossScaler], state: dict[str, Any] | None) -> None:
    for name, s in scalers.items():
        if state and state.get(name):
            s.load_state_dict(state[name])


def scaler_gauges(scalers: dict[str, LossScaler]) -> dict[str, Any]:
    """`grad_scale` (D's main loss), `grad_scale_<name>` of the others and `overflow_steps` (all
    overflow skips so far) for stats.jsonl; nothing without loss scaling."""
    if not any(s.enabled for s in scalers.values()):
        return {}
    out: dict[str, Any] = {"grad_scale": scalers["D"].get_scale()}
    out.update({f"grad_scale_{name}": s.get_scale() for name, s in scalers.items() if name != "D"})
    out["overflow_steps"] = sum(s.overflows for s in scalers.values())
    return out


FP16_CONV_CLAMP = 256.0   # stylegan2-ada-pytorch train.py: conv_clamp 256 in every fp16 preset


def fp16_setup(cfg: Any) -> str | None:
    """StyleGAN2 trained in fp16: conv_clamp 256 (the official fp16 setting) unless the user set one in
    `cfg.model`; changes `cfg` and returns the note to log, or None when nothing changed."""
    if cfg.precision != "fp16" or cfg.arch != "stylegan2" or "conv_clamp" in cfg.model:
        return None
    if cfg.resolution is not None and cfg.model_config().conv_clamp is not None:  # a preset's own clamp
        return None
    cfg.model = {**cfg.model, "conv_clamp": FP16_CONV_CLAMP}
    return (f"fp16: conv_clamp {FP16_CONV_CLAMP:g} (the official StyleGAN2 fp16 setting: conv outputs clipped "
            "to +-256 so float16 cannot overflow); recorded in config.json")
