"""torch.compile of the training networks: `sgan train --compile auto|on|off`.

What is compiled, and how (inductor; on a CPU it fuses chains of element-wise work into C++ loops):

- StyleGAN2 (fixed resolution): G's mapping and synthesis networks and D, each whole.
- StyleGAN 1 (progressive growing): per-resolution pieces, G's mapping, each synthesis block, each
  FromRGB, each D block and D's epilogue, but not the networks' forward passes, which take `lod`:
  lod and alpha change every few steps during a fade-in, and a float guarded by the compiled code
  would recompile it every time. The pieces see fixed shapes; the fade-in blend stays eager.
- Every piece is compiled in place (its `forward` replaced by a compiled copy), so parameters,
  state_dict keys (no `_orig_mod.`), optimizers, EMA and snapshots are the eager modules' own.
  Each piece gets its own copy of its class's forward code: torch.compile keeps compiled graphs
  per code object (at most `recompile_limit`, 8, each), and twenty pieces of four classes would
  otherwise share four code objects' entries.
- Noise: a compiled graph cannot draw from torch.Generator objects (one per sample), so the maps
  are drawn ahead in the forward pass's own order (sgan.nn.inputs.draw_noise_maps): the same numbers
  the eager forward draws.
- Gradient penalties (R1, WGAN-GP) and StyleGAN2's path-length term differentiate twice
  (create_graph=True), which torch 2.13's compiled graphs refuse ("torch.compile with aot_autograd
  does not currently support double backward"); those passes run the same modules eagerly
  (`eager()`, torch.compiler.set_stance("force_eager")).

`--compile auto` (the default) compiles only where it pays within the run, by the measured rule in
`choose_compile`.
"""

from __future__ import annotations

import contextlib
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch

from sgan.errors import UsageError
from sgan.nn.inputs import draw_noise_maps

COMPILE_MODES = ("auto", "on", "off")


@dataclass
class CompileChoice:
    """Whether the run compiles, what was asked, why, and the numbers behind `auto`."""
    compile: bool
    requested: str
    reason: str
    estimate: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"compile": self.compile, "requested": self.requested, "reason": self.reason,
                "estimate": {k: round(v, 3) for k, v in self.estimate.items()}}

    def summary(self) -> str:
        return f"compile {'on' if self.compile else 'off'} ({self.requested}: {self.reason})"


def check_compile(mode: str) -> str:
    m = (mode or "auto").strip().lower()
    if m not in COMPILE_MODES:
        raise UsageError(f"--compile {mode!r}: choose {', '.join(COMPILE_MODES)}.")
    return m


def choose_compile(requested: str, *, device: torch.device, arch: str, channels: int,
                   run_seconds: Callable[[], float]) -> CompileChoice:
    """`on`/`off` as asked; `auto`: on where the time saved over the run, run_seconds() * (1 -
    compiled/eager step time), exceeds the compile time, with the speed-up and compile time measured
    for this kind of device, architecture and width (EXPECTED); off where nothing was measured.
    `run_seconds` is called only when it matters (it may time a probe)."""
    requested = check_compile(requested)
    if requested != "auto":
        return CompileChoice(requested == "on", requested, "forced")
    width = "narrow" if channels <= NARROW_CHANNELS else "wide"
    speedup, compile_s = EXPECTED.get((device.type, arch, width), (None, None))
    if speedup is None or compile_s is None:
        return CompileChoice(False, "auto", f"torch.compile not measured for {arch} at {width} widths on "
                             f"{device.type}")
    if speedup <= 1.0:
        return CompileChoice(False, "auto", f"compiled {arch} steps measured no faster on {device.type} at "
                             f"{width} widths ({speedup:.2f}x)",
                             {"speedup": speedup, "compile_s": compile_s})
    seconds = float(run_seconds())
    saved = seconds * (1.0 - 1.0 / speedup)
    est = {"run_s": seconds, "speedup": speedup, "compile_s": compile_s, "saved_s": saved}
    if saved <= compile_s:
        return CompileChoice(False, "auto", f"a {seconds / 60:.1f}-minute run would save ~{saved:.0f} s "
                             f"({speedup:.2f}x), less than the ~{compile_s:.0f} s compile", est)
    return CompileChoice(True, "auto", f"a {seconds / 60:.1f}-minute run saves ~{saved:.0f} s ({speedup:.2f}x) "
                         f"for a ~{compile_s:.0f} s compile", est)


NARROW_CHANNELS = 64   # at most this many feature maps: the element-wise work compile fuses dominates

# (step speed-up compiled vs eager, compile seconds) by (device type, arch, width), measured with
# benchmarks/compile.py on an AMD EPYC (AVX2, 2 cores, shared and loaded; docs/train.md has the table),
# torch 2.13, fresh inductor cache, the cpu presets (32 channels, batch 16):
# - StyleGAN 1: 1.05x at 8 px, 0.95x at 16, 0.99x at 32, 1.04x in the 16->32 fade-in; compile
#   88 + 62 + 256 s over the three resolutions: no faster, so auto stays eager (1.0 below).
# - StyleGAN2 at 32 px: 1.14x, compile 236 s: pays only in runs over 236 / (1 - 1/1.14) s = 32 min,
#   so not in the 20-minute cpu preset run (it would save ~147 s).
# Nothing measured on CUDA or at the paper's widths: auto stays eager there.
EXPECTED: dict[tuple[str, str, str], tuple[float | None, float | None]] = {
    ("cpu", "stylegan1", "narrow"): (1.0, 406.0),
    ("cpu", "stylegan2", "narrow"): (1.14, 236.0),
}


def estimate_run_seconds(tr: Any) -> float:
    """Seconds of training left: the rest of --minutes, or for a kimg run the kimg left times a
    rough per-image cost: 3x (G and D, forward and backward) the time of the G forward+backward
    probe at 4 images (sgan.device.generator_probe at the run's precision)."""
    cfg = tr.cfg
    if cfg.by_time:
        return max(cfg.minutes * 60.0 - tr.c.train_seconds, 0.0)
    from sgan.device import generator_probe, time_call

    per_image = 3.0 * time_call(generator_probe(tr.G, batch=4), tr.device, cfg.precision) / 4
    return max(cfg.total_kimg * 1000.0 - tr.c.cur_nimg, 0.0) * per_image


def choose_for(tr: Any) -> CompileChoice:
    """The compile choice of a Trainer (rank 0's is broadcast to the others)."""
    return choose_compile(tr.cfg.compile, device=tr.device, arch=tr.model_cfg.arch, channels=max_channels(tr.G),
                          run_seconds=lambda: estimate_run_seconds(tr))


def max_channels(G: torch.nn.Module) -> int:
    return max((p.shape[0] for n, p in G.synthesis.named_parameters() if p.ndim == 4), default=0)


def apply_choice(tr: Any, choice: CompileChoice) -> CompileChoice:
    """Record the choice on the Trainer and compile its G and D pieces when it says so."""
    tr.compile_choice = choice
    if choice.compile and not tr.compiled:
        compile_networks(tr.G, tr.D)
        tr.compiled = True
    return choice


# -- compiling in place -------------------------------------------------------------------------

def _own_forward(module: torch.nn.Module) -> types.MethodType:
    """`module.forward` bound to a fresh copy of its code object (torch.compile caches per code object)."""
    fn = type(module).forward
    fresh = types.FunctionType(fn.__code__.replace(), fn.__globals__, fn.__name__, fn.__defaults__, fn.__closure__)
    fresh.__kwdefaults__ = fn.__kwdefaults__
    fresh.__qualname__ = fn.__qualname__
    return types.MethodType(fresh, module)


def compile_module(module: torch.nn.Module) -> None:
    """Compile `module` in place: its forward becomes a compiled copy (fixed shapes); its
    parameters and state_dict are untouched (`del module.forward` undoes it)."""
    module.forward = torch.compile(_own_forward(module), dynamic=False)


def compile_pieces(G: torch.nn.Module, D: torch.nn.Module) -> list[torch.nn.Module]:
    """The modules compiled for this architecture (see the module docstring)."""
    if G.cfg.arch == "stylegan2":
        return [G.mapping, G.synthesis, D]
    pieces: list[torch.nn.Module] = [G.mapping, *G.synthesis.blocks, *D.fromrgbs, *D.blocks, D.epilogue]
    return pieces


def compile_networks(G: torch.nn.Module, D: torch.nn.Module) -> list[torch.nn.Module]:
    pieces = compile_pieces(G, D)
    for m in pieces:
        compile_module(m)
    return pieces


def eager(enabled: bool = True) -> contextlib.AbstractContextManager:
    """Within the block, compiled modules run their eager code (the double-backward passes)."""
    return torch.compiler.set_stance("force_eager") if enabled else contextlib.nullcontext()


def noise_input(synthesis: torch.nn.Module, generators: Any, *, lod: float, n: int, device: torch.device,
                compiled: bool) -> Any:
    """What to pass as the synthesis network's `generator`: the generators themselves (eager), or
    the noise maps drawn from them ahead (compiled)."""
    if not compiled:
        return generators
    return draw_noise_maps(synthesis.noise_inputs(lod), generators, device=device, n=n)


def compile_counts() -> dict[str, int]:
    """Graphs compiled so far in this process (torch._dynamo's counters): frames and unique graphs."""
    from torch._dynamo.utils import counters

    return {"compiled_frames": int(counters["frames"]["ok"]), "graphs": int(counters["stats"]["unique_graphs"])}


def grad_rel_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    """||grad_a - grad_b|| / ||grad_a|| over all of a network's parameters (two copies of one network).
    Over the whole network, not per tensor: some tensors' gradients are sums that cancel almost to 0
    (a bias before an instance norm), where rounding is large relative to the tensor's own norm."""
    da = [(pa.grad, pb.grad) for pa, pb in zip(a.parameters(), b.parameters()) if pa.grad is not None]
    num = sum(float((ga - gb).double().square().sum()) for ga, gb in da)
    den = sum(float(ga.double().square().sum()) for ga, _ in da)
    return (num / den) ** 0.5 if den > 0 else 0.0


def update_rel_diff(a: torch.nn.Module, b: torch.nn.Module, before: dict[str, torch.Tensor]) -> float:
    """||theta_a - theta_b|| / ||theta_a - before|| over a network's parameters: how much two copies'
    updates from the same `before` state differ, relative to the update."""
    pa = {k: v.detach() for k, v in a.named_parameters()}
    pb = {k: v.detach() for k, v in b.named_parameters()}
    num = sum(float((pa[k] - pb[k]).double().square().sum()) for k in pa)
    den = sum(float((pa[k] - before[k]).double().square().sum()) for k in pa)
    return (num / den) ** 0.5 if den > 0 else 0.0


@contextlib.contextmanager
def frozen_lr(tr: Any) -> Iterator[None]:
    """Within the block a Trainer's Adam steps use lr 0, so every phase of a step computes its
    gradients at the same parameters (comparing the gradients of two trainers phase by phase)."""
    saved = (tr.cfg.lr_base, dict(tr.cfg.lr_dict), [[g["lr"] for g in o.param_groups] for o in (tr.opt_G, tr.opt_D)])
    tr.cfg.lr_base, tr.cfg.lr_dict = 0.0, {}
    for o in (tr.opt_G, tr.opt_D):
        for g in o.param_groups:
            g["lr"] = 0.0
    try:
        yield
    finally:
        tr.cfg.lr_base, tr.cfg.lr_dict = saved[0], saved[1]
        for o, lrs in zip((tr.opt_G, tr.opt_D), saved[2]):
            for g, lr in zip(o.param_groups, lrs):
                g["lr"] = lr
