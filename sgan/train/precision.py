"""The training precision: decided once, before the first step (never inside `Trainer.step`).

`--precision auto` times what a step really does: one G + D forward and backward (the D step on
reals and detached fakes, the G step through D), at this process's share of the run's minibatch,
at the run's current resolution and lod, with its architecture and loss; in fp32 and, where the
hardware runs it natively, in bfloat16 (and float16 on CUDA), and keeps the fastest that agrees
with fp32 (sgan.device.choose_precision). The probe works on fresh copies of G and D (built from
the model config, loaded with the run's weights: no hooks, no patched forwards), draws from its own
generators under a forked global RNG, takes no optimizer step and reads no real images, so the
run's counters, w_avg, G_ema, RNG streams and data stream are exactly as if it had not run.

On `--resume` the recorded precision is kept unless it is emulated or unsupported on this machine
(bf16 where bf16_native says no, fp16 on a CPU without native float16): then it is decided again
as `auto`, with one line saying so. An explicit `--precision` on resume is honoured.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import torch

import sgan.device as sgan_device
from sgan.device import PrecisionChoice, bf16_native, choose_precision, fp16_native
from sgan.nn import make_discriminator, make_generator
from sgan.train import losses

if TYPE_CHECKING:  # pragma: no cover
    from sgan.train.loop import Trainer

PROBE_REPEATS = 3       # best of up to 3 calls after one warm-up, per precision ...
PROBE_BUDGET_S = 3.0    # ... stopping once this much is spent (a 1 s step: warm-up + best of 2)


@dataclass
class TrainPrecision:
    """What a run computes in and how that was decided: `choice` (sgan.device's), the probe that was
    timed (`probe`: what, batch, resolution, seconds; empty when nothing was timed) and, on resume,
    the precision the run trained in before (`changed_from`) and the line that said so (`note`)."""
    choice: PrecisionChoice
    probe: dict[str, Any] = field(default_factory=dict)
    changed_from: str | None = None
    note: str | None = None

    @property
    def precision(self) -> str:
        return self.choice.precision

    @property
    def seconds(self) -> float:
        return float(self.probe.get("seconds", 0.0))

    def summary(self) -> str:
        """`precision bf16 (auto: ...; fp32 a ms, bf16 b ms per G+D step of 16 at 16 px)`."""
        line = self.choice.summary()
        if self.choice.timings_ms and self.probe:
            line = line[:-1] + f" per G+D step of {self.probe['batch']} at {self.probe['resolution']} px)"
        return line

    def to_dict(self) -> dict[str, Any]:
        out = self.choice.to_dict()
        if self.probe:
            out["probe"] = dict(self.probe)
        if self.changed_from is not None:
            out["changed_from"] = self.changed_from
            out["note"] = self.note
        return out


def step_probe(tr: "Trainer") -> tuple[Callable[[], torch.Tensor], dict[str, Any]]:
    """A no-argument call of one G + D forward and backward as `tr.step` runs them (no optimizer
    step, no regulariser but WGAN-GP's every-step penalty), on fresh copies of tr.G and tr.D, and a
    description of it. Under no_grad it runs G's forward only and returns the images (what
    choose_precision compares with fp32's); with gradients it also returns the images."""
    cfg, mc, device = tr.cfg, tr.model_cfg, tr.device
    res, lod = tr.point.resolution, tr.point.lod
    batch = len(range(tr.info.rank, cfg.batch_at(res, tr.info.world_size), tr.info.world_size))
    G, D = _twin(tr.G, lambda: make_generator(mc), device), _twin(tr.D, lambda: make_discriminator(mc), device)
    gen = torch.Generator().manual_seed(int(cfg.seed))
    z = torch.randn([batch, mc.z_dim], generator=gen).to(device)
    reals = (torch.rand([batch, mc.num_channels, res, res], generator=gen) * 2 - 1).to(device)
    u = torch.rand([batch], generator=gen).to(device)
    c = None
    if mc.c_dim:
        c = torch.zeros([batch, mc.c_dim], device=device)
        c[:, 0] = 1
    loss, sg2 = cfg.loss, mc.arch == "stylegan2"

    def run() -> torch.Tensor:
        noise = torch.Generator(device=device).manual_seed(int(cfg.seed))
        if not torch.is_grad_enabled():
            return G(z, c, lod=lod, noise_mode="random", generator=noise).detach().float()
        fakes = G(z, c, lod=lod, noise_mode="random", generator=noise)
        # D step: reals and detached fakes in one batch (as Trainer._d_pair), WGAN-GP's penalty
        logits = D(torch.cat([reals, fakes.detach().to(reals.dtype)]), None if c is None else torch.cat([c, c]), lod=lod)
        terms = losses.d_loss_terms(loss, logits[:batch], logits[batch:])
        loss_D = sum(terms.values())
        if loss == "wgan-gp" and cfg.wgan_lambda > 0:
            mixed = losses.interpolate(reals, fakes.detach().to(reals.dtype), u).requires_grad_(True)
            loss_D = loss_D + losses.wgan_gp_penalty(D(mixed, c, lod=lod), mixed, lam=cfg.wgan_lambda,
                                                     target=cfg.wgan_target)
        loss_D.float().backward()
        if sg2:  # StyleGAN2's Dmain draws its fakes again, without G's graph
            with torch.no_grad():
                G(z, c, lod=lod, noise_mode="random", generator=noise)
        losses.g_loss(loss, D(fakes, c, lod=lod)).float().backward()   # G step through D
        G.zero_grad(set_to_none=True)
        D.zero_grad(set_to_none=True)
        return fakes.detach().float()

    return run, {"what": "G+D forward and backward", "batch": batch, "resolution": res, "lod": round(float(lod), 5)}


def _twin(module: torch.nn.Module, build: Callable[[], torch.nn.Module], device: torch.device) -> torch.nn.Module:
    """A fresh module of the same config holding `module`'s weights and buffers and requires_grad
    flags, built under a forked global RNG (initialisation draws nothing from the run's stream)."""
    with torch.random.fork_rng(devices=[]):
        twin = build()
    twin.load_state_dict(module.state_dict())
    for mine, theirs in zip(twin.parameters(), module.parameters()):
        mine.requires_grad_(theirs.requires_grad)
    return twin.to(device).train(module.training)


def decide(tr: "Trainer", requested: str = "auto") -> TrainPrecision:
    """Turn `requested` into the run's precision: itself unless `auto`; for `auto` the probe above,
    timed per precision (sgan.device.time_call: a warm-up and the best of up to PROBE_REPEATS within
    PROBE_BUDGET_S), with this step's CPU threads. Nothing of the run changes."""
    allow_fp16 = tr.model_cfg.arch != "stylegan2" or tr.model_cfg.conv_clamp is not None
    if requested != "auto":
        return TrainPrecision(choose_precision(tr.device, requested=requested, training=True))
    native = bf16_native(tr.device)
    if not native[0] and not (allow_fp16 and tr.device.type == "cuda"):
        return TrainPrecision(choose_precision(tr.device, requested="auto", native=native, training=True))
    run, probe = step_probe(tr)

    def timer(fn: Callable[[], Any], device: torch.device, precision: str) -> float:
        return sgan_device.time_call(fn, device, precision, repeats=PROBE_REPEATS, budget_s=PROBE_BUDGET_S)

    threads = torch.get_num_threads()
    if tr.auto_threads:
        torch.set_num_threads(tr.step_threads(probe["resolution"], tr.cfg.batch_at(probe["resolution"],
                                                                                     tr.info.world_size)))
    t0 = time.perf_counter()
    try:
        choice = choose_precision(tr.device, run, requested="auto", allow_fp16=allow_fp16, timer=timer,
                                  native=native, training=True)
    finally:
        torch.set_num_threads(threads)
    probe["seconds"] = round(time.perf_counter() - t0, 3)
    return TrainPrecision(choice, probe)


def unsupported(precision: str, device: torch.device) -> str | None:
    """Why `precision` should not be resumed on `device` (emulated or not there), or None."""
    if precision == "bf16" and not bf16_native(device)[0]:
        return f"which this {'GPU' if device.type == 'cuda' else 'CPU'} emulates (4-12x slower)"
    if precision == "fp16" and device.type != "cuda" and not fp16_native(device)[0]:
        return "which this CPU cannot train in (no avx512_fp16/amx_fp16)"
    return None


def resume_note(recorded: str, reason: str, tp: TrainPrecision) -> str:
    """The one line of a resume that decides its precision again (`reason`: from `unsupported`)."""
    return f"note: the run trained in {recorded}, {reason}; resuming in {tp.summary()[len('precision '):]}"
