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
- Each piece compiles as one graph (fullgraph: a graph break is an error). Before, a break inside a
  synthesis block (a precision probe calling the compiled G with torch.Generator objects) left the
  layers inside to dynamo as frames of their own, on the code object every LayerEpilogue shares: one
  graph per size and dtype until the recompile limit (8), then eager (issue 18's "recompile_limit (8)
  ... synthesis.py:40"). A piece compiles once per variant it meets (compile_entries): StyleGAN 1
  G's once, D's three times (the reals+fakes pair, the fakes alone in an R1 step, frozen in the G
  step); StyleGAN2 G's and D's twice (trainable in their own phase, frozen in the other's).
- Noise: a compiled graph cannot draw from torch.Generator objects (one per sample), so the maps
  are drawn ahead in the forward pass's own order (sgan.nn.inputs.draw_noise_maps): the same numbers
  the eager forward draws. A call that would draw its own noise runs the piece's eager code.
- Precision: compiled only in fp32 on a CPU (LOW_PRECISION_CPU: compiled bf16 rounds unlike eager
  bf16, as far apart as bf16 is from fp32); the precision is resolved before compiling.
- Gradient penalties (R1, WGAN-GP) and StyleGAN2's path-length term differentiate twice
  (create_graph=True), which torch 2.13's compiled graphs refuse ("torch.compile with aot_autograd
  does not currently support double backward"); those passes run the same modules eagerly
  (`eager()`, torch.compiler.set_stance("force_eager")).

`--compile auto` (the default) compiles only where it pays within the run, by the measured rule in
`choose_compile`.
"""

from __future__ import annotations

import contextlib
import inspect
import types
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import torch

import sgan.device as sgan_device
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
                   run_seconds: Callable[[], float], precision: str = "fp32") -> CompileChoice:
    """`on`/`off` as asked, but off on a CPU in bf16 or fp16 autocast (`precision`, resolved before:
    see LOW_PRECISION_CPU); `auto`: on where the time saved over the run, run_seconds() * (1 -
    compiled/eager step time), exceeds the compile time, with the speed-up and compile time measured
    for this CPU family (cpu_family: avx2, avx512, amx) or device type, architecture and width
    (EXPECTED); off where nothing was measured.
    `run_seconds` is called only when it matters (it may time a probe)."""
    requested = check_compile(requested)
    if requested == "off":
        return CompileChoice(False, requested, "forced")
    if device.type == "cpu" and precision in ("bf16", "fp16"):
        return CompileChoice(False, requested, LOW_PRECISION_CPU.format(precision=precision))
    if requested == "on":
        return CompileChoice(True, requested, "forced")
    width = "narrow" if channels <= NARROW_CHANNELS else "wide"
    family = cpu_family() if device.type == "cpu" else device.type
    where = f"{device.type} ({family})" if device.type == "cpu" else device.type
    speedup, compile_s = EXPECTED.get((family, arch, width), (None, None))
    if speedup is None or compile_s is None:
        return CompileChoice(False, "auto", f"torch.compile not measured for {arch} at {width} widths on {where}")
    if speedup <= 1.0:
        return CompileChoice(False, "auto", f"compiled {arch} steps measured no faster on {where} at "
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


# Compiled bf16 steps do not compute what eager bf16 steps compute: inductor fuses chains of bf16
# element-wise work and keeps the intermediates in fp32 where eager rounds every op's output to bf16,
# and reduces in another order before results are rounded to bf16. Measured (benchmarks/compile.py
# --precision bf16 and the tiny model of tests/test_train_compile.py, Ice Lake Xeon AVX-512 without
# native bf16, torch 2.13): compiled against eager gradients 0.09-0.17 relative, updates 0.15-0.26, the
# size of bf16's own error (eager bf16 against eager fp32: gradients 0.09-0.14, updates 0.21-0.28;
# compiled bf16 against fp32: 0.13-0.15, 0.21-0.22), and what an AVX-512 BF16 + AMX machine reported
# (0.124, 0.307). inductor's emulate_precision_casts narrows it at 8 px (1e-7) but not at 16 (7e-2).
# fp32 compiled steps match eager within 1e-6 (tests/test_train_compile.py, both vector ISAs).
LOW_PRECISION_CPU = ("{precision} on cpu: compiled {precision} steps round differently from eager ones (gradients "
                     "~0.1 relative apart, as far as {precision} is from fp32); compile runs in fp32 only")

NARROW_CHANNELS = 64   # at most this many feature maps: the element-wise work compile fuses dominates

CPU_FAMILIES = ("avx2", "avx512", "amx")


def cpu_family(flags: set[str] | None = None) -> str:
    """The CPU family the compile rule's figures were measured on: `amx` (AVX-512 BF16 + AMX, e.g.
    Sapphire Rapids), `avx512` (AVX-512 without native bf16, e.g. Ice Lake), else `avx2` (AVX2 only,
    e.g. the AMD EPYC machines; also where there are no flags to read). From sgan.device.cpu_flags."""
    flags = sgan_device.cpu_flags() if flags is None else flags
    if "amx_bf16" in flags:
        return "amx"
    if "avx512f" in flags:
        return "avx512"
    return "avx2"


# (step speed-up compiled vs eager in fp32, compile seconds over a run's resolutions) by (CPU family or
# device type, arch, width), measured with benchmarks/compile.py, torch 2.13, fresh inductor cache, the
# cpu presets (32 channels, batch 16), 2 cores, shared and loaded (docs/train.md has the tables):
# - avx2 (AMD EPYC): StyleGAN 1 1.05x at 8 px, 0.95x at 16, 0.99x at 32, 1.04x in the 16->32 fade-in;
#   compile 88 + 62 + 256 s: no faster (1.0 below). StyleGAN2 at 32 px: 1.14x, compile 236 s: pays only
#   in runs over 236 / (1 - 1/1.14) s = 32 min, so not in the 20-minute cpu preset run.
# - avx512 (Ice Lake Xeon, family 6 model 106, AVX-512F/BW/VL/VNNI, no bf16 / AMX; machine loaded by
#   ~7 other jobs, load 12-15 on 2 cores): StyleGAN 1 0.99x at 8 px, 0.86x at 16, 0.94x at 32, compile
#   900 + 213 + 1028 s (the load inflates it, ~4x): slower, so auto stays eager (0.93, their geometric
#   mean, below). StyleGAN2 at 32 px: 1.21x, compile 786 s: pays only in runs over 786 / (1 - 1/1.21) s
#   = 75 min (on an idle machine the compile, and so that bound, would be shorter).
# - amx (AVX-512 BF16 + AMX): reported by issue 18, not measured here: StyleGAN 1 at 16 px 0.86x,
#   compile 155 s, in the precision auto chose there (likely bf16, where compile is now off anyway);
#   StyleGAN2 not measured: auto stays eager.
# Nothing measured on CUDA or at the paper's widths: auto stays eager there.
EXPECTED: dict[tuple[str, str, str], tuple[float | None, float | None]] = {
    ("avx2", "stylegan1", "narrow"): (1.0, 406.0),
    ("avx2", "stylegan2", "narrow"): (1.14, 236.0),
    ("avx512", "stylegan1", "narrow"): (0.93, 2141.0),
    ("avx512", "stylegan2", "narrow"): (1.21, 786.0),
    ("amx", "stylegan1", "narrow"): (0.86, 155.0),
}


def estimate_run_seconds(tr: Any) -> float:
    """Seconds of training left: the rest of --minutes, or for a kimg run the kimg left times a
    rough per-image cost: 3x (G and D, forward and backward) the time of the G forward+backward
    probe at 4 images (sgan.device.generator_probe at the run's precision)."""
    cfg = tr.cfg
    if cfg.by_time:
        return max(cfg.minutes * 60.0 - tr.c.train_seconds, 0.0)
    per_image = 3.0 * sgan_device.time_call(sgan_device.generator_probe(tr.G, batch=4), tr.device, cfg.precision) / 4
    return max(cfg.total_kimg * 1000.0 - tr.c.cur_nimg, 0.0) * per_image


def choose_for(tr: Any) -> CompileChoice:
    """The compile choice of a Trainer (rank 0's is broadcast to the others), made after its precision:
    a precision still `auto` is resolved first (its probe runs the eager networks)."""
    if tr.cfg.precision == "auto":
        tr.resolve_precision()
    return choose_compile(tr.cfg.compile, device=tr.device, arch=tr.model_cfg.arch, channels=max_channels(tr.G),
                          run_seconds=lambda: estimate_run_seconds(tr), precision=tr.cfg.precision)


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
    """Compile `module` in place: its forward becomes a compiled copy (fixed shapes, one graph: a
    graph break is an error, not a silent split); its parameters and state_dict are untouched
    (`del module.forward` undoes it). A call that would draw noise inside the graph (noise mode
    `random` with torch.Generator objects or None instead of maps drawn ahead, e.g. a precision
    probe of the generator) runs the eager code: dynamo cannot trace a torch.Generator (it would
    break the graph and compile the layers inside on their own, on code objects all instances of
    a class share, one entry per size until the recompile limit), and inductor's own random
    numbers are not the eager ones."""
    own = _own_forward(module)
    compiled = torch.compile(own, dynamic=False, fullgraph=True)
    draws = _draws_noise_check(module)

    def forward(*args: Any, **kwargs: Any) -> Any:
        if draws is not None and draws(args, kwargs):
            return own(*args, **kwargs)
        return compiled(*args, **kwargs)

    forward.compiled_code = own.__func__.__code__   # type: ignore[attr-defined]  (compile_entries)
    module.forward = forward


def _draws_noise_check(module: torch.nn.Module) -> Callable[[tuple, dict], bool] | None:
    """For a forward with `noise_mode` and `generator` parameters: a test of a call's arguments,
    true where it would draw noise itself (mode `random`, generator not a dict of maps)."""
    sig = inspect.signature(type(module).forward)
    if not {"noise_mode", "generator"} <= set(sig.parameters):
        return None

    def draws(args: tuple, kwargs: dict) -> bool:
        bound = sig.bind(module, *args, **kwargs)
        bound.apply_defaults()
        return bound.arguments["noise_mode"] == "random" and not isinstance(bound.arguments["generator"], dict)

    return draws


def compile_entries(modules: Any) -> dict[str, int]:
    """{name: graphs compiled for it so far} for the compiled modules among `modules` (a dict of
    name -> module, e.g. dict(G.named_modules())): each compiled piece's own code object's cache
    entries (the module docstring says how many a run makes)."""
    from torch._dynamo.eval_frame import _debug_get_cache_entry_list

    out = {}
    for name, m in modules.items():
        code = getattr(vars(m).get("forward"), "compiled_code", None)
        if code is not None:
            out[name] = len(_debug_get_cache_entry_list(code))
    return out


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
